"""How a pull ended (``PullStatus``, from which the task decides what to queue next) and what
it did (``PullResult``: the counts recorded on its ``SyncJob``)."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from ..followups import FollowUp


class PullStatus(enum.StrEnum):
    """How a pull ended (the task decides from it what to queue next)."""

    SUCCEEDED = "succeeded"
    BUSY = "busy"  # another pull of the binding is running
    SKIPPED = "skipped"  # the binding does not sync, or is paused
    PAUSED = "paused"  # a permanent error paused the binding
    FAILED = "failed"


@dataclass
class PullResult:
    status: PullStatus
    created: int = 0
    updated: int = 0
    cancelled: int = 0
    conflicts: int = 0
    ignored: int = 0
    restored: int = 0  # remote edits of Reserva bookings not taken: the events written back
    events: int = 0
    pages: int = 0
    full: bool = False
    detail: str = ""
    cursor: str | None = None  # a new cursor still to be saved (a pull without changes)
    next: tuple[FollowUp, ...] = ()  # what the tasks queue after it (pushes writing back)
