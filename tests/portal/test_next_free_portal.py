"""A taken slot in the booking form: the same room's next free times of the same length (one
click books it then, with what was typed), and other rooms that hold the people asked for."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse

from reservations import services
from reservations.models import Reservation
from tests.conftest import local, next_weekday

pytestmark = pytest.mark.django_db

DAY = next_weekday(2)  # a Wednesday next week


def book_form(space, *, start="10:00", end="11:00", day=DAY, **extra) -> dict:
    data = {"space": space.pk, "date": day.isoformat(), "start": start, "end": end}
    data.update({"title": "", "public_nickname": "", "description": "", "interval": 1})
    data.update(extra)
    return data


def taken(office, bob, space=None, hour=10, minutes=60):
    start = local(office.location, DAY, hour)
    return services.book(
        actor=bob, space=space or office.small, start=start, end=start + timedelta(minutes=minutes)
    ).reservations[0]


def offered(response) -> list[tuple[str, str]]:
    return [(f"{s:%a %H:%M}", f"{e:%H:%M}") for s, e in response.context["conflict"].next_free]


def test_a_taken_slot_offers_the_same_rooms_next_free_times(alice_client, alice, bob, office):
    taken(office, bob)
    taken(office, bob, hour=11, minutes=90)  # 10:00-12:30 taken
    response = alice_client.post(reverse("portal:book"), book_form(office.small, title="Mine"))
    assert response.status_code == 409
    assert offered(response)[0] == (f"{DAY:%a} 12:30", "13:30")
    body = response.content.decode()
    assert "Small room is free next:" in body
    assert f'name="use_time" value="{DAY.isoformat()} 12:30 13:30"' in body

    response = alice_client.post(
        reverse("portal:book"),
        {**book_form(office.small, title="Mine"), "use_time": f"{DAY.isoformat()} 12:30 13:30"},
    )
    assert response.status_code == 302
    mine = Reservation.objects.get(requested_for=alice)
    assert mine.space == office.small and mine.title == "Mine"
    assert mine.start == local(office.location, DAY, 12, 30)
    assert mine.end == local(office.location, DAY, 13, 30)


def test_the_next_free_time_keeps_the_length_and_the_buffers(alice_client, bob, office):
    office.small.setup_minutes, office.small.cleanup_minutes = 15, 15
    office.small.save()
    taken(office, bob)  # holds 09:45-11:15
    response = alice_client.post(
        reverse("portal:book"), book_form(office.small, start="10:30", end="12:00")
    )
    assert offered(response)[0] == (f"{DAY:%a} 11:30", "13:00")


def test_a_series_is_offered_its_free_dates_not_next_free_times(alice_client, bob, office):
    taken(office, bob)
    response = alice_client.post(
        reverse("portal:book"), book_form(office.small, repeat="daily", count=3)
    )
    assert response.status_code == 409
    assert response.context["conflict"].next_free is None
    assert 'name="use_time"' not in response.content.decode()


def test_a_bad_offer_is_a_form_error_not_a_crash(alice_client, bob, office):
    taken(office, bob)
    for bad in ("garbage", f"{DAY.isoformat()} 25:00 26:00", "2026-02-31 10:00 11:00", "a b c d"):
        response = alice_client.post(
            reverse("portal:book"), {**book_form(office.small), "use_time": bad}
        )
        assert response.status_code == 400, bad
    assert not Reservation.objects.filter(space=office.small).exclude(booked_by=bob).exists()


def test_other_rooms_hold_as_many_as_the_refused_room_when_the_people_are_unknown(
    alice_client, bob, office
):
    taken(office, bob)
    response = alice_client.post(reverse("portal:book"), book_form(office.small))
    # The small room holds 4: the booth and the desk (1 each) are not offered.
    assert [s.name for s in response.context["options"]] == ["Big room"]
    assert "Free at the same time for 4 people or more" in response.content.decode()


def test_other_rooms_hold_the_people_searched_for(alice_client, bob, office):
    taken(office, bob)
    search = alice_client.get(
        reverse("portal:find"),
        {"location": office.location.pk, "date": DAY, "start": "11:00", "duration": 60,
         "capacity": 1},
    )  # fmt: skip
    assert "people=1" in search.content.decode()  # the Book links carry it
    form = alice_client.get(reverse("portal:book"), {"space": office.small.pk, "people": 1})
    assert '<input type="hidden" name="people" value="1">' in form.content.decode()

    response = alice_client.post(reverse("portal:book"), book_form(office.small, people=1))
    # Rooms first (smallest first), then the other kinds.
    assert [s.name for s in response.context["options"]] == ["Booth", "Big room", "Desk 1"]
    response = alice_client.post(reverse("portal:book"), book_form(office.small, people=6))
    assert [s.name for s in response.context["options"]] == ["Big room"]
    response = alice_client.post(reverse("portal:book"), book_form(office.small, people=12))
    assert response.context["options"] == []
    assert "No other space for 12 people or more is free at that time." in response.content.decode()


def test_a_tampered_number_of_people_is_ignored(alice_client, bob, office):
    taken(office, bob)
    for bad in ("abc", "0", "-3", "99999999999999999999", "1.5"):
        response = alice_client.post(reverse("portal:book"), book_form(office.small, people=bad))
        assert response.status_code == 409, bad
        assert [s.name for s in response.context["options"]] == ["Big room"], bad


def test_rescheduling_into_a_taken_slot_offers_rooms_as_big(
    alice_client, alice, bob, office, make_reservation
):
    mine = make_reservation(office.small, user=alice, start=local(office.location, DAY, 8))
    taken(office, bob)
    response = alice_client.post(
        reverse("portal:change", args=[mine.pk]),
        {"space": office.small.pk, "date": DAY.isoformat(), "start": "10:00", "end": "11:00",
         "title": "", "public_nickname": "", "description": "", "expected_version": mine.version},
    )  # fmt: skip
    assert response.status_code == 409
    assert [s.name for s in response.context["options"]] == ["Big room"]
