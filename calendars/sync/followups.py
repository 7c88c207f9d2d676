"""What the sync engine asks to happen next, for ``calendars/tasks.py`` to queue.

The engine does the work and says what should follow; it never queues a task itself (no
engine module imports ``calendars.tasks``, so there is no import loop between the two). A
follow-up is a small frozen value:

- :class:`PushReservations`: these reservations' remote events are behind; push them, in
  this order;
- :class:`CheckRoom`: personal mode, the invited room has not answered yet; ask it again
  after ``after_seconds`` (``attempt`` counts the checks so far);
- :class:`RunExport`: this export job needs a worker (``claim``: the claim a takeover gave it);
- :class:`RequestPull`: read this binding's calendar again soon (coalesced with the requests
  already queued: ``calendars.tasks.request_pull``).

``calendars.tasks.dispatch`` turns each into the task call, after the current transaction
commits (a worker must find the rows the follow-up is about).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PushReservations:
    reservation_ids: tuple[int, ...]


@dataclass(frozen=True)
class CheckRoom:
    reservation_id: int
    attempt: int = 1
    after_seconds: float = 0.0


@dataclass(frozen=True)
class RunExport:
    job_id: int
    claim: str = ""


@dataclass(frozen=True)
class RequestPull:
    binding_id: int


FollowUp = PushReservations | CheckRoom | RunExport | RequestPull
