"""Pairing a room display: its account and one-time code (``create``, ``new_code``), the
tablet typing the code (``pair``, wrong codes counted in the cache), the token that is its
credential from then on (``by_token``; only its SHA-256 is stored), ``revoke`` and
``record_seen``."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone
from django.utils.crypto import salted_hmac

from ..feeds import hash_key as hash_token  # the same SHA-256 fingerprint as feed keys
from ..feeds import new_key
from ..models import Display, Space

PAIRING_MINUTES = 10
# Wrong codes: at most this many per address, and this many from everyone, per window.
PAIRING_ATTEMPTS = 5
PAIRING_ATTEMPTS_ALL = 100
PAIRING_WINDOW_SECONDS = 600
SEEN_RESOLUTION = timedelta(seconds=30)
COOKIE = "reserva_display"


class PairingRefused(Exception):
    """A pairing code that is wrong, expired, used, or typed too often; ``message`` says so."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _hash_code(code: str) -> str:
    # A keyed hash: six digits would be reversed from a plain SHA-256 in a second.
    return salted_hmac("reservations.display-pairing", code).hexdigest()


def _new_code() -> str:
    return f"{secrets.randbelow(10**6):06d}"


@dataclass(frozen=True)
class Pairing:
    """A display waiting to be paired: the only moment its code is known."""

    display: Display
    code: str


@transaction.atomic
def create(
    *, space: Space, name: str = "", created_by=None, now: datetime | None = None
) -> Pairing:
    """A new display of ``space`` with its account and a pairing code."""
    now = now or timezone.now()
    user = get_user_model().objects.create_user(
        username=f"display-{secrets.token_hex(6)}",
        first_name="Room display",
        last_name=space.name[:150],
    )  # no password and no email: nobody can sign in as it
    display = Display.objects.create(space=space, name=name, user=user, created_by=created_by)
    return Pairing(display, new_code(display, now=now))


def new_code(display: Display, *, now: datetime | None = None) -> str:
    """Give ``display`` a fresh pairing code (the old one stops working); returns the code.
    A paired display that gets a new code keeps working until the code is used."""
    now = now or timezone.now()
    while True:
        code = _new_code()
        taken = Display.objects.filter(
            pairing_code_hash=_hash_code(code), pairing_expires_at__gt=now
        ).exists()
        if not taken:
            break
    display.pairing_code_hash = _hash_code(code)
    display.pairing_expires_at = now + timedelta(minutes=PAIRING_MINUTES)
    display.save(update_fields=["pairing_code_hash", "pairing_expires_at"])
    return code


def _count_attempt(address: str) -> bool:
    """Count a pairing attempt; False when the address (or everyone) has tried too often."""
    keys = ((f"display-pair:{address}", PAIRING_ATTEMPTS), ("display-pair:*", PAIRING_ATTEMPTS_ALL))
    allowed = True
    for key, limit in keys:
        cache.add(key, 0, PAIRING_WINDOW_SECONDS)
        try:
            count = cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.set(key, 1, PAIRING_WINDOW_SECONDS)
            count = 1
        allowed = allowed and count <= limit
    return allowed


def pair(code: str, *, address: str, now: datetime | None = None) -> tuple[Display, str]:
    """Pair the display whose code this is; returns it and its new token (shown once: the
    tablet is redirected to its URL). Raises PairingRefused."""
    now = now or timezone.now()
    code = "".join(ch for ch in code if ch.isdigit())
    if not _count_attempt(address):
        raise PairingRefused(
            "Too many pairing attempts. Wait ten minutes, then try again with a new code."
        )
    if len(code) != 6:
        raise PairingRefused("The pairing code has 6 digits.")
    with transaction.atomic():
        display = (
            Display.objects.select_for_update()
            .select_related("space__location")
            .filter(pairing_code_hash=_hash_code(code), revoked_at__isnull=True)
            .first()
        )
        if display is None:
            raise PairingRefused("That pairing code is not valid. Check it in the admin.")
        if display.pairing_expires_at is None or display.pairing_expires_at <= now:
            raise PairingRefused("That pairing code has expired. Make a new one in the admin.")
        token = new_key()
        display.token_hash = hash_token(token)
        display.pairing_code_hash, display.pairing_expires_at = "", None
        display.paired_at, display.last_seen_at, display.offline_alerted_at = now, now, None
        display.save()
    # A wrong code made the same address count down; a right one starts it again.
    cache.delete(f"display-pair:{address}")
    return display, token


def set_token(display: Display, token: str, *, now: datetime | None = None) -> None:
    """Pair ``display`` with a chosen token (the demo's documented one, ``seed_demo``)."""
    now = now or timezone.now()
    display.token_hash = hash_token(token)
    display.pairing_code_hash, display.pairing_expires_at = "", None
    display.paired_at = display.paired_at or now
    display.revoked_at = None
    display.save()


def revoke(display: Display, *, now: datetime | None = None) -> bool:
    """End the display's pairing; its URL shows "not paired" from the next poll on."""
    now = now or timezone.now()
    return bool(
        Display.objects.filter(pk=display.pk, revoked_at__isnull=True).update(
            revoked_at=now, pairing_code_hash="", pairing_expires_at=None
        )
    )


def by_token(token: str) -> Display | None:
    """The paired, unrevoked display whose token this is, or None."""
    if not token:
        return None  # an empty hash would match every unpaired display
    return (
        Display.objects.select_related("space__location", "user")
        .filter(token_hash=hash_token(token), revoked_at__isnull=True, paired_at__isnull=False)
        .first()
    )


def record_seen(display: Display, *, now: datetime | None = None) -> None:
    """Note that the display polled: written at most every ``SEEN_RESOLUTION``."""
    now = now or timezone.now()
    if display.last_seen_at is not None and now - display.last_seen_at < SEEN_RESOLUTION:
        return
    Display.objects.filter(pk=display.pk).update(last_seen_at=now, offline_alerted_at=None)
    display.last_seen_at, display.offline_alerted_at = now, None
