"""App config for calendars; later registers the sync-mode policy with reservations.rules."""

from django.apps import AppConfig


class CalendarsConfig(AppConfig):
    name = "calendars"
    verbose_name = "Calendars"
