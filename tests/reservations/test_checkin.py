"""Check-in and the release of no-shows: the policy (a location's, overridden per space), who
may check in and when, the beat task releasing exactly the no-shows (or cancelling them), the
released slot bookable at once, the day's released minutes, and the signed reminder link."""

from __future__ import annotations

from datetime import datetime, timedelta
from datetime import time as clock

import pytest
from django.core import mail, signing
from django.test import TestCase
from django.utils import timezone

from reservations import checkin, services, tasks
from reservations.models import (
    NoShowAction,
    Reservation,
    ReservationStatus,
    Source,
    SpaceDayUsage,
)
from tests.conftest import local, midday_zone, next_weekday

pytestmark = pytest.mark.django_db

DAY = next_weekday(2)  # a Wednesday next week


@pytest.fixture
def location(make_location):
    return make_location("HQ", opens=clock(7), closes=clock(20), check_in_required=True)


@pytest.fixture
def room(location, make_space):
    return make_space(location, name="Severn")


def at(location, hour: int, minute: int = 0) -> datetime:
    return local(location, DAY, hour, minute)


def book(user, space, start: datetime, minutes: int = 60, **extra) -> Reservation:
    """Booked the day before, so a start in the tests' past is fine."""
    return services.book(
        actor=user,
        space=space,
        start=start,
        end=start + timedelta(minutes=minutes),
        now=start - timedelta(days=1),
        **extra,
    ).reservations[0]


def fresh(reservation: Reservation) -> Reservation:
    return Reservation.objects.select_related("space__location").get(pk=reservation.pk)


def run_release(now: datetime) -> int:
    """The beat task's work at ``now``, its after-commit emails sent."""
    released = 0
    with TestCase.captureOnCommitCallbacks(execute=True):
        for pk in checkin.due_for_release(now):
            if services.release_no_show(reservation=Reservation.objects.get(pk=pk), now=now):
                released += 1
    return released


# --- the policy -----------------------------------------------------------------------------


def test_a_space_takes_its_locations_check_in_rule_unless_it_overrides_it(location, make_space):
    plain = make_space(location)
    policy = checkin.policy_for(plain)
    assert policy == checkin.CheckInPolicy(
        required=True,
        opens_before=timedelta(minutes=15),
        closes_after=timedelta(minutes=15),
        no_show_action=NoShowAction.RELEASE,
    )
    own = make_space(
        location,
        check_in_required=False,
        check_in_opens_minutes=5,
        check_in_closes_minutes=10,
        no_show_action=NoShowAction.CANCEL,
    )
    assert checkin.policy_for(own) == checkin.CheckInPolicy(
        required=False,
        opens_before=timedelta(minutes=5),
        closes_after=timedelta(minutes=10),
        no_show_action=NoShowAction.CANCEL,
    )
    location.check_in_required = False
    location.save()
    on_here = make_space(location, check_in_required=True)
    assert checkin.policy_for(on_here).required
    assert not checkin.policy_for(make_space(location)).required


# --- checking in ----------------------------------------------------------------------------


def test_the_person_checks_in_inside_the_window_once(room, make_user):
    alice = make_user("alice")
    booking = book(alice, room, at(room.location, 10))
    checked = services.check_in(
        actor=alice, reservation=booking, source=Source.PORTAL, now=at(room.location, 9, 50)
    )
    assert checked.checked_in_at == at(room.location, 9, 50)
    again = services.check_in(
        actor=alice, reservation=booking, source=Source.PORTAL, now=at(room.location, 10, 5)
    )
    assert again.checked_in_at == at(room.location, 9, 50)  # idempotent
    assert fresh(booking).version == booking.version  # a form open elsewhere stays valid
    history = [h.history_change_reason for h in fresh(booking).history.all()]
    assert "Checked in at 09:50" in history


@pytest.mark.parametrize(
    "hour,minute,when", [(9, 44, "has not opened yet"), (10, 15, "has closed")]
)
def test_check_in_outside_the_window_is_refused_with_the_window(
    room, make_user, hour, minute, when
):
    alice = make_user()
    booking = book(alice, room, at(room.location, 10))
    with pytest.raises(services.CheckInClosed) as refused:
        services.check_in(
            actor=alice, reservation=booking, source=Source.PORTAL,
            now=at(room.location, hour, minute),
        )  # fmt: skip
    assert refused.value.code == "check_in_closed"
    assert refused.value.message == (
        f"Check-in for this booking is open from 09:45 to 10:15 (Europe/London); it {when}."
    )
    assert fresh(booking).checked_in_at is None


def test_someone_else_cannot_check_in_but_a_manager_can(room, make_user):
    alice, bob = make_user(), make_user()
    booking = book(alice, room, at(room.location, 10))
    with pytest.raises(services.NotAllowed):
        services.check_in(
            actor=bob, reservation=booking, source=Source.PORTAL, now=at(room.location, 10)
        )
    manager = make_user(perms=("reservations.manage_all",))
    services.check_in(
        actor=manager, reservation=booking, source=Source.PORTAL, now=at(room.location, 10)
    )
    assert fresh(booking).checked_in_at is not None


def test_a_pending_booking_needs_approval_before_check_in(room, make_user):
    alice = make_user()
    booking = book(alice, room, at(room.location, 10))
    # Pending, as a personal-mode booking is until the room answers.
    Reservation.objects.filter(pk=booking.pk).update(status=ReservationStatus.PENDING)
    booking.refresh_from_db()
    with pytest.raises(services.NeedsApproval) as refused:
        services.check_in(
            actor=alice, reservation=booking, source=Source.PORTAL, now=at(room.location, 10)
        )
    assert refused.value.code == "needs_approval"


def test_check_in_where_none_is_required_is_refused(make_space, make_location, make_user):
    space = make_space(make_location(), name="Open room")
    alice = make_user()
    booking = book(alice, space, local(space.location, DAY, 10))
    with pytest.raises(services.BookingError, match="need no check-in"):
        services.check_in(
            actor=alice, reservation=booking, source=Source.PORTAL,
            now=local(space.location, DAY, 10),
        )  # fmt: skip


# --- releasing no-shows ---------------------------------------------------------------------


def test_the_task_releases_exactly_the_no_shows(room, location, make_space, make_user):
    alice, bob = make_user("alice"), make_user("bob")
    no_show = book(bob, room, at(location, 10))
    other_room = make_space(location, name="Avon")
    checked_in = book(alice, other_room, at(location, 10))
    services.check_in(
        actor=alice, reservation=checked_in, source=Source.PORTAL, now=at(location, 10)
    )
    still_open = book(alice, make_space(location, name="Trent"), at(location, 10, 5))
    no_rule = book(
        alice, make_space(location, name="Desk", check_in_required=False), at(location, 10)
    )
    mail.outbox.clear()

    assert run_release(at(location, 10, 16)) == 1

    released = fresh(no_show)
    assert released.status == ReservationStatus.RELEASED
    assert (released.start, released.end) == (at(location, 10), at(location, 11))  # times kept
    assert released.released_at == at(location, 10, 16)
    assert released.cancel_reason == "Released: nobody checked in by 10:15"
    assert released.history.first().history_change_reason == "Released: nobody checked in by 10:15"
    for kept in (checked_in, still_open, no_rule):
        assert fresh(kept).status == ReservationStatus.CONFIRMED
    [email] = mail.outbox
    assert email.to == [bob.email]
    assert email.subject.startswith("Released: Severn")
    assert "nobody checked in by 10:15" in email.body

    assert run_release(at(location, 10, 17)) == 0  # idempotent: nothing left to release
    assert services.release_no_show(reservation=no_show, now=at(location, 10, 18)) is None
    assert len(mail.outbox) == 1


def test_a_check_in_before_the_release_wins(room, location, make_user):
    alice = make_user()
    booking = book(alice, room, at(location, 10))
    due = checkin.due_for_release(at(location, 10, 16))
    assert due == [booking.pk]
    services.check_in(
        actor=alice, reservation=booking, source=Source.PORTAL, now=at(location, 10, 14)
    )
    assert services.release_no_show(reservation=booking, now=at(location, 10, 16)) is None
    assert fresh(booking).status == ReservationStatus.CONFIRMED


def test_check_in_after_the_release_is_refused(room, location, make_user):
    alice = make_user()
    booking = book(alice, room, at(location, 10))
    run_release(at(location, 10, 16))
    with pytest.raises(services.CheckInClosed, match="nobody checked in by 10:15"):
        services.check_in(
            actor=alice, reservation=booking, source=Source.PORTAL, now=at(location, 10, 16)
        )


def test_the_cancel_mode_cancels_the_whole_booking(room, location, make_user):
    room.no_show_action = NoShowAction.CANCEL
    room.save()
    booking = book(make_user(), room, at(location, 10))
    assert run_release(at(location, 10, 15)) == 1
    cancelled = fresh(booking)
    assert cancelled.status == ReservationStatus.CANCELLED
    assert cancelled.cancel_reason == "Cancelled: nobody checked in by 10:15"


def test_a_released_slot_can_be_booked_at_once(room, location, make_user):
    book(make_user(), room, at(location, 10))
    carol = make_user()
    with pytest.raises(services.Conflict):
        services.book(
            actor=carol, space=room, start=at(location, 10, 20), end=at(location, 11),
            now=at(location, 10, 16),
        )  # fmt: skip
    run_release(at(location, 10, 16))
    taken = services.book(
        actor=carol, space=room, start=at(location, 10, 20), end=at(location, 11),
        now=at(location, 10, 16),
    ).reservations[0]  # fmt: skip
    assert taken.status == ReservationStatus.CONFIRMED


def test_the_released_minutes_are_added_to_one_row_per_space_and_day(room, location, make_user):
    book(make_user(), room, at(location, 10))  # 10:00-11:00, released at 10:16: 44 minutes
    book(make_user(), room, at(location, 14), minutes=30)  # released at 14:20: 10 minutes
    run_release(at(location, 10, 16))
    run_release(at(location, 10, 17))  # nothing new: not counted twice
    row = SpaceDayUsage.objects.get(space=room, day=DAY)
    assert row.released_minutes == 44
    run_release(at(location, 14, 20))
    assert SpaceDayUsage.objects.filter(space=room).count() == 1
    row.refresh_from_db()
    assert row.released_minutes == 54


def test_a_booking_from_outlook_without_a_reserva_user_mails_its_organizer(room, location):
    booking = services.book_from_calendar(
        space=room, start=at(location, 10), end=at(location, 11),
        source=Source.EXCHANGE, organizer_email="visitor@partner.example",
        organizer_name="Visitor",
    ).reservations[0]  # fmt: skip
    mail.outbox.clear()
    tasks_now = at(location, 9, 46)
    assert checkin.due_for_reminder(tasks_now) == [booking.pk]
    services.claim_check_in_reminder(reservation_id=booking.pk, now=tasks_now)
    assert checkin.send_reminder(fresh(booking)) == 1
    assert mail.outbox[0].to == ["visitor@partner.example"]
    assert "/check-in/" in mail.outbox[0].body
    assert checkin.due_for_reminder(tasks_now) == []  # once
    run_release(at(location, 10, 16))
    assert fresh(booking).status == ReservationStatus.RELEASED
    assert mail.outbox[-1].to == ["visitor@partner.example"]
    assert mail.outbox[-1].subject.startswith("Released: Severn")


def test_the_tasks_run_now(room, location, make_space, make_user):
    """The beat tasks themselves, at the real time: a booking that started 20 minutes ago is
    released; one starting in 10 minutes gets its reminder, once."""
    now = timezone.now()
    # Open all day where it is about midday now, whatever day and hour the tests run.
    location.time_zone = midday_zone()
    location.save(update_fields=["time_zone"])
    location.opening_hours.all().delete()
    for weekday in range(7):
        location.opening_hours.create(weekday=weekday, opens=clock(0), closes=clock(23, 59))
    alice, bob = make_user(), make_user()
    late = services.book(
        actor=bob, space=room, start=now - timedelta(minutes=20), end=now + timedelta(minutes=40),
        now=now - timedelta(hours=1),
    ).reservations[0]  # fmt: skip
    book(alice, make_space(location, name="Avon"), now + timedelta(minutes=10), minutes=30)
    mail.outbox.clear()
    with TestCase.captureOnCommitCallbacks(execute=True):
        assert tasks.release_no_shows() == 1
    assert fresh(late).status == ReservationStatus.RELEASED
    assert tasks.send_check_in_reminders() == 1
    assert tasks.send_check_in_reminders() == 0
    assert [m.to for m in mail.outbox if m.subject.startswith("Check in")] == [[alice.email]]


# --- the signed link ------------------------------------------------------------------------


def test_the_signed_link_names_the_booking_until_its_window_closes(room, location, make_user):
    booking = book(make_user(), room, at(location, 10))
    token = checkin.make_token(booking)
    assert checkin.read_token(token, at(location, 9, 50)) == booking.pk
    with pytest.raises(checkin.TokenExpired):
        checkin.read_token(token, at(location, 10, 15))
    with pytest.raises(checkin.TokenInvalid):
        checkin.read_token(
            token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1], at(location, 9, 50)
        )
    forged = signing.dumps({"r": booking.pk, "u": 10**12}, salt="another.salt")
    with pytest.raises(checkin.TokenInvalid):
        checkin.read_token(forged, at(location, 9, 50))


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("london_now", "pair"),
    [
        # Tuesday 11:00 in London: Bob's started at 10:40, Alice's starts at 11:10.
        (datetime(2027, 3, 9, 11, 0), (clock(10, 40), clock(11, 10))),
        # Tuesday 23:00: nobody can book around "now"; the pair comes at Wednesday's opening, 07:00.
        (datetime(2027, 3, 9, 23, 0), (clock(7, 0), clock(7, 30))),
    ],
    ids=["open", "night"],
)
def test_seed_demo_has_a_check_in_room_with_a_no_show_the_task_releases(
    monkeypatch, london_now, pair
):
    """The demo shows check-in at work whenever `make run` starts: inside London's opening
    hours Bob's no-show is released at the next tick and Alice can check in now; at night the
    pair is booked at the next opening, through the portal's rules like any booking."""
    from zoneinfo import ZoneInfo

    from django.core.management import call_command

    now = london_now.replace(tzinfo=ZoneInfo("Europe/London")).astimezone(ZoneInfo("UTC"))
    monkeypatch.setattr(timezone, "now", lambda: now)
    call_command("seed_demo", verbosity=0, history_weeks=0)
    call_command("seed_demo", verbosity=0, history_weeks=0)  # idempotent

    pair_rows = list(
        Reservation.objects.filter(title__startswith="Check-in demo").order_by("start")
    )
    assert [r.requested_for.username for r in pair_rows] == ["bob", "alice"]
    assert [r.local_start.time() for r in pair_rows] == list(pair)
    assert all(r.source == "portal" and r.status == "confirmed" for r in pair_rows)
    assert checkin.policy_for(pair_rows[0].space).required

    # A tick of the beat task a minute after the window closed releases Bob's, not Alice's.
    bob = pair_rows[0]
    later = bob.start + timedelta(minutes=16)
    monkeypatch.setattr(timezone, "now", lambda: later)
    # Bob's (and a Thames booking of the random week then: the demo display's room requires
    # check-in too).
    assert tasks.release_no_shows() >= 1
    statuses = dict(
        Reservation.objects.filter(pk__in=[r.pk for r in pair_rows]).values_list("pk", "status")
    )
    assert statuses == {bob.pk: "released", pair_rows[1].pk: "confirmed"}
