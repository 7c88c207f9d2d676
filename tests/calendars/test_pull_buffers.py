"""A remote event that leaves a room too little time for its setup or cleanup buffers is
recorded as ``conflicted`` with the buffer's words (against the provider sandbox), while the
pushed event of a Reserva booking shows the booked times only."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.core import mail

from calendars.sync import pull
from calendars.sync.push import push_reservation
from reservations import services
from reservations.models import Reservation, ReservationStatus
from tests.calendars.conftest import ROOMS, binding_for, remote_events
from tests.conftest import local, next_weekday
from tests.support.pull import Remote, at
from tests.support.reconcile import book, run, settle

KINDS = ["microsoft", "google", "ews"]
EWS_READY = True


@pytest.fixture
def binding(kind, request):
    binding = binding_for(kind, request)
    binding.space.setup_minutes = binding.space.cleanup_minutes = 15
    binding.space.save()
    return binding


def _event_times(event: dict, kind: str) -> tuple[datetime, datetime]:
    def parse(value: dict | str) -> datetime:  # the EWS control routes: a UTC string
        text = value if isinstance(value, str) else value["dateTime"]
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        if moment.tzinfo is None:  # Graph: a wall-clock time and a zone name (UTC here)
            moment = moment.replace(tzinfo=UTC)
        return moment.astimezone(UTC)

    return parse(event["start"]), parse(event["end"])


def test_a_remote_event_in_the_cleanup_buffer_becomes_conflicted_with_the_buffer_reason(
    binding, kind, sandbox, make_user, client, django_capture_on_commit_callbacks
):
    space = binding.space
    pull.pull_binding(binding.pk)
    owner = make_user(email="owner@example.com")
    start = local(space.location, next_weekday(2), 10)
    with django_capture_on_commit_callbacks(execute=True):
        booked = services.book(
            actor=owner, space=space, start=start, end=start + timedelta(hours=1)
        ).reservations[0]
    push_reservation(booked.pk)
    calendar = ROOMS[kind]
    (pushed,) = remote_events(sandbox, kind, calendar)
    # The room's calendar shows the booked hour, not the buffers around it.
    assert _event_times(pushed, kind) == (booked.start, booked.end)
    pull.pull_binding(binding.pk)  # our own event comes back: nothing
    mail.outbox.clear()

    # Right after the booking, in Outlook / Google: the booked times do not overlap.
    walk_in = start + timedelta(hours=1)
    Remote(sandbox, kind).create(
        "Walk-in", walk_in.astimezone(UTC), (walk_in + timedelta(hours=1)).astimezone(UTC)
    )
    with django_capture_on_commit_callbacks(execute=True):
        result = pull.pull_binding(binding.pk)
    assert (result.conflicts, result.created) == (1, 0)
    conflict = Reservation.objects.get(status=ReservationStatus.CONFLICTED)
    assert conflict.title == "Walk-in" and conflict.start == walk_in
    words = (
        f"{space.name} needs 15 minutes to be cleaned up and 15 minutes to be set up after the "
        "previous booking: the previous booking ends at 11:00, so this one can start at 11:30 "
        "at the earliest."
    )
    reason = conflict.history.latest().history_change_reason
    assert reason.rstrip("\u2026") and words.startswith(reason.rstrip("\u2026"))
    booked.refresh_from_db()
    assert booked.status == ReservationStatus.CONFIRMED
    assert [m.to for m in mail.outbox] == [["owner@example.com"]]
    assert words in mail.outbox[0].body

    client.force_login(make_user(is_staff=True, is_superuser=True))
    page = client.get("/admin/reservations/reservation/", {"conflicts": "yes"}).content.decode()
    assert f"#{booked.pk} " in page and words in page.replace("&#x27;", "'")


def test_the_daily_reconciliation_records_a_buffer_conflict_with_its_reason(
    binding, kind, sandbox, make_user, django_capture_on_commit_callbacks
):
    """A provider-made event moved (unseen by a pull) to right after a booking: the
    reconciliation applies the provider's times, the booking service refuses them for the
    cleanup buffer, and the event is kept as conflicted, saying so."""

    remote = Remote(sandbox, kind)
    booked = book(binding, make_user(), 0, 9, django_capture_on_commit_callbacks)
    walk_in = remote.create("Walk-in", at(0, 14), at(0, 15))
    pull.pull_binding(binding.pk)
    (provider_made,) = Reservation.objects.exclude(pk=booked.pk)
    remote.move(walk_in, at(0, 10), at(0, 11))  # booked 9-10: the cleanup runs to 10:15
    settle()

    result = run(binding.pk, django_capture_on_commit_callbacks)

    assert result.notes[0]["done"] == "moved onto a taken slot: now a conflict"
    provider_made.refresh_from_db()
    assert provider_made.status == ReservationStatus.CONFLICTED
    reason = provider_made.history.latest().history_change_reason
    assert reason.startswith(
        f"{binding.space.name} needs 15 minutes to be cleaned up and 15 minutes to be set up"
    )
