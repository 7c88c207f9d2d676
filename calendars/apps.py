"""App config for calendars: registers its system checks (and, later, the sync policies)."""

from django.apps import AppConfig


class CalendarsConfig(AppConfig):
    name = "calendars"
    verbose_name = "Calendars"

    def ready(self) -> None:
        from . import checks  # noqa: F401 - registers the checks
