"""Personal mode on Exchange Server, against the EWS sandbox over real HTTPS: nobody connects
an account; the sync user (ApplicationImpersonation) writes each booking in its person's own
mailbox, found by their e-mail address, with the room as a resource attendee. The room's
booking assistant answers (AutoAccept: accepted when free, declined when busy), and that
answer becomes the booking's status as for Microsoft 365 and Google. Delegate credentials
cannot act as any person: personal mode is refused for them in the admin and by the client."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from calendars import tasks
from calendars.models import (
    BindingStatus,
    CalendarProvider,
    LinkState,
    SyncLink,
    SyncMode,
    SyncSettings,
    UserToken,
)
from calendars.sync import check_room_response, push
from reservations import services
from reservations.models import ReservationStatus, SyncMailbox
from reservations.services import NotAllowed
from tests.calendars.conftest import EWS_ROOM, remote_events
from tests.conftest import local, next_weekday
from tests.support.pull import Remote
from tests.support.push_modes import ALICE, book, personal_mode

pytestmark = pytest.mark.django_db(transaction=True)


def when(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def room_answer(event: dict) -> str:
    (room,) = [a for a in event["attendees"] if a["email"] == EWS_ROOM]
    assert room["type"] == "Resource"
    return room["response"]


def test_the_booking_lands_in_her_mailbox_and_the_room_s_acceptance_confirms_it(
    ews_binding, sandbox, make_user, mailoutbox
):
    personal_mode()
    alice = make_user("alice", email=ALICE)
    reservation = book(alice, ews_binding.space)
    assert (reservation.status, reservation.sync_mailbox) == (
        ReservationStatus.PENDING,
        SyncMailbox.USER,
    )
    assert not UserToken.objects.exists()  # nothing connected: impersonation
    (event,) = remote_events(sandbox, "ews", ALICE)  # in her own mailbox, organized by her
    assert event["organizer"] == ALICE
    assert "text/calendar" not in str(mailoutbox[0].message())  # Outlook has it already

    sandbox.sandbox.wait_idle()  # the room's booking assistant answers a moment later
    assert check_room_response(reservation.pk) in ("confirmed", "not pending")
    reservation.refresh_from_db()
    assert reservation.status == ReservationStatus.CONFIRMED
    (event,) = remote_events(sandbox, "ews", ALICE)
    assert room_answer(event) == "Accept"
    (copy,) = remote_events(sandbox, "ews", EWS_ROOM)  # the room's copy of her meeting
    assert copy["uid"] == event["uid"]
    link = SyncLink.objects.get(reservation=reservation)
    assert link.mailbox.lower() == ALICE
    assert link.pushed_version == reservation.version  # no push needed for the room's answer
    assert push.push_reservation(reservation.pk).op == "noop"

    # She moves it in the portal: her meeting moves, the room answers again.
    start = reservation.start + timedelta(hours=3)
    services.change(
        actor=alice, reservation=reservation, start=start, end=start + timedelta(hours=1)
    )
    sandbox.sandbox.wait_idle()
    (event,) = remote_events(sandbox, "ews", ALICE)
    assert when(event["start"]) == start
    (copy,) = remote_events(sandbox, "ews", EWS_ROOM)
    assert copy["start"] == event["start"]

    # She cancels it: her meeting is cancelled and the room drops its copy.
    reservation.refresh_from_db()
    services.cancel(actor=alice, reservation=reservation)
    sandbox.sandbox.wait_idle()
    assert remote_events(sandbox, "ews", ALICE) == []
    assert remote_events(sandbox, "ews", EWS_ROOM) == []


def test_a_busy_room_declines_and_the_booking_is_cancelled(ews_binding, sandbox, make_user):
    personal_mode()
    alice = make_user("alice", email=ALICE)
    start = local(ews_binding.space.location, next_weekday(3), 10)
    # Someone booked the room in Outlook; Reserva has not heard of it yet.
    Remote(sandbox, "ews").create("Walk-in", start, start + timedelta(hours=1))
    reservation = book(alice, ews_binding.space)
    sandbox.sandbox.wait_idle()
    assert check_room_response(reservation.pk) in ("declined", "not pending")
    reservation.refresh_from_db()
    assert reservation.status == ReservationStatus.CANCELLED
    assert reservation.cancel_reason == "The room declined: it is busy"
    (walk_in,) = remote_events(sandbox, "ews", EWS_ROOM)  # the room kept only its own booking
    assert walk_in["subject"] == "Walk-in"


def test_a_person_without_an_address_cannot_book_a_synced_room(ews_binding, make_user):
    personal_mode()
    nobody = make_user("nobody", email="")
    start = local(ews_binding.space.location, next_weekday(3), 10)
    with pytest.raises(NotAllowed, match="no e-mail address"):
        services.book(
            actor=nobody, space=ews_binding.space, start=start, end=start + timedelta(hours=1)
        )


def test_delegate_access_refuses_personal_mode_in_the_admin_and_in_the_client(
    ews_binding, sandbox, make_user
):
    credential = ews_binding.provider.credential
    credential.access_type = "delegate"
    credential.save()
    settings_row = SyncSettings.load()
    settings_row.mode = SyncMode.PERSONAL
    with pytest.raises(ValidationError) as raised:
        settings_row.full_clean()
    (message,) = raised.value.message_dict["mode"]
    assert "impersonation" in message and ews_binding.provider.name in message

    # With personal mode on, the credential and the provider say so too.
    settings_row.save()
    with pytest.raises(ValidationError) as raised:
        credential.full_clean()
    assert "impersonation" in raised.value.message_dict["access_type"][0]
    provider = CalendarProvider.objects.get(pk=ews_binding.provider_id)
    with pytest.raises(ValidationError) as raised:
        provider.full_clean()
    assert "impersonation" in raised.value.message_dict["credential"][0]

    # A booking made anyway (the row saved behind the admin's back) is refused before
    # anything is sent, with the reason on its link, and nothing lands in her mailbox.
    alice = make_user("alice", email=ALICE)
    reservation = book(alice, ews_binding.space)
    link = SyncLink.objects.get(reservation=reservation)
    assert link.state == LinkState.PAUSED
    assert "ApplicationImpersonation" in link.last_error
    assert remote_events(sandbox, "ews", ALICE) == []


def test_the_sync_settings_page_says_why_personal_mode_is_refused(ews_binding, client, make_user):
    credential = ews_binding.provider.credential
    credential.access_type = "delegate"
    credential.save()
    settings_row = SyncSettings.load()
    client.force_login(make_user("admin", is_staff=True, is_superuser=True))
    form = {
        "mode": SyncMode.PERSONAL,
        "blocker_user": "",
        "sync_past_days": settings_row.sync_past_days,
        "sync_future_days": settings_row.sync_future_days,
        "pull_interval_minutes": settings_row.pull_interval_minutes,
    }
    url = reverse("admin:calendars_syncsettings_change", args=[settings_row.pk])
    page = client.post(url, form).content.decode()
    assert "ApplicationImpersonation role" in page and ews_binding.provider.name in page
    assert SyncSettings.load().mode == SyncMode.NORMAL  # not saved
    credential.access_type = "impersonation"
    credential.save()
    assert client.post(url, form).status_code == 302
    assert SyncSettings.load().mode == SyncMode.PERSONAL


def test_an_address_with_no_mailbox_pauses_that_booking_only(
    ews_binding, sandbox, make_user, mailoutbox
):
    make_user("root", email="root@example.com", is_staff=True, is_superuser=True)
    personal_mode()
    ghost = make_user("ghost", email="ghost@contoso.test")  # no such mailbox on the server
    reservation = book(ghost, ews_binding.space)
    link = SyncLink.objects.get(reservation=reservation)
    assert link.state == LinkState.PAUSED and "No mailbox" in link.last_error
    ews_binding.refresh_from_db()
    assert ews_binding.status == BindingStatus.OK  # the room still syncs everyone else's bookings
    alice = make_user("alice", email=ALICE)
    other = book(alice, ews_binding.space, hour=14)
    assert SyncLink.objects.get(reservation=other).external_id
    (event,) = remote_events(sandbox, "ews", ALICE)
    assert event["organizer"] == ALICE

    # The admins are told once, by the first of the person's bookings that waits.
    (alert,) = [m for m in mailoutbox if "no mailbox" in m.subject.lower()]
    assert alert.to == ["root@example.com"] and "ghost" in alert.subject
    assert f"#{reservation.pk}" in alert.body and "Resume sync" in alert.body
    second = book(ghost, ews_binding.space, hour=16)
    assert SyncLink.objects.get(reservation=second).state == LinkState.PAUSED
    assert tasks.resume_binding(ews_binding.pk) == 2  # still no mailbox: paused again, ...
    assert len([m for m in mailoutbox if "no mailbox" in m.subject.lower()]) == 1  # ... no more

    # The admin corrects the address (here: to a mailbox that exists) and resumes the room.
    ghost.email = "bob@contoso.test"
    ghost.save()
    assert tasks.resume_binding(ews_binding.pk) == 2
    waiting = SyncLink.objects.filter(reservation__in=[reservation, second])
    assert set(waiting.values_list("state", flat=True)) == {LinkState.SYNCED}
    assert len(remote_events(sandbox, "ews", "bob@contoso.test")) == 2
