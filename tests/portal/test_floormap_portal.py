"""Find a space as a map: each placed space of the chosen floor is free, booked or not
bookable for the searched time (bookings, buffers, closures, people), with a Book link for
the free ones, and the same spaces in a table under the map; photos in the results and on the
booking form."""

from __future__ import annotations

import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from reservations.models import Closure, FloorMap, SpaceKind
from tests.conftest import local, next_weekday
from tests.support.images import png, svg

pytestmark = pytest.mark.django_db

DAY = next_weekday(2)


def add_map(location, floor: str, content: bytes = b"") -> FloorMap:
    floor_map = FloorMap(location=location, floor=floor)
    floor_map.image = SimpleUploadedFile("plan.svg", content or svg())
    floor_map.save()
    return floor_map


@pytest.fixture
def mapped(office):
    """The office's four spaces on floor 1, placed on its map."""
    for n, space in enumerate((office.booth, office.small, office.big, office.desk)):
        space.floor, space.map_x, space.map_y = "1", 0.1 + n * 0.2, 0.5
        space.save()
    return add_map(office.location, "1")


def search(client, office, **params):
    query = {
        "location": office.location.pk,
        "date": DAY.isoformat(),
        "start": "10:00",
        "duration": 60,
        "capacity": 1,
        "view": "map",
        **params,
    }
    return client.get(reverse("portal:find"), query).content.decode()


def marker(page: str, name: str) -> str:
    found = re.search(
        r'<button type="button" class="marker [^"]*"[^>]*aria-label="' + name + r',[^"]*"', page
    )
    assert found, f"no marker for {name}"
    return found.group(0)


def test_markers_say_free_booked_or_not_bookable_for_the_time(
    alice_client, office, mapped, make_reservation, bob
):
    make_reservation(office.small, user=bob, start=local(office.location, DAY, 10))
    Closure.objects.create(
        location=office.location, space=office.big, start_date=DAY, end_date=DAY, reason="Paint"
    )
    page = search(alice_client, office, capacity=1)
    assert 'aria-label="Small room, 4 seats, booked"' in marker(page, "Small room")
    assert "marker-booked" in marker(page, "Small room")
    assert 'aria-label="Big room, 10 seats, not bookable"' in marker(page, "Big room")
    assert "marker-not-bookable" in marker(page, "Big room")
    assert f"Big room is closed on {DAY:%a %d %b %Y}: Paint." in page
    assert 'aria-label="Booth, 1 seat, free"' in marker(page, "Booth")
    assert "marker-free at-x10 at-y50" in marker(page, "Booth")
    # The free one's popover books it at the searched time.
    book = (
        f"/book/?space={office.booth.pk}&amp;date={DAY.isoformat()}&amp;start=10:00&amp;end=11:00"
    )
    assert f'href="{book}">Book Booth</a>' in page
    assert "Book Small room" not in page and "Book Big room" not in page
    # The table under the map says the same in words.
    table = page.split('<table class="map-table">')[1]
    row = re.search(r"<th scope=\"row\">Small room</th>.*?</tr>", table, re.S).group(0)
    assert '<span class="state state-booked">booked</span>' in row and ">Book<" not in row


def test_a_room_too_small_for_the_people_is_not_bookable(alice_client, office, mapped):
    page = search(alice_client, office, capacity=4)
    assert "not bookable" in marker(page, "Booth")
    assert "Too small: for up to 1, you asked for 4." in page
    assert "free" in marker(page, "Small room")


def test_a_buffer_makes_a_neighbouring_slot_booked(
    alice_client, office, mapped, make_reservation, bob
):
    """The same computation as the list: 15 minutes of cleanup after a 09:00-10:00 booking
    keep 10:00 from being free."""
    office.big.cleanup_minutes = 15
    office.big.save()
    make_reservation(office.big, user=bob, start=local(office.location, DAY, 9))
    page = search(alice_client, office)
    assert "booked" in marker(page, "Big room")
    listed = search(alice_client, office, view="list")
    assert "Book Big room" not in listed


def test_a_desk_search_marks_rooms_not_bookable(alice_client, office, mapped):
    page = search(alice_client, office, kind=SpaceKind.DESK)
    assert "free" in marker(page, "Desk 1")
    assert "not bookable" in marker(page, "Booth")


def test_the_map_of_another_floor_is_a_link_away(alice_client, office, mapped, make_space):
    add_map(office.location, "2")
    upstairs = make_space(office.location, name="Loft", floor="2", map_x=0.5, map_y=0.5)
    page = search(alice_client, office)
    assert "Floor 1 of HQ" in page and "Loft" not in page
    link = re.search(r'<a href="\?([^"]*floor=2[^"]*)"', page).group(1).replace("&amp;", "&")
    assert "view=map" in link
    upstairs_page = alice_client.get(f"{reverse('portal:find')}?{link}").content.decode()
    assert "Floor 2 of HQ" in upstairs_page and "free" in marker(upstairs_page, upstairs.name)
    assert '<input type="hidden" name="floor" value="2"' in upstairs_page


def test_htmx_swaps_in_the_map(alice_client, office, mapped):
    response = alice_client.get(
        reverse("portal:find"),
        {"location": office.location.pk, "date": DAY.isoformat(), "start": "10:00", "view": "map"},
        headers={"HX-Request": "true"},
    )
    page = response.content.decode()
    assert "<html" not in page and 'class="floormap"' in page


def test_a_location_without_maps_says_so(alice_client, office):
    page = search(alice_client, office)
    assert "HQ has no floor map yet" in page


def test_unplaced_spaces_are_counted_under_the_map(alice_client, office, mapped, make_space):
    make_space(office.location, name="Annex", floor="1")
    page = search(alice_client, office)
    assert "1 space of this floor is not on the map yet" in page


def test_photos_in_results_and_on_the_booking_form(alice_client, office):
    office.small.photo = SimpleUploadedFile("small.png", png())
    office.small.save()
    page = search(alice_client, office, view="list")
    photo = r'<img class="space-photo" src="/media/spaces/small-room-\w+\.png"'
    assert re.search(photo + r' alt="Photo of Small room"', page)
    form = alice_client.get(reverse("portal:book"), {"space": office.small.pk}).content.decode()
    assert 'alt="Photo of Small room"' in form
    assert alice_client.get(office.small.photo.url).status_code == 200
