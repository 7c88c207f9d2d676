"""Room displays: the wall tablet at a space's door (``Display``, ``/display/<token>/``).

- **Pairing.** An administrator adds a display for a space (``create``): Reserva makes its
  account (``user``: it cannot sign in; the display books and acts as it) and a one-time
  6-digit code, valid ``PAIRING_MINUTES``. The tablet opens ``/display/pair/`` and types it
  (``pair``): the code is used up, a long random token is issued and the tablet is sent to
  ``/display/<token>/``. Only the token's SHA-256 and the code's HMAC are stored (as
  ``feeds`` does with feed keys). Wrong codes are counted per address and overall in the
  cache (``PAIRING_ATTEMPTS``), so nobody can try the million codes. ``revoke`` ends it.
- **State** (``state``): what the page shows, read in one pass: free or busy now, the current
  and next bookings (the public nickname or "Reserved", never a title or a name), which
  *Book now* lengths fit before the next booking and within the opening hours, and whether the
  current booking can be checked in, ended or extended. ``etag`` is the cheap fingerprint the
  page's 5-second poll is answered 304 with while nothing changed.
- **Actions** (``book_now``, ``check_in``, ``end_early``, ``extend``) call
  ``reservations.services`` as the display's account with source *Display*, so closures,
  opening hours, approvals, limits and the sync rules apply as everywhere; a refusal is the
  service's ``BookingError`` with its message for the tablet.
- **Not seen** (``alert_offline``, beat every minute): a paired display not seen for
  ``OFFLINE_AFTER`` while its location is open is reported to the admins by email, once per
  outage.
"""

from .actions import BOOK_MINUTES, EXTEND_MINUTES, WALK_IN, book_now, check_in, end_early, extend
from .alerts import OFFLINE_AFTER, alert_offline, offline, offline_q
from .board import RESERVED, Shown, State, etag, state
from .pairing import (
    COOKIE,
    PAIRING_ATTEMPTS,
    PAIRING_ATTEMPTS_ALL,
    PAIRING_MINUTES,
    SEEN_RESOLUTION,
    Pairing,
    PairingRefused,
    by_token,
    create,
    hash_token,
    new_code,
    pair,
    record_seen,
    revoke,
    set_token,
)

__all__ = [
    "BOOK_MINUTES",
    "COOKIE",
    "EXTEND_MINUTES",
    "OFFLINE_AFTER",
    "PAIRING_ATTEMPTS",
    "PAIRING_ATTEMPTS_ALL",
    "PAIRING_MINUTES",
    "RESERVED",
    "SEEN_RESOLUTION",
    "WALK_IN",
    "Pairing",
    "PairingRefused",
    "Shown",
    "State",
    "alert_offline",
    "book_now",
    "by_token",
    "check_in",
    "create",
    "end_early",
    "etag",
    "extend",
    "hash_token",
    "new_code",
    "offline",
    "offline_q",
    "pair",
    "record_seen",
    "revoke",
    "set_token",
    "state",
]
