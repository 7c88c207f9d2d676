"""Conflicts of a pull: events that collide with a booking or that a booking rule refuses
are kept as ``conflicted`` reservations (holding no slot, never overwriting a booking), and
an administrator resolves them.

- ``record_conflicts``: the plan's conflicts (new events on a taken slot, remote-made
  bookings moved onto one), recorded with why in the booking rules' words;
- ``keep_conflicted``: an update made in the provider that cannot be applied;
- ``move_conflicted``: a conflicted booking moved again remotely, retried at its new times;
- ``conflict_notice``: what the people concerned are told (``calendars.alerts.notify_pull``);
- the admin's resolutions (``calendars/admin_conflicts.py``): ``cancel_remote_event`` and
  ``retry_pulled_conflict`` (not the booking service's ``services.retry_conflict``, which
  it calls).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from django.db import transaction

from reservations import services
from reservations.models import Reservation, ReservationStatus

from ... import remote
from ...models import LinkState, SyncLink
from .plan import Change

if TYPE_CHECKING:
    from .apply import Applier

log = logging.getLogger(__name__)


def record_conflicts(run: Applier) -> None:
    """The plan's conflicts: each event kept as a conflicted booking (an existing one keeps
    its person), and the people of both bookings told."""
    for change in run.plan.conflicts:
        row = run.rows.get(change.reservation_id) if change.reservation_id else None
        fields = run.booking_fields(change)
        if row is not None:  # an existing booking keeps its person
            fields["requested_for"] = None
        why = services.collision_reason(run.space, change.start, change.end, change.clashes)
        row = services.record_conflict(reservation=row, reason=why, **fields)
        run.writes.add(row, change.event)
        run.notices.append(("conflict", row.pk, change.clashes, why))
        run.result.conflicts += 1


def keep_conflicted(run: Applier, change: Change, failure: services.BookingError) -> None:
    """An update made in the provider that cannot be applied: the booking takes the
    event's times and title, holding no slot, with the booking service's words."""
    log.info(
        "Pull of binding %s: #%s not moved to %s-%s (%s): kept as conflicted",
        run.binding.pk, change.reservation_id, change.start, change.end, failure,
    )  # fmt: skip
    row = services.record_conflict(
        space=run.space, start=change.start, end=change.end, source=run.source,
        reservation=run.rows[change.reservation_id],
        title=(change.title or "")[:255], reason=failure.message,
    )  # fmt: skip
    run.rows[row.pk] = row
    run.notices.append(conflict_notice(row.pk, failure))
    run.result.conflicts += 1
    run.writes.add(row, change.event)


def move_conflicted(run: Applier, row: Reservation, change: Change) -> Reservation:
    """A conflicted booking moved again: the reason follows the new times (a closure there, a
    limit of its person, or none), and it is confirmed if its new slot is free."""
    space = run.space
    closed = (
        services.closure_problem(space, change.start, change.end)
        or services.limit_problem(space, change.start, change.end, row.requested_for)
        or ""
    )
    row = services.record_conflict(
        space=space, start=change.start, end=change.end, source=run.source,
        reservation=row, title=change.title[:255] if change.title is not None else "",
        reason=closed,
    )  # fmt: skip
    services.retry_conflict(reservation=row)
    row.refresh_from_db()
    return row


def conflict_notice(pk: int, exc: services.BookingError) -> tuple:
    """The notice of a conflicted event (``services.KEPT_AS_CONFLICT``): colliding with the
    bookings it names ("conflict"), or refused by a rule that no other booking holds (a
    closure, a limit of its person: "refused"); the detail is the booking service's words."""
    if not isinstance(exc, services.Conflict) or isinstance(exc, services.Closed):
        return ("refused", pk, (), exc.message)
    return ("conflict", pk, tuple(c.reservation_id for c in exc.clashes), exc.message)


# -- resolving conflicts (the admin actions) --------------------------------------------------


def cancel_remote_event(reservation_id: int) -> str:
    """Resolve a conflict by deleting its remote event (in the room's calendar, with the
    application's credentials) and cancelling the conflicted reservation. Returns what
    happened, for the admin's message. Provider errors are returned, not raised."""
    from integrations.base import ProviderError

    link = SyncLink.objects.select_related("provider").filter(reservation_id=reservation_id).first()
    row = Reservation.objects.filter(pk=reservation_id).first()
    if row is None or row.status != ReservationStatus.CONFLICTED:
        return "not a conflict any more"
    if link is not None and link.external_id:
        calendar = remote.link_calendar(link)
        try:
            calendar.delete(link.external_id)
        except ProviderError as exc:
            return f"the remote event could not be deleted: {exc.message}"
    with transaction.atomic():
        done = services.cancel_conflict(
            reservation=row, reason="The remote event was cancelled by an administrator."
        )
        if done is not None and link is not None:
            link.remote_version, link.state = "", LinkState.REMOVED
            link.pushed_version = max(done.version, link.pushed_version)
            link.save()
    return "cancelled" if done is not None else "not a conflict any more"


def retry_pulled_conflict(reservation_id: int) -> bool:
    """Resolve a conflict after one of the two was moved: True when the slot was free and the
    reservation is now confirmed (its link records the new version: nothing to push)."""
    row = Reservation.objects.filter(pk=reservation_id).first()
    if row is None:
        return False
    with transaction.atomic():
        if not services.retry_conflict(reservation=row):
            return False
        row.refresh_from_db()
        SyncLink.objects.filter(reservation=row).update(pushed_version=row.version)
    return True
