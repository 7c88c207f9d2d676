"""Closures in the portal: the booking form says why a closed slot is refused, search leaves
closed spaces out (and says when the whole location is closed), quick reservation says so,
and the schedule shows a closed day, or a closed space's hours, with the closure's reason."""

from __future__ import annotations

from datetime import datetime
from datetime import time as clock
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse

from reservations.models import Closure, Reservation
from tests.conftest import next_weekday

pytestmark = pytest.mark.django_db

DAY = next_weekday(1)


def close(office, *, space=None, reason="Maintenance", **extra) -> Closure:
    return Closure.objects.create(
        location=office.location, space=space, start_date=DAY, end_date=DAY, reason=reason, **extra
    )


def book_form(space, *, start="10:00", end="11:00") -> dict:
    return {
        "space": space.pk,
        "date": DAY.isoformat(),
        "start": start,
        "end": end,
        "title": "",
        "public_nickname": "",
        "description": "",
        "interval": 1,
    }


def search(client, office, start="10:00") -> str:
    params = {"location": office.location.pk, "date": DAY.isoformat(), "start": start}
    return client.get(reverse("portal:find"), {**params, "duration": 60, "capacity": 1})


def test_booking_a_closed_room_says_why_and_offers_open_rooms(alice_client, office):
    close(office, space=office.small, reason="New carpets")
    response = alice_client.post(reverse("portal:book"), book_form(office.small))
    assert response.status_code == 409
    body = response.content.decode()
    assert "Closed at that time" in body
    assert f"Small room is closed on {DAY:%a %d %b %Y}: New carpets." in body
    assert office.small not in response.context["options"]
    assert office.big in response.context["options"]
    assert not Reservation.objects.exists()


def test_search_leaves_closed_spaces_out_and_names_a_closed_location(alice_client, office):
    close(office, space=office.small, start_time=clock(9), end_time=clock(12))
    names = [s.name for s in search(alice_client, office).context["spaces"]]
    assert "Small room" not in names and "Big room" in names
    assert "Small room" in [s.name for s in search(alice_client, office, "13:00").context["spaces"]]

    close(office, reason="Public holiday")
    response = search(alice_client, office)
    assert response.context["problem"] == f"HQ is closed on {DAY:%a %d %b %Y}: Public holiday."
    assert "Public holiday" in response.content.decode()


def test_the_schedule_shows_a_closed_day_with_its_reason(alice_client, office):
    close(office, reason="Christmas Day")
    body = alice_client.get(
        reverse("portal:schedule"), {"location": office.location.pk, "date": DAY}
    ).content.decode()
    assert f"HQ is closed on {DAY:%a %d %b %Y}: Christmas Day." in body
    assert "via=planner" not in body  # nothing to book that day


def test_the_schedule_greys_out_a_closed_space_with_its_reason(alice_client, office):
    close(office, space=office.small, reason="Painting", start_time=clock(9), end_time=clock(11))
    body = alice_client.get(
        reverse("portal:schedule"), {"location": office.location.pk, "date": DAY}
    ).content.decode()
    reason = f"Small room is closed from 09:00 to 11:00 on {DAY:%a %d %b %Y}: Painting."
    assert reason in body and "block-closed" in body
    small, big = office.small.pk, office.big.pk
    assert f"space={small}&amp;date={DAY.isoformat()}&amp;start=09:30" not in body
    assert f"space={big}&amp;date={DAY.isoformat()}&amp;start=09:30" in body
    # The slot before the closure suggests an end where the closure begins.
    assert f"space={small}&amp;date={DAY.isoformat()}&amp;start=08:30&amp;end=09:00" in body


def test_quick_reservation_skips_a_closed_room_and_names_a_closed_location(
    alice_client, alice, office, monkeypatch
):
    moment = datetime.combine(DAY, clock(10), tzinfo=ZoneInfo(office.location.time_zone))
    monkeypatch.setattr("django.utils.timezone.now", lambda: moment)
    close(office, space=office.booth, reason="Broken chair")
    alice_client.post(reverse("portal:quick"))
    assert Reservation.objects.get(requested_for=alice).space == office.small

    close(office, reason="Power cut")
    response = alice_client.post(reverse("portal:quick"), follow=True)
    assert f"HQ is closed on {DAY:%a %d %b %Y}: Power cut." in response.content.decode()
    assert Reservation.objects.count() == 1
