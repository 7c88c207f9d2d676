"""Changing, cancelling, confirming, approving and declining bookings that exist."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from .. import approvals, limits, rules, signals
from ..models import (
    REMOTE_SOURCES,
    SLOT_HOLDING_STATUSES,
    Approval,
    Reservation,
    ReservationStatus,
    Source,
    Space,
    SyncMailbox,
)
from ..recurrence import localize
from .errors import (
    AlreadyDecided,
    BookingError,
    Clash,
    Conflict,
    NotAllowed,
    Scope,
    StaleReservation,
    TooSoon,
    Unavailable,
)
from .validation import (
    _check_limits,
    _check_rules,
    _check_space,
    _check_times,
    _clashes_for,
    _closure_checker,
    _conflict,
    slot_problem,
)
from .writes import (
    _lock_current,
    _lock_space,
    _lock_space_of,
    _mark_cancelled,
    _save,
    _send_after_commit,
)

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser


def _targets(reservation: Reservation, scope: Scope) -> list[Reservation]:
    """The occurrences an operation applies to, locked for update, in start order."""
    if scope is Scope.FOLLOWING and reservation.series_id:
        # The anchor is always included, so a cancelled one is reported as such.
        qs = Reservation.objects.filter(
            Q(pk=reservation.pk)
            | Q(
                series_id=reservation.series_id,
                start__gte=reservation.start,
                status__in=SLOT_HOLDING_STATUSES,
            )
        )
    else:
        qs = Reservation.objects.filter(pk=reservation.pk)
    # Only the reservations: the space is locked first (_lock_space_of), never through a join.
    return list(
        qs.select_for_update(of=("self",)).select_related("space__location").order_by("start")
    )


def _check_current(reservation: Reservation, current: Reservation | None, expected_version):
    if current is None:
        raise BookingError("This reservation no longer exists.")
    if expected_version is not None and current.version != expected_version:
        raise StaleReservation(
            "This reservation was changed by someone else since you opened it. "
            "Reload to see the latest version."
        )
    if current.status not in SLOT_HOLDING_STATUSES:
        raise BookingError(f"This reservation is {current.get_status_display().lower()}.")


DETAIL_FIELDS = ("title", "public_nickname", "description", "attendees", "kind")
TRACKED_DETAILS = (*DETAIL_FIELDS, "requested_for_id")  # what a change signal reports


def _check_handover(
    actor: AbstractBaseUser | None,
    current: Reservation,
    person: AbstractBaseUser,
    source: str,
) -> None:
    """May ``actor`` hand ``current`` to ``person``? Handing a booking over is booking for
    that person, so the create rules decide (the on-behalf permission; in personal sync mode,
    only for yourself). A booking kept in its owner's own calendar (sync mailbox ``user``)
    cannot move to someone else's calendar: that is a cancellation and a new booking."""
    if not person.is_active:
        raise BookingError(f"{person} is deactivated.", field="requested_for")
    if current.sync_mailbox == SyncMailbox.USER:
        raise BookingError(
            "This booking lives in its owner's own calendar; to book it for someone else, "
            "cancel it and book again for them.",
            field="requested_for",
        )
    if actor is None:
        return
    handed = Reservation(
        **{f.attname: getattr(current, f.attname) for f in Reservation._meta.concrete_fields}
    )
    handed.space, handed.requested_for, handed.booked_by = current.space, person, actor
    decision = rules.check(rules.Action.CREATE, actor, handed, source)
    if not decision:
        raise NotAllowed(decision.reason, field="requested_for")


def change(
    *,
    actor: AbstractBaseUser | None,
    reservation: Reservation,
    start: datetime | None = None,
    end: datetime | None = None,
    space: Space | None = None,
    scope: Scope = Scope.THIS,
    expected_version: int | None = None,
    source: str = Source.PORTAL,
    now: datetime | None = None,
    requested_for: AbstractBaseUser | None = None,
    **details,
) -> list[Reservation]:
    """Reschedule (new times and/or space) and/or edit details of one occurrence or of this
    and the following occurrences of its series. All or nothing.

    ``requested_for`` hands the booking to another person (see ``_check_handover``): the
    history records it and the push updates the remote event's subject and attendees.

    ``actor`` None with a remote ``source``: the provider's own change of a booking made in
    its calendar (sync); only "no overlap" is checked. A person as ``actor`` with a remote
    ``source``: their change of a Reserva booking made in their calendar, which the pull
    applies as them: checked like any change of theirs (policies, opening hours, horizon,
    maximum length, past), and recorded with the provider as its source."""
    now = now or timezone.now()
    unknown = set(details) - set(DETAIL_FIELDS)
    if unknown:
        raise TypeError(f"Unknown fields: {', '.join(sorted(unknown))}")
    check_policy = actor is not None or source not in REMOTE_SOURCES
    try:
        with transaction.atomic():
            _lock_space_of(reservation)
            targets = _targets(reservation, scope)
            current = next((t for t in targets if t.pk == reservation.pk), None)
            _check_current(reservation, current, expected_version)
            _check_rules(rules.Action.CHANGE, actor, current, source)
            if check_policy and current.end <= now:
                raise BookingError("This booking is over and can no longer be changed.")
            new_space = space or current.space
            if new_space.pk != current.space_id:
                _lock_space(new_space)
            _lock_space(current.space)
            kind = details.get("kind", current.kind)
            attendees = details.get("attendees", current.attendees)
            _check_space(new_space, kind, attendees)
            new_start, new_end = start or current.start, end or current.end
            # Invalid input is a field error (400), not one more "unavailable date" (409).
            _check_times(new_start, new_end)
            if requested_for is not None and requested_for.pk != current.requested_for_id:
                _check_handover(actor, current, requested_for, source)
                details["requested_for"] = requested_for

            plans = _plan_moves(targets, current, new_start, new_end)
            person = details.get("requested_for") or current.requested_for
            person_limits = limits.for_person(person, new_space.location)
            _check_moves(
                targets, plans, new_space, now=now, check_policy=check_policy,
                person_limits=person_limits,
            )  # fmt: skip
            _check_change_limits(targets, plans, new_space, person, person_limits, details, now)

            tracked = ("start", "end", "space_id", "status", "approval", *TRACKED_DETAILS)
            old = {f: getattr(current, f) for f in tracked}
            _apply_change(targets, plans, new_space, details, actor, current, source)
    except IntegrityError as exc:
        # PostgreSQL's exclusion constraint caught an overlap the check could not see.
        raise Conflict("That slot was taken a moment ago; please choose another time.") from exc
    changes = {
        name: (value, getattr(current, name))
        for name, value in old.items()
        if getattr(current, name) != value
    }
    _send_after_commit(signals.reservation_changed, targets, actor, source, changes=changes)
    return targets


def _check_change_limits(
    targets: list[Reservation],
    plans: list[tuple[datetime, datetime]],
    new_space: Space,
    person: AbstractBaseUser | None,
    person_limits: limits.PersonLimits,
    details: dict,
    now: datetime,
) -> None:
    """The person's limits, when the change moves a booking or hands it to someone else (a
    handed booking counts in full for its new person; a moved one replaces its old slots)."""
    moved = any(
        (s, e, new_space.pk) != (t.start, t.end, t.space_id)
        for t, (s, e) in zip(targets, plans, strict=True)
    )
    if moved or "requested_for" in details:
        handed = "requested_for" in details
        _check_limits(
            person_limits, person, new_space, plans, now=now,
            replacing=() if handed else targets,
        )  # fmt: skip


def _apply_change(
    targets: list[Reservation],
    plans: list[tuple[datetime, datetime]],
    new_space: Space,
    details: dict,
    actor: AbstractBaseUser | None,
    current: Reservation,
    source: str,
) -> None:
    """Write the checked change to every target: its planned times, the space (and the
    approval state a move into or out of an approval space settles), the details."""
    mover = actor or current.requested_for  # an approver moves without approval
    for target, (planned_start, planned_end) in zip(targets, plans, strict=True):
        settled = approvals.after_move(target, new_space, mover)
        if settled is not None:  # into or out of a space that needs approval
            target.status, target.approval = settled
        target.start, target.end, target.space = planned_start, planned_end, new_space
        for name, value in details.items():
            setattr(target, name, value)
        target.version += 1
        _save(target, actor, source)


def _check_moves(
    targets: list[Reservation],
    plans: list[tuple[datetime | None, datetime | None]],
    space: Space,
    *,
    now: datetime,
    check_policy: bool,
    person_limits: limits.PersonLimits | None = None,
) -> None:
    """Raise Conflict listing every target that cannot move to its planned slot (TooSoon for
    one booking moved inside its person's notice or beyond their window)."""
    use_horizon = person_limits is None or person_limits.window is None
    target_ids = [t.pk for t in targets]
    clashes: list[Clash] = []
    unavailable: list[Unavailable] = []
    closed_for = _closure_checker(space, [p for p in plans if p[0] and p[1]])
    for target, (new_start, new_end) in zip(targets, plans, strict=True):
        day = (new_start or target.start).astimezone(space.location.zone).date()
        if new_start is None or new_end is None:
            unavailable.append(Unavailable(None, day, "That time does not exist (clocks change)."))
            continue
        moved = (new_start, new_end, space.pk) != (target.start, target.end, target.space_id)
        if not moved:
            # It holds this slot already, with the buffers it was booked with; checking it
            # against buffers widened since would refuse a mere edit of its title.
            continue
        # A booking under way that keeps its start and room (ended early, extended) is judged
        # from its start: that the start has passed is no reason to refuse a new end.
        ongoing = (new_start, space.pk) == (target.start, target.space_id) and new_start <= now
        problem = slot_problem(
            space, new_start, new_end, now=new_start if ongoing else now,
            check_policy=check_policy, horizon=use_horizon,
        )  # fmt: skip
        if problem:
            unavailable.append(Unavailable(new_start, day, problem))
            continue
        early = (
            not ongoing
            and check_policy
            and person_limits
            and limits.too_soon(person_limits, new_start, now=now)
        )
        if early and len(targets) == 1:
            raise TooSoon(early, field="start")
        if early:
            unavailable.append(Unavailable(new_start, day, early))
            continue
        closed = moved and closed_for(new_start, new_end)
        if closed:
            unavailable.append(Unavailable(new_start, day, closed, closed=True))
            continue
        found = _clashes_for(space, new_start, new_end, exclude_ids=target_ids)
        if found:
            clashes.extend(found)
            unavailable.append(Unavailable(new_start, day, found[0].describe()))
    if unavailable:
        raise _conflict(clashes, unavailable, [], series=len(targets) > 1)


def _plan_moves(
    targets: list[Reservation], anchor: Reservation, start: datetime, end: datetime
) -> list[tuple[datetime | None, datetime | None]]:
    """New (start, end) per target: the anchor gets exactly (start, end); later occurrences
    keep their own date shifted by the same number of days, at the new wall-clock times."""
    zone = anchor.space.location.zone
    anchor_local = anchor.start.astimezone(zone)
    new_local_start, new_local_end = start.astimezone(zone), end.astimezone(zone)
    day_shift = new_local_start.date() - anchor_local.date()
    end_days = new_local_end.date() - new_local_start.date()
    plans: list[tuple[datetime | None, datetime | None]] = []
    for target in targets:
        if target.pk == anchor.pk:
            plans.append((start, end))
            continue
        day = target.start.astimezone(zone).date() + day_shift
        new_start = localize(day, new_local_start.time(), zone)
        new_end = localize(day + end_days, new_local_end.time(), zone)
        plans.append((new_start, new_end) if new_start and new_end else (None, None))
    return plans


def cancel(
    *,
    actor: AbstractBaseUser | None,
    reservation: Reservation,
    scope: Scope = Scope.THIS,
    reason: str = "",
    source: str = Source.PORTAL,
    expected_version: int | None = None,
    now: datetime | None = None,
) -> list[Reservation]:
    """Cancel one occurrence, or this and the following ones. The rows stay, as cancelled."""
    now = now or timezone.now()
    with transaction.atomic():
        _lock_space_of(reservation)
        targets = _targets(reservation, scope)
        current = next((t for t in targets if t.pk == reservation.pk), None)
        _check_current(reservation, current, expected_version)
        _check_rules(rules.Action.CANCEL, actor, current, source)
        if source not in REMOTE_SOURCES and current.end <= now:
            raise BookingError("This booking is over and can no longer be cancelled.")
        _mark_cancelled(targets, actor, source, reason)
    _send_after_commit(signals.reservation_cancelled, targets, actor, source)
    return targets


def confirm(
    *, actor: AbstractBaseUser | None, reservation: Reservation, source: str = Source.PORTAL
) -> Reservation | None:
    """Confirm a pending reservation (the invited room accepted). Returns the reservation, or
    None when it is no longer pending (cancelled or confirmed meanwhile), or still awaits an
    approver's decision (the room's yes does not approve it): nothing to do."""
    with transaction.atomic():
        current = Reservation.objects.select_for_update().filter(pk=reservation.pk).first()
        if current is None or current.status != ReservationStatus.PENDING:
            return None
        if current.approval == Approval.AWAITING:
            return None
        current.status = ReservationStatus.CONFIRMED
        current.version += 1
        _save(current, actor, source)
    _send_after_commit(
        signals.reservation_changed,
        [current],
        actor,
        source,
        changes={"status": (ReservationStatus.PENDING, ReservationStatus.CONFIRMED)},
    )
    return current


def _decision_target(actor, reservation: Reservation) -> Reservation:
    """The reservation locked for a decision, after checking that ``actor`` may decide (None:
    the deadline task) and that it still awaits one."""
    current = _lock_current(reservation)
    if current is None:
        raise BookingError("This reservation no longer exists.")
    if actor is not None and not approvals.may_decide(actor, current):
        raise NotAllowed("Only the approvers of this space may approve or decline its bookings.")
    if current.status != ReservationStatus.PENDING or current.approval != Approval.AWAITING:
        state = (
            current.get_approval_display().lower()
            if current.approval in (Approval.APPROVED, Approval.DECLINED)
            else current.get_status_display().lower()
        )
        raise AlreadyDecided(f"This booking is not awaiting approval: it is {state}.")
    return current


def approve(
    *,
    actor: AbstractBaseUser,
    reservation: Reservation,
    source: str = Source.PORTAL,
    now: datetime | None = None,
) -> Reservation:
    """An approver approves a booking awaiting approval: it becomes confirmed, and the push
    turns its tentative remote event busy. Raises NotAllowed for anyone else, AlreadyDecided
    when it is not awaiting approval (decided, cancelled) or is over."""
    now = now or timezone.now()
    with transaction.atomic():
        current = _decision_target(actor, reservation)
        if current.end <= now:
            raise AlreadyDecided("This booking is over; it can no longer be approved.")
        current.status = ReservationStatus.CONFIRMED
        current.approval = Approval.APPROVED
        current.decided_by, current.decided_at = actor, now
        current.version += 1
        _save(current, actor, source, f"Approved by {actor}")
    _send_after_commit(
        signals.reservation_changed,
        [current],
        actor,
        source,
        changes={
            "status": (ReservationStatus.PENDING, current.status),
            "approval": (Approval.AWAITING, Approval.APPROVED),
        },
    )
    return current


def decline(
    *,
    actor: AbstractBaseUser | None,
    reservation: Reservation,
    reason: str = "",
    source: str = Source.PORTAL,
    now: datetime | None = None,
) -> Reservation:
    """An approver declines a booking awaiting approval (``actor`` None: its deadline passed,
    ``approvals.decline_overdue``): it is cancelled with the reason and frees the slot."""
    now = now or timezone.now()
    with transaction.atomic():
        current = _decision_target(actor, reservation)
        who = f"Declined by {actor}" if actor is not None else "Declined"
        full = f"{who}: {reason}" if reason else who
        current.status = ReservationStatus.CANCELLED
        current.approval = Approval.DECLINED
        current.cancel_reason = full[:255]
        current.decided_by, current.decided_at = actor, now
        current.version += 1
        _save(current, actor, source, full)
    _send_after_commit(
        signals.reservation_cancelled,
        [current],
        actor,
        source,
        changes={"approval": (Approval.AWAITING, Approval.DECLINED)},
    )
    return current
