"""Approvals in the room calendars: a booking awaiting approval is tentative in Outlook
(``showAs``) and Google (``status``) and becomes busy / confirmed when approved, or goes when
declined (real HTTPS to the sandbox); the pull reads its own tentative events back as no
change; an event made in Outlook/Google in an approval room awaits approval too."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth.models import Group
from django.core import mail

from calendars.sync import pull
from integrations.base import EventData
from integrations.google import mapping as google_mapping
from integrations.microsoft import mapping as ms_mapping
from reservations import services
from reservations.models import Approval, ApprovalRule, Reservation, ReservationStatus
from tests.calendars.conftest import MS_ROOM, ROOMS, binding_for, remote_events
from tests.conftest import local, next_weekday
from tests.support.pull import Remote, at

EWS_READY = True
START = datetime(2030, 1, 8, 10, tzinfo=UTC)


def data(tentative: bool) -> EventData:
    return EventData(
        reservation_id=7, subject="Ada", start=START, end=START + timedelta(hours=1),
        tentative=tentative,
    )  # fmt: skip


def test_graph_shows_a_booking_awaiting_approval_as_tentative_and_reads_it_back():
    assert ms_mapping.event_body(data(True), creating=True)["showAs"] == "tentative"
    assert ms_mapping.event_body(data(False), creating=False)["showAs"] == "busy"
    item = {"id": "e1", "showAs": "tentative", "subject": "Ada"}
    assert ms_mapping.parse_event(item).status == "tentative"


def test_google_marks_a_booking_awaiting_approval_tentative_and_reads_it_back():
    assert google_mapping.event_body(data(True))["status"] == "tentative"
    assert google_mapping.event_body(data(False))["status"] == "confirmed"
    item = {"id": "e1", "status": "tentative", "summary": "Ada"}
    assert google_mapping.parse_event(item).status == "tentative"


def _approval_rule(space) -> tuple[Group, object]:
    group = Group.objects.create(name="Facilities")
    ApprovalRule.objects.create(location=space.location, space=space, approvers=group)
    return group


def _tentative(event: dict, kind: str) -> bool:
    if kind == "ews":
        return event["free_busy"] == "Tentative"
    if kind == "microsoft":
        return event["showAs"] == "tentative"
    return event["status"] == "tentative"


@pytest.fixture
def binding(kind, request):
    return binding_for(kind, request)


def _room(kind: str) -> str:
    return ROOMS[kind]


@pytest.mark.django_db(transaction=True)
def test_tentative_while_awaiting_then_busy_when_approved(binding, kind, sandbox, make_user):
    group = _approval_rule(binding.space)
    approver = make_user("fiona")
    approver.groups.add(group)
    start = local(binding.space.location, next_weekday(2), 10)
    booking = services.book(
        actor=make_user("alice"), space=binding.space, start=start, end=start + timedelta(hours=1)
    ).reservations[0]
    assert booking.approval == Approval.AWAITING

    (event,) = remote_events(sandbox, kind, _room(kind))
    assert _tentative(event, kind)
    # The pull reads our own tentative event back as no change.
    result = pull.pull_binding(binding.pk)
    assert (result.created, result.updated, result.conflicts) == (0, 0, 0)
    booking.refresh_from_db()
    assert (booking.status, booking.approval) == (ReservationStatus.PENDING, Approval.AWAITING)

    services.approve(actor=approver, reservation=booking)
    (event,) = remote_events(sandbox, kind, _room(kind))
    assert not _tentative(event, kind)
    if kind == "microsoft":
        assert event["showAs"] == "busy"
    elif kind == "ews":
        assert event["free_busy"] == "Busy"
    else:
        assert event["status"] == "confirmed"
    assert pull.pull_binding(binding.pk).updated == 0


@pytest.mark.django_db(transaction=True)
def test_a_declined_booking_leaves_the_room_calendar(binding, kind, sandbox, make_user):
    group = _approval_rule(binding.space)
    approver = make_user("fiona")
    approver.groups.add(group)
    start = local(binding.space.location, next_weekday(2), 10)
    booking = services.book(
        actor=make_user("alice"), space=binding.space, start=start, end=start + timedelta(hours=1)
    ).reservations[0]
    assert len(remote_events(sandbox, kind, _room(kind))) == 1
    services.decline(actor=approver, reservation=booking, reason="Board day")
    assert remote_events(sandbox, kind, _room(kind)) == []


@pytest.mark.django_db
def test_an_event_made_in_an_approval_room_awaits_approval_and_its_organizer_is_told(
    ms_binding, sandbox, make_user, django_capture_on_commit_callbacks
):
    group = _approval_rule(ms_binding.space)
    approver = make_user("fiona", email="fiona@example.com")
    approver.groups.add(group)
    location = ms_binding.space.location
    location.pull_organizer_details = True  # the organizer's address is kept, to write to
    location.save()
    pull.pull_binding(ms_binding.pk)
    Remote(sandbox, "microsoft").create(
        "Walk-in",
        at(0, 9),
        at(0, 10),
        organizer={"emailAddress": {"address": "visitor@partner.example", "name": "Vic"}},
    )
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        assert pull.pull_binding(ms_binding.pk).created == 1
    row = Reservation.objects.get(space=ms_binding.space)
    assert (row.status, row.approval) == (ReservationStatus.PENDING, Approval.AWAITING)
    subjects = {m.to[0]: m.subject for m in mail.outbox}
    assert subjects["fiona@example.com"].startswith("Approval needed: Atlas")
    assert subjects["visitor@partner.example"].startswith("Awaiting approval: Atlas")

    # Approved in Reserva: the room's event is pushed (busy), the organizer is told.
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        services.approve(actor=approver, reservation=row)
    (event,) = remote_events(sandbox, "microsoft", MS_ROOM)
    assert event["showAs"] == "busy"
    assert [m.subject[:9] for m in mail.outbox if "visitor@partner.example" in m.to] == [
        "Approved:"
    ]
