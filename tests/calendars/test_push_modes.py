"""Push in the sync modes and through token trouble, against the Microsoft sandbox:
personal mode (the person's own calendar, the room invited: its answer becomes the status),
strict mode and blockers (the delegated calendar, people invited, no .ics from Reserva), and a
refused secret or token (paused, one alert, nothing lost, resumed after reconnecting)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from calendars.models import (
    BindingStatus,
    JobStatus,
    LinkState,
    SyncJob,
    SyncLink,
    SyncMode,
    SyncSettings,
    TokenStatus,
    UserToken,
)
from calendars.sync import check_room_response, push
from calendars.tasks import resume_binding, resume_user
from reservations import services
from reservations.models import ReservationKind, ReservationStatus, SyncMailbox
from tests.calendars.conftest import GOOGLE_ROOM, MS_DELEGATE, MS_ROOM, control, remote_events
from tests.conftest import local, next_weekday
from tests.support.admin import reservation_form
from tests.support.push_modes import (
    ALICE,
    BOB,
    G_ALICE,
    book,
    connect,
    connect_google,
    personal_mode,
)


@pytest.mark.django_db(transaction=True)
def test_personal_mode_room_accepts_and_the_booking_is_confirmed(
    ms_binding, sandbox, make_user, mailoutbox
):
    personal_mode()
    alice = make_user("alice", email=ALICE)
    connect(sandbox, ms_binding.provider, alice)
    reservation = book(alice, ms_binding.space)
    assert (reservation.status, reservation.sync_mailbox) == (
        ReservationStatus.PENDING,
        SyncMailbox.USER,
    )
    (event,) = remote_events(sandbox, "microsoft", ALICE)  # in her own calendar
    assert any(a["emailAddress"]["address"] == MS_ROOM for a in event["attendees"])
    assert "text/calendar" not in str(mailoutbox[0].message())  # Outlook has it already

    sandbox.sandbox.wait_idle()  # the room answers a moment later
    # The eager task chain may have seen the answer already; otherwise this call does.
    assert check_room_response(reservation.pk) in ("confirmed", "not pending")
    reservation.refresh_from_db()
    assert reservation.status == ReservationStatus.CONFIRMED
    link = SyncLink.objects.get(reservation=reservation)
    assert link.pushed_version == reservation.version  # no push needed for the room's answer
    assert push.push_reservation(reservation.pk).op == "noop"


@pytest.mark.django_db(transaction=True)
def test_personal_mode_busy_room_declines_and_the_booking_is_cancelled(
    ms_binding, sandbox, make_user
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
            "start": {"dateTime": start.astimezone().strftime("%Y-%m-%dT%H:%M:%S"),
                      "timeZone": start.astimezone().tzname() or "UTC"},
            "end": {"dateTime": (start + timedelta(hours=1)).astimezone().strftime(
                "%Y-%m-%dT%H:%M:%S"), "timeZone": start.astimezone().tzname() or "UTC"},
        },
    )  # fmt: skip
    reservation = book(alice, ms_binding.space)
    sandbox.sandbox.wait_idle()
    assert check_room_response(reservation.pk) in ("declined", "not pending")
    reservation.refresh_from_db()
    assert reservation.status == ReservationStatus.CANCELLED
    assert reservation.cancel_reason == "The room declined: it is busy"


@pytest.mark.django_db(transaction=True)
def test_blocker_in_strict_mode_lands_in_the_delegated_calendar_with_invitees(
    ms_binding, sandbox, make_user, mailoutbox
):
    row = SyncSettings.load()
    row.mode = SyncMode.STRICT
    row.blocker_user = make_user("blocker", email="reserva-blocker-person@contoso.test")
    row.save()
    admin = make_user("admin", email="admin@contoso.test", is_staff=True, is_superuser=True)
    bob = make_user("bob", email=BOB)
    reservation = book(admin, ms_binding.space, requested_for=bob, kind=ReservationKind.BLOCKER)
    assert reservation.sync_mailbox == SyncMailbox.OTHER
    (event,) = remote_events(sandbox, "microsoft", MS_DELEGATE)
    invited = {a["emailAddress"]["address"] for a in event["attendees"]}
    assert {BOB, "reserva-blocker-person@contoso.test", MS_ROOM} <= invited
    assert all("text/calendar" not in str(m.message()) for m in mailoutbox)


@pytest.mark.django_db(transaction=True)
def test_a_refused_secret_pauses_the_binding_alerts_once_and_resumes_with_nothing_lost(
    ms_binding, sandbox, make_user, mailoutbox
):
    make_user("root", email="root@example.com", is_staff=True, is_superuser=True)
    credential = ms_binding.provider.credential
    credential.client_secret = "wrong-secret"
    credential.save()
    user = make_user()
    first = book(user, ms_binding.space, hour=9)
    second = book(user, ms_binding.space, hour=12)
    ms_binding.refresh_from_db()
    assert ms_binding.status == BindingStatus.PAUSED and "secret" in ms_binding.last_error.lower()
    assert "wrong-secret" not in ms_binding.last_error
    links = SyncLink.objects.filter(reservation__in=[first, second])
    assert set(links.values_list("state", flat=True)) == {LinkState.PAUSED}
    alerts = [m for m in mailoutbox if "sync paused" in m.subject.lower()]
    assert len(alerts) == 1 and alerts[0].to == ["root@example.com"]
    assert SyncJob.objects.filter(status=JobStatus.PAUSED).count() == 2
    assert remote_events(sandbox, "microsoft", MS_ROOM) == []

    credential.client_secret = "sandbox-demo-secret~not-a-real-one"
    credential.save()
    assert resume_binding(ms_binding.pk) == 2
    assert len(remote_events(sandbox, "microsoft", MS_ROOM)) == 2
    assert set(links.values_list("state", flat=True)) == {LinkState.SYNCED}
    ms_binding.refresh_from_db()
    assert ms_binding.status == BindingStatus.OK


@pytest.mark.django_db(transaction=True)
def test_a_revoked_personal_token_pauses_shows_a_banner_and_resumes_after_reconnect(
    ms_binding, sandbox, make_user, mailoutbox, client
):
    personal_mode()
    alice = make_user("alice", email=ALICE)
    connect(sandbox, ms_binding.provider, alice)
    reservation = book(alice, ms_binding.space)
    (event,) = remote_events(sandbox, "microsoft", ALICE)

    control(sandbox, "POST", "microsoft/refresh-tokens/revoke", json={"user": ALICE})
    control(sandbox, "POST", "clock/advance", json={"minutes": 90})  # access token expired
    mailoutbox.clear()
    moved = services.change(
        actor=alice,
        reservation=reservation,
        start=reservation.start + timedelta(hours=1),
        end=reservation.end + timedelta(hours=1),
    )[0]
    token = UserToken.objects.get(user=alice)
    assert token.status == TokenStatus.REVOKED
    link = SyncLink.objects.get(reservation=reservation)
    assert link.state == LinkState.PAUSED and link.pushed_version < moved.version
    assert [m.to for m in mailoutbox if "reconnect" in m.subject.lower()] == [[ALICE]]
    client.force_login(alice)
    assert "was revoked" in client.get("/").content.decode()

    connect(sandbox, ms_binding.provider, alice)  # the Connect page stores a new token...
    assert resume_user(alice.pk, ms_binding.provider_id) == 1  # ...and calls this
    link.refresh_from_db()
    assert link.state == LinkState.SYNCED and link.pushed_version == moved.version
    (after,) = remote_events(sandbox, "microsoft", ALICE)
    assert after["id"] == event["id"]


# -- Google: the same modes against the Google sandbox -------------------------------------------


def _room_attendee(event: dict) -> dict:
    (room,) = [a for a in event.get("attendees", []) if a["email"] == GOOGLE_ROOM]
    return room


@pytest.mark.django_db(transaction=True)
def test_google_personal_mode_resource_calendar_accepts_and_the_booking_is_confirmed(
    google_binding, sandbox, make_user, mailoutbox
):
    personal_mode()
    alice = make_user("alice", email=G_ALICE)
    connect_google(sandbox, google_binding.provider, alice)
    reservation = book(alice, google_binding.space)
    assert (reservation.status, reservation.sync_mailbox) == (
        ReservationStatus.PENDING,
        SyncMailbox.USER,
    )
    (event,) = remote_events(sandbox, "google", G_ALICE)  # in her own calendar
    assert _room_attendee(event)["resource"] is True
    assert all("text/calendar" not in str(m.message()) for m in mailoutbox)  # Google sends it

    sandbox.sandbox.wait_idle()  # the resource calendar answers a moment later
    assert check_room_response(reservation.pk) in ("confirmed", "not pending")
    reservation.refresh_from_db()
    assert reservation.status == ReservationStatus.CONFIRMED
    (event,) = remote_events(sandbox, "google", G_ALICE)
    assert _room_attendee(event)["responseStatus"] == "accepted"
    link = SyncLink.objects.get(reservation=reservation)
    assert link.pushed_version == reservation.version  # no push needed for the room's answer
    assert push.push_reservation(reservation.pk).op == "noop"


@pytest.mark.django_db(transaction=True)
def test_google_personal_mode_busy_resource_calendar_declines_and_the_booking_is_cancelled(
    google_binding, sandbox, make_user
):
    personal_mode()
    alice = make_user("alice", email=G_ALICE)
    connect_google(sandbox, google_binding.provider, alice)
    start = local(google_binding.space.location, next_weekday(3), 10)
    control(  # someone booked the room in Google Calendar; Reserva has not heard of it yet
        sandbox,
        "POST",
        f"google/calendars/{GOOGLE_ROOM}/events",
        json={
            "summary": "Walk-in",
            "start": {"dateTime": start.isoformat()},
            "end": {"dateTime": (start + timedelta(hours=1)).isoformat()},
        },
    )
    reservation = book(alice, google_binding.space)
    sandbox.sandbox.wait_idle()
    assert check_room_response(reservation.pk) in ("declined", "not pending")
    reservation.refresh_from_db()
    assert reservation.status == ReservationStatus.CANCELLED
    assert reservation.cancel_reason.startswith("The room declined")


@pytest.mark.django_db(transaction=True)
def test_a_revoked_google_grant_pauses_shows_a_banner_and_resumes_after_reconnect(
    google_binding, sandbox, make_user, mailoutbox, client
):
    personal_mode()
    alice = make_user("alice", email=G_ALICE)
    connect_google(sandbox, google_binding.provider, alice)
    reservation = book(alice, google_binding.space)
    (event,) = remote_events(sandbox, "google", G_ALICE)

    # Revoked at Google (by her or an admin): the refresh grant and its access tokens die.
    control(sandbox, "POST", "google/tokens/revoke", json={"user": G_ALICE})
    mailoutbox.clear()
    moved = services.change(
        actor=alice,
        reservation=reservation,
        start=reservation.start + timedelta(hours=1),
        end=reservation.end + timedelta(hours=1),
    )[0]
    token = UserToken.objects.get(user=alice)
    assert token.status == TokenStatus.REVOKED
    link = SyncLink.objects.get(reservation=reservation)
    assert link.state == LinkState.PAUSED and link.pushed_version < moved.version
    assert [m.to for m in mailoutbox if "reconnect" in m.subject.lower()] == [[G_ALICE]]
    client.force_login(alice)
    assert "was revoked" in client.get("/").content.decode()

    connect_google(sandbox, google_binding.provider, alice)  # the Connect page...
    assert resume_user(alice.pk, google_binding.provider_id) == 1  # ...then this
    link.refresh_from_db()
    assert link.state == LinkState.SYNCED and link.pushed_version == moved.version
    (after,) = remote_events(sandbox, "google", G_ALICE)
    assert after["id"] == event["id"]
    assert datetime.fromisoformat(after["start"]["dateTime"]) == moved.start


@pytest.mark.django_db(transaction=True)
def test_an_admin_handover_in_strict_mode_moves_the_invitation_to_the_new_person(
    ms_binding, sandbox, make_user, client
):
    """Strict mode keeps people's bookings in the delegated calendar with them invited: when
    the admin changes *Requested for*, the push invites the new person instead of the old."""
    from django.urls import reverse

    row = SyncSettings.load()
    row.mode = SyncMode.STRICT
    row.save()
    alice, bob = make_user("alice", email=ALICE), make_user("bob", email=BOB)
    reservation = book(alice, ms_binding.space)
    assert reservation.sync_mailbox == SyncMailbox.OTHER
    (event,) = remote_events(sandbox, "microsoft", MS_DELEGATE)
    assert ALICE in {a["emailAddress"]["address"] for a in event["attendees"]}

    client.force_login(make_user("boss", is_staff=True, is_superuser=True))
    response = client.post(
        reverse("admin:reservations_reservation_change", args=[reservation.pk]),
        reservation_form(ms_binding.space, bob, reservation.local_start),
    )
    assert response.status_code == 302
    (event,) = remote_events(sandbox, "microsoft", MS_DELEGATE)
    invited = {a["emailAddress"]["address"] for a in event["attendees"]}
    assert BOB in invited and ALICE not in invited
    assert event["subject"] == "bob"
    assert SyncLink.objects.get(reservation=reservation).pushed_version == 2
