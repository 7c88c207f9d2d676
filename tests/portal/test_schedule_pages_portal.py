"""The schedule shows one floor or page of a location's spaces at a time (SCHEDULE_PAGE_SIZE)."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from reservations.models import Space
from reservations.views.schedule import floor_order
from tests.conftest import local
from tests.support.portal import DAY

URL = reverse("portal:schedule")


def rows(body: str) -> list[str]:
    """The spaces the grid shows, top to bottom."""
    return re.findall(r'class="space-name"[^>]*>([^<]+)</a>', body)


@pytest.fixture
def tower(make_location, make_space, settings):
    """Five rooms on floors 2, 10 and none, two to a page."""
    settings.SCHEDULE_PAGE_SIZE = 2
    location = make_location("Tower")
    for name, floor in (("Ash", "10"), ("Beech", "2"), ("Cedar", "2"), ("Dove", ""), ("Elm", "10")):
        make_space(location, name=name, floor=floor)
    return location


def test_all_floors_come_two_to_a_page_in_floor_order_with_links_between(alice_client, tower):
    first = alice_client.get(URL, {"location": tower.pk, "date": DAY}).content.decode()
    # Floor 2 before floor 10 (not as text, where "10" < "2"); rooms without a floor last.
    assert rows(first) == ["Beech", "Cedar"]
    assert "Spaces 1\u20132 of 5" in first
    assert "Previous spaces" not in first
    next_page = f"?location={tower.pk}&amp;date={DAY}&amp;page=2"
    assert f'href="{next_page}"' in first

    second = alice_client.get(URL, {"location": tower.pk, "date": DAY, "page": "2"})
    assert rows(second.content.decode()) == ["Ash", "Elm"]
    last = alice_client.get(URL, {"location": tower.pk, "date": DAY, "page": "3"}).content.decode()
    assert rows(last) == ["Dove"] and "Spaces 5\u20135 of 5" in last
    assert "Next spaces" not in last and "Previous spaces" in last
    # A page past the end shows the last one; a malformed one the first.
    assert rows(alice_client.get(URL, {"location": tower.pk, "page": "99"}).content.decode()) == [
        "Dove"
    ]
    assert rows(alice_client.get(URL, {"location": tower.pk, "page": "-1x"}).content.decode()) == [
        "Beech",
        "Cedar",
    ]


def test_a_floor_shows_only_its_spaces_and_the_day_links_keep_it(alice_client, tower):
    body = alice_client.get(
        URL, {"location": tower.pk, "date": DAY, "floor": "10"}
    ).content.decode()
    assert rows(body) == ["Ash", "Elm"]
    assert "· floor 10" in body and "Spaces" not in body  # one page: no pager
    picker = re.search(r'<select id="schedule-floor" name="floor">(.*?)</select>', body, re.S)
    assert picker is not None
    assert re.findall(r'<option value="([^"]*)"', picker.group(1)) == ["", "2", "10"]
    assert '<option value="10" selected>' in picker.group(1)
    next_day = DAY.fromordinal(DAY.toordinal() + 1)
    assert f'href="?location={tower.pk}&amp;date={next_day}&amp;floor=10"' in body
    # A floor the location does not have (the picker's value after switching location): all.
    other = alice_client.get(URL, {"location": tower.pk, "date": DAY, "floor": "7"})
    assert rows(other.content.decode()) == ["Beech", "Cedar"]


def test_spaces_on_other_pages_cost_no_queries_and_their_bookings_are_not_drawn(
    alice_client, tower, alice, make_space, make_reservation
):
    beech = Space.objects.get(location=tower, name="Beech")
    make_reservation(beech, user=alice, title="Here", start=local(tower, DAY, 9))

    def first_page() -> tuple[int, str]:
        with CaptureQueriesContext(connection) as captured:
            body = alice_client.get(URL, {"location": tower.pk, "date": DAY}).content.decode()
        return len(captured), body

    first_page()  # warm what is read once per process
    before, body = first_page()
    assert "Here" in body
    for number in range(6):
        room = make_space(tower, name=f"Upper {number}", floor="12")
        make_reservation(room, user=alice, title="Elsewhere", start=local(tower, DAY, 11))
    after, body = first_page()
    assert after == before
    assert rows(body) == ["Beech", "Cedar"] and "Elsewhere" not in body
    assert "Spaces 1\u20132 of 11" in body


def test_the_htmx_swap_carries_the_pager_and_the_picker(alice_client, tower):
    partial = alice_client.get(
        URL, {"location": tower.pk, "date": DAY, "page": "2"}, HTTP_HX_REQUEST="true"
    ).content.decode()
    assert "<html" not in partial
    assert 'aria-label="Pages of spaces"' in partial and 'id="schedule-floor"' in partial
    assert f'hx-get="{URL}?location={tower.pk}&amp;date={DAY}"' in partial  # previous: page 1


def test_a_location_on_one_floor_has_no_picker_and_its_links_are_as_before(
    alice_client, make_location, make_space
):
    location = make_location()
    make_space(location, floor="1")
    body = alice_client.get(URL, {"location": location.pk, "date": DAY}).content.decode()
    assert 'id="schedule-floor"' not in body and "Pages of spaces" not in body
    previous_day = DAY.fromordinal(DAY.toordinal() - 1)
    assert f'href="?location={location.pk}&amp;date={previous_day}"' in body


def test_floor_order():
    floors = ["10", "", "B", "2", "-1", "a", "0"]
    assert sorted(floors, key=floor_order) == ["-1", "0", "2", "10", "a", "B", ""]


def test_a_page_size_of_zero_shows_one_space_a_page(alice_client, tower, settings):
    settings.SCHEDULE_PAGE_SIZE = 0
    body = alice_client.get(URL, {"location": tower.pk, "date": DAY, "page": "2"}).content.decode()
    assert rows(body) == ["Cedar"] and "Spaces 2\u20132 of 5" in body
