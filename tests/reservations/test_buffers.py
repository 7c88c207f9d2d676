"""Setup and cleanup buffers: part of the no-overlap guarantee (the booking service's locked
check on SQLite and PostgreSQL, the exclusion constraint on PostgreSQL), explained in words
when they refuse a booking, and taken into account by availability."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction

from reservations import buffers, queries, services
from reservations.models import Reservation, Space
from tests.conftest import local, next_weekday
from tests.support.concurrency import PROCESSES, race

DAY = next_weekday(1)
ONE_MINUTE = timedelta(minutes=1)


@pytest.fixture
def buffered_room(make_space):
    return make_space(name="Board room", setup_minutes=15, cleanup_minutes=15)


def test_a_booking_keeps_its_buffers_free_and_a_refusal_says_how_long_the_room_needs(
    buffered_room, make_user
):
    location = buffered_room.location
    first = services.book(
        actor=make_user(),
        space=buffered_room,
        start=local(location, DAY, 10),
        end=local(location, DAY, 11),
    ).reservations[0]
    assert (first.buffered_start, first.buffered_end) == (
        local(location, DAY, 9, 45),
        local(location, DAY, 11, 15),
    )
    other = make_user()

    with pytest.raises(services.Conflict) as after:
        services.book(
            actor=other, space=buffered_room, start=local(location, DAY, 11),
            end=local(location, DAY, 12),
        )  # fmt: skip
    assert after.value.message == (
        "Board room needs 15 minutes to be cleaned up and 15 minutes to be set up after the "
        "previous booking: the previous booking ends at 11:00, so this one can start at 11:30 "
        "at the earliest."
    )
    with pytest.raises(services.Conflict) as before:
        services.book(
            actor=other, space=buffered_room, start=local(location, DAY, 8),
            end=local(location, DAY, 9, 45),
        )  # fmt: skip
    assert "the next booking starts at 10:00, so this one must end by 09:30." in (
        before.value.message
    )
    assert [c.reservation_id for c in before.value.clashes] == [first.pk]

    # With the buffers free, both sides can be booked.
    for start, end in ((local(location, DAY, 11, 30), local(location, DAY, 12)),
                       (local(location, DAY, 8), local(location, DAY, 9, 30))):  # fmt: skip
        services.book(actor=other, space=buffered_room, start=start, end=end)
    assert queries.slot_holding().filter(space=buffered_room).count() == 3


def test_an_overlap_of_the_booked_times_keeps_the_plain_words(buffered_room, make_reservation):
    booked = make_reservation(buffered_room, start=local(buffered_room.location, DAY, 10))
    with pytest.raises(services.Conflict) as exc:
        make_reservation(buffered_room, start=local(buffered_room.location, DAY, 10, 30))
    assert exc.value.message.startswith("Board room is already booked from 10:00 to 11:00")
    assert exc.value.clashes[0].reservation_id == booked.pk


def test_a_move_next_to_another_booking_is_refused_by_the_buffers(buffered_room, make_reservation):
    location = buffered_room.location
    make_reservation(buffered_room, start=local(location, DAY, 10))
    later = make_reservation(buffered_room, start=local(location, DAY, 14))
    with pytest.raises(services.Conflict, match="can start at 11:30 at the earliest"):
        services.change(
            actor=later.requested_for, reservation=later, start=local(location, DAY, 11, 15),
            end=local(location, DAY, 12),
        )  # fmt: skip
    later.refresh_from_db()
    assert later.start == local(location, DAY, 14)


def test_buffers_changed_later_apply_to_new_and_moved_bookings_only(make_space, make_reservation):
    """Existing bookings keep the buffered range they were booked with: two back-to-back
    bookings made before a cleanup buffer was set stay valid and can still be edited; new
    bookings and moves take the new buffer."""
    room = make_space(name="Studio")
    location = room.location
    first = make_reservation(room, start=local(location, DAY, 10))
    make_reservation(room, start=local(location, DAY, 11))
    room.cleanup_minutes = 30
    room.save()

    edited = services.change(actor=first.requested_for, reservation=first, title="Renamed")[0]
    assert edited.title == "Renamed"
    assert edited.buffered_end == local(location, DAY, 11)  # as booked, not recomputed
    # The 11:00 booking was made without a cleanup buffer: noon is free after it. The noon
    # booking takes the new buffer, so 13:00 is not.
    noon = make_reservation(room, start=local(location, DAY, 12))
    assert noon.buffered_end == local(location, DAY, 13, 30)
    with pytest.raises(services.Conflict, match="needs 30 minutes to be cleaned up"):
        make_reservation(room, start=local(location, DAY, 13))

    moved = services.change(
        actor=first.requested_for, reservation=edited, start=local(location, DAY, 8),
        end=local(location, DAY, 9),
    )[0]  # fmt: skip
    assert moved.buffered_end == local(location, DAY, 9, 30)


def test_free_spaces_leave_out_rooms_whose_buffers_are_taken(make_location, make_space, make_user):
    location = make_location()
    plain = make_space(location, name="Plain")
    cleaned = make_space(location, name="Cleaned", cleanup_minutes=30)
    prepared = make_space(location, name="Prepared", setup_minutes=30)
    user = make_user()
    for space, hour in ((plain, 10), (cleaned, 10), (prepared, 12)):
        services.book(
            actor=user, space=space, start=local(location, DAY, hour),
            end=local(location, DAY, hour + 1),
        )  # fmt: skip

    def free(start_hour, start_minute, minutes=60):
        start = local(location, DAY, start_hour, start_minute)
        spaces = queries.free_spaces(start, start + timedelta(minutes=minutes))
        return sorted(s.name for s in spaces.filter(location=location))

    # 11:00-12:00: the Cleaned room is cleaned until 11:30, the Prepared room is set up
    # for its noon booking from 11:30.
    assert free(11, 0) == ["Plain"]
    assert free(11, 30, 30) == ["Cleaned", "Plain"]
    # 13:00-14:00 in the Prepared room needs its own 30 minutes of setup from 12:30, taken.
    assert free(13, 0) == ["Cleaned", "Plain"]
    assert free(13, 30) == ["Cleaned", "Plain", "Prepared"]


def test_free_periods_leave_room_for_both_sides_buffers():
    from datetime import UTC, datetime

    def at(hour, minute=0):
        return datetime(2030, 1, 7, hour, minute, tzinfo=UTC)

    busy = [(at(9, 45), at(11, 15)), (at(13, 45), at(15, 15))]
    periods = buffers.free_periods(
        at(8), at(18), busy, timedelta(minutes=15), timedelta(minutes=15)
    )
    assert periods == [(at(8), at(9, 30)), (at(11, 30), at(13, 30)), (at(15, 30), at(18))]
    # Too little time between two bookings: nothing in between.
    assert buffers.free_periods(
        at(8), at(12), [(at(8), at(9)), (at(9, 30), at(10))], timedelta(minutes=15),
        timedelta(minutes=15),
    ) == [(at(10, 15), at(12))]  # fmt: skip


# -- races: one-minute bookings a minute apart, so only their buffers overlap ----------------


@pytest.mark.django_db(transaction=True)
def test_twenty_processes_booking_slots_whose_buffers_overlap_exactly_one_wins(
    make_user, make_space, tmp_path
):
    space = make_space(name="Contested", setup_minutes=15, cleanup_minutes=15)
    outcomes = race(space, [make_user() for _ in range(PROCESSES)], tmp_path, length=ONE_MINUTE)
    assert sum(o == "booked" for o in outcomes) == 1, outcomes
    conflicts = [o for o in outcomes if o.startswith("conflict")]
    assert len(conflicts) == PROCESSES - 1, outcomes
    assert all(
        "Contested needs 15 minutes to be cleaned up and 15 minutes to be set up" in o
        or "taken a moment ago" in o
        for o in conflicts
    ), conflicts
    assert Reservation.objects.filter(space=space).count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_twenty_processes_writing_buffered_rows_without_the_service_only_one_lands(
    make_user, make_space, tmp_path
):
    """No lock and no check: PostgreSQL's exclusion constraint on the buffered range alone
    lets exactly one of twenty overlapping (by their buffers) rows in."""
    space = make_space(name="Contested", setup_minutes=15, cleanup_minutes=15)
    outcomes = race(
        space, [make_user() for _ in range(PROCESSES)], tmp_path, length=ONE_MINUTE, mode="raw"
    )
    assert sum(o == "booked" for o in outcomes) == 1, outcomes
    refused = [o for o in outcomes if o.startswith("refused")]
    assert len(refused) == PROCESSES - 1, outcomes
    assert all("reservation_no_overlap" in o for o in refused), refused
    assert Reservation.objects.filter(space=space).count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_postgres_constraint_covers_the_buffered_range(buffered_room, make_reservation, make_user):
    existing = make_reservation(buffered_room, start=local(buffered_room.location, DAY, 10))
    with pytest.raises(IntegrityError, match="reservation_no_overlap"), transaction.atomic():
        Reservation.objects.create(
            space=buffered_room, requested_for=make_user(), start=existing.end,
            end=existing.end + timedelta(hours=1),
        )  # fmt: skip
    # Far enough for both buffers: accepted.
    Reservation.objects.create(
        space=buffered_room, requested_for=make_user(),
        start=existing.end + timedelta(minutes=30), end=existing.end + timedelta(hours=1),
    )  # fmt: skip


def test_the_space_admin_explains_the_buffers_and_refuses_a_day_long_one(
    client, make_user, buffered_room
):
    client.force_login(make_user(is_staff=True, is_superuser=True))
    url = f"/admin/reservations/space/{buffered_room.pk}/change/"
    page = client.get(url).content.decode()
    assert 'name="setup_minutes" value="15"' in page
    assert "Minutes kept free before every booking to set the space up" in page
    assert "A change applies to bookings made or moved from then on." in page
    form = {
        "location": buffered_room.location.pk, "name": buffered_room.name, "kind": "room",
        "capacity": 4, "is_reservable": "on", "setup_minutes": 15, "cleanup_minutes": 1440,
    }  # fmt: skip
    response = client.post(url, form)
    assert response.status_code == 200  # the form again, with the error
    assert "Ensure this value is less than or equal to 240." in response.content.decode()
    buffered_room.refresh_from_db()
    assert buffered_room.cleanup_minutes == 15


@pytest.mark.django_db
def test_seed_demo_has_a_room_with_buffers_and_a_booking_held_with_them():
    from django.core.management import call_command

    call_command("seed_demo", verbosity=0, history_weeks=0)
    rooms = Space.objects.filter(name="Thames")
    assert {(r.setup_minutes, r.cleanup_minutes) for r in rooms} == {(15, 15)}
    lunch = Reservation.objects.filter(space__in=rooms, title="Lunch and learn")
    assert lunch.count() == 2
    for booking in lunch:
        assert booking.buffered_start == booking.start - timedelta(minutes=15)
        assert booking.buffered_end == booking.end + timedelta(minutes=15)
