"""Recurring bookings: the rule kinds, DST, series conflicts, this-and-following edits."""

import warnings
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from reservations import services
from reservations.models import Frequency, Reservation, ReservationStatus
from reservations.recurrence import Recurrence, RecurrenceError, expand
from tests.conftest import local, next_weekday

LONDON = ZoneInfo("Europe/London")


def at(day: date, hour: int, minute: int = 0, zone=LONDON) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=zone)


def test_weekly_on_chosen_weekdays():
    first = at(date(2027, 1, 4), 9)  # a Monday
    slots = expand(
        first,
        first + timedelta(hours=1),
        Recurrence(Frequency.WEEKLY, weekdays=(0, 2), count=4),
        LONDON,
    ).slots
    assert [s.astimezone(LONDON).date() for s, _ in slots] == [
        date(2027, 1, 4),
        date(2027, 1, 6),
        date(2027, 1, 11),
        date(2027, 1, 13),
    ]


def test_daily_until_a_date_with_interval():
    first = at(date(2027, 1, 4), 9)
    slots = expand(
        first,
        first + timedelta(hours=1),
        Recurrence(Frequency.DAILY, interval=2, until=date(2027, 1, 10)),
        LONDON,
    ).slots
    assert [s.astimezone(LONDON).day for s, _ in slots] == [4, 6, 8, 10]


def test_monthly_by_day_of_month_skips_short_months():
    first = at(date(2027, 1, 31), 9)
    slots = expand(
        first, first + timedelta(hours=1), Recurrence(Frequency.MONTHLY_BY_DAY, count=3), LONDON
    ).slots
    assert [s.astimezone(LONDON).date() for s, _ in slots] == [
        date(2027, 1, 31),
        date(2027, 3, 31),
        date(2027, 5, 31),
    ]


def test_monthly_by_nth_weekday():
    first = at(date(2027, 1, 12), 9)  # the 2nd Tuesday of January 2027
    slots = expand(
        first, first + timedelta(hours=1), Recurrence(Frequency.MONTHLY_BY_WEEKDAY, count=3), LONDON
    ).slots
    assert [s.astimezone(LONDON).date() for s, _ in slots] == [
        date(2027, 1, 12),
        date(2027, 2, 9),
        date(2027, 3, 9),
    ]


def test_monthly_on_the_last_weekday():
    first = at(date(2027, 1, 29), 9)  # the last Friday of January 2027
    slots = expand(
        first,
        first + timedelta(hours=1),
        Recurrence(Frequency.MONTHLY_BY_WEEKDAY, count=3, last_weekday=True),
        LONDON,
    ).slots
    assert [s.astimezone(LONDON).date() for s, _ in slots] == [
        date(2027, 1, 29),
        date(2027, 2, 26),
        date(2027, 3, 26),
    ]


def test_weekly_series_keeps_wall_clock_time_across_dst():
    first = at(date(2027, 3, 22), 9)  # London moves to BST on 28 March 2027
    slots = expand(
        first, first + timedelta(hours=1), Recurrence(Frequency.WEEKLY, count=2), LONDON
    ).slots
    assert [s.astimezone(LONDON).hour for s, _ in slots] == [9, 9]
    assert [s.astimezone(ZoneInfo("UTC")).hour for s, _ in slots] == [9, 8]


def test_a_time_inside_the_spring_forward_gap_is_reported():
    first = at(date(2027, 3, 21), 1, 30)  # 01:30 does not exist in London on 28 March 2027
    expansion = expand(
        first, first + timedelta(minutes=30), Recurrence(Frequency.WEEKLY, count=3), LONDON
    )
    assert expansion.nonexistent == [date(2027, 3, 28)]
    assert len(expansion.slots) == 2


def test_count_and_until_together_stop_at_whichever_comes_first():
    """dateutil deprecates the two together and announces an error in a later version, which
    would turn an API call giving both into a 500: the end date is applied by Reserva."""
    first = at(date(2027, 1, 4), 9)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        by_date = expand(
            first,
            first + timedelta(hours=1),
            Recurrence(Frequency.DAILY, count=10, until=date(2027, 1, 6)),
            LONDON,
        )
        by_count = expand(
            first,
            first + timedelta(hours=1),
            Recurrence(Frequency.DAILY, count=2, until=date(2027, 1, 31)),
            LONDON,
        )
    assert [s.astimezone(LONDON).day for s, _ in by_date.slots] == [4, 5, 6]
    assert [s.astimezone(LONDON).day for s, _ in by_count.slots] == [4, 5]


def test_rule_needs_an_end_and_a_sane_size():
    first = at(date(2027, 1, 4), 9)
    with pytest.raises(RecurrenceError, match="end date or a number"):
        expand(first, first + timedelta(hours=1), Recurrence(Frequency.DAILY), LONDON)
    with pytest.raises(RecurrenceError, match="at most 366"):
        expand(
            first,
            first + timedelta(hours=1),
            Recurrence(Frequency.DAILY, until=date(2029, 1, 1)),
            LONDON,
        )


@pytest.mark.django_db
def test_series_conflict_lists_dates_and_free_dates_can_still_be_booked(make_user, make_space):
    user, space = make_user(), make_space(name="Avon")
    first = local(space.location, next_weekday(0), 10)
    services.book(
        actor=make_user(),
        space=space,
        start=first + timedelta(days=7),
        end=first + timedelta(days=7, hours=1),
    )
    rule = Recurrence(Frequency.WEEKLY, count=3)
    with pytest.raises(services.Conflict) as err:
        services.book(
            actor=user, space=space, start=first, end=first + timedelta(hours=1), recurrence=rule
        )
    conflict = err.value
    assert "1 of 3 dates cannot be booked" in conflict.message
    assert "The other 2 dates are free" in conflict.message
    assert [u.day for u in conflict.unavailable] == [(first + timedelta(days=7)).date()]
    assert Reservation.objects.filter(requested_for=user).count() == 0

    result = services.book(
        actor=user,
        space=space,
        start=first,
        end=first + timedelta(hours=1),
        recurrence=rule,
        skip_unavailable=True,
    )
    assert len(result.reservations) == 2 and len(result.skipped) == 1
    assert len({r.series_id for r in result.reservations}) == 1


@pytest.mark.django_db
def test_series_in_a_dst_zone_books_the_same_local_hour(make_user, make_location, make_space):
    location = make_location(time_zone="America/New_York", booking_horizon_days=400)
    space = make_space(location)
    day = timezone.now().astimezone(location.zone).date() + timedelta(days=1)
    first = local(location, day, 9)
    result = services.book(
        actor=make_user(),
        space=space,
        start=first,
        end=first + timedelta(hours=1),
        recurrence=Recurrence(Frequency.MONTHLY_BY_DAY, count=12),
        skip_unavailable=True,
    )
    assert {r.local_start.hour for r in result.reservations} == {9}
    assert len({r.start.astimezone(ZoneInfo("UTC")).hour for r in result.reservations}) == 2


@pytest.mark.django_db
def test_change_and_cancel_this_and_following(make_user, make_space):
    user, space = make_user(), make_space()
    first = local(space.location, next_weekday(0), 10)
    occurrences = services.book(
        actor=user,
        space=space,
        start=first,
        end=first + timedelta(hours=1),
        recurrence=Recurrence(Frequency.WEEKLY, count=4),
    ).reservations
    second = occurrences[1]
    services.change(
        actor=user,
        reservation=second,
        start=second.start + timedelta(hours=2),
        end=second.end + timedelta(hours=2),
        scope=services.Scope.FOLLOWING,
        title="Later",
    )
    hours = [r.local_start.hour for r in Reservation.objects.order_by("start")]
    assert hours == [10, 12, 12, 12]
    assert list(Reservation.objects.order_by("start").values_list("title", flat=True)) == [
        "",
        "Later",
        "Later",
        "Later",
    ]

    services.cancel(actor=user, reservation=occurrences[2], scope=services.Scope.FOLLOWING)
    statuses = list(Reservation.objects.order_by("start").values_list("status", flat=True))
    assert statuses == ["confirmed", "confirmed", "cancelled", "cancelled"]

    services.cancel(actor=user, reservation=occurrences[0])
    assert Reservation.objects.get(pk=occurrences[1].pk).status == ReservationStatus.CONFIRMED


@pytest.mark.django_db
def test_this_and_following_from_a_cancelled_occurrence_is_refused(make_user, make_space):
    user, space = make_user(), make_space()
    first = local(space.location, next_weekday(0), 10)
    occurrences = services.book(
        actor=user,
        space=space,
        start=first,
        end=first + timedelta(hours=1),
        recurrence=Recurrence(Frequency.WEEKLY, count=3),
    ).reservations
    services.cancel(actor=user, reservation=occurrences[1])
    with pytest.raises(services.BookingError, match="This reservation is cancelled"):
        services.cancel(actor=user, reservation=occurrences[1], scope=services.Scope.FOLLOWING)
    assert Reservation.objects.get(pk=occurrences[2].pk).status == ReservationStatus.CONFIRMED
