"""The sync engine: push (this package), export and pull build on the same pieces.

Modules:

- ``plan``: the pure planning step of a push, ``plan(ReservationState, LinkSnapshot) -> PushAction``
  (create / update / delete / move / noop), tested without the network;
- ``push``: ``push_reservation(reservation_id)``, which re-reads the rows, locks the
  ``SyncLink``, plans, applies through ``calendars.remote`` and records a ``SyncJob``;
- ``rooms``: ``check_room_response(reservation_id)``, personal mode's room answer ->
  confirmed / cancelled;
- ``trouble``: pausing on permanent errors (``pause_binding``, ``pause_token``, one alert
  each) and resuming in order (``resume_binding``, ``resume_user``);
- ``recovery``: what beat finds after a worker died (``reclaim_lost_pushes``: running push
  jobs gone quiet, pushes whose message was lost) and failed pushes retried with capped
  backoff (``retry_failed_pushes``, ``retry_delay``; given up after a day, one alert);
- ``export`` (the bulk export) reuses the public helpers below;
- ``pull``: ``plan_pull`` (pure) and ``pull_binding(binding_id)`` (incremental pull of one
  room calendar); queuing pulls (``request_pull``, the beat's ``pull_due_bindings``) is
  ``calendars.tasks``' job;
- ``attribution``: before a pull plans, Reserva's own events (a create still in flight, or
  one whose answer was lost) are recognised, so none becomes a new remote booking.

Public helpers for the export and the admin flows:

- ``ensure_link(reservation, binding) -> (SyncLink, made_now)``;
- ``apply_remote_result(link, remote_event, version, place=None)``: record a created or
  updated event on the link (ids, iCalUId, change key / etag, pushed version, state synced);
- ``record_removed(link, version)``, ``record_failure(link_id, state, message)`` (which
  also schedules the beat's retry of a failed link);
- ``resume_binding(binding_id)`` and ``resume_user(user_id, provider_id)``: after a
  re-authorization or a reconnect (the tasks of the same names enqueue them).
"""

from .plan import LinkSnapshot, Op, Place, PushAction, ReservationState, plan
from .pull import (
    PullPlan,
    PullResult,
    PullStatus,
    plan_pull,
    pull_binding,
)
from .push import (
    PushOutcome,
    PushResult,
    apply_remote_result,
    ensure_link,
    push_reservation,
    record_failure,
    record_removed,
)
from .rooms import RoomAnswer, check_room_response
from .trouble import pause_binding, pause_token, resume_binding, resume_user

__all__ = [
    "LinkSnapshot",
    "Op",
    "Place",
    "PullPlan",
    "PullResult",
    "PullStatus",
    "PushAction",
    "PushOutcome",
    "PushResult",
    "ReservationState",
    "RoomAnswer",
    "apply_remote_result",
    "check_room_response",
    "ensure_link",
    "pause_binding",
    "pause_token",
    "plan",
    "plan_pull",
    "pull_binding",
    "push_reservation",
    "record_failure",
    "record_removed",
    "resume_binding",
    "resume_user",
]
