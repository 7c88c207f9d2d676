"""Registered as an app only so that ``manage.py run_sandbox`` is found; it has no models."""

from django.apps import AppConfig


class IntegrationsConfig(AppConfig):
    name = "integrations"
    verbose_name = "Integrations"
