"""What a refused write says: the error classes (and which of them a pull keeps as a
conflict), and the result of a booking."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from ..models import Reservation

if TYPE_CHECKING:
    pass


class BookingError(Exception):
    """A booking request that cannot be carried out; ``message`` is meant for the user."""

    code = "invalid"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class NotAllowed(BookingError):
    code = "not_allowed"


class StaleReservation(BookingError):
    code = "stale"


class AlreadyDecided(BookingError):
    """An approval decision for a booking that is not (or no longer) awaiting one."""

    code = "already_decided"


class LimitExceeded(NotAllowed):
    """The booking would take its person over one of their limits (``reservations.limits``):
    active bookings, hours per week, an overlapping booking. The message names the limit and
    what the person already holds."""

    code = "limit_exceeded"


class TooSoon(NotAllowed):
    """The booking starts inside the person's minimum notice, or beyond their booking window
    (``reservations.limits``)."""

    code = "too_soon"


@dataclass(frozen=True)
class Clash:
    """A slot that is already taken (no private details: titles and names are left out)."""

    reservation_id: int
    space_name: str
    start: datetime
    end: datetime
    time_zone: str

    def describe(self) -> str:
        zone = ZoneInfo(self.time_zone)
        start, end = self.start.astimezone(zone), self.end.astimezone(zone)
        return (
            f"{self.space_name} is already booked from {start:%H:%M} to {end:%H:%M} "
            f"on {start:%a %d %b %Y} ({self.time_zone})."
        )


@dataclass(frozen=True)
class BufferClash(Clash):
    """A slot whose booked times are free but which leaves the space too little time to be
    cleaned up or set up next to another booking (``reservations.buffers``)."""

    reason: str = ""

    def describe(self) -> str:
        return self.reason


@dataclass(frozen=True)
class Unavailable:
    """One occurrence of a series that cannot be booked, and why."""

    start: datetime | None
    day: date
    reason: str
    closed: bool = False  # refused because of a closure (``reservations.closures``)


class Conflict(BookingError):
    """The slot (or some occurrences of a series) is taken or cannot be booked.

    ``clashes`` names the taken slots; for a series, ``unavailable`` lists every date that
    cannot be booked and ``bookable`` the slots that could still be booked (call again with
    ``skip_unavailable=True`` to book those). ``next_free``: the same space's next free slots
    of the same length (``freetimes.next_free``), when the caller looked them up; None when
    it did not.
    """

    code = "conflict"

    def __init__(
        self,
        message: str,
        *,
        clashes: Sequence[Clash] = (),
        unavailable: Sequence[Unavailable] = (),
        bookable: Sequence[tuple[datetime, datetime]] = (),
    ) -> None:
        super().__init__(message, field="start")
        self.clashes = list(clashes)
        self.unavailable = list(unavailable)
        self.bookable = list(bookable)
        self.next_free: list[tuple[datetime, datetime]] | None = None


class Closed(Conflict):
    """The space or its whole location is closed (a ``Closure``) during the slot: the message
    is the closure's reason. For a series, raised only when every refused date is closed."""

    code = "closed"


# What keeps a booking that comes from a remote calendar as ``conflicted`` (holding no slot,
# with these words as the reason) instead of dropping it: its slot is taken or closed, or it
# takes its person over a limit. The sync engine (pull, reconciliation) catches exactly these.
KEPT_AS_CONFLICT: tuple[type[BookingError], ...] = (Conflict, LimitExceeded)


class CheckInClosed(BookingError):
    """Check-in is refused: outside the booking's window, or the booking was released or
    cancelled already (``reservations.checkin``)."""

    code = "check_in_closed"


class NeedsApproval(BookingError):
    """Refused because the booking is not confirmed yet: it is still awaiting approval
    (``reservations.approvals``) or, in personal mode, the room's answer."""

    code = "needs_approval"


class Scope(enum.StrEnum):
    THIS = "this"
    FOLLOWING = "following"


@dataclass
class BookingResult:
    reservations: list[Reservation] = field(default_factory=list)
    skipped: list[Unavailable] = field(default_factory=list)
