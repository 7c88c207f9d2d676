"""Encrypted model fields for secrets at rest (client secrets, private keys, tokens).

Values are encrypted with Fernet (AES-128-CBC + HMAC-SHA256, from ``cryptography``) under the
keys in ``FIELD_ENCRYPTION_KEYS``, newest first. ``MultiFernet`` encrypts with the first key and
decrypts with any of them, so a key can be rotated: put the new key first, run
``manage.py rotate_encryption_keys`` (re-encrypts every value with the newest key), then drop
the old key. The database never holds plaintext; a missing or wrong key is an error that says
so without echoing the value.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models

PREFIX = "fernet:"  # marks an encrypted value in the column, so plaintext is never mistaken


class DecryptionError(Exception):
    """A stored secret could not be decrypted (key removed or value corrupted)."""


@lru_cache(maxsize=4)
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    if not keys:
        raise ImproperlyConfigured(
            "FIELD_ENCRYPTION_KEYS is empty: set at least one Fernet key to store secrets "
            "(see README, Settings)."
        )
    try:
        return MultiFernet([Fernet(key.encode()) for key in keys])
    except ValueError as exc:
        raise ImproperlyConfigured(
            "FIELD_ENCRYPTION_KEYS holds a value that is not a Fernet key (32 url-safe "
            "base64-encoded bytes)."
        ) from exc


def fernet() -> MultiFernet:
    return _fernet(tuple(settings.FIELD_ENCRYPTION_KEYS))


def encrypt(plaintext: str) -> str:
    return PREFIX + fernet().encrypt(plaintext.encode("utf-8")).decode("ascii")


def decrypt(stored: str) -> str:
    if not stored.startswith(PREFIX):
        raise DecryptionError("The stored value is not encrypted.")
    try:
        return fernet().decrypt(stored[len(PREFIX) :].encode("ascii")).decode("utf-8")
    except InvalidToken as exc:
        raise DecryptionError(
            "A stored secret cannot be decrypted with FIELD_ENCRYPTION_KEYS; was a key removed "
            "before rotate_encryption_keys ran?"
        ) from exc


def rotate(stored: str) -> str:
    """The same secret encrypted under the newest key."""
    return PREFIX + fernet().rotate(stored[len(PREFIX) :].encode("ascii")).decode("ascii")


class EncryptedTextField(models.TextField):
    """A text field whose value is encrypted in the database; empty stays empty."""

    def get_prep_value(self, value: Any) -> Any:
        value = super().get_prep_value(value)
        if value in (None, ""):
            return value
        return encrypt(str(value))

    def from_db_value(self, value: str | None, expression, connection) -> str | None:
        if value in (None, ""):
            return value
        return decrypt(value)

    def value_to_string(self, obj) -> str:
        return ""  # dumpdata and other serializers never get the plaintext


class EncryptedJSONField(EncryptedTextField):
    """A JSON document (e.g. a token cache) stored encrypted as text."""

    def get_prep_value(self, value: Any) -> Any:
        if value is None:
            return None
        return encrypt(json.dumps(value, separators=(",", ":")))

    def from_db_value(self, value: str | None, expression, connection) -> Any:
        text = super().from_db_value(value, expression, connection)
        return None if text in (None, "") else json.loads(text)

    def to_python(self, value: Any) -> Any:
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError:
                return value
        return value
