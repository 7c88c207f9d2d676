"""The convergence run: a seeded random mix of portal and provider-side edits of one bound
room, under injected provider faults, after which Reserva and the room's calendar agree.

Operations (``OPS`` of them, 200 on the PostgreSQL leg):

- portal: book / move / rename / cancel through ``reservations.services``, as the owners of
  the bookings would (refusals, a taken slot above all, are counted, not errors);
- provider ("a person in Outlook / Google Calendar", through the sandbox's control API):
  create events (some on purpose on a booked slot: conflicts), move and delete any event of
  the room, rename the ones made there;
- now and then a pull, requested as a webhook does (``request_pull``) or as the beat does
  (``pull_due_bindings`` once the binding is due).

About 20% of the provider's calendar requests fail meanwhile (500, 503, a connection dropped
after the write landed). Then the faults go, the pushes' own retries (and pulls) bring things
in step, and ``convergence_problems`` must find nothing:

- every slot-holding reservation of the space in the sync window has exactly one remote event
  (our tag, or the event its link names for one made in the calendar) with its times and the
  title Reserva gives it (``remote.event_title``; a calendar-made one keeps its subject);
- every event of the room maps to a slot-holding or a ``conflicted`` reservation;
- no event carries a tag twice, and no two reservations link to one event.

Settling is what production does, faster: pulls as the beat would request them, until two
checks in a row find nothing. Pushes that failed are retried by their own tasks (backoff of
5, 10, 20 s...); only if something still waits after ``RETRY_PATH_AFTER`` seconds is the
admin's "Resume sync" used (it re-queues the links behind; the report says so). Never a bulk
export: a push lost for good must fail the run.

The seed is printed; ``RESERVA_CONVERGENCE_SEED=<seed>`` replays a run (and
``RESERVA_CONVERGENCE_OPS`` changes its length). The worker run needs PostgreSQL, Redis and a
real Celery worker (CI's PostgreSQL leg); ``test_convergence_in_process`` is a shorter run on
any database with the tasks eager (a push runs inside the booking call; a failed one waits,
with no retry timer, for "Resume sync" at once when settling) and the pulls in this process,
so the checker runs on the default leg too.
"""

from __future__ import annotations

import os
import random
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import requests
from django.utils import timezone

from calendars import remote
from calendars.models import JobKind, JobStatus, SpaceCalendar, SyncJob, SyncLink, SyncSettings
from calendars.sync import pull, trouble
from integrations.base import TransientError
from integrations.google.mapping import RESERVATION_PROPERTY as GOOGLE_TAG
from integrations.microsoft.mapping import RESERVATION_PROPERTY as GRAPH_TAG
from integrations.sandbox.testing import SandboxHandle
from reservations import services
from reservations.models import (
    REMOTE_SOURCES,
    SLOT_HOLDING_STATUSES,
    EventTitle,
    Reservation,
    ReservationStatus,
    Source,
)
from tests.calendars.conftest import GOOGLE_ROOM, MS_ROOM, control, remote_events, sync_worker
from tests.conftest import local, next_weekday, wait_for

SEED_ENV = "RESERVA_CONVERGENCE_SEED"
OPS_ENV = "RESERVA_CONVERGENCE_OPS"
WORKER_OPS = 200
IN_PROCESS_OPS = 60
SETTLE_SECONDS = 90  # faults off -> converged, at most
RETRY_PATH_AFTER = 40  # then the admin's "Resume sync" re-queues what still waits

SERVICE = {"microsoft": "graph", "google": "google-calendar"}
CALENDAR_PATHS = {"microsoft": r"^/v1\.0/users/[^/]+/(events|calendar)", "google": r"/calendars/"}
# Drawn one after another per request: 1 - 0.9 * 0.95 * 0.95 = about 19% of requests fail.
FAULTS = (
    {"kind": "500", "rate": 0.10},
    {"kind": "503", "rate": 0.05, "retry_after": 0},
    {"kind": "drop", "rate": 0.05, "after_write": True},
)

PORTAL_OPS = ("book", "move", "rename", "cancel")
REMOTE_OPS = ("create", "create_on_booking", "remote_move", "remote_rename", "remote_delete")
WEIGHTS = {
    "book": 20,
    "move": 12,
    "rename": 7,
    "cancel": 8,
    "create": 12,
    "create_on_booking": 8,
    "remote_move": 13,
    "remote_rename": 8,
    "remote_delete": 12,
}
PULL_EVERY = (3, 9)  # ops between two pull requests, drawn in this range


def seed_for_run() -> int:
    value = os.environ.get(SEED_ENV)
    return int(value) if value else random.SystemRandom().randrange(1, 10**9)


def ops_for_run(default: int) -> int:
    return int(os.environ.get(OPS_ENV) or default)


# -- reading the room's calendar ---------------------------------------------------------------


@dataclass(frozen=True)
class Seen:
    """One live event of the room's calendar, as the sandbox holds it."""

    id: str
    subject: str
    start: datetime
    end: datetime
    tag: int | None  # our reservation id, if the event carries it

    def describe(self) -> str:
        when = f"{self.start:%a %H:%M}-{self.end:%H:%M}"
        return f"{self.id[-12:]} {self.subject!r} {when} tag={self.tag}"


def _graph_time(value: dict[str, str]) -> datetime:
    text = value["dateTime"].split(".")[0]
    zone = value.get("timeZone") or "UTC"
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(zone)).astimezone(UTC)


def _tag(value: Any) -> int | None:
    text = str(value or "").strip()
    return int(text) if text.isdigit() else None


def parse_event(kind: str, item: dict[str, Any]) -> Seen:
    if kind == "microsoft":
        tags = [
            p.get("value")
            for p in item.get("singleValueExtendedProperties") or []
            if str(p.get("id", "")).lower() == GRAPH_TAG.lower()
        ]
        return Seen(
            item["id"],
            item.get("subject") or "",
            _graph_time(item["start"]),
            _graph_time(item["end"]),
            _tag(tags[0]) if tags else None,
        )
    private = (item.get("extendedProperties") or {}).get("private") or {}
    return Seen(
        item["id"],
        item.get("summary") or "",
        datetime.fromisoformat(item["start"]["dateTime"]).astimezone(UTC),
        datetime.fromisoformat(item["end"]["dateTime"]).astimezone(UTC),
        _tag(private.get(GOOGLE_TAG)),
    )


def room_of(kind: str) -> str:
    return MS_ROOM if kind == "microsoft" else GOOGLE_ROOM


def room_events(handle: SandboxHandle, kind: str) -> list[Seen]:
    return [parse_event(kind, item) for item in remote_events(handle, kind, room_of(kind))]


# -- the invariants ------------------------------------------------------------------------------


def _row(r: Reservation) -> str:
    return (
        f"#{r.pk} {r.status} {r.source} v{r.version} {r.start:%a %H:%M}-{r.end:%H:%M} "
        f"title={r.title!r} nickname={r.public_nickname!r}"
    )


def convergence_problems(binding: SpaceCalendar, events: list[Seen]) -> list[str]:
    """Every difference between the space's reservations and the room's calendar (empty: they
    agree). See the module docstring for the rules."""
    sync = SyncSettings.load()
    now = timezone.now()
    low, high = (
        now - timedelta(days=sync.sync_past_days),
        now + timedelta(days=sync.sync_future_days),
    )
    rows = list(
        Reservation.objects.select_related("space__location", "requested_for")
        .filter(space=binding.space)
        .order_by("start", "pk")
    )
    by_pk = {r.pk: r for r in rows}
    links = {
        link.reservation_id: link
        for link in SyncLink.objects.filter(reservation__space=binding.space)
    }
    in_window = [e for e in events if e.start < high and e.end > low]
    problems: list[str] = []

    by_tag: dict[int, list[Seen]] = defaultdict(list)
    for event in in_window:
        if event.tag is not None:
            by_tag[event.tag].append(event)
    for tag, found in sorted(by_tag.items()):
        if len(found) > 1:
            problems.append(
                f"duplicated: {len(found)} events tagged #{tag}: "
                + "; ".join(e.describe() for e in found)
            )

    live = [
        r
        for r in rows
        if (r.holds_slot or r.status == ReservationStatus.CONFLICTED)
        and r.end > low
        and r.start < high
    ]
    claimed: dict[str, list[int]] = defaultdict(list)
    for r in live:
        link = links.get(r.pk)
        if link is not None and link.external_id:
            claimed[link.external_id].append(r.pk)
    for event_id, owners in sorted(claimed.items()):
        if len(owners) > 1:
            problems.append(
                f"one event, {len(owners)} reservations: {event_id[-12:]} is linked from "
                + ", ".join(_row(by_pk[pk]) for pk in owners)
            )

    events_by_id = {e.id: e for e in in_window}
    explained: set[str] = set()
    for r in live:
        link = links.get(r.pk)
        mine = {e.id: e for e in by_tag.get(r.pk, [])}
        if link is not None and link.external_id in events_by_id:
            mine[link.external_id] = events_by_id[link.external_id]
        explained.update(mine)
        if len(mine) != 1:
            shown = "; ".join(e.describe() for e in mine.values()) or "none"
            linked = link.external_id[-12:] if link and link.external_id else "-"
            state = (
                f"link {linked} {link.state} pushed v{link.pushed_version}" if link else "no link"
            )
            problems.append(f"{_row(r)}: {len(mine)} remote events ({shown}; {state})")
            continue
        (event,) = mine.values()
        if (event.start, event.end) != (r.start, r.end):
            problems.append(f"{_row(r)}: the event says {event.describe()}")
        # Made in the calendar: the pull copied its subject; made here: Reserva titles it.
        wanted = r.title if r.source in REMOTE_SOURCES else remote.event_title(r)
        if event.subject != wanted:
            problems.append(f"{_row(r)}: the event is titled {event.subject!r}, not {wanted!r}")

    for event in in_window:
        if event.id in explained:
            continue
        owner = by_pk.get(event.tag) if event.tag is not None else None
        why = f"its tag names {_row(owner)}" if owner else "no reservation has it"
        problems.append(f"orphan event {event.describe()}: {why}")
    return problems


# -- the run -----------------------------------------------------------------------------------


@dataclass
class Tally:
    ops: Counter = field(default_factory=Counter)  # op -> done
    refused: Counter = field(default_factory=Counter)  # op: error class -> count
    skipped: Counter = field(default_factory=Counter)  # op -> nothing to act on
    pulls: Counter = field(default_factory=Counter)  # "webhook" / "beat" / "inline ..."

    def lines(self) -> list[str]:
        return [
            "done:    " + ", ".join(f"{k}={v}" for k, v in sorted(self.ops.items())),
            "refused: " + (", ".join(f"{k}={v}" for k, v in sorted(self.refused.items())) or "-"),
            "skipped: " + (", ".join(f"{k}={v}" for k, v in sorted(self.skipped.items())) or "-"),
            "pulls:   " + ", ".join(f"{k}={v}" for k, v in sorted(self.pulls.items())),
        ]


class ConvergenceRun:
    """Draws and applies the operations; ``inline_pull`` pulls in this process (eager runs)
    instead of queueing the pull task."""

    def __init__(
        self,
        *,
        handle: SandboxHandle,
        kind: str,
        binding: SpaceCalendar,
        users: list,
        seed: int,
        inline_pull: bool = False,
    ) -> None:
        self.handle, self.kind, self.binding, self.users = handle, kind, binding, users
        self.random = random.Random(seed)
        self.inline_pull = inline_pull
        self.location = binding.space.location
        self.first_day = next_weekday(1)
        self.tally = Tally()
        self.names = 0
        self.session = requests.Session()
        self.session.trust_env = False
        self.session.verify = str(handle.ca_file)

    # slots: a small grid of 3 days x 8:00-17:30, so collisions are frequent
    def slot(self) -> tuple[datetime, datetime]:
        day = self.first_day + timedelta(days=self.random.randrange(3))
        start = local(self.location, day, self.random.randrange(8, 18), self.random.choice((0, 30)))
        return start, start + timedelta(minutes=self.random.choice((30, 60, 90)))

    def name(self, prefix: str) -> str:
        self.names += 1
        return f"{prefix} {self.names}"

    # -- provider side
    @property
    def _path(self) -> str:
        if self.kind == "microsoft":
            return f"microsoft/mailboxes/{MS_ROOM}/events"
        return f"google/calendars/{GOOGLE_ROOM}/events"

    def _times(self, start: datetime, end: datetime) -> dict[str, Any]:
        if self.kind == "microsoft":
            fmt = "%Y-%m-%dT%H:%M:%S"
            return {
                "start": {"dateTime": start.astimezone(UTC).strftime(fmt), "timeZone": "UTC"},
                "end": {"dateTime": end.astimezone(UTC).strftime(fmt), "timeZone": "UTC"},
            }
        return {
            "start": {"dateTime": start.astimezone(UTC).isoformat().replace("+00:00", "Z")},
            "end": {"dateTime": end.astimezone(UTC).isoformat().replace("+00:00", "Z")},
        }

    def _subject(self, text: str) -> dict[str, str]:
        return {"subject" if self.kind == "microsoft" else "summary": text}

    def _edit(self, method: str, path: str, body: dict | None = None) -> bool:
        """A control call on an event the worker may have deleted a moment ago: False then."""
        url = f"{self.handle.base_url}/_sandbox/api/{path}"
        response = self.session.request(method, url, json=body, timeout=30)
        if response.status_code in (404, 410):
            return False
        assert response.status_code < 400, response.text
        return True

    def create(self, start: datetime, end: datetime) -> None:
        assert self._edit(
            "POST", self._path, {**self._subject(self.name("Walk-in")), **self._times(start, end)}
        )

    # -- operations
    def portal_rows(self) -> list[Reservation]:
        return list(
            Reservation.objects.select_related("space__location", "requested_for")
            .filter(
                space=self.binding.space,
                source=Source.PORTAL,
                status__in=SLOT_HOLDING_STATUSES,
                start__gte=timezone.now(),
            )
            .order_by("pk")
        )

    def step(self, op: str) -> None:
        if op in PORTAL_OPS:
            self.portal(op)
        else:
            self.provider(op)

    def portal(self, op: str) -> None:
        try:
            if op == "book":
                start, end = self.slot()
                nickname = self.name("Meeting")
                services.book(
                    actor=self.random.choice(self.users), space=self.binding.space, start=start,
                    end=end, title=nickname, public_nickname=nickname,
                )  # fmt: skip
                self.tally.ops[op] += 1
                return
            rows = self.portal_rows()
            if not rows:
                self.tally.skipped[op] += 1
                return
            row = self.random.choice(rows)
            owner = row.requested_for
            if op == "move":
                start, end = self.slot()
                services.change(actor=owner, reservation=row, start=start, end=end)
            elif op == "rename":
                nickname = self.name("Renamed")
                services.change(
                    actor=owner, reservation=row, title=nickname, public_nickname=nickname
                )
            else:
                services.cancel(actor=owner, reservation=row, reason="Not needed.")
            self.tally.ops[op] += 1
        except services.BookingError as exc:  # a taken slot (Conflict), a stale row...
            self.tally.refused[f"{op}: {type(exc).__name__}"] += 1

    def provider(self, op: str) -> None:
        if op == "create":
            self.create(*self.slot())
            self.tally.ops[op] += 1
            return
        if op == "create_on_booking":
            rows = self.portal_rows()
            if not rows:
                self.tally.skipped[op] += 1
                return
            row = self.random.choice(rows)
            shift = timedelta(minutes=self.random.choice((0, 0, 30, -30)))
            self.create(row.start + shift, row.end + shift)
            self.tally.ops[op] += 1
            return
        events = room_events(self.handle, self.kind)
        if op == "remote_rename":
            # A booking made in Reserva gets its subject from Reserva (remote.event_title):
            # people rename the events they made in their calendar.
            events = [e for e in events if e.tag is None]
        if not events:
            self.tally.skipped[op] += 1
            return
        event = self.random.choice(events)
        path = f"{self._path}/{event.id}"
        if op == "remote_move":
            done = self._edit("PATCH", path, self._times(*self.slot()))
        elif op == "remote_rename":
            done = self._edit("PATCH", path, self._subject(self.name("Retitled")))
        else:
            done = self._edit("DELETE", path)
        self.tally.ops[op if done else f"{op} (gone meanwhile)"] += 1

    def request_pull(self) -> None:
        if self.inline_pull:
            try:
                status = pull.pull_binding(self.binding.pk).status
            except TransientError:
                status = "failed"
            self.tally.pulls[f"inline {status}"] += 1
        elif self.random.random() < 0.5:
            self.tally.pulls["webhook"] += pull.request_pull(self.binding.pk)
        else:
            SpaceCalendar.objects.filter(pk=self.binding.pk).update(next_pull_at=None)
            self.tally.pulls["beat"] += pull.pull_due_bindings()

    def run(self, count: int, *, pace: float = 0.0) -> None:
        ops, weights = zip(*WEIGHTS.items(), strict=True)
        until_pull = self.random.randint(*PULL_EVERY)
        for _ in range(count):
            self.step(self.random.choices(ops, weights)[0])
            until_pull -= 1
            if until_pull <= 0:
                self.request_pull()
                until_pull = self.random.randint(*PULL_EVERY)
            if pace:
                time.sleep(self.random.uniform(0, pace))

    # -- faults and settling
    def add_faults(self) -> None:
        for fault in FAULTS:
            control(
                self.handle,
                "POST",
                "faults",
                json={
                    "service": SERVICE[self.kind],
                    "path": CALENDAR_PATHS[self.kind],
                    "count": None,
                    **fault,
                },
            )

    def remove_faults(self) -> Counter:
        fired = Counter()
        for fault in control(self.handle, "GET", "faults")["value"]:
            fired[fault["kind"]] += fault["fired"]
        control(self.handle, "DELETE", "faults")
        return fired

    def pulled_since(self, moment: datetime) -> bool:
        return SyncJob.objects.filter(
            binding=self.binding, kind=JobKind.PULL, status=JobStatus.SUCCEEDED,
            started_at__gt=moment,
        ).exists()  # fmt: skip

    def settle(
        self, timeout: float = SETTLE_SECONDS, resume_after: float = RETRY_PATH_AFTER
    ) -> tuple[list[str], dict[str, Any]]:
        """Faults are off: pull (as the beat would) until the calendar and Reserva agree
        twice in a row. Pushes still waiting are retried by their tasks; past
        ``resume_after`` seconds the admin's "Resume sync" re-queues the links still behind
        (counted: on a worker it should rarely be needed; eager tasks have no retry timer,
        so there it is the retry)."""
        started = time.monotonic()
        facts: dict[str, Any] = {"rounds": 0, "resume_sync_queued": None}
        clean, problems = 0, ["not checked yet"]
        while time.monotonic() - started < timeout:
            facts["rounds"] += 1
            resumed = facts["resume_sync_queued"] is not None
            if not resumed and time.monotonic() - started >= resume_after:
                facts["resume_sync_queued"] = trouble.resume_binding(self.binding.pk)
            moment = timezone.now()
            if self.inline_pull:
                pull.pull_binding(self.binding.pk)
            else:
                SpaceCalendar.objects.filter(pk=self.binding.pk).update(next_pull_at=None)
                pull.pull_due_bindings()
                if not wait_for(lambda m=moment: self.pulled_since(m), 30):
                    problems = ["no pull succeeded within 30 s"]
                    continue
            problems = convergence_problems(self.binding, room_events(self.handle, self.kind))
            clean = clean + 1 if not problems else 0
            if clean >= 2:
                break
            time.sleep(0.5 if not problems else 1.5)
        facts["seconds"] = round(time.monotonic() - started, 1)
        return problems, facts


def summary(run: ConvergenceRun, *, seed: int, fired: Counter, facts: dict, started: float) -> str:
    rows = Reservation.objects.filter(space=run.binding.space)
    statuses = Counter(rows.values_list("status", flat=True))
    sources = Counter(
        rows.filter(status__in=SLOT_HOLDING_STATUSES).values_list("source", flat=True)
    )
    pushes = Counter(
        SyncJob.objects.filter(binding=run.binding, kind=JobKind.PUSH).values_list(
            "status", flat=True
        )
    )
    pulls = Counter(
        SyncJob.objects.filter(binding=run.binding, kind=JobKind.PULL).values_list(
            "status", flat=True
        )
    )
    return "\n".join(
        [
            f"convergence run ({run.kind}): seed {seed} ({SEED_ENV}={seed} to replay)",
            *run.tally.lines(),
            f"faults fired: {dict(fired)}",
            f"push jobs: {dict(pushes)}; pull jobs: {dict(pulls)}",
            f"reservations: {dict(statuses)}; slot holders by source: {dict(sources)}",
            f"remote events: {len(room_events(run.handle, run.kind))}",
            f"settled: {facts}; total {time.monotonic() - started:.1f} s",
        ]
    )


def check(problems: list[str], report: str) -> None:
    assert not problems, (
        f"{len(problems)} differences between Reserva and the room's calendar:\n  "
        + "\n  ".join(problems)
        + "\n"
        + report
    )


@pytest.fixture(params=["microsoft", "google"])
def kind(request) -> str:
    return request.param


@pytest.fixture
def binding(kind: str, request) -> SpaceCalendar:
    binding = request.getfixturevalue("ms_binding" if kind == "microsoft" else "google_binding")
    location = binding.space.location
    location.event_title = EventTitle.PUBLIC_NICKNAME  # a portal rename shows in the calendar
    location.save(update_fields=["event_title"])
    return binding


@pytest.mark.worker
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_convergence_on_a_worker(binding, kind, sandbox, make_user):
    """The issue's run: 200 operations with about 20% of the provider's calendar requests
    failing, pushes and pulls on a real Celery worker (PostgreSQL, Redis), then agreement."""
    seed, count = seed_for_run(), ops_for_run(WORKER_OPS)
    print(f"\nconvergence run ({kind}): seed {seed}, {count} operations")
    started = time.monotonic()
    run = ConvergenceRun(
        handle=sandbox, kind=kind, binding=binding, users=[make_user() for _ in range(3)], seed=seed
    )
    with sync_worker("test-conv"):
        run.request_pull()  # the first (full) read, as the beat would
        run.add_faults()
        run.run(count, pace=0.05)
        fired = run.remove_faults()
        problems, facts = run.settle()
        report = summary(run, seed=seed, fired=fired, facts=facts, started=started)
        print(report)
    check(problems, report)
    assert sum(fired.values()) > 0, "no fault fired: the run proved nothing about retries"


@pytest.mark.django_db(transaction=True)
def test_convergence_in_process(binding, kind, sandbox, make_user):
    """The same, shorter, with the tasks eager (a push runs inside the booking call; a failed
    one waits for "Resume sync" when settling) and the pulls run in this process."""
    seed, count = seed_for_run(), ops_for_run(IN_PROCESS_OPS)
    print(f"\nconvergence run in process ({kind}): seed {seed}, {count} operations")
    started = time.monotonic()
    run = ConvergenceRun(
        handle=sandbox,
        kind=kind,
        binding=binding,
        users=[make_user() for _ in range(3)],
        seed=seed,
        inline_pull=True,
    )
    run.request_pull()
    run.add_faults()
    run.run(count)
    fired = run.remove_faults()
    problems, facts = run.settle(timeout=30, resume_after=0)
    report = summary(run, seed=seed, fired=fired, facts=facts, started=started)
    print(report)
    check(problems, report)
