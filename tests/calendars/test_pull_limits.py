"""A remote event (Outlook / Google Calendar, through the sandbox) whose organizer is a Reserva
user over one of their limits is stored as ``conflicted`` with the limit's words, and the
organizer is told why; the same for a remote move that breaks a limit. Nothing is booked
over the limit. The minimum notice does not apply to events made in the calendar."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.core import mail
from django.utils import timezone

from calendars.sync import pull
from reservations import services
from reservations.models import BookingLimit, Reservation, ReservationStatus
from tests.calendars.conftest import EWS_ROOM, GOOGLE_ROOM, binding_for, control
from tests.support.pull import EwsRemote, Remote, at

pytestmark = pytest.mark.django_db
EWS_READY = True


@pytest.fixture
def binding(kind, request):
    return binding_for(kind, request)


G_ADA = "alice@northwind.test"  # a user of the sandbox's Google Workspace


class Organizer(Remote):
    """Events organized by a person: in Outlook, the room's event names them as organizer; in
    Google, the person makes the event in their own calendar and invites the room, whose copy
    (same id) names them, as Google does."""

    def __init__(self, sandbox, kind: str, email: str) -> None:
        super().__init__(sandbox, kind)
        self.email = email

    @property
    def _path(self) -> str:
        if self.kind == "microsoft":
            return super()._path
        return f"google/calendars/{self.email}/events"

    def create(self, subject, start, end, **extra) -> str:
        if self.kind == "microsoft":
            extra["organizer"] = {"emailAddress": {"address": self.email, "name": "Ada"}}
        else:
            extra["attendees"] = [{"email": GOOGLE_ROOM}]
        return super().create(subject, start, end, **extra)


EWS_ADA = "bob@contoso.test"  # a mailbox of the EWS sandbox's organisation


class EwsOrganizer(EwsRemote):
    """On Exchange Server the person makes the meeting in their own mailbox and invites the
    room, which accepts (a copy of its own in the room's calendar that names them)."""

    def __init__(self, sandbox, kind: str, email: str) -> None:
        super().__init__(sandbox, kind)
        self.email = email

    @property
    def _path(self) -> str:
        return f"ews/mailboxes/{self.email}/items"

    def create(self, subject, start, end, **extra) -> str:
        made = super().create(subject, start, end, resources=[EWS_ROOM], **extra)
        self.sandbox.sandbox.wait_idle()
        return made

    def move(self, event_id: str, start, end) -> None:
        super().move(event_id, start, end)
        self.sandbox.sandbox.wait_idle()


@pytest.fixture
def remote(sandbox, kind):
    if kind == "ews":  # the room keeps the meeting's subject (Set-CalendarProcessing)
        settings = {"delete_subject": False, "add_organizer_to_subject": False}
        control(sandbox, "PATCH", f"ews/rooms/{EWS_ROOM}", json=settings)
        return EwsOrganizer(sandbox, kind, EWS_ADA)
    return Organizer(sandbox, kind, "ada@example.com" if kind == "microsoft" else G_ADA)


@pytest.fixture
def ada(binding, remote, make_user, make_space):
    """A contractor who may hold one active booking at the room's location, and holds one."""
    location = binding.space.location
    location.pull_organizer_details = True
    location.save()
    contractors = Group.objects.create(name="Contractors")
    BookingLimit.objects.create(
        location=location, group=contractors, max_active_bookings=1, min_notice_minutes=600
    )
    ada = make_user("ada", email=remote.email)
    ada.groups.add(contractors)
    other = make_space(location, name="Annex")
    services.book(actor=ada, space=other, start=at(2, 9), end=at(2, 10))
    return ada


def test_a_remote_event_over_its_organizers_limit_becomes_conflicted_with_the_reason(
    binding,
    remote,
    ada,
    django_capture_on_commit_callbacks,
):
    pull.pull_binding(binding.pk)
    remote.create("Walk-in", at(0, 9), at(0, 10))
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        result = pull.pull_binding(binding.pk)
    assert (result.created, result.conflicts) == (0, 1)
    row = Reservation.objects.get(space=binding.space)
    assert row.requested_for == ada and row.status == ReservationStatus.CONFLICTED
    assert (
        row.cancel_reason.startswith("Contractors may hold at most 1 active booking at ")
        and "ada already holds 1: Annex" in row.cancel_reason
    )
    assert row.sync_link.external_id  # linked: the next pull does not try again
    assert pull.pull_binding(binding.pk).conflicts == 0
    (email,) = mail.outbox
    assert email.to == [ada.email]
    assert "cannot be accepted" in email.body and "Contractors may hold at most 1" in email.body


def test_a_remote_event_is_not_held_to_the_minimum_notice(binding, remote, ada):
    # Ten hours' notice for Reserva bookings, but an event put in the calendar is accepted
    # once the organizer has room under the count.
    Reservation.objects.filter(requested_for=ada).update(status=ReservationStatus.CANCELLED)
    pull.pull_binding(binding.pk)
    soon = (timezone.now() + timedelta(minutes=30)).replace(second=0, microsecond=0)
    remote.create("Stand-up", soon, soon + timedelta(minutes=15))
    assert pull.pull_binding(binding.pk).created == 1
    assert Reservation.objects.get(space=binding.space).status == ReservationStatus.CONFIRMED


def test_a_remote_move_over_a_limit_becomes_conflicted_and_back_when_it_fits(
    binding,
    remote,
    make_user,
):
    location = binding.space.location
    BookingLimit.objects.create(location=location, max_hours_per_week=2)
    ada = make_user("ada", email=remote.email)
    services.book(actor=ada, space=binding.space, start=at(1, 9), end=at(1, 10))
    pull.pull_binding(binding.pk)
    event_id = remote.create("Review", at(0, 9), at(0, 10))
    assert pull.pull_binding(binding.pk).created == 1  # 2 hours this week: the limit

    remote.move(event_id, at(0, 9), at(0, 11))  # 3 hours
    result = pull.pull_binding(binding.pk)
    assert (result.updated, result.conflicts) == (0, 1)
    row = Reservation.objects.get(space=binding.space, title="Review")
    assert row.status == ReservationStatus.CONFLICTED
    assert (row.start, row.end) == (at(0, 9), at(0, 11))
    assert "at most 2 hours a week" in row.cancel_reason

    remote.move(event_id, at(0, 12), at(0, 13))  # back to one hour: it fits again
    pull.pull_binding(binding.pk)
    row.refresh_from_db()
    assert row.status == ReservationStatus.CONFIRMED and row.cancel_reason == ""


def test_the_daily_reconciliation_imports_an_event_over_a_limit_as_a_conflict(
    binding, remote, ada, django_capture_on_commit_callbacks
):
    from tests.support.reconcile import run, settle

    pull.pull_binding(binding.pk)
    remote.create("Missed by the pull", at(0, 9), at(0, 10))
    settle()
    result = run(binding.pk, django_capture_on_commit_callbacks)
    assert [n["done"].split(":")[0] for n in result.notes] == ["imported as a conflict"]
    row = Reservation.objects.get(space=binding.space)
    assert row.requested_for == ada and row.status == ReservationStatus.CONFLICTED
    assert "Contractors may hold at most 1 active booking" in row.cancel_reason
