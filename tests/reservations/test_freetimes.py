"""The same room's next free times (``reservations.freetimes``): after a booking and its
buffers, around closures, inside the opening hours, on the next open day, within the booking
horizon, in a few queries whatever the number of days and bookings."""

from __future__ import annotations

from datetime import datetime, timedelta
from datetime import time as clock

import pytest

from reservations import freetimes, services
from reservations.models import Closure
from tests.conftest import local, next_weekday

pytestmark = pytest.mark.django_db

DAY = next_weekday(2)  # a Wednesday next week
THURSDAY, FRIDAY = DAY + timedelta(days=1), DAY + timedelta(days=2)
NEXT_MONDAY = DAY + timedelta(days=5)


@pytest.fixture
def location(make_location):
    # Open 08:00-18:00 on weekdays, closed at weekends.
    return make_location(
        "HQ", opens=clock(8), closes=clock(18), weekdays=range(5), max_booking_minutes=600
    )


@pytest.fixture
def room(make_space, location):
    return make_space(location, name="Atlas", setup_minutes=15, cleanup_minutes=15)


def book(space, day, hour, minute=0, *, minutes=60, user):
    start = local(space.location, day, hour, minute)
    return services.book(
        actor=user, space=space, start=start, end=start + timedelta(minutes=minutes)
    ).reservations[0]


def wanted(space, day, hour, minute=0, *, minutes=60):
    start = local(space.location, day, hour, minute)
    return start, start + timedelta(minutes=minutes)


def next_free(space, start, end, **kwargs):
    now = kwargs.pop("now", local(space.location, DAY - timedelta(days=1), 9))
    return [
        (f"{s:%a %H:%M}", f"{e:%H:%M}")
        for s, e in freetimes.next_free(space, start, end, now=now, **kwargs)
    ]


def test_the_next_start_leaves_the_booking_and_both_buffers_free(room, make_user):
    book(room, DAY, 10, user=make_user())  # holds 09:45-11:15
    # 11:15 is the end of its cleanup; this booking's own setup needs 15 more minutes.
    assert next_free(room, *wanted(room, DAY, 10)) == [
        ("Wed 11:30", "12:30"),
        ("Thu 08:00", "09:00"),
        ("Fri 08:00", "09:00"),
    ]


def test_a_gap_too_short_for_the_length_is_skipped(room, make_user):
    user = make_user()
    book(room, DAY, 10, user=user)  # holds 09:45-11:15
    book(room, DAY, 13, user=user)  # holds 12:45-14:15
    # 11:30-12:30 fits an hour but not two; after 14:30 two hours fit.
    assert next_free(room, *wanted(room, DAY, 10, minutes=120), count=1) == [("Wed 14:30", "16:30")]
    assert next_free(room, *wanted(room, DAY, 10), count=2) == [
        ("Wed 11:30", "12:30"),
        ("Wed 14:30", "15:30"),
    ]


def test_a_closure_is_skipped(room, location, make_user):
    book(room, DAY, 10, user=make_user())
    Closure.objects.create(
        location=location, space=room, start_date=DAY, end_date=DAY,
        start_time=clock(11), end_time=clock(15), reason="Painting",
    )  # fmt: skip
    Closure.objects.create(
        location=location, start_date=THURSDAY, end_date=THURSDAY, reason="Holiday"
    )
    assert next_free(room, *wanted(room, DAY, 10)) == [
        ("Wed 15:00", "16:00"),
        ("Fri 08:00", "09:00"),
        ("Mon 08:00", "09:00"),
    ]


def test_offers_stay_inside_the_opening_hours(room, make_user):
    book(room, DAY, 16, user=make_user())  # holds 15:45-17:15
    # 17:30 + 90 minutes would end after closing (18:00): the next offer is Thursday's opening.
    found = next_free(room, *wanted(room, DAY, 16, minutes=90), count=1)
    assert found == [("Thu 08:00", "09:30")]


def test_crosses_the_weekend_to_the_next_open_day(room, make_user):
    book(room, FRIDAY, 8, minutes=600, user=make_user())  # all of Friday
    assert next_free(room, *wanted(room, FRIDAY, 10), count=1) == [("Mon 08:00", "09:00")]


def test_released_and_cancelled_bookings_leave_their_slot_free(room, make_user):
    user = make_user()
    taken = book(room, DAY, 11, user=user)
    services.cancel(actor=user, reservation=taken)
    book(room, DAY, 10, minutes=30, user=user)  # holds 09:45-10:45
    assert next_free(room, *wanted(room, DAY, 10), count=1) == [("Wed 11:00", "12:00")]


def test_never_before_now_and_rounded_to_five_minutes(make_space, location, make_user):
    room = make_space(location, name="Bare")  # no buffers
    now = local(location, DAY, 9, 2)
    book(room, DAY, 8, user=make_user(), minutes=62)  # until 09:02 (booked the day before)
    found = freetimes.next_free(room, *wanted(room, DAY, 8, minutes=30), now=now, count=1)
    assert [(f"{s:%H:%M}", f"{e:%H:%M}") for s, e in found] == [("09:05", "09:35")]


def test_not_beyond_the_booking_horizon(room, location, make_user):
    book(room, DAY, 8, minutes=600, user=make_user())
    location.booking_horizon_days = 2
    location.save()
    # Asked the day before: Thursday is within two days, Friday is not.
    assert next_free(room, *wanted(room, DAY, 10)) == [("Thu 08:00", "09:00")]


def test_times_are_in_the_locations_zone(make_location, make_space, make_user):
    tokyo = make_location("Tokyo", time_zone="Asia/Tokyo", opens=clock(9), closes=clock(18))
    room = make_space(tokyo, name="Fuji")
    book(room, DAY, 9, user=make_user())
    now = local(tokyo, DAY - timedelta(days=1), 9)
    (start, end), *_ = freetimes.next_free(room, *wanted(room, DAY, 9), now=now)
    assert str(start.tzinfo) == "Asia/Tokyo" and (start.hour, end.hour) == (10, 11)


def test_a_few_queries_whatever_the_days_and_bookings(
    room, location, make_user, django_assert_max_num_queries
):
    user = make_user()
    for offset in range(10):
        day = DAY + timedelta(days=offset)
        if day.weekday() < 5:
            book(room, day, 8, minutes=600, user=user)  # every weekday full
    Closure.objects.create(location=location, start_date=DAY, end_date=DAY, reason="x")
    start, end = wanted(room, DAY, 10)
    with django_assert_max_num_queries(3):  # opening hours, bookings, closures
        found = freetimes.next_free(room, start, end, now=start - timedelta(days=1))
    assert found and all(s.date() >= DAY + timedelta(days=12) for s, _ in found)


def test_free_periods_of_a_day_leave_buffers_free(room, make_user):
    book(room, DAY, 10, user=make_user())
    periods = freetimes.free_periods(room, DAY, DAY)
    zone = room.location.zone
    assert [(f"{s.astimezone(zone):%H:%M}", f"{e.astimezone(zone):%H:%M}") for s, e in periods] == [
        ("08:00", "09:30"),
        ("11:30", "18:00"),
    ]
    assert all(isinstance(s, datetime) for s, _ in periods)
