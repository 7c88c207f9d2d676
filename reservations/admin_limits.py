"""Admin for limits per person (``BookingLimit``): one row per location for everyone, and one
per group that needs other limits. The help texts say how the rows combine; the list shows
each row's values side by side, so an admin sees at a glance who may book what."""

from __future__ import annotations

from django.contrib import admin

from .models import BookingLimit


@admin.register(BookingLimit)
class BookingLimitAdmin(admin.ModelAdmin):
    list_display = (
        "__str__",
        "max_active_bookings",
        "max_hours_per_week",
        "min_notice_minutes",
        "booking_window_days",
        "no_overlap_rooms",
        "no_overlap_desks",
    )
    list_filter = ("location", "group")
    list_select_related = ("location", "group")
    search_fields = ("location__name", "group__name")
    fieldsets = (
        (None, {"fields": ("location", "group")}),
        (
            "How much",
            {
                "fields": ("max_active_bookings", "max_hours_per_week"),
                "description": (
                    "Counted per person (the person a booking is for, whoever makes it) over "
                    "their bookings at this location, from every entry point: the portal, the "
                    "API, the admin and bookings made in Outlook or Google (which become "
                    "conflicted, with the limit's words, when they break one)."
                ),
            },
        ),
        (
            "How soon and how far ahead",
            {
                "fields": ("min_notice_minutes", "booking_window_days"),
                "description": (
                    "For bookings made in Reserva; an event made in Outlook or Google shortly "
                    "before it starts is accepted."
                ),
            },
        ),
        (
            "Overlapping bookings",
            {
                "fields": ("no_overlap_desks", "no_overlap_rooms"),
                "description": (
                    "Across spaces of the same kind (seats count as desks), at any location. "
                    "Without any row, desks may not overlap and rooms may."
                ),
            },
        ),
    )
