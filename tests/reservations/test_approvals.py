"""Approvals: bookings of a space that needs approval are pending (holding the slot) until an
approver decides; the decision is recorded, mailed and pushed; undecided ones are declined at
their deadline; the emailed links lead to a confirmation page that only decides on POST."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.core import mail
from django.core.exceptions import ValidationError
from django.utils import timezone

from reservations import approvals, services, signals
from reservations.models import (
    Approval,
    ApprovalRule,
    Reservation,
    ReservationStatus,
    SpaceKind,
)
from tests.conftest import local, midday_zone, next_weekday

pytestmark = pytest.mark.django_db

DAY = next_weekday(1)  # a Tuesday next week


@pytest.fixture
def facilities(make_user):
    group = Group.objects.create(name="Facilities")
    fiona = make_user("fiona", first_name="Fiona", last_name="Facilities")
    fiona.groups.add(group)
    return group


@pytest.fixture
def fiona(facilities):
    from django.contrib.auth import get_user_model

    return get_user_model().objects.get(username="fiona")


@pytest.fixture
def boardroom(make_location, make_space, facilities):
    # Open all day where it is about midday now: several tests book "now + 3 hours", which
    # must be bookable whenever the suite runs (with 07:00-20:00 London they failed after
    # 17:00, and open all day in London they failed after 20:00, crossing midnight).
    location = make_location("HQ", time_zone=midday_zone())
    room = make_space(location, name="Boardroom")
    ApprovalRule.objects.create(location=location, space=room, approvers=facilities)
    return room


def book(user, space, start, minutes=60, **extra) -> Reservation:
    return services.book(
        actor=user, space=space, start=start, end=start + timedelta(minutes=minutes), **extra
    ).reservations[0]


def sent_to(address: str) -> list:
    return [m for m in mail.outbox if address in m.to]


# --- rules ------------------------------------------------------------------------------------


def test_a_spaces_own_rule_wins_over_its_kinds_rule(make_location, make_space, facilities):
    location = make_location()
    desk = make_space(location, kind=SpaceKind.DESK, name="Desk 1")
    other_desk = make_space(location, kind=SpaceKind.DESK, name="Desk 2")
    room = make_space(location, kind=SpaceKind.ROOM)
    managers = Group.objects.create(name="Managers")
    ApprovalRule.objects.create(location=location, space_kind=SpaceKind.DESK, approvers=facilities)
    ApprovalRule.objects.create(location=location, space=desk, approvers=managers)

    assert approvals.rule_for(desk).approvers == managers
    assert approvals.rule_for(other_desk).approvers == facilities
    assert approvals.rule_for(room) is None
    found = approvals.rules_for([desk, other_desk, room])
    assert {k: r.approvers.name for k, r in found.items()} == {
        desk.pk: "Managers",
        other_desk.pk: "Facilities",
    }


def test_a_kinds_rule_applies_at_its_own_location_only(make_location, make_space, facilities):
    here, there = make_location(), make_location()
    ApprovalRule.objects.create(location=here, space_kind=SpaceKind.ROOM, approvers=facilities)
    assert approvals.rule_for(make_space(here)) is not None
    assert approvals.rule_for(make_space(there)) is None


def test_a_rule_names_a_space_or_a_kind_in_its_own_location(make_location, make_space, facilities):
    here, there = make_location(), make_location()
    with pytest.raises(ValidationError):
        ApprovalRule(location=here, approvers=facilities).full_clean()
    with pytest.raises(ValidationError):
        ApprovalRule(location=here, space=make_space(there), approvers=facilities).full_clean()
    with pytest.raises(ValidationError):
        ApprovalRule(
            location=here, space=make_space(here), space_kind="room", approvers=facilities
        ).full_clean()


# --- booking ----------------------------------------------------------------------------------


def test_a_booking_in_an_approval_space_is_pending_and_holds_the_slot(boardroom, make_user):
    alice = make_user("alice")
    booking = book(alice, boardroom, local(boardroom.location, DAY, 10))
    assert (booking.status, booking.approval) == (ReservationStatus.PENDING, Approval.AWAITING)
    with pytest.raises(services.Conflict):
        book(make_user(), boardroom, local(boardroom.location, DAY, 10, 30))


def test_approvers_and_managers_book_directly(boardroom, fiona, make_user):
    booking = book(fiona, boardroom, local(boardroom.location, DAY, 10))
    assert (booking.status, booking.approval) == (ReservationStatus.CONFIRMED, "")
    manager = make_user(perms=("reservations.manage_all",))
    booking = book(manager, boardroom, local(boardroom.location, DAY, 12))
    assert booking.status == ReservationStatus.CONFIRMED


def test_booking_for_someone_else_needs_approval_unless_the_booker_approves(
    boardroom, facilities, make_user
):
    assistant = make_user(perms=("reservations.book_on_behalf",))
    approver = make_user(perms=("reservations.book_on_behalf",))
    approver.groups.add(facilities)
    start = local(boardroom.location, DAY, 10)
    by_assistant = book(assistant, boardroom, start, requested_for=make_user())
    by_approver = book(approver, boardroom, start + timedelta(hours=2), requested_for=make_user())
    assert by_assistant.approval == Approval.AWAITING
    assert by_approver.status == ReservationStatus.CONFIRMED


def test_the_approvers_are_emailed_with_links_and_the_person_is_told(
    boardroom, fiona, make_user, django_capture_on_commit_callbacks
):
    alice = make_user("alice")
    with django_capture_on_commit_callbacks(execute=True):
        booking = book(alice, boardroom, local(boardroom.location, DAY, 10), title="Board")
    [request] = sent_to(fiona.email)
    assert request.subject.startswith("Approval needed: Boardroom")
    assert "/approvals/" in request.body and "Approve: " in request.body
    assert "alice booked Boardroom" in request.body
    [notice] = sent_to(alice.email)
    assert notice.subject.startswith("Awaiting approval: Boardroom")
    assert "Facilities approve bookings of this space" in notice.body
    assert "STATUS:TENTATIVE" in str(notice.attachments[0][1])
    assert booking.pk


# --- decisions --------------------------------------------------------------------------------


@pytest.fixture
def awaiting(boardroom, make_user):
    return book(make_user("alice"), boardroom, local(boardroom.location, DAY, 10))


def test_an_approver_approves_it_is_confirmed_recorded_and_mailed(
    awaiting, fiona, django_capture_on_commit_callbacks
):
    sent = []
    signals.reservation_changed.connect(receiver := lambda **kw: sent.append(kw), weak=False)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            services.approve(actor=fiona, reservation=awaiting)
    finally:
        signals.reservation_changed.disconnect(receiver)
    awaiting.refresh_from_db()
    assert (awaiting.status, awaiting.approval) == (ReservationStatus.CONFIRMED, "approved")
    assert awaiting.decided_by == fiona and awaiting.decided_at is not None
    last = awaiting.history.latest("history_date")
    assert last.history_user == fiona and last.history_change_reason == "Approved by fiona"
    [email] = sent_to("alice@example.com")
    assert email.subject.startswith("Approved: Boardroom")
    # Pushed: the change signal the calendar receivers push on (not the room's own answer).
    assert sent[0]["changes"]["approval"] == ("awaiting", "approved")


def test_an_approver_declines_with_a_reason_the_slot_is_free(
    awaiting, fiona, make_user, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        services.decline(actor=fiona, reservation=awaiting, reason="Board meeting moved here")
    awaiting.refresh_from_db()
    assert (awaiting.status, awaiting.approval) == (ReservationStatus.CANCELLED, "declined")
    assert awaiting.cancel_reason == "Declined by fiona: Board meeting moved here"
    [email] = sent_to("alice@example.com")
    assert email.subject.startswith("Declined: Boardroom")
    assert "Reason: Declined by fiona: Board meeting moved here" in email.body
    assert book(make_user(), awaiting.space, awaiting.start).holds_slot


def test_only_approvers_decide(awaiting, make_user):
    for person in (make_user(), awaiting.requested_for):
        with pytest.raises(services.NotAllowed):
            services.approve(actor=person, reservation=awaiting)
        with pytest.raises(services.NotAllowed):
            services.decline(actor=person, reservation=awaiting)
    awaiting.refresh_from_db()
    assert awaiting.approval == Approval.AWAITING


def test_deciding_twice_is_refused_clearly(awaiting, fiona):
    services.approve(actor=fiona, reservation=awaiting)
    with pytest.raises(services.AlreadyDecided, match="not awaiting approval: it is approved"):
        services.decline(actor=fiona, reservation=awaiting)


def test_a_move_keeps_it_awaiting(awaiting):
    [moved] = services.change(
        actor=awaiting.requested_for,
        reservation=awaiting,
        start=awaiting.start + timedelta(hours=2),
        end=awaiting.end + timedelta(hours=2),
    )
    assert (moved.status, moved.approval) == (ReservationStatus.PENDING, Approval.AWAITING)


def test_moving_a_booking_into_an_approval_space_asks_the_approvers(
    boardroom, fiona, make_space, make_user, django_capture_on_commit_callbacks
):
    other = make_space(boardroom.location, name="Annex")
    alice = make_user("alice")
    booking = book(alice, other, local(boardroom.location, DAY, 10))
    assert booking.status == ReservationStatus.CONFIRMED
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        [moved] = services.change(actor=alice, reservation=booking, space=boardroom)
    assert (moved.status, moved.approval) == (ReservationStatus.PENDING, Approval.AWAITING)
    assert [m.subject.split(":")[0] for m in sent_to(fiona.email)] == ["Approval needed"]
    [changed] = sent_to(alice.email)
    assert "Facilities approve bookings of this space" in changed.body

    # Back to a space that needs no approval: confirmed again, nothing left to decide.
    [back] = services.change(actor=alice, reservation=moved, space=other)
    assert (back.status, back.approval) == (ReservationStatus.CONFIRMED, "")


def test_the_room_answer_does_not_approve_a_booking(awaiting):
    assert services.confirm(actor=None, reservation=awaiting) is None
    awaiting.refresh_from_db()
    assert awaiting.status == ReservationStatus.PENDING


# --- the deadline -----------------------------------------------------------------------------


def test_the_deadline_task_declines_the_overdue_only_once(
    boardroom, make_user, django_capture_on_commit_callbacks
):
    from reservations.tasks import decline_overdue_approvals

    soon = book(make_user("alice"), boardroom, timezone.now() + timedelta(hours=3))
    # Booked two days ago: its deadline (24 hours before its start) has passed.
    Reservation.objects.filter(pk=soon.pk).update(created=timezone.now() - timedelta(days=2))
    later = book(make_user("bob"), boardroom, local(boardroom.location, DAY, 10))
    with django_capture_on_commit_callbacks(execute=True):
        assert decline_overdue_approvals() == 1
    soon.refresh_from_db(), later.refresh_from_db()
    assert (soon.status, soon.approval) == (ReservationStatus.CANCELLED, "declined")
    assert soon.cancel_reason == f"Declined: {approvals.OVERDUE_REASON}"
    assert later.approval == Approval.AWAITING
    [email] = sent_to("alice@example.com")
    assert "Not approved in time" in email.body
    assert decline_overdue_approvals() == 0  # idempotent


def test_the_deadline_follows_the_rule(boardroom):
    rule = approvals.rule_for(boardroom)
    rule.decide_hours_before = 2
    rule.save()
    booking = book(None, boardroom, timezone.now() + timedelta(hours=3), source="exchange")
    assert approvals.decline_overdue() == []
    assert approvals.decline_overdue(now=timezone.now() + timedelta(hours=1, minutes=1)) == [
        booking.pk
    ]


def test_an_approval_that_came_first_wins_over_the_deadline(boardroom, fiona, make_user):
    booking = book(make_user(), boardroom, timezone.now() + timedelta(hours=3))
    Reservation.objects.filter(pk=booking.pk).update(created=timezone.now() - timedelta(days=2))
    ids = approvals.overdue(timezone.now())
    assert ids == [booking.pk]
    services.approve(actor=fiona, reservation=booking)
    # The task read the id before the approval; declining it now changes nothing.
    with pytest.raises(services.AlreadyDecided):
        services.decline(actor=None, reservation=Reservation.objects.get(pk=ids[0]))
    assert approvals.decline_overdue() == []
    booking.refresh_from_db()
    assert booking.status == ReservationStatus.CONFIRMED


# --- signed links -----------------------------------------------------------------------------


def links_in(body: str) -> dict[str, str]:
    return dict(re.findall(r"(Approve|Decline): https?://[^/]+(/approvals/\S+/)", body))


def test_a_booking_made_after_its_deadline_may_be_decided_until_it_starts(boardroom, make_user):
    start = timezone.now() + timedelta(hours=3)  # inside the 24 hours: made "too late"
    booking = book(make_user(), boardroom, start)
    assert approvals.deadline(booking) == booking.start
    assert approvals.decline_overdue() == []
    assert approvals.decline_overdue(now=start) == [booking.pk]


def test_a_link_is_for_one_action_and_expires_at_the_deadline(awaiting):
    token = approvals.link_token(awaiting, approvals.Action.APPROVE)
    assert approvals.read_token(token, "approve").reservation_id == awaiting.pk
    with pytest.raises(approvals.BadLink):
        approvals.read_token(token, "decline")
    with pytest.raises(approvals.BadLink, match="expired"):
        approvals.read_token(token, "approve", now=approvals.deadline(awaiting))
    with pytest.raises(approvals.BadLink):
        approvals.read_token(token[:-2] + "xx", "approve")


def test_seed_demo_has_an_approval_room_with_a_booking_awaiting_the_admin():
    from django.core.management import call_command

    call_command("seed_demo", verbosity=0, history_weeks=0)
    call_command("seed_demo", verbosity=0, history_weeks=0)  # idempotent
    [rule] = ApprovalRule.objects.all()
    assert (rule.space.name, rule.location.name, rule.approvers.name) == (
        "Trent", "London HQ", "Facilities",
    )  # fmt: skip
    [booking] = Reservation.objects.filter(space=rule.space)
    assert booking.requested_for.username == "alice"
    assert (booking.status, booking.approval) == (ReservationStatus.PENDING, Approval.AWAITING)
    assert approvals.deadline(booking) > timezone.now()
    from django.contrib.auth import get_user_model

    admin = get_user_model().objects.get(username="admin")
    assert rule.approvers in admin.groups.all()
    assert [r.pk for r in approvals.awaiting_for(admin)] == [booking.pk]
