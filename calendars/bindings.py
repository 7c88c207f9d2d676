"""What happens around a binding's life: the bookings it pulled when it stops reading a
calendar, and the bulk export when it starts reading one.

- A binding removed (deleted, or its authorization removed) or retargeted (another provider,
  room mailbox or calendar) no longer reads the calendar its pulled bookings came from. Left
  alone they would be phantoms: confirmed, holding the room, and never updated again. The
  admin chooses (:class:`PulledBookings`): keep them as local bookings, or cancel them with a
  notice to their people. Either way their remote link is dropped first, so no push ever
  touches the old calendar's events (they belong to the people who made them), and the rows
  go through ``reservations.services.release_from_calendar``.
- A binding that starts reading a calendar (new, switched back on, retargeted) queues one bulk
  export of the space's future bookings (``calendars.tasks.start_export``), unless one is
  already queued or running for it.
"""

from __future__ import annotations

import enum
import logging
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import QuerySet

from reservations import services
from reservations.models import REMOTE_SOURCES, Reservation

from .models import BindingStatus, SpaceCalendar, SyncLink

log = logging.getLogger(__name__)

# What identifies the calendar a binding reads: a change of any of these is a retarget.
TARGET = ("provider_id", "resource_email", "calendar_id")


class PulledBookings(enum.StrEnum):
    """What to do with the bookings pulled from a calendar the binding stops reading."""

    KEEP = "keep"
    CANCEL = "cancel"


CHOICES = [
    (PulledBookings.KEEP.value, "Keep them as local bookings (they stay in Reserva, unlinked)"),
    (PulledBookings.CANCEL.value, "Cancel them and tell their people"),
]
CHOICE_VALUES = frozenset(value for value, _ in CHOICES)


def pulled(binding: SpaceCalendar) -> QuerySet[Reservation]:
    """The bookings this binding imported from its calendar (made in Outlook / Google)."""
    return Reservation.objects.filter(sync_link__binding=binding, source__in=REMOTE_SOURCES)


Row = dict[str, Any] | SpaceCalendar


def retargeted(before: Row | None, after: Row) -> bool:
    """Whether ``after`` reads another calendar than ``before`` (bindings, or their values)."""
    if before is None:
        return False

    def value(row: Row, name: str) -> Any:
        found = row.get(name) if isinstance(row, dict) else getattr(row, name)
        return (found or "").lower() if name == "resource_email" else (found or "")

    return any(value(before, name) != value(after, name) for name in TARGET)


def release_pulled(
    binding: SpaceCalendar, choice: str, actor: AbstractBaseUser | None
) -> tuple[int, int]:
    """Unlink the bookings ``binding`` pulled, then keep or cancel them (``choice``).
    Returns (kept, cancelled). Call it before the binding is deleted or saved retargeted."""
    choice = PulledBookings(choice)
    with transaction.atomic():
        ids = list(pulled(binding).values_list("pk", flat=True))
        if not ids:
            return 0, 0
        # The remote events stay where they are; Reserva just stops following them.
        SyncLink.objects.filter(reservation_id__in=ids).delete()
        source = "a room calendar"
        where = binding.calendar_name or binding.resource_email or source
        reason = (
            f"{binding.space.name} no longer syncs with {where}; this booking was made there"
            if choice is PulledBookings.CANCEL
            else f"kept as a local booking: {binding.space.name} no longer syncs with {where}"
        )
        kept, cancelled = services.release_from_calendar(
            actor=actor,
            space=binding.space,
            reservation_ids=ids,
            cancel=choice is PulledBookings.CANCEL,
            reason=reason,
        )
    log.info(
        "binding %s stopped reading %s: %s pulled booking(s) kept, %s cancelled",
        binding.pk,
        binding.resource_email,
        len(kept),
        len(cancelled),
    )
    return len(kept), len(cancelled)


def queue_export(binding_id: int, requested_by: AbstractBaseUser | None = None) -> int | None:
    """Queue the bulk export of a binding that just started reading a calendar; returns the
    job id, or None when there is nothing to send or an export is already on its way."""
    from . import tasks
    from .sync import export

    binding = SpaceCalendar.objects.select_related("space").filter(pk=binding_id).first()
    if binding is None or not binding.enabled or binding.status == BindingStatus.PAUSED:
        return None
    if not binding.provider.is_active or not export.has_unsynced(binding):
        return None
    try:
        job = tasks.start_export(binding, requested_by)
    except export.ExportRefused as refused:  # already queued or running: that one sends them
        log.info("binding %s: no second export (%s)", binding_id, refused)
        return None
    return job.pk
