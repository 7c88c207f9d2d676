"""A remote event made in a closed room (Outlook / Google Calendar, through the sandbox) is
stored as ``conflicted`` with the closure's reason, and its Reserva owner is told why; a
remote move of such an event into a closure does the same. Nothing holds the closed slot."""

from __future__ import annotations

from datetime import UTC, timedelta

import pytest
from django.core import mail

from calendars.sync import pull
from reservations.models import Closure, Reservation, ReservationStatus
from tests.calendars.conftest import binding_for
from tests.conftest import next_weekday
from tests.support.pull import Remote, at

EWS_READY = True

pytestmark = pytest.mark.django_db


@pytest.fixture
def binding(kind, request):
    return binding_for(kind, request)


@pytest.fixture
def remote(sandbox, kind):
    return Remote(sandbox, kind)


def closed_day(binding, reason: str) -> Closure:
    day = next_weekday(1)
    return Closure.objects.create(
        location=binding.space.location, space=binding.space, start_date=day, end_date=day,
        reason=reason,
    )  # fmt: skip


def test_a_remote_event_in_a_closure_becomes_conflicted_with_the_reason(
    binding, remote, django_capture_on_commit_callbacks
):
    pull.pull_binding(binding.pk)
    closed_day(binding, "Ceiling repair")
    remote.create("Walk-in", at(0, 9), at(0, 10))

    with django_capture_on_commit_callbacks(execute=True):
        result = pull.pull_binding(binding.pk)
    assert (result.created, result.conflicts) == (0, 1)
    (row,) = Reservation.objects.filter(space=binding.space)
    assert row.status == ReservationStatus.CONFLICTED and row.title == "Walk-in"
    assert "Ceiling repair" in row.cancel_reason
    assert row.history.first().history_change_reason.endswith("Ceiling repair.")
    assert row.sync_link.external_id  # linked: the next pull does not try again
    assert pull.pull_binding(binding.pk).conflicts == 0


def test_a_remote_move_into_a_closure_becomes_conflicted_with_the_reason(binding, remote):
    pull.pull_binding(binding.pk)
    event_id = remote.create("Board", at(1, 9), at(1, 10))
    assert pull.pull_binding(binding.pk).created == 1
    closed_day(binding, "Deep clean")

    remote.move(event_id, at(0, 9), at(0, 10))
    result = pull.pull_binding(binding.pk)
    assert (result.updated, result.conflicts) == (0, 1)
    (row,) = Reservation.objects.filter(space=binding.space)
    assert row.status == ReservationStatus.CONFLICTED
    assert (row.start, row.end) == (at(0, 9), at(0, 10))
    assert "Deep clean" in row.cancel_reason


def test_the_owner_of_a_remote_booking_in_a_closure_is_told_why(
    ms_binding, sandbox, make_user, django_capture_on_commit_callbacks
):
    owner = make_user("ada", email="ada@example.com")
    location = ms_binding.space.location
    location.pull_organizer_details = True  # the organizer becomes the requested-for user
    location.save()
    pull.pull_binding(ms_binding.pk)
    closed_day(ms_binding, "Flooded")
    remote = Remote(sandbox, "microsoft")
    remote.create(
        "Walk-in",
        at(0, 9),
        at(0, 10),
        organizer={"emailAddress": {"address": owner.email, "name": "Ada"}},
    )
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        pull.pull_binding(ms_binding.pk)
    row = Reservation.objects.get(space=ms_binding.space)
    assert row.requested_for == owner and row.status == ReservationStatus.CONFLICTED
    (email,) = mail.outbox
    assert email.to == ["ada@example.com"]
    assert "cannot be accepted" in email.body and "Flooded" in email.body
    assert "collides" not in email.body
    assert row.start.astimezone(UTC) == at(0, 9) and row.end - row.start == timedelta(hours=1)


def test_a_conflict_moved_out_of_the_closure_takes_its_slot(binding, remote):
    pull.pull_binding(binding.pk)
    closed_day(binding, "Deep clean")
    event_id = remote.create("Board", at(0, 9), at(0, 10))
    assert pull.pull_binding(binding.pk).conflicts == 1

    remote.move(event_id, at(0, 10), at(0, 11))  # still inside the closed day
    pull.pull_binding(binding.pk)
    (row,) = Reservation.objects.filter(space=binding.space)
    assert row.status == ReservationStatus.CONFLICTED and "Deep clean" in row.cancel_reason

    remote.move(event_id, at(1, 9), at(1, 10))  # the next day is open
    pull.pull_binding(binding.pk)
    row.refresh_from_db()
    assert row.status == ReservationStatus.CONFIRMED and row.cancel_reason == ""
    assert (row.start, row.end) == (at(1, 9), at(1, 10))
