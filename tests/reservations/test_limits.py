"""Limits per person in the booking service: active bookings, hours per week (the location's
week), no overlapping desk (by default) or room (when set) bookings, minimum notice and a
booking window per group. A refusal says which limit and what the person already holds; the
limits are the person's whoever books, and they are counted in one query."""

from __future__ import annotations

from datetime import datetime, timedelta
from datetime import time as clock

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from reservations import limits, services
from reservations.models import BookingLimit, Reservation, ReservationStatus, Source, SpaceKind
from reservations.recurrence import Recurrence
from tests.conftest import local, next_weekday

pytestmark = pytest.mark.django_db

TUE, WED, THU = next_weekday(1), next_weekday(2), next_weekday(3)


@pytest.fixture
def hq(make_location):
    return make_location("London HQ", opens=clock(7), closes=clock(20))


@pytest.fixture
def rooms(hq, make_space):
    return [make_space(hq, name=name) for name in ("Thames", "Severn", "Avon")]


@pytest.fixture
def desks(hq, make_space):
    return [make_space(hq, name=f"Desk {n}", kind=SpaceKind.DESK, capacity=1) for n in (1, 2, 3)]


@pytest.fixture
def contractors():
    return Group.objects.create(name="Contractors")


@pytest.fixture
def bob(make_user, contractors):
    bob = make_user("bob")
    bob.groups.add(contractors)
    return bob


def book(user, space, start, minutes=60, **extra):
    extra.setdefault("actor", user)
    return services.book(
        space=space, start=start, end=start + timedelta(minutes=minutes), **extra
    ).reservations


def limit(location, group=None, **values) -> BookingLimit:
    return BookingLimit.objects.create(location=location, group=group, **values)


# --- active bookings ------------------------------------------------------------------------


def test_a_third_active_booking_is_refused_naming_the_limit_and_the_two_held(
    hq, rooms, bob, contractors
):
    limit(hq, contractors, max_active_bookings=2)
    book(bob, rooms[0], local(hq, TUE, 10))
    book(bob, rooms[1], local(hq, WED, 9))
    with pytest.raises(services.LimitExceeded) as refused:
        book(bob, rooms[2], local(hq, THU, 9))
    assert refused.value.code == "limit_exceeded"
    assert refused.value.message == (
        "Contractors may hold at most 2 active bookings at London HQ; bob already holds 2: "
        f"Thames on {TUE:%a} {TUE.day} {TUE:%b} 10:00, Severn on {WED:%a} {WED.day} {WED:%b} 09:00."
    )
    assert Reservation.objects.filter(requested_for=bob).count() == 2


def test_a_cancelled_or_ended_booking_does_not_count(hq, rooms, bob, contractors, make_user):
    limit(hq, contractors, max_active_bookings=1)
    first = book(bob, rooms[0], local(hq, TUE, 10))[0]
    services.cancel(actor=bob, reservation=first)
    # Booked last week (as of then), over now: not active.
    last_week = local(hq, TUE - timedelta(days=14), 10)
    book(bob, rooms[2], last_week, now=last_week - timedelta(hours=1))
    book(bob, rooms[0], local(hq, TUE, 11))
    with pytest.raises(services.LimitExceeded, match="bob already holds 1: Thames"):
        book(bob, rooms[1], local(hq, WED, 11))
    # Someone outside the group is not held to it.
    other = make_user()
    book(other, rooms[1], local(hq, TUE, 10))
    book(other, rooms[1], local(hq, WED, 10))


def test_booking_on_behalf_counts_against_the_person_not_the_booker(
    hq, rooms, bob, contractors, make_user
):
    limit(hq, contractors, max_active_bookings=1)
    manager = make_user(perms=("reservations.book_on_behalf", "reservations.manage_all"))
    book(manager, rooms[0], local(hq, TUE, 10), requested_for=bob)
    with pytest.raises(services.LimitExceeded, match="bob already holds 1: Thames"):
        book(manager, rooms[1], local(hq, WED, 10), requested_for=bob)
    book(manager, rooms[1], local(hq, WED, 10))  # the manager's own booking is fine


def test_a_series_that_would_go_over_is_refused_whole_even_when_skipping(
    hq, rooms, bob, contractors
):
    limit(hq, contractors, max_active_bookings=2)
    book(bob, rooms[0], local(hq, TUE, 10))
    weekly = Recurrence(frequency="weekly", weekdays=(WED.weekday(),), count=3)
    for skip in (False, True):
        with pytest.raises(services.LimitExceeded) as refused:
            book(bob, rooms[1], local(hq, WED, 10), recurrence=weekly, skip_unavailable=skip)
        assert "bob already holds 1: Thames" in refused.value.message
        assert "These 3 dates would make 4." in refused.value.message
    assert Reservation.objects.filter(requested_for=bob).count() == 1


# --- hours per week -------------------------------------------------------------------------


def test_hours_per_week_count_the_locations_week(make_location, make_space, make_user):
    # Tokyo is UTC+9: Monday 08:00 there is still Sunday in UTC, but another week in Tokyo.
    tokyo = make_location("Tokyo", time_zone="Asia/Tokyo")
    room = make_space(tokyo, name="Fuji")
    limit(tokyo, max_hours_per_week=3)
    person = make_user("kenji")
    sunday = next_weekday(6)
    monday = sunday + timedelta(days=1)
    book(person, room, local(tokyo, sunday, 20), minutes=120)
    book(person, room, local(tokyo, monday, 8), minutes=120)  # a new week in Tokyo
    book(person, room, local(tokyo, monday, 11), minutes=60)  # 3h: exactly the limit
    with pytest.raises(services.LimitExceeded) as refused:
        book(person, room, local(tokyo, monday + timedelta(days=2), 9), minutes=30)
    assert refused.value.message == (
        "Everyone may book at most 3 hours a week at Tokyo; kenji has 3h booked in the week "
        f"of {monday.day} {monday:%B} and this would add 0h30."
    )


# --- overlapping bookings -------------------------------------------------------------------


def test_overlapping_desks_are_refused_by_default_and_rooms_are_not(hq, desks, rooms, make_user):
    assert not BookingLimit.objects.exists()
    person = make_user("ann")
    book(person, desks[2], local(hq, TUE, 10))
    with pytest.raises(services.LimitExceeded) as refused:
        book(person, desks[0], local(hq, TUE, 10, 30))
    assert refused.value.message == (
        "ann already has Desk 3 booked 10:00-11:00 that day (no overlapping desk bookings)."
    )
    book(person, desks[0], local(hq, TUE, 11))  # right after: fine
    book(person, rooms[0], local(hq, TUE, 10))
    book(person, rooms[1], local(hq, TUE, 10))  # two rooms at once: allowed by default


def test_overlapping_rooms_can_be_refused_and_desks_allowed(hq, desks, rooms, make_user):
    limit(hq, no_overlap_rooms=True, no_overlap_desks=False)
    person = make_user("ann")
    book(person, rooms[0], local(hq, TUE, 10))
    with pytest.raises(services.LimitExceeded, match="no overlapping room bookings"):
        book(person, rooms[1], local(hq, TUE, 10, 30))
    book(person, desks[0], local(hq, TUE, 10))
    book(person, desks[1], local(hq, TUE, 10))


def test_a_remote_booking_is_held_to_the_counts_but_not_the_notice(hq, rooms, desks, make_user):
    limit(hq, min_notice_minutes=60)
    person = make_user("ann")
    book(person, desks[0], local(hq, TUE, 10))
    soon = timezone.now() + timedelta(minutes=5)
    remote = dict(actor=None, source=Source.EXCHANGE, requested_for=person)
    with pytest.raises(services.LimitExceeded):
        book(person, desks[1], local(hq, TUE, 10), **remote)
    # An Outlook event made minutes before it starts is normal (opening hours are not checked
    # for remote events either).
    assert book(person, rooms[0], soon, **remote)


# --- minimum notice and booking window ------------------------------------------------------


def test_minimum_notice(make_user, make_location, make_space):
    anytime = make_location("Always open")
    room = make_space(anytime, name="Hub")
    limit(anytime, min_notice_minutes=15)
    person = make_user()
    now = local(anytime, TUE, 9)  # a fixed "now": no midnight (closing time) in the way
    with pytest.raises(services.TooSoon) as refused:
        book(person, room, now + timedelta(minutes=10), now=now)
    assert refused.value.code == "too_soon"
    assert refused.value.message == (
        "Everyone must book spaces at Always open at least 15 minutes before they start."
    )
    assert refused.value.field == "start"
    assert book(person, room, now + timedelta(minutes=20), now=now)


def test_a_groups_window_replaces_the_horizon_longer_or_shorter(
    make_location, make_space, make_user
):
    anytime = make_location("Always open", booking_horizon_days=90)
    room = make_space(anytime, name="Hub")
    staff, facilities = Group.objects.create(name="Staff"), Group.objects.create(name="Facilities")
    limit(anytime, staff, booking_window_days=14)
    limit(anytime, facilities, booking_window_days=365)
    someone, clerk, caretaker = make_user(), make_user(), make_user()
    clerk.groups.add(staff)
    caretaker.groups.add(facilities)
    day = lambda n: datetime.combine(  # noqa: E731
        timezone.localdate() + timedelta(days=n), clock(10), tzinfo=anytime.zone
    )

    with pytest.raises(services.TooSoon) as refused:
        book(clerk, room, day(20))
    assert refused.value.message == "Staff may book spaces at Always open at most 14 days ahead."
    assert book(someone, room, day(20))  # the location's 90 days
    assert book(caretaker, room, day(200))  # beyond the horizon: facilities may
    with pytest.raises(services.BookingError, match="at most 90 days ahead"):
        book(someone, room, day(201))
    # Someone in both groups gets the longer window.
    clerk.groups.add(facilities)
    assert book(clerk, room, day(202))


# --- several rows ---------------------------------------------------------------------------


def test_a_groups_row_overrides_everyone_field_by_field_and_the_most_generous_group_wins(
    hq, contractors, make_user
):
    facilities = Group.objects.create(name="Facilities")
    limit(hq, max_active_bookings=3, max_hours_per_week=10, min_notice_minutes=15)
    limit(hq, contractors, max_active_bookings=2)
    limit(hq, facilities, max_active_bookings=50, min_notice_minutes=0, no_overlap_desks=False)
    nobody, contractor, both = make_user(), make_user(), make_user()
    contractor.groups.add(contractors)
    both.groups.add(contractors, facilities)

    plain = limits.for_person(nobody, hq)
    assert (plain.max_active, plain.max_hours) == (limits.Rule(3), limits.Rule(10))
    assert plain.no_overlap_desks.value is True and plain.no_overlap_rooms.value is False

    held = limits.for_person(contractor, hq)
    assert held.max_active == limits.Rule(2, "Contractors")
    assert held.max_hours == limits.Rule(10)  # not set by the group: everyone's
    assert held.min_notice == limits.Rule(15)

    generous = limits.for_person(both, hq)
    assert generous.max_active == limits.Rule(50, "Facilities")
    assert generous.min_notice is None  # 0: no notice
    assert generous.no_overlap_desks.value is False


# --- moves ----------------------------------------------------------------------------------


def test_a_move_onto_another_desk_booking_is_refused_and_a_move_while_over_is_not(
    hq, desks, rooms, bob, contractors
):
    first = book(bob, desks[0], local(hq, TUE, 10))[0]
    second = book(bob, desks[1], local(hq, TUE, 12))[0]
    with pytest.raises(services.LimitExceeded, match="Desk 1 booked 10:00-11:00 that day"):
        services.change(
            actor=bob,
            reservation=second,
            start=local(hq, TUE, 10, 30),
            end=local(hq, TUE, 11, 30),
        )
    # The limit is lowered below what bob holds: moving one does not add to it, so it is fine.
    limit(hq, contractors, max_active_bookings=1)
    services.change(actor=bob, reservation=first, start=local(hq, WED, 10), end=local(hq, WED, 11))
    with pytest.raises(services.LimitExceeded):
        book(bob, rooms[0], local(hq, THU, 10))


def test_handing_a_booking_to_someone_at_their_limit_is_refused(
    hq, rooms, bob, contractors, make_user
):
    limit(hq, contractors, max_active_bookings=1)
    book(bob, rooms[0], local(hq, TUE, 10))
    manager = make_user(perms=("reservations.book_on_behalf", "reservations.manage_all"))
    mine = book(manager, rooms[1], local(hq, WED, 10))[0]
    with pytest.raises(services.LimitExceeded, match="Contractors may hold at most 1"):
        services.change(actor=manager, reservation=mine, requested_for=bob)
    assert Reservation.objects.get(pk=mine.pk).requested_for == manager


def test_a_move_into_the_notice_is_too_soon(make_location, make_space, make_user):
    anytime = make_location("Always open")
    room = make_space(anytime, name="Hub")
    limit(anytime, min_notice_minutes=30)
    person = make_user()
    now = local(anytime, TUE, 9)
    booked = book(person, room, now + timedelta(hours=3), now=now)[0]
    soon = now + timedelta(minutes=10)
    with pytest.raises(services.TooSoon, match="at least 30 minutes before they start"):
        services.change(
            actor=person, reservation=booked, start=soon, end=soon + timedelta(hours=1), now=now
        )
    services.change(
        actor=person, reservation=booked, start=soon + timedelta(minutes=30),
        end=soon + timedelta(minutes=90), now=now,
    )  # fmt: skip


# --- one query ------------------------------------------------------------------------------


@pytest.mark.parametrize("held", [1, 12])
def test_the_limits_are_counted_in_one_query_whatever_the_bookings_held(
    held, make_location, make_space, make_user
):
    anytime = make_location("Always open")
    group = Group.objects.create(name="Contractors")
    limit(anytime, group, max_active_bookings=100, max_hours_per_week=100, no_overlap_rooms=True)
    person = make_user()
    person.groups.add(group)
    rooms = [make_space(anytime, name=f"Room {n}") for n in range(held)]
    base = local(anytime, TUE, 6)
    for index, room in enumerate(rooms):
        book(person, room, base + timedelta(hours=index), minutes=30)
    person_limits = limits.for_person(person, anytime)
    slots = [(local(anytime, WED, 9), local(anytime, WED, 10))]
    with CaptureQueriesContext(connection) as queries:
        assert limits.excess(person_limits, person, rooms[0], slots, now=timezone.now()) is None
    assert len(queries) == 1
    with CaptureQueriesContext(connection) as queries:
        assert limits.for_person(person, anytime).max_active == limits.Rule(100, "Contractors")
    assert len(queries) == 1


def test_a_conflicted_remote_booking_does_not_take_a_slot_that_breaks_a_limit(hq, desks, make_user):
    person = make_user("ann")
    book(person, desks[0], local(hq, TUE, 10))
    row = services.record_conflict(
        space=desks[1],
        start=local(hq, TUE, 10),
        end=local(hq, TUE, 11),
        source=Source.GOOGLE,
        requested_for=person,
        reason="ann already has Desk 1 booked",
    )
    assert services.retry_conflict(reservation=row) is False
    assert Reservation.objects.get(pk=row.pk).status == ReservationStatus.CONFLICTED


def test_seed_demo_has_a_contractor_at_her_limit():
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    call_command("seed_demo", verbosity=0, history_weeks=0)
    call_command("seed_demo", verbosity=0, history_weeks=0)  # idempotent
    carol = get_user_model().objects.get(username="carol")
    london = BookingLimit.objects.get(group__name="Contractors").location
    assert london.name == "London HQ"
    assert Reservation.objects.filter(requested_for=carol).count() == 2
    start = local(london, next_weekday(3, weeks_ahead=2), 10)
    room = london.spaces.get(name="Trent")
    with pytest.raises(services.LimitExceeded) as refused:
        book(carol, room, start)
    assert refused.value.message.startswith(
        "Contractors may hold at most 2 active bookings at London HQ; "
        "Carol Contractor already holds 2: Desk 3.04 on "
    )
    facilities = get_user_model().objects.get(username="admin")
    assert limits.for_person(facilities, london).window == limits.Rule(365, "Facilities")


def test_the_admin_explains_the_limits_and_refuses_a_booking_over_one(
    admin_client, hq, rooms, bob, contractors, settings
):
    from django.urls import reverse

    settings.TIME_ZONE = "Europe/London"  # the admin's form times are in the site zone
    from tests.support.admin import reservation_form

    page = admin_client.get(reverse("admin:reservations_bookinglimit_add")).content.decode()
    assert "the most generous value of those groups wins" in page
    assert "Without any row, desks may not overlap and rooms may." in page
    limit(hq, contractors, max_active_bookings=1)
    book(bob, rooms[0], local(hq, TUE, 10))
    response = admin_client.post(
        reverse("admin:reservations_reservation_add"),
        reservation_form(rooms[1], bob, local(hq, WED, 10)),
        follow=True,
    )
    assert "Contractors may hold at most 1 active booking at London HQ" in (
        response.content.decode()
    )
    assert Reservation.objects.filter(requested_for=bob).count() == 1
