"""Approvals: spaces whose bookings wait for a group of approvers.

An ``ApprovalRule`` names a space, or a kind of space at a location, and the group that
approves its bookings. This module answers:

- ``rule_for`` / ``rules_for``: the rule of a space (its own rule wins over its kind's rule at
  its location), for one space or many in one query (the search and the schedule);
- ``is_approver`` / ``needs_approval``: who decides (the group's members and anyone who may
  manage every reservation), and so who books such a space without waiting;
- ``deadline``: when an undecided booking is declined automatically (``decline_overdue``,
  run by beat every minute);
- ``link_token`` / ``read_token``: the signed approve and decline links of the approvers'
  email (salted per action, expiring at the deadline). A link opens a confirmation page; only
  its POST decides, so a mail scanner following the link decides nothing;
- ``send_request`` / ``send_awaiting_notice``: the emails of a new booking that awaits approval.

The decisions themselves are writes, so they are ``services.approve`` and ``services.decline``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.core import signing
from django.db import transaction
from django.db.models import Q, QuerySet
from django.urls import reverse
from django.utils import timezone

from . import emails
from .models import (
    REMOTE_SOURCES,
    Approval,
    ApprovalRule,
    Reservation,
    ReservationStatus,
    Space,
    SyncMailbox,
)
from .rules import can_manage_all

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

log = logging.getLogger(__name__)

OVERDUE_REASON = "Not approved in time: declined automatically"


class Action:
    APPROVE = "approve"
    DECLINE = "decline"


ACTIONS = (Action.APPROVE, Action.DECLINE)


# --- rules ------------------------------------------------------------------------------------


def _matching(spaces: Sequence[Space]) -> QuerySet[ApprovalRule]:
    q = Q(space_id__in=[s.pk for s in spaces])
    for location_id in {s.location_id for s in spaces}:
        kinds = {s.kind for s in spaces if s.location_id == location_id}
        q |= Q(space__isnull=True, location_id=location_id, space_kind__in=kinds)
    return ApprovalRule.objects.filter(q).select_related("approvers")


def rules_for(spaces: Iterable[Space]) -> dict[int, ApprovalRule]:
    """Space id -> its rule, for the spaces that need approval (one query)."""
    spaces = list(spaces)
    if not spaces:
        return {}
    own: dict[int, ApprovalRule] = {}
    by_kind: dict[tuple[int, str], ApprovalRule] = {}
    for rule in _matching(spaces):
        if rule.space_id:
            own[rule.space_id] = rule
        else:
            by_kind[(rule.location_id, rule.space_kind)] = rule
    found = {}
    for space in spaces:
        rule = own.get(space.pk) or by_kind.get((space.location_id, space.kind))
        if rule is not None:
            found[space.pk] = rule
    return found


def rule_for(space: Space) -> ApprovalRule | None:
    """The rule bookings of this space obey (its own wins over its kind's), or None."""
    return rules_for([space]).get(space.pk)


def notice(rule: ApprovalRule) -> str:
    """What the booking form and the schedule say about a space that needs approval."""
    return f"Needs approval by {rule.approvers.name}"


def is_approver(user: AbstractBaseUser | None, rule: ApprovalRule | None) -> bool:
    if user is None or rule is None or not user.is_authenticated or not user.is_active:
        return False
    if can_manage_all(user):
        return True
    return user.groups.filter(pk=rule.approvers_id).exists()


def may_decide(user: AbstractBaseUser | None, reservation: Reservation) -> bool:
    """Whether ``user`` approves bookings of this reservation's space."""
    return is_approver(user, rule_for(reservation.space))


def needs_approval(space: Space, person: AbstractBaseUser | None) -> ApprovalRule | None:
    """The rule a booking of ``space`` by ``person`` must wait for, or None (no rule, or the
    person is one of its approvers: they book directly)."""
    rule = rule_for(space)
    if rule is None or is_approver(person, rule):
        return None
    return rule


def after_move(
    reservation: Reservation, space: Space, person: AbstractBaseUser | None
) -> tuple[str, str] | None:
    """The (status, approval) a booking takes when moved to another ``space``, or None to
    keep its own. Approval is for one space: a booking moved into a space that needs approval
    (from a space that did not, or from another approval space) awaits approval there; one
    that awaited approval and moves to a space that needs none is confirmed. A new time in
    the same space keeps what it has."""
    if space.pk == reservation.space_id:
        return None
    rule = needs_approval(space, person)
    if rule is not None:
        return (ReservationStatus.PENDING, Approval.AWAITING)
    if reservation.approval == Approval.AWAITING:
        # Personal mode: still waiting for the invited room's answer, which confirms it.
        waits_for_room = reservation.sync_mailbox == SyncMailbox.USER
        status = reservation.status if waits_for_room else ReservationStatus.CONFIRMED
        return (status, Approval.NOT_NEEDED)
    return None


def deadline(reservation: Reservation, rule: ApprovalRule | None = None) -> datetime:
    """When an undecided booking is declined: ``decide_hours_before`` its start, or its start
    itself for a booking made after that moment (declining it at once would leave the
    approvers no chance to say yes)."""
    rule = rule or rule_for(reservation.space)
    hours = rule.decide_hours_before if rule else 0
    due = reservation.start - timedelta(hours=hours)
    if reservation.created is not None and reservation.created > due:
        return reservation.start
    return due


def awaiting_for(user: AbstractBaseUser) -> list[Reservation]:
    """The bookings awaiting this approver's decision, soonest first. The queue is short
    (bookings wait a day or two at most), so the rules are matched in Python, in one query."""
    rows = list(
        Reservation.objects.filter(approval=Approval.AWAITING, status=ReservationStatus.PENDING)
        .select_related("space__location", "requested_for")
        .order_by("start", "pk")
    )
    if can_manage_all(user):
        return rows
    groups = set(user.groups.values_list("pk", flat=True))
    rules = rules_for({r.space_id: r.space for r in rows}.values())
    return [r for r in rows if r.space_id in rules and rules[r.space_id].approvers_id in groups]


def approvers_of(rule: ApprovalRule) -> list[AbstractBaseUser]:
    return list(rule.approvers.user_set.filter(is_active=True).exclude(email=""))


# --- the deadline -----------------------------------------------------------------------------


def overdue(now: datetime) -> list[int]:
    """Ids of the bookings awaiting approval whose deadline has passed."""
    candidates = Reservation.objects.filter(
        approval=Approval.AWAITING,
        status=ReservationStatus.PENDING,
        # No rule allows more than this; the exact deadline is per rule, checked below.
        start__lte=now + timedelta(hours=_longest_wait()),
    ).select_related("space")
    rows = list(candidates)
    rules = rules_for({r.space_id: r.space for r in rows}.values())  # one query, not one a space
    return [row.pk for row in rows if deadline(row, rules.get(row.space_id)) <= now]


def _longest_wait() -> int:
    longest = ApprovalRule.objects.order_by("-decide_hours_before").first()
    return longest.decide_hours_before if longest else 0


def decline_overdue(now: datetime | None = None) -> list[int]:
    """Decline every booking still awaiting approval after its deadline, each in its own
    transaction (``services.decline`` locks the row and re-checks it, so an approval that
    lands first wins and this one does nothing). Idempotent. Returns the ids declined."""
    from . import services

    now = now or timezone.now()
    done = []
    for pk in overdue(now):
        row = Reservation.objects.filter(pk=pk).first()
        if row is None:
            continue
        try:
            services.decline(actor=None, reservation=row, reason=OVERDUE_REASON, now=now)
        except services.BookingError as exc:  # decided or cancelled meanwhile
            log.info("Reservation %s not declined: %s", pk, exc.message)
            continue
        done.append(pk)
    return done


# --- signed links -----------------------------------------------------------------------------


@dataclass(frozen=True)
class LinkRequest:
    reservation_id: int
    action: str


class BadLink(Exception):
    """The link is tampered with, for another action, or past its deadline."""


def _salt(action: str) -> str:
    return f"reservations.approvals.{action}"


def link_token(reservation: Reservation, action: str, rule: ApprovalRule | None = None) -> str:
    expires = int(deadline(reservation, rule).timestamp())
    return signing.dumps({"r": reservation.pk, "e": expires}, salt=_salt(action), compress=True)


def read_token(token: str, action: str, now: datetime | None = None) -> LinkRequest:
    now = now or timezone.now()
    try:
        data = signing.loads(token, salt=_salt(action))
    except signing.BadSignature as exc:
        raise BadLink("This link is not valid.") from exc
    if not isinstance(data, dict) or not isinstance(data.get("r"), int):
        raise BadLink("This link is not valid.")
    if now.timestamp() >= float(data.get("e", 0)):
        raise BadLink("This link has expired: the booking was due to be decided before now.")
    return LinkRequest(data["r"], action)


def read_any_token(token: str, now: datetime | None = None) -> LinkRequest:
    """The action a link was made for (each action has its own salt)."""
    last: BadLink | None = None
    for action in ACTIONS:
        try:
            return read_token(token, action, now)
        except BadLink as exc:
            last = exc
            if "expired" in str(exc):
                raise
    raise last or BadLink("This link is not valid.")


def link_url(reservation: Reservation, action: str, rule: ApprovalRule | None = None) -> str:
    path = reverse("portal:approval_link", args=[link_token(reservation, action, rule)])
    return settings.PUBLIC_BASE_URL + path


# --- emails -----------------------------------------------------------------------------------


def _person(reservation: Reservation) -> str:
    person = reservation.requested_for
    if person is not None:
        return person.get_full_name() or person.get_username()
    return reservation.organizer_name or reservation.organizer_email or "someone outside Reserva"


def _when(reservation: Reservation) -> str:
    zone = reservation.space.location.time_zone
    return f"{reservation.local_start:%a %d %b %Y %H:%M}-{reservation.local_end:%H:%M} ({zone})"


def _load(reservation_ids: Sequence[int]) -> list[Reservation]:
    return list(
        Reservation.objects.filter(
            pk__in=reservation_ids, approval=Approval.AWAITING, status=ReservationStatus.PENDING
        )
        .select_related("space__location", "requested_for")
        .order_by("start")
    )


def send_request(reservation_ids: Sequence[int]) -> int:
    """Email the approvers of a new booking awaiting approval (one email per approver, every
    occurrence with its own approve and decline links). Returns the emails sent."""
    rows = _load(reservation_ids)
    if not rows:
        return 0
    first = rows[0]
    rule = rule_for(first.space)
    if rule is None:
        return 0
    approvers = {u.email: u for u in approvers_of(rule)}
    if not approvers:
        log.warning("Approval group %s has no member with an email address", rule.approvers_id)
        return 0
    subject = f"Approval needed: {first.space.name}, {_when(first)}"
    if len(rows) > 1:
        subject += f" (+{len(rows) - 1} more)"
    queue = emails.absolute(reverse("portal:approvals"))
    sent = 0
    for address in sorted(approvers):  # one each: approvers need not see each other's addresses
        decisions = []
        for row in rows:
            due = deadline(row, rule).astimezone(row.space.location.zone)
            decisions.append(
                f"{_when(row)}, to decide before {due:%a %d %b %H:%M}: "
                f"approve {link_url(row, Action.APPROVE, rule)} - "
                f"decline {link_url(row, Action.DECLINE, rule)}"
            )
        actions = []
        if len(rows) == 1:
            actions = [
                emails.Action("Approve", link_url(first, Action.APPROVE, rule)),
                emails.Action("Decline", link_url(first, Action.DECLINE, rule)),
            ]
            due = deadline(first, rule).astimezone(first.space.location.zone)
            decisions = [f"Please decide before {due:%a %d %b %H:%M}."]
        email = emails.Email(
            subject=subject,
            headline=f"{_person(first)} booked {first.space.name}: approve or decline",
            paragraphs=[
                f"{_person(first)} booked {first.space.name} at {first.space.location.name}; "
                f"{rule.approvers.name} approves bookings of this space.",
                *decisions,
            ],
            booking=emails.booking_card(rows, emails.reader_zone(approvers[address])),
            actions=[*actions, emails.Action("All bookings awaiting your decision", queue)],
            notes=[
                "Each link opens a page where you confirm (you need to be signed in).",
                "Undecided bookings are declined automatically at their deadline.",
            ],
        )
        sent += email.message([address]).send()
    return sent


def send_awaiting_notice(reservation_ids: Sequence[int]) -> int:
    """Tell the organizer of a booking made in Outlook/Google that it awaits approval (the
    portal's own bookings say so in their booking email)."""
    rows = _load(reservation_ids)
    if not rows or rows[0].source not in REMOTE_SOURCES:
        return 0
    first = rows[0]
    person = first.requested_for
    address = person.email if person is not None and person.email else first.organizer_email
    rule = rule_for(first.space)
    if not address or rule is None:
        return 0
    email = emails.Email(
        subject=f"Awaiting approval: {first.space.name}, {_when(first)}",
        headline=f"Your booking of {first.space.name} awaits approval",
        paragraphs=[
            f"Your booking of {first.space.name} at {first.space.location.name}, "
            f"{_when(first)}, awaits approval by {rule.approvers.name}.",
            "The room is held for you meanwhile; it shows as tentative in your calendar.",
            "You will get an email when it is approved or declined. Bookings not decided "
            f"{rule.decide_hours_before} hours before their start are declined automatically.",
        ],
        booking=emails.booking_card(rows, emails.reader_zone(person)),
    )
    return email.message([address]).send()


def queue_emails(reservation_ids: Sequence[int]) -> None:
    """After commit: queue the request and notice emails for new bookings that await
    approval (the ``reservation_created`` receiver)."""
    if not Reservation.objects.filter(pk__in=reservation_ids, approval=Approval.AWAITING).exists():
        return
    from .tasks import send_approval_emails

    transaction.on_commit(lambda: send_approval_emails.delay(list(reservation_ids)), robust=True)
