"""Booking, changing and cancelling through the service, with its validation messages."""

from datetime import time, timedelta

import pytest
from django.utils import timezone

from reservations import services
from reservations.models import (
    Reservation,
    ReservationKind,
    ReservationStatus,
    Source,
    SpaceKind,
    SyncMailbox,
)
from tests.conftest import local, next_weekday

pytestmark = pytest.mark.django_db


def book(user, space, start, minutes=60, **kwargs):
    return services.book(
        actor=user, space=space, start=start, end=start + timedelta(minutes=minutes), **kwargs
    )


def test_booking_creates_a_confirmed_reservation_for_the_booker(make_user, make_space):
    user, space = make_user(), make_space()
    start = local(space.location, next_weekday(2), 9)
    [reservation] = book(user, space, start, title="Planning").reservations
    reservation.refresh_from_db()
    assert reservation.status == ReservationStatus.CONFIRMED
    assert reservation.requested_for == user and reservation.booked_by == user
    assert reservation.sync_mailbox == SyncMailbox.ROOM
    assert reservation.start == start and reservation.end == start + timedelta(hours=1)


def test_overlapping_booking_is_refused_naming_the_slot(make_user, make_space):
    space = make_space(name="Thames")
    start = local(space.location, next_weekday(2), 9)
    book(make_user(), space, start)
    with pytest.raises(services.Conflict) as err:
        book(make_user(), space, start + timedelta(minutes=30))
    assert "Thames is already booked from 09:00 to 10:00" in err.value.message
    assert len(err.value.clashes) == 1
    assert Reservation.objects.count() == 1


def test_back_to_back_bookings_do_not_clash(make_user, make_space):
    space = make_space()
    start = local(space.location, next_weekday(2), 9)
    book(make_user(), space, start)
    book(make_user(), space, start + timedelta(hours=1))
    assert Reservation.objects.count() == 2


def test_a_cancelled_booking_frees_its_slot(make_user, make_space):
    user, space = make_user(), make_space()
    start = local(space.location, next_weekday(2), 9)
    [first] = book(user, space, start).reservations
    services.cancel(actor=user, reservation=first, reason="not needed")
    book(make_user(), space, start)
    first.refresh_from_db()
    assert first.status == ReservationStatus.CANCELLED and first.cancel_reason == "not needed"


@pytest.mark.parametrize(
    ("hour", "minutes", "message"),
    [
        (6, 60, "is open 08:00-18:00 on"),
        (17, 120, "is open 08:00-18:00 on"),
        (9, 600, "may last at most 4h00"),
    ],
)
def test_opening_hours_and_maximum_length(
    make_user, make_location, make_space, hour, minutes, message
):
    location = make_location(
        opens=time(8), closes=time(18), weekdays=range(5), max_booking_minutes=240
    )
    space = make_space(location)
    with pytest.raises(services.BookingError) as err:
        book(make_user(), space, local(location, next_weekday(1), hour), minutes)
    assert message in err.value.message


def test_closed_weekday(make_user, make_location, make_space):
    location = make_location(name="Weekday office", weekdays=range(5))
    with pytest.raises(services.BookingError, match="Weekday office is closed on Saturdays"):
        book(make_user(), make_space(location), local(location, next_weekday(5), 10))


def test_horizon_and_past(make_user, make_location, make_space):
    location = make_location(booking_horizon_days=14)
    space = make_space(location)
    with pytest.raises(services.BookingError, match="at most 14 days ahead"):
        book(make_user(), space, timezone.now() + timedelta(days=15))
    with pytest.raises(services.BookingError, match="in the past"):
        book(make_user(), space, timezone.now() - timedelta(hours=2))


def test_end_must_follow_start_and_times_must_be_aware(make_user, make_space):
    space, user = make_space(), make_user()
    start = local(space.location, next_weekday(1), 10)
    with pytest.raises(services.BookingError, match="end must be after the start"):
        services.book(actor=user, space=space, start=start, end=start)
    with pytest.raises(services.BookingError, match="time zone"):
        services.book(
            actor=user,
            space=space,
            start=start.replace(tzinfo=None),
            end=(start + timedelta(hours=1)).replace(tzinfo=None),
        )


def test_container_cannot_be_booked_but_its_seats_can(make_user, make_space):
    hall = make_space(name="Hall", kind=SpaceKind.CONTAINER, capacity=2)
    seat = make_space(hall.location, name="Seat 1", kind=SpaceKind.SEAT, capacity=1, container=hall)
    start = local(hall.location, next_weekday(1), 10)
    with pytest.raises(services.BookingError, match="Hall is a container"):
        book(make_user(), hall, start)
    assert book(make_user(), seat, start).reservations


def test_group_bookings_respect_space_settings_and_capacity(make_user, make_space):
    user = make_user()
    solo = make_space(name="Solo", capacity=4)
    group_room = make_space(name="Big", capacity=3, allows_group=True)
    start = local(solo.location, next_weekday(1), 10)
    with pytest.raises(services.BookingError, match="Solo does not allow group"):
        book(user, solo, start, kind=ReservationKind.GROUP, attendees=["a@example.com"])
    with pytest.raises(services.BookingError, match="holds 3 people; this group has 4"):
        book(
            user,
            group_room,
            start,
            kind=ReservationKind.GROUP,
            attendees=["a@example.com", "b@example.com", "c@example.com"],
        )
    with pytest.raises(services.BookingError, match="not a valid email"):
        book(user, group_room, start, kind=ReservationKind.GROUP, attendees=["nope"])
    [ok] = book(
        user,
        group_room,
        start,
        kind=ReservationKind.GROUP,
        attendees=["a@example.com", "b@example.com"],
    ).reservations
    assert ok.attendees == ["a@example.com", "b@example.com"]


def test_blocker_lives_in_the_delegated_mailbox(make_user, make_space):
    admin = make_user(perms=("reservations.manage_all",))
    space = make_space()
    [blocker] = book(
        admin, space, local(space.location, next_weekday(1), 10), kind=ReservationKind.BLOCKER
    ).reservations
    assert blocker.sync_mailbox == SyncMailbox.OTHER


def test_change_moves_and_edits_and_bumps_the_version(make_user, make_space):
    user, space, other_space = make_user(), make_space(), make_space()
    start = local(space.location, next_weekday(1), 10)
    [reservation] = book(user, space, start).reservations
    services.change(
        actor=user,
        reservation=reservation,
        start=start + timedelta(hours=2),
        end=start + timedelta(hours=3),
        space=other_space,
        title="Moved",
        expected_version=1,
    )
    reservation.refresh_from_db()
    assert (reservation.space, reservation.start, reservation.title, reservation.version) == (
        other_space,
        start + timedelta(hours=2),
        "Moved",
        2,
    )


def test_change_onto_a_taken_slot_changes_nothing(make_user, make_space):
    user, space = make_user(), make_space()
    start = local(space.location, next_weekday(1), 10)
    [mine] = book(user, space, start).reservations
    book(make_user(), space, start + timedelta(hours=2))
    with pytest.raises(services.Conflict):
        services.change(
            actor=user,
            reservation=mine,
            start=start + timedelta(hours=2),
            end=start + timedelta(hours=3),
            title="Should not stick",
        )
    mine.refresh_from_db()
    assert (mine.start, mine.title, mine.version) == (start, "", 1)


def test_stale_version_is_refused(make_user, make_space):
    user, space = make_user(), make_space()
    [reservation] = book(user, space, local(space.location, next_weekday(1), 10)).reservations
    services.change(actor=user, reservation=reservation, title="First edit")
    with pytest.raises(services.StaleReservation, match="changed by someone else"):
        services.change(actor=user, reservation=reservation, title="Second", expected_version=1)


def test_cancelled_reservation_cannot_be_changed(make_user, make_space):
    user, space = make_user(), make_space()
    [reservation] = book(user, space, local(space.location, next_weekday(1), 10)).reservations
    services.cancel(actor=user, reservation=reservation)
    with pytest.raises(services.BookingError, match="is cancelled"):
        services.change(actor=user, reservation=reservation, title="x")


def test_remote_source_skips_opening_hours_but_not_overlap(make_space, make_location):
    location = make_location(opens=time(8), closes=time(18))
    space = make_space(location)
    start = local(location, next_weekday(1), 20)  # after hours: fine for an Outlook booking
    [remote] = services.book_from_calendar(
        space=space,
        start=start,
        end=start + timedelta(hours=1),
        source=Source.EXCHANGE,
        organizer_email="someone@example.com",
    ).reservations
    assert remote.requested_for is None
    with pytest.raises(services.Conflict):
        services.book(
            actor=None,
            space=space,
            start=start,
            end=start + timedelta(hours=1),
            source=Source.GOOGLE,
        )


def test_signals_are_sent_after_commit_only(
    make_user, make_space, django_capture_on_commit_callbacks
):
    from reservations import signals

    received = []

    def listener(sender, reservation_ids, actor_id, source, **kwargs):
        received.append((reservation_ids, actor_id, source))

    signals.reservation_created.connect(listener)
    try:
        user, space = make_user(), make_space()
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            [r] = book(user, space, local(space.location, next_weekday(1), 10)).reservations
        assert received == []
        for callback in callbacks:
            callback()
        assert received == [([r.pk], user.pk, Source.PORTAL)]
    finally:
        signals.reservation_created.disconnect(listener)


def test_deactivating_a_user_cancels_future_bookings_and_is_recorded(make_user, make_space):
    admin = make_user(perms=("reservations.manage_all",))
    leaver, space = make_user(), make_space()
    start = local(space.location, next_weekday(1), 10)
    book(leaver, space, start)
    book(leaver, space, start + timedelta(hours=2))
    record = services.deactivate_user(actor=admin, user=leaver, reason="Left the company")
    leaver.refresh_from_db()
    assert not leaver.is_active
    assert record.cancelled_reservations == 2 and record.deactivated_by == admin
    assert set(Reservation.objects.values_list("status", flat=True)) == {"cancelled"}
    history = Reservation.objects.first().history.first()
    assert history.history_change_reason == "Left the company"
    assert history.change_source == Source.ADMIN


def test_handing_a_booking_over_follows_the_booking_for_someone_else_rules(make_user, make_space):
    space = make_space()
    owner, colleague = make_user("owner"), make_user("colleague")
    manager = make_user("manager", perms=("reservations.manage_all",))
    start = local(space.location, next_weekday(2), 9)
    [booked] = book(owner, space, start).reservations

    with pytest.raises(services.NotAllowed, match="only book for yourself") as refused:
        services.change(actor=owner, reservation=booked, requested_for=colleague)
    assert refused.value.field == "requested_for"

    gone = make_user("gone", is_active=False)
    with pytest.raises(services.BookingError, match="deactivated"):
        services.change(actor=manager, reservation=booked, requested_for=gone)

    [handed] = services.change(actor=manager, reservation=booked, requested_for=colleague)
    assert handed.requested_for == colleague and handed.version == 2
    assert Reservation.objects.get(pk=booked.pk).requested_for == colleague


def test_a_booking_in_its_owners_own_calendar_cannot_be_handed_over(make_user, make_space):
    """Personal sync mode keeps the event in the owner's mailbox; another person's calendar
    cannot take it over, so the change is refused rather than half done."""
    space = make_space()
    owner = make_user("owner")
    manager = make_user("manager", perms=("reservations.manage_all",))
    [booked] = book(owner, space, local(space.location, next_weekday(2), 9)).reservations
    Reservation.objects.filter(pk=booked.pk).update(sync_mailbox=SyncMailbox.USER)
    booked.refresh_from_db()
    with pytest.raises(services.BookingError, match="own calendar") as refused:
        services.change(actor=manager, reservation=booked, requested_for=make_user())
    assert refused.value.field == "requested_for"
    assert Reservation.objects.get(pk=booked.pk).requested_for == owner


def test_a_change_whose_end_is_not_after_its_start_is_invalid_not_a_conflict(make_user, make_space):
    space = make_space()
    user = make_user()
    start = local(space.location, next_weekday(2), 9)
    [booked] = book(user, space, start).reservations
    with pytest.raises(services.BookingError) as refused:
        services.change(actor=user, reservation=booked, end=start - timedelta(hours=1))
    assert not isinstance(refused.value, services.Conflict)
    assert (refused.value.code, refused.value.field) == ("invalid", "end")
