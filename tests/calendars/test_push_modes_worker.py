"""The sync modes and token trouble end to end: a real Celery worker process, over Redis and
PostgreSQL, pushes bookings made through the booking service to the Microsoft sandbox (which
runs in this test process; the worker reaches it through the provider's aliases in the shared
test database) and sends its email to files (``filemail://``), which the tests read.

- personal mode, a connected user: the room accepts -> confirmed; a busy room declines ->
  cancelled with the reason;
- strict mode, a blocker: the event in the delegated calendar, the requested-for user and the
  blocker user invited, no ``.ics`` in Reserva's email;
- a refused application secret / a revoked personal token: paused, status recorded, one email;
  credentials fixed / reconnected, resume (through the worker): the events follow, nothing lost.

The in-process versions (eager Celery) are in ``test_push_modes.py``; its helpers are reused.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, timedelta
from email import message_from_string
from pathlib import Path

import pytest

from calendars import tasks
from calendars.models import (
    BindingStatus,
    JobStatus,
    LinkState,
    SpaceCalendar,
    SyncJob,
    SyncLink,
    SyncMode,
    SyncSettings,
    TokenStatus,
    UserToken,
)
from reservations import services
from reservations.models import Reservation, ReservationKind, ReservationStatus, SyncMailbox
from tests.calendars.conftest import MS_DELEGATE, MS_ROOM, control, remote_events, sync_worker
from tests.conftest import local, next_weekday, wait_for
from tests.support.push_modes import ALICE, BOB, book, connect, personal_mode

pytestmark = [
    pytest.mark.worker,
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
]

WAIT = 60  # seconds, at most, for each outcome


@pytest.fixture
def mail_dir(tmp_path: Path) -> Path:
    path = tmp_path / "mail"
    path.mkdir()
    return path


@pytest.fixture
def worker(mail_dir: Path) -> Iterator[None]:
    with sync_worker("test-push-modes", EMAIL_URL="filemail://", EMAIL_FILE_PATH=str(mail_dir)):
        yield


def sent(mail_dir: Path) -> list[tuple[str, str, str]]:
    """(subject, to, whole text) of every email the worker wrote (one file per send)."""
    found = []
    for path in sorted(mail_dir.glob("*.log")):
        text = path.read_text()
        message = message_from_string(text)
        subject = re.sub(r"\s+", " ", message["Subject"] or "")
        found.append((subject, message["To"] or "", text))
    return found


def reservation(pk: int) -> Reservation:
    return Reservation.objects.get(pk=pk)


def test_personal_mode_room_accepts_and_the_booking_is_confirmed(
    ms_binding, sandbox, make_user, worker, mail_dir
):
    personal_mode()
    alice = make_user("alice", email=ALICE)
    connect(sandbox, ms_binding.provider, alice)
    booked = book(alice, ms_binding.space)
    assert (booked.status, booked.sync_mailbox) == (ReservationStatus.PENDING, SyncMailbox.USER)

    events = wait_for(lambda: remote_events(sandbox, "microsoft", ALICE), timeout=WAIT)
    assert events and len(events) == 1, "the worker pushed nothing to her calendar"
    assert any(a["emailAddress"]["address"] == MS_ROOM for a in events[0]["attendees"])

    confirmed = wait_for(
        lambda: reservation(booked.pk).status == ReservationStatus.CONFIRMED, timeout=WAIT
    )
    assert confirmed, f"still {reservation(booked.pk).status} after {WAIT} s"
    done = reservation(booked.pk)
    link = SyncLink.objects.get(reservation=done)
    assert link.state == LinkState.SYNCED and link.pushed_version == done.version
    assert len(remote_events(sandbox, "microsoft", ALICE)) == 1

    booking_mail = wait_for(lambda: [m for m in sent(mail_dir) if m[1] == ALICE], timeout=WAIT)
    assert booking_mail, "the worker sent her no booking email"
    assert all("text/calendar" not in text for _, _, text in booking_mail)  # Outlook has it


def test_personal_mode_busy_room_declines_and_the_booking_is_cancelled(
    ms_binding, sandbox, make_user, worker
):
    personal_mode()
    alice = make_user("alice", email=ALICE)
    connect(sandbox, ms_binding.provider, alice)
    start = local(ms_binding.space.location, next_weekday(3), 10)
    control(  # someone booked the room in Outlook; Reserva has not heard of it yet
        sandbox,
        "POST",
        f"microsoft/mailboxes/{MS_ROOM}/events",
        json={
            "subject": "Walk-in",
            "start": {"dateTime": start.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
                      "timeZone": "UTC"},
            "end": {"dateTime": (start + timedelta(hours=1)).astimezone(UTC).strftime(
                "%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"},
        },
    )  # fmt: skip
    booked = book(alice, ms_binding.space)
    assert booked.status == ReservationStatus.PENDING

    cancelled = wait_for(
        lambda: reservation(booked.pk).status == ReservationStatus.CANCELLED, timeout=WAIT
    )
    assert cancelled, f"still {reservation(booked.pk).status} after {WAIT} s"
    assert reservation(booked.pk).cancel_reason == "The room declined: it is busy"


def test_blocker_in_strict_mode_lands_in_the_delegated_calendar_with_invitees(
    ms_binding, sandbox, make_user, worker, mail_dir
):
    row = SyncSettings.load()
    row.mode = SyncMode.STRICT
    row.blocker_user = make_user("blocker", email="reserva-blocker-person@contoso.test")
    row.save()
    admin = make_user("admin", email="admin@contoso.test", is_staff=True, is_superuser=True)
    bob = make_user("bob", email=BOB)
    booked = book(admin, ms_binding.space, requested_for=bob, kind=ReservationKind.BLOCKER)
    assert booked.sync_mailbox == SyncMailbox.OTHER

    events = wait_for(lambda: remote_events(sandbox, "microsoft", MS_DELEGATE), timeout=WAIT)
    assert events and len(events) == 1, "the worker pushed nothing to the delegated calendar"
    invited = {a["emailAddress"]["address"] for a in events[0]["attendees"]}
    assert {BOB, "reserva-blocker-person@contoso.test", MS_ROOM} <= invited
    link = wait_for(
        lambda: SyncLink.objects.filter(reservation=booked, state=LinkState.SYNCED).first(),
        timeout=WAIT,
    )
    assert link and link.external_id == events[0]["id"]
    assert all("text/calendar" not in text for _, _, text in sent(mail_dir))


def test_a_refused_secret_pauses_the_binding_alerts_once_and_resumes_with_nothing_lost(
    ms_binding, sandbox, make_user, worker, mail_dir
):
    make_user("root", email="root@example.com", is_staff=True, is_superuser=True)
    credential = ms_binding.provider.credential
    credential.client_secret = "wrong-secret"
    credential.save()
    user = make_user()
    first = book(user, ms_binding.space, hour=9)
    second = book(user, ms_binding.space, hour=12)
    links = SyncLink.objects.filter(reservation__in=[first, second])

    def paused():
        return SyncJob.objects.filter(status=JobStatus.PAUSED).count() == 2 and set(
            links.values_list("state", flat=True)
        ) == {LinkState.PAUSED}

    assert wait_for(paused, timeout=WAIT), "the worker did not pause both pushes"
    binding = SpaceCalendar.objects.get(pk=ms_binding.pk)
    assert binding.status == BindingStatus.PAUSED and "secret" in binding.last_error.lower()
    assert "wrong-secret" not in binding.last_error
    alerts = wait_for(
        lambda: [m for m in sent(mail_dir) if "sync paused" in m[0].lower()], timeout=WAIT
    )
    assert alerts and [to for _, to, _ in alerts] == ["root@example.com"]  # one email
    assert remote_events(sandbox, "microsoft", MS_ROOM) == []

    credential.client_secret = "sandbox-demo-secret~not-a-real-one"
    credential.save()
    tasks.resume_binding.delay(ms_binding.pk)  # what "Resume sync" enqueues

    def resumed():
        return set(links.values_list("state", flat=True)) == {LinkState.SYNCED}

    assert wait_for(resumed, timeout=WAIT), "the paused pushes did not resume"
    assert len(remote_events(sandbox, "microsoft", MS_ROOM)) == 2
    assert SpaceCalendar.objects.get(pk=ms_binding.pk).status == BindingStatus.OK
    assert len([m for m in sent(mail_dir) if "sync paused" in m[0].lower()]) == 1


def test_a_revoked_personal_token_pauses_and_resumes_after_reconnect(
    ms_binding, sandbox, make_user, worker, mail_dir, client
):
    personal_mode()
    alice = make_user("alice", email=ALICE)
    connect(sandbox, ms_binding.provider, alice)
    booked = book(alice, ms_binding.space)
    link = wait_for(
        lambda: SyncLink.objects.filter(reservation=booked, state=LinkState.SYNCED).first(),
        timeout=WAIT,
    )
    assert link, "the worker did not push the booking"
    (event,) = remote_events(sandbox, "microsoft", ALICE)

    control(sandbox, "POST", "microsoft/refresh-tokens/revoke", json={"user": ALICE})
    control(sandbox, "POST", "clock/advance", json={"minutes": 90})  # access token expired
    current = reservation(booked.pk)
    moved = services.change(
        actor=alice,
        reservation=current,
        start=current.start + timedelta(hours=1),
        end=current.end + timedelta(hours=1),
    )[0]

    def paused():
        link.refresh_from_db()
        return link.state == LinkState.PAUSED

    assert wait_for(paused, timeout=WAIT), "the worker did not pause her push"
    assert link.pushed_version < moved.version
    assert UserToken.objects.get(user=alice).status == TokenStatus.REVOKED
    reconnect = wait_for(
        lambda: [m for m in sent(mail_dir) if "reconnect" in m[0].lower()], timeout=WAIT
    )
    assert reconnect and [to for _, to, _ in reconnect] == [ALICE]  # one email
    client.force_login(alice)
    assert "was revoked" in client.get("/").content.decode()

    connect(sandbox, ms_binding.provider, alice)  # the Connect page stores a new token...
    tasks.resume_user.delay(alice.pk, ms_binding.provider_id)  # ...and enqueues this

    def resumed():
        link.refresh_from_db()
        return link.state == LinkState.SYNCED and link.pushed_version == moved.version

    assert wait_for(resumed, timeout=WAIT), "her paused push did not resume"
    (after,) = remote_events(sandbox, "microsoft", ALICE)
    assert after["id"] == event["id"]
    assert after["start"]["dateTime"].startswith(
        moved.start.astimezone(UTC).strftime("%Y-%m-%dT%H:%M")
    )  # Graph answers in UTC
    assert len([m for m in sent(mail_dir) if "reconnect" in m[0].lower()]) == 1
