"""Every write to a reservation: book, change (reschedule and edit), cancel, deactivate a user.

Portal, admin, REST API and sync all come through here, so the rules hold for every entry
point: validation, the policies in ``reservations.rules``, the person's limits
(``reservations.limits``: ``LimitExceeded``, ``TooSoon``), and "no two slot-holding
reservations of one space overlap", compared by their buffered ranges (the space's setup and
cleanup minutes around the booked times, ``reservations.buffers``). That last guarantee comes
from the transaction: the space row is locked (PostgreSQL, where an exclusion constraint also
backs it) or SQLite's write lock is taken when the transaction begins
(``transaction_mode=IMMEDIATE`` in settings), so the check and the insert cannot interleave
with another booking.

Signals (``reservations.signals``) are sent only after the transaction commits.

A package, one module per concern: ``errors`` (what a refusal says), ``validation`` (the checks),
``writes`` (locks, history, signals after commit), ``booking`` (``book`` for people,
``book_from_calendar`` for events pulled from a remote calendar), ``changes`` (change, cancel,
approvals), ``presence`` (check-in, no-shows), ``users`` and ``remote`` (conflicts kept from
remote calendars). Callers import the package: ``from reservations import services``.
"""

from .booking import book, book_from_calendar
from .changes import (
    DETAIL_FIELDS,
    TRACKED_DETAILS,
    approve,
    cancel,
    change,
    confirm,
    decline,
)
from .errors import (
    KEPT_AS_CONFLICT,
    AlreadyDecided,
    BookingError,
    BookingResult,
    BufferClash,
    CheckInClosed,
    Clash,
    Closed,
    Conflict,
    LimitExceeded,
    NeedsApproval,
    NotAllowed,
    Scope,
    StaleReservation,
    TooSoon,
    Unavailable,
)
from .presence import check_in, claim_booking_reminder, claim_check_in_reminder, release_no_show
from .remote import (
    cancel_conflict,
    collision_reason,
    record_conflict,
    release_from_calendar,
    retry_conflict,
)
from .users import deactivate_user
from .validation import (
    PAST_GRACE,
    closure_problem,
    limit_problem,
    slot_problem,
)

__all__ = [
    "DETAIL_FIELDS",
    "KEPT_AS_CONFLICT",
    "PAST_GRACE",
    "TRACKED_DETAILS",
    "AlreadyDecided",
    "BookingError",
    "BookingResult",
    "BufferClash",
    "CheckInClosed",
    "Clash",
    "Closed",
    "Conflict",
    "LimitExceeded",
    "NeedsApproval",
    "NotAllowed",
    "Scope",
    "StaleReservation",
    "TooSoon",
    "Unavailable",
    "approve",
    "book",
    "book_from_calendar",
    "cancel",
    "cancel_conflict",
    "change",
    "check_in",
    "claim_booking_reminder",
    "claim_check_in_reminder",
    "closure_problem",
    "collision_reason",
    "confirm",
    "deactivate_user",
    "decline",
    "limit_problem",
    "record_conflict",
    "release_from_calendar",
    "release_no_show",
    "retry_conflict",
    "slot_problem",
]
