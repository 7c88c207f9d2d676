"""Fixtures for the portal tests: a small office, people and signed-in clients. The
Chromium fixtures (``browser``, ``new_page``) are in tests/browser.py, shared by every
directory."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import time as clock

import pytest

from reservations.models import Amenity, Location, Space, SpaceKind


@dataclass
class Office:
    location: Location
    booth: Space  # room for 1
    small: Space  # room for 4, display
    big: Space  # room for 10, display + video, groups allowed
    desk: Space
    display: Amenity
    video: Amenity


@pytest.fixture
def office(make_location, make_space) -> Office:
    location = make_location("HQ", time_zone="Europe/London", opens=clock(7), closes=clock(20))
    display = Amenity.objects.create(name="Display")
    video = Amenity.objects.create(name="Video conferencing")
    booth = make_space(location, name="Booth", capacity=1)
    small = make_space(location, name="Small room", capacity=4)
    small.amenities.add(display)
    big = make_space(location, name="Big room", capacity=10, allows_group=True)
    big.amenities.add(display, video)
    desk = make_space(location, name="Desk 1", kind=SpaceKind.DESK, capacity=1)
    return Office(location, booth, small, big, desk, display, video)


@pytest.fixture
def alice(make_user):
    return make_user("alice", first_name="Alice", last_name="Archer")


@pytest.fixture
def bob(make_user):
    return make_user("bob", first_name="Bob", last_name="Baker")


@pytest.fixture
def assistant(make_user):
    return make_user("ann", first_name="Ann", perms=("reservations.book_on_behalf",))


@pytest.fixture
def alice_client(client, alice):
    client.force_login(alice)
    return client
