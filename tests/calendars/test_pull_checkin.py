"""Check-in with a room calendar (Outlook / Google Calendar, through the sandbox): a booking
made remotely in a check-in room is released like any other when nobody checks in, its
organizer is emailed, the ordinary push removes its event from the room's calendar, and a
later remote edit of that event does not bring the released booking back."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail

from calendars.sync import pull
from calendars.sync.pull import plan_pull
from reservations import services
from reservations.models import Reservation, ReservationStatus
from tests.calendars.conftest import ROOMS, binding_for, control, remote_events
from tests.support.plan import WINDOW, bucket, ev, link, res
from tests.support.pull import Remote, at

pytestmark = pytest.mark.django_db
EWS_READY = True
EWS_ALICE = "alice@contoso.test"


@pytest.fixture
def binding(kind, request):
    found = binding_for(kind, request)
    found.space.check_in_required = True
    found.space.save()
    location = found.space.location
    location.pull_organizer_details = True  # so the organizer's address is kept
    location.save()
    return found


@pytest.fixture
def remote(sandbox, kind):
    return Remote(sandbox, kind)


def room_of(kind: str) -> str:
    return ROOMS[kind]


def test_a_remote_booking_nobody_checked_in_to_is_released_and_its_event_removed(
    binding,
    remote,
    sandbox,
    kind,
    django_capture_on_commit_callbacks,
):
    pull.pull_binding(binding.pk)
    # Graph keeps the organizer given; Google's room calendar is its events' own organizer.
    # On Exchange Server the visitor is a mailbox of the organisation that invites the room.
    visitor = {"microsoft": "visitor@partner.example", "ews": EWS_ALICE}.get(kind, room_of(kind))
    if kind == "ews":
        control(sandbox, "POST", f"ews/mailboxes/{EWS_ALICE}/items", json={
            "subject": "Walk-in", "start": at(0, 9).isoformat(), "end": at(0, 10).isoformat(),
            "resources": [room_of(kind)]})  # fmt: skip
        sandbox.sandbox.wait_idle()  # the room accepts
    else:
        organizer = {"emailAddress": {"address": visitor, "name": "Visitor"}}
        extra = {"organizer": organizer} if kind == "microsoft" else {}
        remote.create("Walk-in", at(0, 9), at(0, 10), **extra)
    assert pull.pull_binding(binding.pk).created == 1
    (row,) = Reservation.objects.filter(space=binding.space)
    assert row.requested_for is None and row.organizer_email == visitor  # no Reserva account
    assert len(remote_events(sandbox, kind, room_of(kind))) == 1
    mail.outbox.clear()

    with django_capture_on_commit_callbacks(execute=True):
        released = services.release_no_show(reservation=row, now=at(0, 9) + timedelta(minutes=16))
    assert released is not None and released.status == ReservationStatus.RELEASED
    assert remote_events(sandbox, kind, room_of(kind)) == []  # the room shows free remotely
    [email] = [m for m in mail.outbox if m.subject.startswith("Released: Atlas")]
    assert email.to == [visitor]


def test_a_remote_edit_of_a_released_bookings_event_is_ignored_like_a_cancelled_ones(
    binding, remote
):
    pull.pull_binding(binding.pk)
    event_id = remote.create("Walk-in", at(0, 9), at(0, 10))
    assert pull.pull_binding(binding.pk).created == 1
    (row,) = Reservation.objects.filter(space=binding.space)
    # Released, and the push that would delete the event has not run yet.
    services.release_no_show(reservation=row, now=at(0, 9) + timedelta(minutes=16))

    remote.move(event_id, at(0, 11), at(0, 12))
    result = pull.pull_binding(binding.pk)
    # Ignored as "released here" (planned like a cancelled booking's), not tried as a change.
    assert (result.created, result.updated, result.conflicts, result.ignored) == (0, 0, 0, 1)
    row.refresh_from_db()
    assert row.status == ReservationStatus.RELEASED
    assert (row.start, row.end) == (at(0, 9), at(0, 10))


def test_a_remote_move_of_a_released_portal_bookings_event_is_not_written_back(
    binding,
    remote,
    sandbox,
    kind,
    make_user,
    django_capture_on_commit_callbacks,
):
    pull.pull_binding(binding.pk)
    with django_capture_on_commit_callbacks(execute=True):  # the push makes the room's event
        row = services.book(
            actor=make_user(), space=binding.space, start=at(0, 9), end=at(0, 10),
            now=at(0, 9) - timedelta(days=1),
        ).reservations[0]  # fmt: skip
    (event,) = remote_events(sandbox, kind, room_of(kind))
    pull.pull_binding(binding.pk)
    # Released, and the push that would delete the event has not run yet.
    services.release_no_show(reservation=row, now=at(0, 9) + timedelta(minutes=16))

    remote.move(event["id"], at(0, 11), at(0, 12))
    result = pull.pull_binding(binding.pk)
    assert (result.updated, result.restored, result.ignored) == (0, 0, 1)
    row.refresh_from_db()
    assert row.status == ReservationStatus.RELEASED
    assert (row.start, row.end) == (at(0, 9), at(0, 10))


@pytest.mark.parametrize("status", ["cancelled", "released"])
def test_the_planner_ignores_a_released_bookings_event_like_a_cancelled_ones(status):
    moved = ev(start=ev().start + timedelta(hours=2), end=ev().end + timedelta(hours=2))
    plan = plan_pull([moved], [link()], [res(status=status)], window=WINDOW)
    assert bucket(plan) == {"ignore": [("e1", 1)]}
    assert plan.ignore[0].reason == f"{status} here"
