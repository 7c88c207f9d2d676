"""Admin for pull conflicts: remote events stored as ``conflicted`` reservations.

The reservation list gets a "Conflicts" filter and a "Clashes with" column naming the
slot-holding bookings each conflict collides with, and two actions to resolve them:
"Cancel the remote event" (deletes it in the room's calendar and cancels the conflicted row)
and "Keep both / retry after moving" (if the slot is free now, the conflict is confirmed).
``ConflictFilter`` and ``ReservationConflictMixin`` are composed into the one reservation
admin in ``reservation.py``, which lists the filter, the column and the two actions by name.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from reservations import admin_confirm, queries, services
from reservations.models import Reservation, ReservationStatus


class ConflictFilter(admin.SimpleListFilter):
    title = "conflicts"
    parameter_name = "conflicts"

    def lookups(self, request, model_admin):
        return [("yes", "Conflicts (remote events colliding with a booking)")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(status=ReservationStatus.CONFLICTED)
        return queryset


class ReservationConflictMixin:
    """The "Clashes with" column (``clashes_with``) and the actions ``cancel_remote_event`` and
    ``retry_conflict``, for the reservation admin (``reservation.py`` lists them)."""

    @admin.display(description="Clashes with")
    def clashes_with(self, obj: Reservation) -> str:
        if obj.status != ReservationStatus.CONFLICTED:
            return "-"
        space = obj.space
        rows = queries.clashes(
            obj.space_id, obj.start, obj.end, [obj.pk], setup=space.setup, cleanup=space.cleanup
        ).select_related("requested_for")
        links = format_html_join(
            ", ",
            '<a href="{}">#{} {}</a>',
            (
                (
                    reverse("admin:reservations_reservation_change", args=[r.pk]),
                    r.pk,
                    r.requested_for or r.organizer_name or r.title,
                )
                for r in rows
            ),
        )
        if not links:
            return format_html("{}", "nothing now (retry)")
        # The booking rules' words: "needs 15 minutes to be cleaned up..." for a buffer.
        why = services.collision_reason(space, obj.start, obj.end, [r.pk for r in rows])
        return format_html("{}<br><small>{}</small>", links, why)

    @admin.action(description="Cancel the remote event (conflicts)")
    def cancel_remote_event(
        self, request: HttpRequest, queryset: QuerySet[Reservation]
    ) -> HttpResponse | None:
        from ..sync.pull import cancel_remote_event

        conflicts = queryset.filter(status=ReservationStatus.CONFLICTED).select_related(
            "space__location"
        )
        if not admin_confirm.confirmed(request):
            return admin_confirm.confirmation_page(
                self,
                request,
                queryset,
                affected=conflicts,
                action="cancel_remote_event",
                title="Cancel the remote events",
                explanation=(
                    "The events behind these conflicts will be deleted from the room's "
                    "calendar in Outlook / Google Calendar (their organizers see them "
                    "cancelled), and the conflicts cancelled here. This cannot be undone."
                ),
                button="Yes, cancel the remote events",
                skipped="The other selected reservations are not conflicts and are left alone.",
            )
        outcomes = [(r.pk, cancel_remote_event(r.pk)) for r in conflicts]
        done = sum(1 for _, outcome in outcomes if outcome == "cancelled")
        self.message_user(request, f"{done} remote event(s) cancelled.", messages.SUCCESS)
        for pk, outcome in outcomes:
            if outcome != "cancelled":
                self.message_user(request, f"#{pk}: {outcome}", messages.WARNING)

    @admin.action(description="Keep both / retry after moving (conflicts)")
    def retry_conflict(self, request: HttpRequest, queryset: QuerySet[Reservation]) -> None:
        from ..sync.pull import retry_pulled_conflict

        rows = list(queryset.filter(status=ReservationStatus.CONFLICTED))
        confirmed = sum(retry_pulled_conflict(r.pk) for r in rows)
        level = messages.SUCCESS if confirmed == len(rows) else messages.WARNING
        self.message_user(
            request,
            f"{confirmed} of {len(rows)} conflict(s) confirmed; the others still collide "
            "(move or cancel one of the two first) or fall in a closure (see its reason).",
            level,
        )
