"""Bulk export (LibCal's "Run the Export"): every future reservation of a bound space that is
not yet in its room calendar, sent in batches by a background job.

- :func:`open_export` records a queued :class:`~calendars.models.SyncJob`, for
  ``calendars.tasks.start_export`` to hand to a worker (``run_export``) after commit; it
  refuses while another export of the same binding is queued or running.
- :func:`run_export_job` does the work. It first writes a ``pending`` SyncLink for every
  reservation it will send, so the job can always be finished from the database alone. Then,
  batch after batch (Graph 20 per ``$batch``, Google 50 parts), it marks the batch's links as
  attempted, sends, and records every outcome together with the job's counts and heartbeat in
  one transaction. A link that was attempted but has no remote id is *uncertain* (the worker
  died, or the answer was lost): it is looked up by our tag before it is sent again. The
  clients' creates are idempotent too (Graph ``transactionId``, Google client-chosen ids), so
  a duplicate is impossible either way.
- Ownership: a running job carries a ``claim`` on its row (``calendars/locks.py``
  ``take_row`` / ``renew_row``). A worker keeps going only while its claim is
  the stored one (checked with every heartbeat: between batches, and from a heartbeat thread
  every third of ``SYNC_LOCK_TTL_SECONDS`` during one), and :func:`claim_stale_exports` (beat,
  every 30 s) hands a job whose heartbeat is older than ``SYNC_EXPORT_STALE_SECONDS`` (60 s)
  to a new run with a new claim, through an atomic ``UPDATE ... WHERE heartbeat_at < stale``.
  Broker redelivery is never relied on (``run_export`` is acknowledged early): a run that
  does not hold the current claim does nothing.

Only reservations whose sync mailbox is ``room`` are exported (application credentials into
the room's calendar); personal and delegated ones are pushed one by one. A permanent
credential or calendar error pauses the binding and the job; the reservations stay
``pending`` and a new export, once someone reconnects, picks them up. Errors are listed per
reservation with the provider error's message, which never holds a secret.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Case, F, Q, QuerySet, Value, When
from django.utils import timezone

from integrations.base import (
    AuthenticationFailed,
    BatchOp,
    BatchResult,
    CalendarGone,
    ConsentMissing,
    EndpointRefused,
    EventGone,
    PermanentError,
    ProviderError,
    RemoteEvent,
    Throttled,
    TlsError,
    TokenRevoked,
    TransientError,
)
from integrations.registry import spec
from reservations.models import SLOT_HOLDING_STATUSES, Reservation, SyncMailbox

from ..locks import Heartbeat, renew_row, take_row
from ..models import (
    BindingStatus,
    JobKind,
    JobStatus,
    LinkState,
    SpaceCalendar,
    SyncJob,
    SyncLink,
)
from .followups import RunExport

log = logging.getLogger(__name__)

# Items per batch call: Graph's $batch takes 20; Google allows 1000 parts but recommends
# staying small, and each part counts against the per-user quota anyway.
# Rounds over what is left after transient failures; the clients already retry each
# request and each throttled batch item, so few rounds are needed.
MAX_ROUNDS = 5
ROUND_PAUSE_SECONDS = 1.0  # doubled each round
MAX_LISTED_ERRORS = 200  # keeps the job row small; failed_count still counts them all
# A batch our limiter kept back (the mailbox's window used up) is sent again after the wait
# it names, up to this many times; the run beats meanwhile.
MAX_LIMITER_WAITS = 20
BEAT_WHILE_WAITING_SECONDS = 5.0
ACTIVE = (JobStatus.QUEUED, JobStatus.RUNNING)
# Errors that mean "nothing will work until someone fixes the connection": pause.
CONNECTION_ERRORS = (
    AuthenticationFailed,
    TokenRevoked,
    ConsentMissing,
    CalendarGone,
    TlsError,
    EndpointRefused,
)


class ExportRefused(Exception):
    """The export cannot start; the message says why, for the administrator."""


class LostClaim(Exception):
    """Another run took this job over (our heartbeat went stale); stop quietly."""


class Paused(Exception):
    def __init__(self, error: ProviderError) -> None:
        super().__init__(error.message)
        self.error = error


def stale_after() -> timedelta:
    return timedelta(seconds=settings.SYNC_EXPORT_STALE_SECONDS)


# -- what to export --------------------------------------------------------------------------


def exportable(binding: SpaceCalendar) -> QuerySet[Reservation]:
    """Future slot-holding reservations of the binding's space, room mailbox, not synced."""
    return (
        Reservation.objects.filter(
            space_id=binding.space_id,
            status__in=SLOT_HOLDING_STATUSES,
            sync_mailbox=SyncMailbox.ROOM,
            end__gt=timezone.now(),
        )
        .exclude(sync_link__state=LinkState.SYNCED)
        .order_by("start", "pk")
    )


def has_unsynced(binding: SpaceCalendar) -> bool:
    """Whether "Run the export" has anything to send (LibCal shows the box only then)."""
    return exportable(binding).exists()


def running_export(binding: SpaceCalendar) -> SyncJob | None:
    return SyncJob.objects.filter(kind=JobKind.EXPORT, binding=binding, status__in=ACTIVE).first()


# -- starting ---------------------------------------------------------------------------------


def open_export(binding: SpaceCalendar, requested_by: Any, dry_run: bool = False) -> SyncJob:
    """A queued export job of ``binding``; it needs a worker (:class:`RunExport`).

    Raises :class:`ExportRefused` when an export of the binding is already queued or running,
    or when the binding is disabled or paused.
    """
    with transaction.atomic():
        # The binding's row lock serialises two administrators pressing the button at once.
        binding = (
            SpaceCalendar.objects.select_for_update().select_related("space").get(pk=binding.pk)
        )
        if not binding.enabled:
            raise ExportRefused(f"Sync is turned off for {binding.space.name}; turn it on first.")
        if binding.status == BindingStatus.PAUSED:
            raise ExportRefused(
                f"Sync of {binding.space.name} is paused ({binding.last_error or 'credentials'}"
                "); reconnect, then run the export."
            )
        current = running_export(binding)
        if current is not None:
            raise ExportRefused(
                f"An export of {binding.space.name} is already {current.get_status_display()} "
                f"(job #{current.pk}); wait for it to finish."
            )
        job = SyncJob.objects.create(
            kind=JobKind.EXPORT,
            binding=binding,
            requested_by=requested_by if getattr(requested_by, "pk", None) else None,
            dry_run=dry_run,
            total=exportable(binding).count(),
        )
    return job


def claim_stale_exports() -> list[RunExport]:
    """Take over exports whose worker stopped: running with a stale heartbeat, or queued for
    longer than that (the task message was lost). Returns the runs to start, each with the
    job's new claim."""
    now = timezone.now()
    stale = now - stale_after()
    candidates = SyncJob.objects.filter(kind=JobKind.EXPORT).filter(
        Q(status=JobStatus.RUNNING, heartbeat_at__lt=stale)
        | Q(status=JobStatus.RUNNING, heartbeat_at__isnull=True)
        | Q(status=JobStatus.QUEUED, created__lt=stale)
    )
    claimed = []
    for job_id in candidates.values_list("pk", flat=True)[:100]:
        # The same condition again, atomically: of two beats racing, one UPDATE wins.
        token = take_row(
            SyncJob.objects.filter(pk=job_id).filter(
                Q(status=JobStatus.RUNNING, heartbeat_at__lt=stale)
                | Q(status=JobStatus.RUNNING, heartbeat_at__isnull=True)
                | Q(status=JobStatus.QUEUED, created__lt=stale)
            ),
            status=JobStatus.RUNNING,
        )
        if token:
            log.warning("export job %s was stale; resuming it", job_id)
            claimed.append(RunExport(job_id, token))
    return claimed


# -- running ----------------------------------------------------------------------------------


@dataclass
class _Run:
    job: SyncJob
    claim: str
    binding: SpaceCalendar
    given_up: set[int] = field(default_factory=set)  # reservation ids failed for good

    def beat(self, **changes: Any) -> None:
        """Heartbeat (and any job changes) if we still own the job; else stop."""
        if not renew_row(_running(self.job.pk), self.claim, **changes):
            raise LostClaim
        for key, value in changes.items():
            if not hasattr(value, "resolve_expression"):
                setattr(self.job, key, value)


def _running(job_id: int) -> QuerySet[SyncJob]:
    return SyncJob.objects.filter(pk=job_id, kind=JobKind.EXPORT, status=JobStatus.RUNNING)


def _claim(job_id: int, claim: str) -> tuple[SyncJob, str] | None:
    if claim:  # given by a takeover (claim_stale_exports)
        job = _running(job_id).filter(claim=claim).first()
        return (job, claim) if job else None
    token = take_row(
        SyncJob.objects.filter(pk=job_id, kind=JobKind.EXPORT, status=JobStatus.QUEUED),
        status=JobStatus.RUNNING,
        started_at=timezone.now(),
    )
    if not token:
        return None  # running elsewhere, finished, or a redelivered message
    return SyncJob.objects.get(pk=job_id), token


def run_export_job(job_id: int, claim: str = "") -> SyncJob | None:
    """Run (or finish) export job ``job_id``; returns it, or None when it is not ours."""
    claimed = _claim(job_id, claim)
    if claimed is None:
        return None
    job, claim = claimed
    binding = (
        SpaceCalendar.objects.select_related("space__location", "provider")
        .filter(pk=job.binding_id)
        .first()
        if job.binding_id
        else None
    )
    if job.started_at is None:
        SyncJob.objects.filter(pk=job.pk).update(started_at=timezone.now())
    if binding is None or not binding.enabled:
        return _finish(job, claim, JobStatus.FAILED, "The binding was removed or turned off.")
    if binding.status == BindingStatus.PAUSED:
        return _finish(job, claim, JobStatus.PAUSED, binding.last_error or "Binding paused.")
    run = _Run(job, claim, binding)
    run.given_up = {e["reservation"] for e in job.errors if e.get("final")}
    # Between batches the run beats itself; this thread also beats through one long batch (a
    # provider's Retry-After, the limiter's wait), so a short stale time never takes over a
    # live run, and a killed one is resumed within SYNC_EXPORT_STALE_SECONDS plus a beat.
    heartbeat = Heartbeat(lambda: renew_row(_running(job.pk), claim)).start()
    try:
        if job.dry_run:
            _dry_run(run)
        else:
            _export(run)
    except LostClaim:
        log.warning("export job %s was taken over by another run; stopping", job.pk)
        return None
    except Paused as paused:
        _pause_binding(binding, paused.error)
        return _finish(job, claim, JobStatus.PAUSED, paused.error.message)
    except Exception as exc:
        # A bug or a database outage: say so on the job (beat would otherwise resume it over
        # and over) and let the task log the traceback.
        _finish(job, claim, JobStatus.FAILED, f"Internal error ({type(exc).__name__}); "
                "see the worker's log. Run the export again once it is fixed.")  # fmt: skip
        raise
    finally:
        heartbeat.stop()
    job.refresh_from_db()
    status = JobStatus.PARTIAL if job.failed_count else JobStatus.SUCCEEDED
    return _finish(job, claim, status)


def _finish(job: SyncJob, claim: str, status: str, error: str = "") -> SyncJob | None:
    changes: dict[str, Any] = {"status": status, "finished_at": timezone.now()}
    if error:
        changes["errors"] = [*job.errors, {"reservation": None, "error": error}][
            -MAX_LISTED_ERRORS:
        ]
    if not SyncJob.objects.filter(pk=job.pk, claim=claim).update(**changes):
        return None
    job.refresh_from_db()
    return job


def _pause_binding(binding: SpaceCalendar, error: ProviderError) -> None:
    """Pause the binding the way pushes do (one alert to the admins); a reconnect resumes."""
    from . import trouble

    trouble.pause_binding(binding.pk, error.message)


def _dry_run(run: _Run) -> None:
    """Build every payload, send nothing; the job says how many would be sent."""
    from ..remote import event_data

    built, errors = 0, []
    reservations = exportable(run.binding).select_related("space__location", "requested_for")
    for reservation in reservations.iterator(chunk_size=500):
        try:
            event_data(reservation, run.binding)
            built += 1
        except Exception as exc:  # a payload that cannot be built is the finding
            errors.append({"reservation": reservation.pk, "error": type(exc).__name__})
    run.beat(total=built + len(errors), done=built + len(errors), errors=errors[:MAX_LISTED_ERRORS],
             failed_count=len(errors))  # fmt: skip


def _ensure_links(binding: SpaceCalendar) -> None:
    """A pending SyncLink for every reservation to export, before anything is sent."""
    missing = exportable(binding).filter(sync_link__isnull=True).values_list("pk", flat=True)
    provider_id, mailbox = binding.provider_id, binding.resource_email
    ids = list(missing)
    for start in range(0, len(ids), 1000):
        SyncLink.objects.bulk_create(
            [
                SyncLink(
                    reservation_id=pk,
                    binding=binding,
                    provider_id=provider_id,
                    mailbox=mailbox,
                    calendar_id=binding.calendar_id,
                    state=LinkState.PENDING,
                )
                for pk in ids[start : start + 1000]
            ],
            ignore_conflicts=True,  # a push may have made one meanwhile: keep it
        )


def _export(run: _Run) -> None:
    from ..remote import room_calendar

    binding = run.binding
    try:
        calendar = room_calendar(binding)
    except EndpointRefused as refused:  # the connection alias points somewhere not allowed
        raise Paused(refused) from refused
    size = spec(binding.provider.kind).batch_size
    run.beat()
    for round_ in range(MAX_ROUNDS):
        last_round = round_ == MAX_ROUNDS - 1
        _ensure_links(binding)
        todo = list(exportable(binding).exclude(pk__in=run.given_up).values_list("pk", flat=True))
        if not todo:
            return
        if round_:
            time.sleep(min(ROUND_PAUSE_SECONDS * 2 ** (round_ - 1), 30))
            run.beat()
        _send_batches(run, calendar, [todo[i : i + size] for i in range(0, len(todo), size)],
                      last_round)  # fmt: skip


@dataclass
class _Batch:
    """One batch, read and built, ready to send."""

    reservations: dict[int, Reservation]
    links: dict[int, SyncLink]
    versions: dict[int, int]
    uncertain: list[int]  # attempted before, no remote id: look up by our tag first
    ops: dict[int, BatchOp]
    actions: dict[int, str]
    outcomes: dict[int, BatchResult]  # known before sending (payloads that cannot be built)


def _send_batches(run: _Run, calendar: Any, chunks: list[list[int]], last_round: bool) -> None:
    """Send the batches one after another, one in flight at a time (the limiter still holds
    the mailbox's slots for it), and do the database work around each send while the
    previous batch is in flight: the next batch is read and its payloads built, and the
    previous batch's outcomes recorded, so the mailbox is never idle waiting for the database.

    Order per batch is kept: its links are marked attempted (with a heartbeat that checks our
    claim) right before it is sent, and its outcomes are recorded once its answer is in. The
    sender thread only talks HTTP; every database access stays in this thread.
    """
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="export-send") as sender:
        in_flight: tuple[_Batch, Any] | None = None
        for chunk in [*chunks, None]:
            # While the previous batch is in flight: read and build this one, and mark it
            # attempted (with the heartbeat that checks our claim) before it can be sent.
            batch = _prepare(run, chunk) if chunk else None
            if batch is not None:
                _mark_attempted(run, batch)
            answered = None
            if in_flight is not None:
                try:
                    answered = (in_flight[0], _answer(run, sender, calendar, *in_flight))
                except BaseException:
                    if batch is not None:  # never sent: its outcome is not uncertain
                        _mark_attempted(run, batch, undo=True)
                    raise
                in_flight = None
            if batch is not None:
                in_flight = (batch, sender.submit(_transmit, calendar, batch))
            if answered is not None:
                done, outcomes = answered
                _record(run, done.reservations, done.links, done.versions,
                        done.outcomes | outcomes, done.actions, last_round)  # fmt: skip


def _answer(run: _Run, sender: Any, calendar: Any, batch: _Batch, sent: Any) -> dict:
    """The outcomes of ``batch`` (``sent``: its future; raises :class:`Paused`).

    A batch that our limiter kept back longer than it waits (``local_limit``: nothing was
    sent, e.g. the mailbox's window is used up, 10,000 Graph items per 10 minutes) is sent
    again once the limiter says there is room, beating meanwhile, instead of failing every
    item and waiting out rounds that are shorter than the window.
    """
    outcomes = sent.result()
    for _ in range(MAX_LIMITER_WAITS):
        wait = _held_back(outcomes)
        if wait is None:
            break
        deadline = time.monotonic() + wait
        while (left := deadline - time.monotonic()) > 0:
            time.sleep(min(left, BEAT_WHILE_WAITING_SECONDS))
            run.beat()  # raises LostClaim when another run took the job over
        outcomes = sender.submit(_transmit, calendar, batch).result()
    return outcomes


def _held_back(outcomes: dict[int, BatchResult]) -> float | None:
    """Seconds to wait when our limiter refused the whole batch before sending it."""
    errors = [result.error for result in outcomes.values()]
    if errors and all(
        isinstance(error, Throttled) and error.code == "local_limit" and error.retry_after
        for error in errors
    ):
        return max(error.retry_after for error in errors)  # type: ignore[union-attr]
    return None


def _prepare(run: _Run, reservation_ids: list[int]) -> _Batch | None:
    """Read one batch and build its payloads: one query whatever its size.

    Only the columns the payload and the outcome need are read (``EVENT_FIELDS``), and every
    reservation is given the binding's space and location as the run read them when it
    started, instead of a copy of both joined to each row (two more model instances per
    reservation, and their columns to decode), or a second query (Django takes longer to
    compile one than PostgreSQL to answer it). A space renamed while its export runs: the
    rest of that export still gives its old name, as every event sent before the rename
    does (a rename re-sends no event)."""
    from ..remote import EVENT_FIELDS, event_data

    binding = run.binding
    rows = list(
        exportable(binding)
        .filter(pk__in=reservation_ids)
        .select_related("requested_for", "sync_link")
        .only(
            *EVENT_FIELDS,
            "version",
            "sync_link__id",
            "sync_link__attempts",
            "sync_link__external_id",
        )
    )
    if not rows:
        return None
    space = binding.space  # read with its location by run_export_job
    reservations = {}
    for reservation in rows:
        reservation.space = space  # the same row (space_id is the binding's): no query
        reservations[reservation.pk] = reservation
    links = {pk: r.sync_link for pk, r in reservations.items()}
    batch = _Batch(
        reservations=reservations,
        links=links,
        versions={pk: r.version for pk, r in reservations.items()},
        # Attempted before but no remote id: the outcome is unknown; look before sending again.
        uncertain=[pk for pk, link in links.items() if link.attempts and not link.external_id],
        ops={},
        actions={},
        outcomes={},
    )
    for pk, reservation in reservations.items():
        link = links[pk]
        try:
            data = event_data(reservation, binding)
        except Exception as exc:  # one unbuildable reservation must not stop the others
            log.exception("export: cannot build the event of reservation %s", pk)
            batch.outcomes[pk] = BatchResult(
                str(pk), error=PermanentError(f"Cannot build the event ({type(exc).__name__}).")
            )
            continue
        if link.external_id:  # the event exists but shows an older version
            batch.ops[pk] = BatchOp(str(pk), "update", data, event_id=link.external_id)
            batch.actions[pk] = "update"
        else:
            batch.ops[pk] = BatchOp(str(pk), "create", data)
            batch.actions[pk] = "create"
    return batch


def _mark_attempted(run: _Run, batch: _Batch, undo: bool = False) -> None:
    """Count the attempt and, for the creates, mark the links "creating" (committed before the
    batch is sent, so a pull that reads one of the new events before ``_record`` saved its id
    knows it for ours: ``calendars.sync.attribution``); ``undo`` when it was never sent."""
    creates = [batch.links[pk].pk for pk, action in batch.actions.items() if action == "create"]
    # One UPDATE: every link's attempt, and the creates' "creating" mark (set, or undone).
    changes: dict[str, Any] = {"attempts": F("attempts") + (-1 if undo else 1)}
    if creates:
        changes["creating_at"] = Case(
            When(pk__in=creates, then=Value(None if undo else timezone.now())),
            default=F("creating_at"),
            output_field=SyncLink._meta.get_field("creating_at"),
        )
    SyncLink.objects.filter(pk__in=[link.pk for link in batch.links.values()]).update(**changes)
    if not undo:
        run.beat()


def _transmit(calendar: Any, batch: _Batch) -> dict[int, BatchResult]:
    """Look up the uncertain items by our tag, then send the rest in one batch call. HTTP only
    (runs in the sender thread); raises :class:`Paused` on a connection error."""
    outcomes: dict[int, BatchResult] = {}
    for pk in batch.uncertain:
        try:
            found = calendar.find(pk)
        except ProviderError as error:
            if isinstance(error, CONNECTION_ERRORS):
                raise Paused(error) from error
            outcomes[pk] = BatchResult(str(pk), error=error)
            continue
        if found is not None:
            outcomes[pk] = BatchResult(str(pk), event=found)
            batch.actions[pk] = "found"
    ops = [op for pk, op in batch.ops.items() if pk not in outcomes]
    if ops:
        try:
            results = calendar.batch(ops)
        except ProviderError as error:
            if isinstance(error, CONNECTION_ERRORS):
                raise Paused(error) from error
            results = [BatchResult(op.key, error=error) for op in ops]
        for result in results:
            if isinstance(result.error, CONNECTION_ERRORS):
                raise Paused(result.error)
            outcomes[int(result.key)] = result
    return outcomes


def _record(run, reservations, links, versions, outcomes, actions, last_round) -> None:
    """Every outcome of one batch, with the job's counts and heartbeat, in one transaction:
    one UPDATE for the links that synced, one per distinct failure."""
    created = updated = done = failed = 0
    errors: list[dict[str, Any]] = []
    synced: dict[int, RemoteEvent] = {}  # link id -> event
    failures: dict[tuple[str, bool], list[int]] = {}  # (message, gone) -> link ids
    for pk, result in outcomes.items():
        link = links[pk]
        if result.ok and result.event is not None:
            synced[link.pk] = result.event
            done += 1
            created += actions.get(pk) == "create"
            updated += actions.get(pk) == "update"
            continue
        error = result.error or TransientError("The provider returned no event.")
        # deleted remotely (EventGone): forget the id, to create it anew next round
        failures.setdefault((error.message[:1000], isinstance(error, EventGone)), []).append(
            link.pk
        )
        final = last_round or not isinstance(error, TransientError | EventGone)
        if final:
            run.given_up.add(pk)
            done += 1
            failed += 1
            errors.append(
                {
                    "reservation": pk,
                    "start": reservations[pk].start.isoformat(),
                    "error": error.message,
                    "code": error.code or (str(error.status) if error.status else ""),
                    "final": True,
                }
            )
    versions_by_link = {links[pk].pk: version for pk, version in versions.items()}
    now = timezone.now()
    with transaction.atomic():
        if synced:
            _save_synced(run.binding, synced, versions_by_link, now)
        for (message, gone), link_ids in failures.items():
            changes: dict[str, Any] = {
                "state": LinkState.FAILED,
                "last_error": message,
                "updated": now,
            }
            if gone:
                changes["external_id"] = ""
            SyncLink.objects.filter(pk__in=link_ids).exclude(state=LinkState.SYNCED).update(
                **changes
            )
        job = run.job
        run.beat(
            done=job.done + done,
            # Reservations booked after the start are exported too; the total follows.
            total=max(job.total, job.done + done),
            created_count=job.created_count + created,
            updated_count=job.updated_count + updated,
            failed_count=job.failed_count + failed,
            errors=(job.errors + errors)[-MAX_LISTED_ERRORS:] if errors else job.errors,
        )


def _save_synced(
    binding: SpaceCalendar, synced: dict[int, RemoteEvent], versions: dict[int, int], now: Any
) -> None:
    """The event id, iCalUID and versions of every synced link of a batch in one UPDATE, each
    link its own values (``UPDATE ... FROM`` a list of rows: PostgreSQL and SQLite 3.33+).

    A push that synced one of these reservations meanwhile wins (it may be newer): those rows
    are left alone (``state <> synced``), as ``.exclude(state=SYNCED).update(...)`` would.
    ``bulk_update``'s ``CASE WHEN`` per link and field cost more CPU than the round trips
    saved (about 1 ms per link to build and resolve in Django).
    """
    meta = SyncLink._meta
    quote = connection.ops.quote_name
    table = quote(meta.db_table)

    def column(name: str) -> str:
        return quote(meta.get_field(name).column)

    rows, params = [], []
    for link_id, event in synced.items():
        rows.append(
            "SELECT CAST(%s AS BIGINT) AS id, %s AS external_id, %s AS ical_uid, "
            "%s AS remote_version, CAST(%s AS INTEGER) AS pushed_version"
        )
        params += [link_id, event.id, event.ical_uid, event.version, versions[link_id]]
    constants = {
        "state": LinkState.SYNCED,
        "last_error": "",
        "attempts": 0,  # the outcome is known now
        "creating_at": None,  # in the same commit as the event id
        "event_made_at": now,  # (the next pull looks up the ones its feed does not report)
        "mailbox": binding.resource_email,
        "calendar_id": binding.calendar_id,
        "binding": binding.pk,
        "updated": now,
    }
    assignments = [
        f"{column(name)} = v.{name}"
        for name in ("external_id", "ical_uid", "remote_version", "pushed_version")
    ] + [f"{column(name)} = %s" for name in constants]
    prepared = [
        meta.get_field(name).get_db_prep_save(value, connection)
        for name, value in constants.items()
    ]
    # Names from the model's meta; every value is a parameter.
    sql = (
        f"UPDATE {table} SET {', '.join(assignments)} "  # noqa: S608
        f"FROM ({' UNION ALL '.join(rows)}) AS v "
        f"WHERE {table}.{column('id')} = v.id AND {table}.{column('state')} <> %s"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*prepared, *params, LinkState.SYNCED])
