"""Admin for approvals: the rules (which spaces need approval, by whom, decided how long
before the start) and the reservation list's "Approve selected" / "Decline selected" actions,
which go through ``services.approve`` / ``services.decline`` one booking at a time, with a
message per result (a booking that is not awaiting approval is refused, with its reason)."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from . import services
from .models import ApprovalRule, Reservation, Source


@admin.register(ApprovalRule)
class ApprovalRuleAdmin(admin.ModelAdmin):
    list_display = (
        "__str__",
        "location",
        "space",
        "space_kind",
        "approvers",
        "decide_hours_before",
    )
    list_filter = ("location", "space_kind", "approvers")
    list_select_related = ("location", "space", "approvers")
    autocomplete_fields = ("space",)
    fieldsets = (
        (
            None,
            {
                "fields": ("location", "space", "space_kind"),
                "description": (
                    "Bookings of this space (or of every space of this kind at the location) "
                    "are pending until an approver decides; they hold the slot meanwhile and "
                    "show as tentative in Outlook and Google. A space's own rule wins over "
                    "its kind's."
                ),
            },
        ),
        ("Who decides, and by when", {"fields": ("approvers", "decide_hours_before")}),
    )


def _decide(modeladmin, request: HttpRequest, queryset: QuerySet[Reservation], approve: bool):
    done, refused = 0, []
    for reservation in queryset.select_related("space__location").order_by("start"):
        try:
            if approve:
                services.approve(actor=request.user, reservation=reservation, source=Source.ADMIN)
            else:
                services.decline(
                    actor=request.user,
                    reservation=reservation,
                    reason="Declined in the admin.",
                    source=Source.ADMIN,
                )
            done += 1
        except services.BookingError as exc:
            refused.append(f"{reservation}: {exc.message}")
    verb = "Approved" if approve else "Declined"
    if done:
        modeladmin.message_user(request, f"{verb} {done} reservation(s).", messages.SUCCESS)
    for line in refused:
        modeladmin.message_user(request, line, messages.WARNING)


@admin.action(description="Approve selected reservations")
def approve_selected(modeladmin, request: HttpRequest, queryset: QuerySet[Reservation]) -> None:
    _decide(modeladmin, request, queryset, approve=True)


@admin.action(description="Decline selected reservations")
def decline_selected(modeladmin, request: HttpRequest, queryset: QuerySet[Reservation]) -> None:
    _decide(modeladmin, request, queryset, approve=False)
