"""The reservation admin, registered here and nowhere else.

The booking side (form, booking-service writes, history, "Cancel", "Approve", "Decline", the
day filter) is ``reservations.admin.ReservationAdmin``; the calendar side is two plain mixins:
``sync.ReservationSyncMixin`` (the "Sync" column, the "Calendar sync" field) and
``conflicts.ReservationConflictMixin`` (the "Clashes with" column and the two conflict
actions). The class below names both mixins and every column, filter, field and action they
add, so the whole reservation admin can be read in this one place.
"""

from __future__ import annotations

from django.contrib import admin

from reservations.admin import ReservationAdmin
from reservations.models import Reservation

from .conflicts import ConflictFilter, ReservationConflictMixin
from .sync import ReservationSyncMixin


@admin.register(Reservation)
class SyncedReservationAdmin(ReservationConflictMixin, ReservationSyncMixin, ReservationAdmin):
    list_display = (*ReservationAdmin.list_display, "sync_state", "clashes_with")
    list_filter = (ConflictFilter, *ReservationAdmin.list_filter)
    list_select_related = (*ReservationAdmin.list_select_related, "sync_link")
    readonly_fields = (*ReservationAdmin.readonly_fields, "calendar_sync")
    actions = [*ReservationAdmin.actions, "cancel_remote_event", "retry_conflict"]
