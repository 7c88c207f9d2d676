"""App config for calendars: registers its system checks and the sync-mode rules."""

from django.apps import AppConfig


class CalendarsConfig(AppConfig):
    name = "calendars"
    verbose_name = "Calendars"

    def ready(self) -> None:
        from reservations import rules

        from . import (
            checks,  # noqa: F401 - registers the checks
            policies,
        )

        rules.register(policies.sync_mode_policy)
        rules.register_placement(policies.placement)
