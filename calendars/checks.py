"""System checks: production needs real encryption keys for stored secrets."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Error, Tags, register


@register(Tags.security, deploy=True)
def encryption_keys_configured(app_configs, **kwargs) -> list[Error]:
    if settings.FIELD_ENCRYPTION_KEYS:
        return []
    return [
        Error(
            "FIELD_ENCRYPTION_KEYS is empty, so provider secrets and tokens cannot be stored.",
            hint='Generate one with: python -c "from cryptography.fernet import Fernet; '
            'print(Fernet.generate_key().decode())"',
            id="reserva.E001",
        )
    ]
