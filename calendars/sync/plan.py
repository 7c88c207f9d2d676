"""The pure planning step of a push: what must happen to a reservation's remote event.

``plan(reservation_state, link_state)`` looks at two small snapshots, never at the database or
the network, and answers one :class:`PushAction`: create, update, delete, move (delete where the
event is, create where it should be) or nothing. ``calendars.sync.push`` builds the snapshots
from the rows and applies the answer. The rules (DESIGN.md "the rules that matter"):

- a link that already shows this version of the reservation, in the right place, needs
  nothing: this is how a duplicated or superseded (older) task becomes a no-op;
- a space that no longer syncs keeps its remote events ("disabling sync never deletes
  remote events"); a reservation that *moved* to a space that does not sync frees the old
  room, as long as the old room still syncs;
- an attempt whose outcome is unknown (a create that may have happened) looks for our tagged
  event before doing anything else (``lookup``), so a retry never makes a second event.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Op(enum.StrEnum):
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    MOVE = "move"
    NOOP = "noop"


@dataclass(frozen=True)
class Place:
    """Where an event lives: a provider, a mailbox (or acting user) and a calendar."""

    provider_id: int
    mailbox: str
    calendar_id: str = ""

    def same_as(self, other: Place | None) -> bool:
        return (
            other is not None
            and self.provider_id == other.provider_id
            and self.mailbox.lower() == other.mailbox.lower()
            and self.calendar_id == other.calendar_id
        )


@dataclass(frozen=True)
class ReservationState:
    """What the reservation asks for now."""

    version: int
    active: bool  # pending or confirmed: it holds the slot, so the room shows it
    space_id: int
    target: Place | None  # where its event belongs; None when the space does not sync now


@dataclass(frozen=True)
class LinkSnapshot:
    """What we know of the remote event (``SyncLink``); the defaults mean "no link yet"."""

    external_id: str = ""
    place: Place | None = None
    pushed_version: int = 0
    binding_space_id: int | None = None  # the space whose binding the event was pushed through
    binding_enabled: bool = False  # that binding still syncs
    uncertain: bool = False  # an earlier attempt may have created an event we never recorded


@dataclass(frozen=True)
class PushAction:
    op: Op
    reason: str
    lookup: bool = False  # find our tagged event first: its id is not known for sure


def plan(reservation: ReservationState, link: LinkSnapshot | None = None) -> PushAction:
    """Decide what one push must do. Pure: same snapshots, same answer."""
    link = link or LinkSnapshot()
    known = bool(link.external_id) or link.uncertain
    lookup = not link.external_id
    if reservation.target is None:
        moved_away = (
            link.binding_space_id is not None and link.binding_space_id != reservation.space_id
        )
        if known and moved_away and link.binding_enabled:
            return PushAction(Op.DELETE, "moved to a space that does not sync", lookup=lookup)
        return PushAction(Op.NOOP, "the space does not sync: remote events are left alone")
    if not known:
        if reservation.active:
            return PushAction(Op.CREATE, "not in the calendar yet")
        return PushAction(Op.NOOP, "never pushed and no longer holds the slot")
    moved = link.place is not None and not link.place.same_as(reservation.target)
    if link.external_id and not moved and link.pushed_version >= reservation.version:
        return PushAction(Op.NOOP, "the calendar already shows this version")
    if not reservation.active:
        if link.external_id and link.pushed_version >= reservation.version:
            return PushAction(Op.NOOP, "already removed from the calendar")
        return PushAction(Op.DELETE, "no longer holds the slot", lookup=lookup)
    if moved:
        return PushAction(Op.MOVE, "belongs in another calendar now", lookup=lookup)
    if lookup:
        return PushAction(Op.CREATE, "an earlier attempt may have created it", lookup=True)
    return PushAction(Op.UPDATE, "changed since the last push")
