"""App config for calendars: registers its system checks, the sync-mode rules and the
push receivers, and takes allauth's plaintext-secret pages out of the admin site."""

from django.apps import AppConfig


class CalendarsConfig(AppConfig):
    name = "calendars"
    verbose_name = "Calendars"

    def ready(self) -> None:
        from django.conf import settings
        from django.db.models.signals import post_save

        from reservations import rules

        from . import (
            checks,  # noqa: F401 - registers the checks
            policies,
            receivers,
            signin,
            tokens,
        )

        # A deactivated user keeps no calendar tokens (reservations never imports calendars).
        post_save.connect(
            tokens.user_saved, sender=settings.AUTH_USER_MODEL, dispatch_uid="calendars-user-tokens"
        )
        rules.register(policies.sync_mode_policy)
        rules.register_placement(policies.placement)
        rules.register_preload(policies.preload_bindings)
        receivers.connect()  # reservation signals -> push tasks
        # Sign-in apps come from aliases or the environment. After the admin's autodiscovery,
        # which django.contrib.admin (listed first in INSTALLED_APPS) ran in its own ready().
        signin.hide_plaintext_secret_admin()
