"""Pull: bring a bound space's reservations in step with its room calendar (DESIGN.md "sync
engine", STYLE.md habit 7: a set difference computed in a pure function, applied in one
transaction).

``plan_pull(remote_events, links, reservations, ...) -> PullPlan`` is pure: it compares the
remote events of one pull with the links and reservations Reserva knows and answers what to
create, update, cancel, record as a conflict and ignore. ``pull_binding(binding_id)`` does
the I/O around it:

1. take the binding's lock (``claim.acquire``: a Redis lock when ``REDIS_URL`` is set, else
   an atomic claim on the binding row), so one binding is never pulled by two workers at
   once; it has a short TTL that a heartbeat thread renews while the pull runs, so a killed
   pull stops blocking the room within a minute (``calendars/locks.py``);
2. read the changes since the stored cursor (``fetch``: Graph ``calendarView/delta`` link,
   Google ``syncToken``), page after page until the last page, which carries the next
   cursor. A binding without a cursor, or whose cursor the provider rejects
   (``SyncTokenExpired``), gets ONE full read over the sync window (``SyncSettings``
   past/future days); events are matched to what exists by id, iCalUId and our tag, so a
   full resync creates no duplicates;
3. plan (``plan``), then apply the plan and store the new cursor in one transaction
   (``apply``), through ``reservations.services`` with the provider's source: for bookings
   made in the provider with ``actor=None`` (policies and opening hours skipped, "no
   overlap" enforced); for bookings made in Reserva as their requested-for person (every
   rule checked, see below); conflicts are recorded, and resolved by the admin, in
   ``conflicts``;
4. after the commit, tell the people concerned (``calendars.alerts.notify_pull``), queue the
   pushes that write refused edits back, and record a ``SyncJob`` (``run``).

The modules, by job: ``run`` (``pull_binding``, one pull start to end), ``claim`` (the
binding's pull claim, and which bindings are due), ``fetch`` (the remote reads),
``known`` (what Reserva knows of the events), ``plan`` (the pure planner, one function per
phase), ``apply`` (one function per change kind), ``links`` (the links a pull writes),
``fields`` (a pulled booking's fields), ``conflicts``, ``result`` (``PullStatus``,
``PullResult``). This module re-exports what the rest of Reserva uses.

Rules of the plan:

- an event is matched by ``SyncLink.external_id``, then (outside recurring series, whose
  occurrences share it) by iCalUId, then by our reservation tag (Google's events carry it;
  Graph's delta cannot expand extended properties, so while a create is in flight or failed
  in the room, the events nothing attributes are read with their tag first, and a create's
  own event is never taken for a new booking: ``calendars.sync.attribution``);
- matched and ``version == link.remote_version``: our own push coming back, ignored;
- matched, but the link is behind its reservation (a Reserva change whose push waits for a
  retry): the event shows the old state, not a remote edit; only its change key is noted and
  the owed push overwrites it (Reserva wins, as when a push meets a remote edit);
- removed (delta ``@removed``, Google ``cancelled``) or declined by the room: cancel;
- moved: new times; renamed: new title, for reservations made in the provider;
- a booking made in Reserva (portal, API, admin) moved or renamed remotely: its person's
  request, applied through ``services.change`` as that person (opening hours, horizon,
  maximum length, policies). Its event's subject is derived from it
  (``remote.event_title``): where the location shows the public nickname, a new subject
  becomes its title and nickname; where it shows the person's name, a rename cannot be taken.
  Whatever cannot be taken (refused by the rules, onto a taken slot, a rename of the name)
  is written back: the link is put behind the reservation (a push is owed) and a push
  queued, and the person is emailed why ("restored"). Such a booking is never made
  ``conflicted``: it keeps its slot. The room's copy of an event kept in a person's or the
  delegated calendar is not compared by subject (the room may rewrite it);
- new: a reservation (source exchange/google), requested for the active user whose email is
  the organizer's, organizer details filled when the location says so;
- new, or made in the provider and moved onto a slot held by another reservation:
  ``conflicted`` (holds no slot, never overwrites the booking; ``services.record_conflict``,
  with why in the booking rules' words). A slot includes the space's setup and cleanup
  buffers (``reservations.buffers``): an event right after a booking in a room that needs
  cleaning collides too; so is one that takes its organizer (a Reserva user) over one of
  their limits (``reservations.limits``: active bookings, hours per week, overlaps), with
  the limit's words;
- all-day events become midnight-to-midnight in the location's zone;
- events outside the window are ignored unless they are linked (Google's incremental sync
  reports the whole calendar);
- a full resync cancels remote-made reservations whose events are gone from the window.

Recurring series: Google is read with ``singleEvents=true`` and Graph's calendarView/delta
returns occurrences and exceptions, so each occurrence is an event with its own id (and
``series_id``) and becomes its own reservation; an exception is an occurrence with other
times, a deleted occurrence comes back removed; a deleted series comes back as its removed
occurrences (or, from Google, possibly as the cancelled master, whose instances are found by
id prefix). Exchange Server's SyncFolderItems reports a series by its master only: the client
reads its occurrences in the window (a CalendarView) and gives the series' state (the ids of
its occurrences, ``RemoteEvent.occurrence_ids``) with them; ``fetch.gone_from_series``
reports the linked occurrences a master no longer lists, or every one of a removed master
(``SyncLink.series_id``), as removed. The sandboxes emulate series with exceptions (tests/
calendars/test_pull_recurring_ms.py, test_pull_recurring_google.py, test_pull_recurring_ews.py).

Pushes made by the pull's own service calls are no-ops: the link is given the reservation's
new version (``pushed_version``) in the same transaction, so the push plan finds the calendar
already showing it (and the receiver does not even queue it: ``calendars.receivers.
shown_already``); unless a push was already owed (``Links.add``'s ``before``), which then
still runs.

Cost: bookings made in the provider for nobody in Reserva are created, moved and cancelled
through the booking service's batch writes (``reservations.batch``: one space lock, one
re-read, checks in order in memory, bulk history rows) and links are written together
(``Links``), so a pull of N changed events costs a few queries per event at most
(``bench/pull.py``, ``tests/calendars/test_pull_cost.py``). Bookings for a Reserva user,
conflicts and undone edits keep the one-by-one path through ``reservations.services``.

Found and pinned by the convergence run (tests/calendars/test_convergence.py: 200 random
portal and calendar edits under ~20% faults on a real worker, then both sides compared).
"""

from .apply import apply_plan
from .claim import (
    acquire,
    due_bindings,
    next_pull_time,
    pull_owed,
    release,
    renew,
    request_stale_after,
)
from .conflicts import cancel_remote_event, retry_pulled_conflict
from .fetch import load_binding, read_changes
from .fields import booking_fields, source_of
from .plan import (
    Change,
    KnownLink,
    KnownReservation,
    PullPlan,
    event_times,
    index_links,
    plan_pull,
)
from .result import PullResult, PullStatus
from .run import pull_binding

__all__ = [
    "Change",
    "KnownLink",
    "KnownReservation",
    "PullPlan",
    "PullResult",
    "PullStatus",
    "acquire",
    "apply_plan",
    "booking_fields",
    "cancel_remote_event",
    "due_bindings",
    "event_times",
    "index_links",
    "load_binding",
    "next_pull_time",
    "plan_pull",
    "pull_binding",
    "pull_owed",
    "read_changes",
    "release",
    "renew",
    "request_stale_after",
    "retry_pulled_conflict",
    "source_of",
]
