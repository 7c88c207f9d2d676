"""Steady-state scale run: N rooms (default 1,000; half Microsoft 365, half Google) bound in
the provider sandbox with webhooks on, one remote and one local change per room per
simulated hour, run compressed (``--speed``, default 60x) for ``--minutes`` (default 10: ten
simulated hours). Production in small, all as separate processes on PostgreSQL + Redis: the
sandbox (HTTPS, its own CA), gunicorn (the webhook endpoints), ``--workers`` Celery workers
(``-Q default,sync``, prefork ``--concurrency``) and one Celery beat.

What is compressed, and what is not
- Compressed: the change rate only. At 60x each room gets one remote and one local change per
  real minute (60 per real hour), so 10 real minutes carry ten simulated hours of changes.
- Not compressed: every clock. The sandbox clock is not moved (access tokens, Graph
  subscriptions and Google channels expire on real time, as in production); beat's ticks,
  the subscription expiry and renewal times and the polling interval are real wall-clock.
  None of them can be sped up without changing the product, so their costs are measured
  apart and added per simulated hour:
  * polling: beat's ``pull_due_bindings`` is kept out of the run (the pull interval is set
    to its maximum while it lasts); instead one *poll round* (a no-change pull of every room,
    what beat requests every ``pull_interval_minutes``) is measured after the run;
  * renewals: none falls due in ten real minutes (Graph subscriptions live three days and
    are renewed a day before expiry, Google channels a week); one *renewal round* (every
    subscription made due, then beat's ``renew_subscriptions``) is measured after the run,
    and the renewals per hour follow from the product's expiry constants;
  * beat's other ticks: an idle phase before the run gives the background rate (worker CPU
    and provider requests per real second), counted once per real hour.
- Provider quotas at 60x: each Google delegated user would see 60x its real request rate,
  so the Google rooms are spread over several delegated users (``--google-rooms-per-user``,
  one Google provider each) and the 600 requests/min/user quota is checked in the report
  against the per-simulated-hour rate instead. Graph's limits are per room mailbox and stay
  as published (4 in flight, 10,000 requests per 10 minutes).

The changes
- remote ("someone in Outlook / Google Calendar", through the sandbox's control API): create
  an event in the room's calendar, or move the room's latest event by 30 minutes, in turn;
- local (through ``reservations.services`` as a signed-in person would): book the room, or
  move the room's latest booking by 30 minutes, in turn. Each room starts with one event
  and one booking of each kind already in step, so the first change can be a move.
Remote events sit in the morning, bookings in the afternoon: no change collides.

Figures (printed, and with ``--results`` recorded through ``bench/results.py``)
- end to end: changes made, changes seen on the other side, misses (listed with their ids);
- lag, from the change to it being applied on the other side: remote -> Reserva (the
  control call's time to the reservation's history row), local -> provider (the service
  call's time to the sandbox's ``createdDateTime``/``lastModifiedDateTime`` or
  ``created``/``updated``): p50, p95, max, under the compressed (60x) load;
- provider requests (the sandbox's counters; ``$batch`` items each count, as Graph and
  Google count them): per second during the compressed run, per change, per poll round and
  per renewal, and per second at real speed for N rooms (steady state);
- worker CPU seconds (/proc, the worker processes and their pool children): per change, per
  room polled, per renewal, and per simulated hour for N rooms; gunicorn's (webhooks) apart;
- subscription renewals: seen during the run, and per simulated hour for N rooms;
- Celery queue depth (``sync`` + ``default``), the largest sampled;
- database growth per year for N rooms: rows per change, per poll and per renewal (exact
  counts of every table before and after each phase) times each table's bytes per row at
  the end (``pg_total_relation_size``, indexes included; inflated on a small database).

"Settled" means every change is on the other side, nothing is queued, requested or running,
and no provider request came for five seconds: the sandbox delivers its notifications one at
a time from a queue of its own, so a late one can still start a pull after the queues empty
(that queue is also part of the remote -> Reserva lag under load).

Run (PostgreSQL and Redis are required; the database, named ``*bench*``, is dropped and
made again; the Redis database's ``sync``/``default`` queues are emptied first)::

    REDIS_URL=redis://127.0.0.1:6379/3 .venv/bin/python bench/scale.py       # 1,000 rooms
    make bench-scale
    REDIS_URL=... .venv/bin/python bench/scale.py --quick --results bench/results.json

``--quick`` (make bench): 50 rooms for 1 minute. The processes' logs stay in ``--log-dir``
(default: a temporary folder, removed at the end unless ``--keep-logs``).
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from datetime import time as dt_time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
import results
from export import prepare_database

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the sandbox and Django's apps, imported later
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/reserva_scale_bench"
MS_ROOM = "scale-{:04d}@contoso.test"
GOOGLE_ROOM = "c_5ca1e{:06d}@resource.calendar.google.com"
GOOGLE_DELEGATE = "scale-sync-{:03d}@northwind.test"
GOOGLE_SERVICE_ACCOUNT = "reserva-sync@reserva-sandbox.iam.gserviceaccount.com"
CLOCK_TICK = os.sysconf("SC_CLK_TCK")
QUIET_SECONDS = 5
NO_POLLING_MINUTES = 32767  # SyncSettings.pull_interval_minutes' largest value
# Documented limits the report compares with (README "Scaling" cites them).
GRAPH_MAILBOX_PER_10_MIN = 10_000
GOOGLE_PER_USER_PER_MIN = 600
GOOGLE_PER_PROJECT_PER_MIN = 10_000


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL)
    )
    parser.add_argument("--rooms", type=int, default=1000, help="half Microsoft, half Google")
    parser.add_argument("--minutes", type=float, default=10.0, help="real minutes of changes")
    parser.add_argument("--speed", type=float, default=60.0, help="simulated hours per real hour")
    parser.add_argument("--workers", type=int, default=2, help="Celery worker processes")
    parser.add_argument("--concurrency", type=int, default=2, help="pool size per worker")
    parser.add_argument("--web-workers", type=int, default=2, help="gunicorn workers (webhooks)")
    parser.add_argument("--google-rooms-per-user", type=int, default=25)
    parser.add_argument("--idle-seconds", type=float, default=60.0)
    parser.add_argument("--settle-seconds", type=float, default=180.0)
    parser.add_argument("--setup-seconds", type=float, default=900.0)
    parser.add_argument("--driver-threads", type=int, default=8)
    parser.add_argument("--log-dir", type=Path, default=None)
    parser.add_argument("--keep-logs", action="store_true")
    parser.add_argument("--quick", action="store_true", help="50 rooms, 1 minute (make bench)")
    results.add_argument(parser)
    args = parser.parse_args(argv)
    if args.quick:
        args.rooms, args.minutes, args.idle_seconds = 50, 1.0, 10.0
        args.settle_seconds, args.setup_seconds = 60.0, 120.0
    return args


# --- processes --------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def child_environment(opts: argparse.Namespace, web_port: int, sandbox_url: str) -> dict:
    """What every process of the run reads: the production settings (DEBUG off) on the bench
    database and Redis, webhooks at the local gunicorn, the sandbox allowed."""
    from cryptography.fernet import Fernet

    return {
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DEBUG": "false",
        "SECRET_KEY": "scale-bench-" + Fernet.generate_key().decode(),
        "FIELD_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECURE_SSL_REDIRECT": "false",
        "DATABASE_URL": opts.database_url,
        "REDIS_URL": os.environ["REDIS_URL"],
        "EMAIL_URL": "dummymail://",
        "LOG_LEVEL": "WARNING",
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{web_port}",
        "CALENDAR_WEBHOOKS": "true",
        "PROVIDER_ENDPOINT_ALLOWLIST": sandbox_url,
        "RECONCILE_HOUR": "-1",  # the daily reconciliation is its own cost (README "Scaling")
    }


class Stack:
    """The run's processes, each in its own process group, logging to a file; stopped
    (SIGTERM, then SIGKILL after 15 s) and reaped at the end."""

    def __init__(self, folder: Path, env: dict[str, str]) -> None:
        self.folder, self.env = folder, env
        self.processes: dict[str, subprocess.Popen] = {}

    def start(self, name: str, command: list[str]) -> subprocess.Popen:
        with (self.folder / f"{name}.log").open("w") as log:
            process = subprocess.Popen(
                command,
                cwd=ROOT,
                env={**os.environ, **self.env, "PGAPPNAME": f"scale-{name}"},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.processes[name] = process
        return process

    def pids(self, prefix: str) -> list[int]:
        return [p.pid for name, p in self.processes.items() if name.startswith(prefix)]

    def check(self) -> None:
        dead = [name for name, p in self.processes.items() if p.poll() is not None]
        if dead:
            raise SystemExit(f"{', '.join(dead)} exited; see the logs in {self.folder}")

    def stop(self) -> None:
        for process in self.processes.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        self.processes.clear()


def tree_cpu(roots: Iterable[int]) -> float:
    """CPU seconds (user + system) of these processes, their live descendants and the children
    they have reaped, from /proc."""
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry.name)] = int(fields[1])
        times[int(entry.name)] = sum(int(v) for v in fields[11:15]) / CLOCK_TICK
    wanted = set(roots)
    changed = True
    while changed:
        found = {pid for pid, parent in parents.items() if parent in wanted} - wanted
        changed = bool(found)
        wanted |= found
    return sum(times.get(pid, 0.0) for pid in wanted)


# --- the sandbox ------------------------------------------------------------------------------


def sandbox_config(ms_rooms: int, google_rooms: int, delegates: int) -> dict:
    from integrations.sandbox.config import default_config
    from integrations.sandbox.google.directory import DEFAULTS as GOOGLE_DEFAULTS

    config = default_config()
    tenant = config["microsoft"]["tenants"][0]
    tenant["rooms"] += [
        {
            "id": f"5ca1e000-{i:04d}-4f3e-b1d2-00000000c000",
            "email": MS_ROOM.format(i),
            "display_name": f"Scale room {i}",
            "capacity": 8,
            "building": "Scale",
            "floor": 1,
        }
        for i in range(ms_rooms)
    ]
    google = json.loads(json.dumps(GOOGLE_DEFAULTS))
    google["users"] += [
        {"email": GOOGLE_DELEGATE.format(d), "name": f"Scale sync {d}"} for d in range(delegates)
    ]
    google["resources"] += [
        {
            "email": GOOGLE_ROOM.format(i),
            "name": f"Scale room G{i}",
            "capacity": 8,
            "building_id": "Scale",
            "floor": "1",
            "writers": [GOOGLE_SERVICE_ACCOUNT, GOOGLE_DELEGATE.format(delegate_of(i, delegates))],
            "readers": [],
        }
        for i in range(google_rooms)
    ]
    config["google"] = google
    config["sandbox"]["limits"] = {
        "graph": {
            "max_in_flight": 4,
            "max_requests": GRAPH_MAILBOX_PER_10_MIN,
            "window_seconds": 600,
        },
    }
    config["sandbox"]["log_size"] = 2000
    return config


def delegate_of(google_room: int, delegates: int) -> int:
    return google_room % delegates


class Sandbox:
    """The control API of the sandbox subprocess."""

    def __init__(self, base_url: str, ca_file: Path) -> None:
        self.base_url, self.ca_file = base_url, ca_file
        self._local = threading.local()

    def session(self) -> requests.Session:
        if not hasattr(self._local, "session"):
            session = requests.Session()
            session.trust_env = False
            session.verify = str(self.ca_file)
            self._local.session = session
        return self._local.session

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.session().request(
            method, f"{self.base_url}/_sandbox/api/{path}", timeout=60, **kwargs
        )
        response.raise_for_status()
        return response.json() if response.content else None

    def counters(self) -> dict[str, dict[str, int]]:
        return self.call("GET", "counters")


def start_sandbox(stack: Stack, state: Path, config: dict) -> Sandbox:
    port = free_port()
    (state / "scale-config.json").write_text(json.dumps(config))
    stack.start(
        "sandbox",
        [
            sys.executable,
            "-m",
            "integrations.sandbox",
            "--port",
            str(port),
            "--state-dir",
            str(state),
            "--config",
            str(state / "scale-config.json"),
        ],
    )
    sandbox = Sandbox(f"https://127.0.0.1:{port}", state / "ca.pem")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        stack.check()
        try:
            if sandbox.ca_file.exists():
                sandbox.call("GET", "state")
                return sandbox
        except (requests.RequestException, OSError):
            pass
        time.sleep(0.3)
    raise SystemExit("the sandbox did not start within 60 s")


# --- Django, the world ------------------------------------------------------------------------


def setup_django(env: dict[str, str]) -> None:
    os.environ.update(env)
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import django

    django.setup()


@dataclass
class Room:
    index: int
    kind: str  # "microsoft" / "google"
    calendar: str  # mailbox / calendar id
    binding_id: int
    space_id: int
    remote_events: list[str]  # event ids made "in Outlook / Google", newest last
    local_bookings: list[int]  # reservation ids made in Reserva, newest last
    remote_starts: dict[str, datetime]
    local_starts: dict[int, datetime]


def make_world(sandbox: Sandbox, rooms: int, per_user: int) -> tuple[Any, list[Room]]:
    """A staff user, a UTC location, one Microsoft provider, one Google provider per delegated
    user, and ``rooms`` spaces bound to the sandbox's scale rooms (bindings are saved one by
    one, so the receivers queue each one's webhook subscription, as the admin does)."""
    from django.contrib.auth import get_user_model

    from calendars.models import (
        CalendarProvider,
        ConnectionAlias,
        CredentialAlias,
        ProviderKind,
        SpaceCalendar,
    )
    from integrations.sandbox.config import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_TENANT_ID
    from reservations.models import Location, OpeningHours, Space

    user = get_user_model().objects.create_user(
        "scale",
        email="scale@example.com",
        first_name="Scale",
        last_name="Bench",
        is_staff=True,
        is_superuser=True,
    )
    location = Location.objects.create(name="Scale campus", time_zone="UTC")
    OpeningHours.objects.bulk_create(
        OpeningHours(location=location, weekday=day, opens=dt_time(0), closes=dt_time(23, 59))
        for day in range(7)
    )
    base = sandbox.base_url
    ms = CalendarProvider.objects.create(
        name="Scale Microsoft 365",
        kind=ProviderKind.MICROSOFT,
        connection=ConnectionAlias.objects.create(
            name="Scale Microsoft",
            kind=ProviderKind.MICROSOFT,
            authority_url=base,
            authorization_url=base,
            api_base_url=f"{base}/v1.0",
            ca_bundle=str(sandbox.ca_file),
        ),
        credential=CredentialAlias.objects.create(
            name="Scale Microsoft app",
            kind=ProviderKind.MICROSOFT,
            tenant_id=DEMO_TENANT_ID,
            client_id=DEMO_CLIENT_ID,
            client_secret=DEMO_CLIENT_SECRET,
            scopes="Calendars.ReadWrite",
        ),
        delegated_user_email="reserva-blocker@contoso.test",
    )
    ms_rooms, google_rooms = rooms - rooms // 2, rooms // 2
    delegates = max(1, math.ceil(google_rooms / per_user))
    key = json.loads((Path(sandbox.ca_file).parent / "google" / "reserva-sync.json").read_text())
    google_connection = ConnectionAlias.objects.create(
        name="Scale Google",
        kind=ProviderKind.GOOGLE,
        authority_url=f"{base}/google/oauth2/token",
        authorization_url=f"{base}/google/o/oauth2/v2/auth",
        api_base_url=f"{base}/google/calendar/v3",
        ca_bundle=str(sandbox.ca_file),
    )
    google_credential = CredentialAlias.objects.create(
        name="Scale Google app",
        kind=ProviderKind.GOOGLE,
        client_id="284719300001-reservasandbox.apps.googleusercontent.com",
        client_secret="GOCSPX-sandbox-demo-not-a-real-secret",  # noqa: S106 - the sandbox's
        service_account_key=key,
        scopes="https://www.googleapis.com/auth/calendar",
    )
    google = [
        CalendarProvider.objects.create(
            name=f"Scale Google {d}",
            kind=ProviderKind.GOOGLE,
            connection=google_connection,
            credential=google_credential,
            delegated_user_email=GOOGLE_DELEGATE.format(d),
        )
        for d in range(delegates)
    ]
    world = []
    for i in range(rooms):
        if i < ms_rooms:
            kind, calendar, provider, extra = "microsoft", MS_ROOM.format(i), ms, {}
        else:
            g = i - ms_rooms
            calendar = GOOGLE_ROOM.format(g)
            kind, provider = "google", google[delegate_of(g, delegates)]
            extra = {"calendar_id": calendar}
        space = Space.objects.create(location=location, name=f"Scale {i:04d}", capacity=8)
        binding = SpaceCalendar.objects.create(
            space=space,
            provider=provider,
            resource_email=calendar,
            calendar_name="Calendar",
            **extra,
        )
        world.append(Room(i, kind, calendar, binding.pk, space.pk, [], [], {}, {}))
    return user, world


def graph_time(when: datetime) -> dict[str, str]:
    return {"dateTime": when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"}


def event_path(room: Room, event_id: str = "") -> str:
    kind = "microsoft/mailboxes" if room.kind == "microsoft" else "google/calendars"
    return f"{kind}/{room.calendar}/events" + (f"/{event_id}" if event_id else "")


def event_times(room: Room, start: datetime) -> dict[str, Any]:
    end = start + timedelta(minutes=30)
    if room.kind == "microsoft":
        return {"start": graph_time(start), "end": graph_time(end)}
    return {"start": {"dateTime": start.isoformat()}, "end": {"dateTime": end.isoformat()}}


# --- the changes ------------------------------------------------------------------------------


@dataclass
class Change:
    side: str  # "remote" (made in the calendar) / "local" (made in Reserva)
    op: str  # "create" / "move"
    room: int
    ref: str  # event id (remote) / reservation id (local)
    start: datetime  # the start it sets
    sent: float  # time.time() just before the call
    late: float  # seconds behind its schedule
    error: str = ""


class Driver:
    """Makes the changes: remote ones through the sandbox's control API, local ones through
    ``reservations.services``; each room's latest event / booking is the one moved."""

    def __init__(self, sandbox: Sandbox, user: Any, rooms: list[Room], day0: datetime) -> None:
        self.sandbox, self.user, self.rooms, self.day0 = sandbox, user, rooms, day0
        self.locks = {room.index: threading.Lock() for room in rooms}

    def remote(self, room: Room, op: str, scheduled: float) -> Change:
        with self.locks[room.index]:
            if op == "create":
                start = self.day0 + timedelta(days=len(room.remote_events), hours=8)
            else:
                ref = room.remote_events[-1]
                start = room.remote_starts[ref] + timedelta(minutes=30)
            sent = time.time()
            try:
                if op == "create":
                    title = {"subject" if room.kind == "microsoft" else "summary": "Scale remote"}
                    made = self.sandbox.call(
                        "POST", event_path(room), json={**title, **event_times(room, start)}
                    )
                    ref = made["id"]
                    room.remote_events.append(ref)
                else:
                    self.sandbox.call("PATCH", event_path(room, ref), json=event_times(room, start))
                room.remote_starts[ref] = start
                return Change("remote", op, room.index, ref, start, sent, sent - scheduled)
            except requests.RequestException as exc:
                ref = locals().get("ref", "")
                return Change("remote", op, room.index, ref, start, sent, 0, str(exc))

    def local(self, room: Room, op: str, scheduled: float) -> Change:
        from django.db import close_old_connections

        from reservations import services
        from reservations.models import Reservation, Space

        close_old_connections()
        with self.locks[room.index]:
            sent = time.time()
            ref = ""
            try:
                if op == "create":
                    start = self.day0 + timedelta(days=len(room.local_bookings), hours=14)
                    made = services.book(
                        actor=self.user,
                        space=Space.objects.get(pk=room.space_id),
                        start=start,
                        end=start + timedelta(minutes=30),
                        title="Scale local",
                    ).reservations[0]
                    ref = made.pk
                    room.local_bookings.append(ref)
                else:
                    ref = room.local_bookings[-1]
                    start = room.local_starts[ref] + timedelta(minutes=30)
                    services.change(
                        actor=self.user,
                        reservation=Reservation.objects.get(pk=ref),
                        start=start,
                        end=start + timedelta(minutes=30),
                    )
                room.local_starts[ref] = start
                return Change("local", op, room.index, str(ref), start, sent, sent - scheduled)
            except Exception as exc:  # a refusal is a finding: reported, not raised
                return Change("local", op, room.index, str(ref), self.day0, sent, 0, repr(exc))


def schedule(rooms: list[Room], seconds: float, speed: float) -> list[tuple[float, str, Room, str]]:
    """(offset, side, room, op): each room's remote and local changes every 3600 / speed s,
    the rooms spread evenly over the period, remote and local half a period apart; create and
    move in turn (by room, so both kinds come from the first period on)."""
    period = 3600.0 / speed
    plan = []
    for room in rooms:
        for side, shift in (("remote", 0.0), ("local", 0.5)):
            first = (room.index + shift) / len(rooms) * period
            for k in itertools.count():
                at = first + k * period
                if at >= seconds:
                    break
                plan.append((at, side, room, "create" if (room.index + k) % 2 else "move"))
    plan.sort(key=lambda item: item[0])
    return plan


# --- waiting, measuring -----------------------------------------------------------------------


def wait_until(check: Callable[[], Any], timeout: float, stack: Stack, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        stack.check()
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise SystemExit(f"{what}: not within {timeout:.0f} s; logs in {stack.folder}")
        time.sleep(0.5)


def queued(redis_client: Any) -> int:
    return sum(redis_client.llen(q) for q in ("sync", "default"))


def sync_quiet(redis_client: Any) -> bool:
    """Nothing queued, no pull requested or running, no push waiting."""
    from calendars.models import JobStatus, LinkState, SpaceCalendar, SyncJob, SyncLink

    return (
        queued(redis_client) == 0
        and not SpaceCalendar.objects.filter(pull_requested_at__isnull=False).exists()
        and not SyncJob.objects.filter(status__in=[JobStatus.QUEUED, JobStatus.RUNNING]).exists()
        and not SyncLink.objects.filter(state__in=[LinkState.PENDING, LinkState.FAILED]).exists()
    )


def in_step(rooms: list[Room]) -> bool:
    """Every room's events and bookings, as the driver last set them, are on the other side
    (two queries: what ``verify`` checks in detail at the end)."""
    from calendars.models import LinkState
    from reservations.models import Reservation

    remote = {ref: start for room in rooms for ref, start in room.remote_starts.items()}
    found = dict(
        Reservation.objects.filter(sync_link__external_id__in=remote).values_list(
            "sync_link__external_id", "start"
        )
    )
    if any(found.get(ref) != start for ref, start in remote.items()):
        return False
    local = [ref for room in rooms for ref in room.local_starts]
    rows = Reservation.objects.filter(pk__in=local).values_list(
        "version", "sync_link__pushed_version", "sync_link__state"
    )
    return len(rows) == len(local) and all(
        pushed is not None and pushed >= version and state == LinkState.SYNCED
        for version, pushed, state in rows
    )


def settled(rooms: list[Room], redis_client: Any, sandbox: Sandbox) -> Callable[[], bool]:
    """A check: in step and quiet, and still quiet with no provider request for
    ``QUIET_SECONDS`` (the sandbox delivers notifications one at a time from a queue of its
    own: one can still be on its way when Reserva's queues first look empty)."""

    def requests_so_far() -> int:
        return sum(sandbox.counters().get("service", {}).values())

    def check() -> bool:
        if not (in_step(rooms) and sync_quiet(redis_client)):
            return False
        seen = requests_so_far()
        for _ in range(QUIET_SECONDS):
            time.sleep(1)
            if not sync_quiet(redis_client) or requests_so_far() != seen:
                return False
        return True

    return check


def table_rows() -> dict[str, int]:
    """Exact row counts of every table (the database is the bench's own, and small)."""
    from django.db import connection

    with connection.cursor() as cursor:
        found = {}
        for table in connection.introspection.table_names(cursor):
            cursor.execute(f'SELECT count(*) FROM "{table}"')  # noqa: S608 - introspected names
            found[table] = cursor.fetchone()[0]
    return found


def bytes_per_row() -> dict[str, float]:
    """Each table's size on disk (indexes and TOAST included) over its rows, at the end."""
    from django.db import connection

    sizes = {}
    rows = table_rows()
    with connection.cursor() as cursor:
        for table, count in rows.items():
            if count:
                cursor.execute("SELECT pg_total_relation_size(%s)", [f'"{table}"'])
                sizes[table] = cursor.fetchone()[0] / count
    return sizes


@dataclass
class Snapshot:
    at: float
    requests: dict[str, int]  # by service (control excluded)
    endpoints: dict[str, int]
    worker_cpu: float
    web_cpu: float
    beat_cpu: float
    rows: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.requests.values())


def snapshot(sandbox: Sandbox, stack: Stack) -> Snapshot:
    counters = sandbox.counters()
    return Snapshot(
        time.monotonic(),
        dict(counters.get("service", {})),
        dict(counters.get("endpoint", {})),
        tree_cpu(stack.pids("worker")),
        tree_cpu(stack.pids("web")),
        tree_cpu(stack.pids("beat")),
        table_rows(),
    )


@dataclass
class Delta:
    seconds: float
    requests: int
    by_service: dict[str, int]
    by_endpoint: dict[str, int]
    worker_cpu: float
    web_cpu: float
    beat_cpu: float
    rows: dict[str, int]


def delta(a: Snapshot, b: Snapshot) -> Delta:
    services = {k: b.requests.get(k, 0) - a.requests.get(k, 0) for k in b.requests}
    endpoints = {k: b.endpoints.get(k, 0) - a.endpoints.get(k, 0) for k in b.endpoints}
    return Delta(
        b.at - a.at,
        b.total - a.total,
        {k: v for k, v in services.items() if v},
        {k: v for k, v in endpoints.items() if v},
        b.worker_cpu - a.worker_cpu,
        b.web_cpu - a.web_cpu,
        b.beat_cpu - a.beat_cpu,
        {t: n - a.rows.get(t, 0) for t, n in b.rows.items() if n != a.rows.get(t, 0)},
    )


def renewal_requests(d: Delta) -> int:
    """Subscription / channel writes in a window (the endpoint names the sandbox counts)."""
    return sum(
        n
        for name, n in d.by_endpoint.items()
        if ("subscription" in name and "create" not in name and "list" not in name)
        or "watch" in name
        or "channels.stop" in name
    )


# --- verification -----------------------------------------------------------------------------


def parse_remote_time(value: dict[str, str] | str | None) -> datetime | None:
    if not value:
        return None
    if isinstance(value, dict):
        text, zone = value.get("dateTime", ""), value.get("timeZone", "UTC")
        if not text:
            return None
        moment = datetime.fromisoformat(text.rstrip("Z")[:26])
        if moment.tzinfo is None:
            from zoneinfo import ZoneInfo

            moment = moment.replace(tzinfo=UTC if zone in ("UTC", "") else ZoneInfo(zone))
        return moment.astimezone(UTC)
    return datetime.fromisoformat(value.replace("Z", "+00:00")[:26] + "+00:00").astimezone(UTC)


def stamp(text: str) -> float:
    """A sandbox write time (Graph: 7 fraction digits; Google: milliseconds) as epoch seconds."""
    head, _, fraction = text.rstrip("Z").partition(".")
    moment = datetime.fromisoformat(head).replace(tzinfo=UTC)
    return moment.timestamp() + (float(f"0.{fraction}") if fraction else 0.0)


def verify(
    sandbox: Sandbox, rooms: list[Room], changes: list[Change]
) -> tuple[list, list, list, dict[str, list[float]]]:
    """Per change, when it was applied on the other side: (remote lags, local lags, misses,
    lags by direction and provider)."""
    from reservations.models import Reservation

    history = Reservation.history.model
    remote_lags: list[float] = []
    local_lags: list[float] = []
    misses: list[str] = []
    by_room = {room.index: room for room in rooms}
    by_kind: dict[str, list[float]] = {}
    events: dict[int, dict[str, dict]] = {}

    def room_events(index: int) -> dict[str, dict]:
        if index not in events:
            items = sandbox.call("GET", event_path(by_room[index]))["value"]
            events[index] = {e["id"]: e for e in items}
        return events[index]

    for change in changes:
        if change.error:
            misses.append(f"{change.side} {change.op} room {change.room}: not made: {change.error}")
            continue
        if change.side == "remote":
            reservation = (
                Reservation.objects.filter(sync_link__external_id=change.ref)
                .values_list("pk", flat=True)
                .first()
            )
            rows = history.objects.filter(id=reservation) if reservation else history.objects.none()
            if change.op == "move":
                rows = rows.filter(start=change.start)
            first = rows.order_by("history_date").values_list("history_date", flat=True).first()
            if first is None:
                misses.append(
                    f"remote {change.op} room {change.room}: event {change.ref} -> "
                    f"reservation {reservation or 'none'}, start {change.start:%Y-%m-%d %H:%M} "
                    "not in Reserva"
                )
            else:
                remote_lags.append(max(0.0, first.timestamp() - change.sent))
                key = f"remote->Reserva {by_room[change.room].kind}"
                by_kind.setdefault(key, []).append(remote_lags[-1])
            continue
        link = (
            Reservation.objects.filter(pk=int(change.ref))
            .values_list("sync_link__external_id", flat=True)
            .first()
        )
        event = room_events(change.room).get(link or "")
        if event is None or event.get("isCancelled") or event.get("status") == "cancelled":
            misses.append(
                f"local {change.op} room {change.room}: reservation {change.ref} -> "
                f"event {link or 'none'} not in the calendar"
            )
            continue
        latest = by_room[change.room].local_starts[int(change.ref)]  # later moves supersede
        if parse_remote_time(event.get("start")) != latest:
            misses.append(
                f"local {change.op} room {change.room}: reservation {change.ref}: event {link} "
                f"starts {event.get('start')}, not {latest:%Y-%m-%d %H:%M}"
            )
            continue
        if change.op == "create":
            written = event.get("createdDateTime") or event.get("created")
        else:
            written = event.get("lastModifiedDateTime") or event.get("updated")
        local_lags.append(max(0.0, stamp(written) - change.sent))
        key = f"local->{by_room[change.room].kind}"
        by_kind.setdefault(key, []).append(local_lags[-1])
    return remote_lags, local_lags, misses, by_kind


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


# --- the run ----------------------------------------------------------------------------------


def run(opts: argparse.Namespace, folder: Path) -> list[results.Figure]:
    import redis

    redis_client = redis.Redis.from_url(os.environ["REDIS_URL"])
    redis_client.delete("sync", "default")
    for key in redis_client.scan_iter("reserva:limit:*"):
        redis_client.delete(key)
    ms_rooms, google_rooms = opts.rooms - opts.rooms // 2, opts.rooms // 2
    delegates = max(1, math.ceil(google_rooms / opts.google_rooms_per_user))
    stack = Stack(folder, {})
    try:
        sandbox = start_sandbox(
            stack, folder / "sandbox", sandbox_config(ms_rooms, google_rooms, delegates)
        )
        web_port = free_port()
        env = child_environment(opts, web_port, sandbox.base_url)
        stack.env = env
        setup_django(env)
        from django.core.management import call_command

        from calendars import tasks
        from calendars.models import (
            SpaceCalendar,
            SyncSettings,
            WebhookStatus,
            WebhookSubscription,
        )
        from calendars.subscriptions import GOOGLE_TTL_SECONDS, GRAPH_MINUTES, RENEW_BEFORE
        from calendars.sync import pull

        call_command("migrate", verbosity=0)
        SyncSettings.load()
        SyncSettings.objects.filter(pk=1).update(pull_interval_minutes=NO_POLLING_MINUTES)
        python = sys.executable
        celery = str(Path(python).with_name("celery"))
        gunicorn = str(Path(python).with_name("gunicorn"))
        stack.start(
            "web",
            [
                gunicorn,
                "config.wsgi",
                "--bind",
                f"127.0.0.1:{web_port}",
                "--workers",
                str(opts.web_workers),
                "--log-level",
                "warning",
            ],
        )
        for n in range(opts.workers):
            stack.start(
                f"worker-{n}",
                [
                    celery,
                    "-A",
                    "config",
                    "worker",
                    "-Q",
                    "default,sync",
                    "--loglevel=WARNING",
                    f"--concurrency={opts.concurrency}",
                    f"--hostname=scale-{n}@%h",
                    "--without-heartbeat",
                    "--without-mingle",
                    "--without-gossip",
                ],
            )
        stack.start(
            "beat",
            [
                celery,
                "-A",
                "config",
                "beat",
                "--loglevel=WARNING",
                f"--schedule={folder / 'celerybeat-schedule'}",
            ],
        )

        def web_up() -> bool:
            try:
                return requests.get(f"http://127.0.0.1:{web_port}/healthz", timeout=2).ok
            except requests.RequestException:
                return False

        wait_until(web_up, 60, stack, "gunicorn answering")
        started = time.monotonic()
        user, rooms = make_world(sandbox, opts.rooms, opts.google_rooms_per_user)
        binding_ids = [room.binding_id for room in rooms]
        for binding_id in binding_ids:  # the first pull of every room, as beat would ask
            pull.request_pull(binding_id)

        def all_subscribed() -> bool:
            active = WebhookSubscription.objects.filter(
                status=WebhookStatus.ACTIVE, binding_id__in=binding_ids
            )
            pulled = SpaceCalendar.objects.filter(pk__in=binding_ids).exclude(sync_token="")
            return active.count() >= len(rooms) and pulled.count() == len(rooms)

        wait_until(all_subscribed, opts.setup_seconds, stack, "every room subscribed and pulled")
        print(
            f"{len(rooms)} rooms ({ms_rooms} Microsoft, {google_rooms} Google over {delegates} "
            f"delegated users) bound, subscribed and pulled in {time.monotonic() - started:.0f} s"
        )
        day0 = (datetime.now(UTC) + timedelta(days=2)).replace(
            hour=0, minute=0, second=0, microsecond=0
        )
        driver = Driver(sandbox, user, rooms, day0)
        with ThreadPoolExecutor(opts.driver_threads) as pool:  # one of each per room, in step
            list(pool.map(lambda r: driver.remote(r, "create", time.time()), rooms))
            list(pool.map(lambda r: driver.local(r, "create", time.time()), rooms))
        wait_until(settled(rooms, redis_client, sandbox), opts.setup_seconds, stack, "seed in step")

        # Idle: beat's ticks and nothing else (polling is kept out, see the docstring).
        time.sleep(2)
        before_idle = snapshot(sandbox, stack)
        time.sleep(opts.idle_seconds)
        idle = delta(before_idle, snapshot(sandbox, stack))

        # The compressed run.
        seconds = opts.minutes * 60
        plan = schedule(rooms, seconds, opts.speed)
        changes: list[Change] = []
        depth = 0
        before = snapshot(sandbox, stack)
        begin = time.time()
        with ThreadPoolExecutor(opts.driver_threads) as pool:
            futures = []
            for at, side, room, op in plan:
                while (wait := begin + at - time.time()) > 0:
                    time.sleep(min(wait, 0.5))
                    depth = max(depth, queued(redis_client))
                method = driver.remote if side == "remote" else driver.local
                futures.append(pool.submit(method, room, op, begin + at))
            while time.time() < begin + seconds:
                time.sleep(0.5)
                depth = max(depth, queued(redis_client))
            changes = [f.result() for f in futures]
        driven = snapshot(sandbox, stack)
        settle_started = time.monotonic()
        try:
            wait_until(settled(rooms, redis_client, sandbox), opts.settle_seconds, stack, "settled")
        except SystemExit as exc:
            print(f"warning: {exc}")
        settle = time.monotonic() - settle_started
        after = snapshot(sandbox, stack)
        drive, work = delta(before, driven), delta(before, after)
        remote_lags, local_lags, misses, by_kind = verify(sandbox, rooms, changes)

        # One poll round: a no-change pull of every room, as beat requests them.
        time.sleep(1)
        before_poll = snapshot(sandbox, stack)
        for binding_id in binding_ids:
            pull.request_pull(binding_id)
        wait_until(lambda: sync_quiet(redis_client), opts.setup_seconds, stack, "poll round")
        poll = delta(before_poll, snapshot(sandbox, stack))

        # One renewal round: every subscription due, then beat's task.
        soon = datetime.now(UTC) + timedelta(hours=1)
        WebhookSubscription.objects.filter(status=WebhookStatus.ACTIVE).update(expires_at=soon)
        before_renew = snapshot(sandbox, stack)
        tasks.renew_subscriptions.delay()

        def renewed() -> bool:
            due = WebhookSubscription.objects.filter(
                status__in=[WebhookStatus.ACTIVE, WebhookStatus.PENDING], expires_at__lte=soon
            )
            return not due.exists() and sync_quiet(redis_client)

        wait_until(renewed, opts.setup_seconds, stack, "renewal round")
        renew = delta(before_renew, snapshot(sandbox, stack))
        sizes = bytes_per_row()
    finally:
        stack.stop()

    return report(
        opts,
        rooms,
        changes,
        misses,
        remote_lags,
        local_lags,
        by_kind,
        idle,
        drive,
        work,
        poll,
        renew,
        settle,
        depth,
        delegates,
        (GRAPH_MINUTES, GOOGLE_TTL_SECONDS, RENEW_BEFORE),
        sizes,
    )


def report(
    opts,
    rooms,
    changes,
    misses,
    remote_lags,
    local_lags,
    by_kind,
    idle,
    drive,
    work,
    poll,
    renew,
    settle,
    depth,
    delegates,
    expiry,
    sizes,
) -> list[results.Figure]:
    from calendars.models import SyncSettings

    graph_minutes, google_ttl, renew_before = expiry
    n = len(rooms)
    ms_rooms = sum(1 for r in rooms if r.kind == "microsoft")
    google_rooms = n - ms_rooms
    made = [c for c in changes if not c.error]
    seen = len(remote_lags) + len(local_lags)
    lags = remote_lags + local_lags
    interval = SyncSettings._meta.get_field("pull_interval_minutes").default
    polls_per_hour = 60 / interval
    # Work attributable to the changes: the run and its settling, less the idle rate.
    change_requests = max(0.0, work.requests - idle.requests / idle.seconds * work.seconds)
    change_cpu = max(0.0, work.worker_cpu - idle.worker_cpu / idle.seconds * work.seconds)
    per_change_requests = change_requests / max(1, len(made))
    per_change_cpu = change_cpu / max(1, len(made))
    per_change_web = work.web_cpu / max(1, len(made))
    per_poll_requests, per_poll_cpu = poll.requests / n, poll.worker_cpu / n
    renewed = max(1, n)
    per_renew_requests, per_renew_cpu = renew.requests / renewed, renew.worker_cpu / renewed
    graph_every_h = (graph_minutes / 60) - renew_before.total_seconds() / 3600
    google_every_h = google_ttl / 3600 - renew_before.total_seconds() / 3600
    renewals_per_hour = ms_rooms / graph_every_h + google_rooms / google_every_h
    changes_per_hour = 2 * n  # one remote and one local per room

    def per_sim_hour(change: float, poll_cost: float, renew_cost: float, idle_rate: float):
        return (
            changes_per_hour * change
            + n * polls_per_hour * poll_cost
            + renewals_per_hour * renew_cost
            + idle_rate * 3600
        )

    requests_hour = per_sim_hour(
        per_change_requests, per_poll_requests, per_renew_requests, idle.requests / idle.seconds
    )
    cpu_hour = per_sim_hour(
        per_change_cpu, per_poll_cpu, per_renew_cpu, idle.worker_cpu / idle.seconds
    )
    per_room_hour = requests_hour / n
    tables = set(work.rows) | set(poll.rows) | set(renew.rows) | set(idle.rows)
    rows_hour = {
        t: changes_per_hour * work.rows.get(t, 0) / max(1, len(made))
        + n * polls_per_hour * poll.rows.get(t, 0) / n
        + renewals_per_hour * renew.rows.get(t, 0) / renewed
        + idle.rows.get(t, 0) / idle.seconds * 3600
        for t in tables
    }
    growth = {t: max(0.0, rows * 8760 * sizes.get(t, 0.0)) for t, rows in rows_hour.items()}
    year_gb = sum(growth.values()) / 1e9
    graph_per_mailbox_10min = per_room_hour / 6
    google_per_user_min = per_room_hour * min(google_rooms, opts.google_rooms_per_user) / 60
    google_one_user_min = per_room_hour * google_rooms / 60

    print(
        f"\n{n} rooms ({ms_rooms} Microsoft, {google_rooms} Google), {opts.speed:.0f}x for "
        f"{opts.minutes:g} real minutes = {opts.minutes * opts.speed / 60:g} simulated hours; "
        f"{opts.workers} workers x {opts.concurrency}, {os.cpu_count()} CPUs"
    )
    print(
        f"  changes made: {len(made)} of {len(changes)} planned "
        f"({sum(c.side == 'remote' for c in made)} remote, "
        f"{sum(c.side == 'local' for c in made)} local); driver at most "
        f"{max((c.late for c in made), default=0):.1f} s behind its schedule"
    )
    print(f"  reached the other side: {seen} of {len(changes)}; misses {len(misses)}   target 0")
    for line in misses[:50]:
        print(f"    MISS {line}")
    if len(misses) > 50:
        print(f"    ... {len(misses) - 50} more")
    print(
        f"  lag, change -> other side (at {opts.speed:.0f}x load): "
        f"remote->Reserva p50 {percentile(remote_lags, 0.5):.2f} s p95 "
        f"{percentile(remote_lags, 0.95):.2f} s max {max(remote_lags, default=0):.2f} s; "
        f"local->provider p50 {percentile(local_lags, 0.5):.2f} s p95 "
        f"{percentile(local_lags, 0.95):.2f} s max {max(local_lags, default=0):.2f} s; "
        f"all p95 {percentile(lags, 0.95):.2f} s; settled {settle:.0f} s after the last change; "
        f"queue depth max {depth}"
    )
    print(
        "  lag p95 by direction and provider: "
        + ", ".join(f"{k} {percentile(v, 0.95):.2f} s" for k, v in sorted(by_kind.items()))
    )
    print(
        f"  provider requests during the run: {drive.requests / drive.seconds:.1f}/s "
        f"({', '.join(f'{k} {v}' for k, v in sorted(drive.by_service.items()))})"
    )
    print(
        f"  per change: {per_change_requests:.2f} requests, {per_change_cpu * 1000:.1f} ms "
        f"worker CPU, {per_change_web * 1000:.1f} ms web CPU (webhooks)"
    )
    print(
        f"  poll round ({n} no-change pulls): {per_poll_requests:.2f} requests and "
        f"{per_poll_cpu * 1000:.1f} ms worker CPU per room; every {interval} min"
    )
    print(
        f"  renewal round ({renewal_requests(renew)} subscription/channel calls): "
        f"{per_renew_requests:.2f} requests and {per_renew_cpu * 1000:.1f} ms worker CPU per "
        f"room; renewals seen during the run: {renewal_requests(work)}"
    )
    print(
        f"  idle (beat ticks): {idle.requests / idle.seconds:.2f} requests/s "
        f"({', '.join(f'{k} {v}' for k, v in sorted(idle.by_endpoint.items())) or 'none'}), "
        f"{idle.worker_cpu / idle.seconds * 1000:.1f} ms worker CPU/s, beat "
        f"{idle.beat_cpu / idle.seconds * 1000:.1f} ms CPU/s"
    )
    print(
        f"  per simulated hour, {n} rooms at real speed: {changes_per_hour} changes, "
        f"{renewals_per_hour:.1f} renewals, {requests_hour:.0f} provider requests "
        f"({requests_hour / 3600:.2f}/s), {cpu_hour:.0f} worker CPU seconds "
        f"({cpu_hour / 3600:.3f} cores)"
    )
    print(
        f"  against the limits: Graph {graph_per_mailbox_10min:.1f} requests per mailbox per "
        f"10 min (limit {GRAPH_MAILBOX_PER_10_MIN}); Google {google_one_user_min:.0f} "
        f"requests/min if all {google_rooms} rooms share one delegated user (limit "
        f"{GOOGLE_PER_USER_PER_MIN}/min/user, {GOOGLE_PER_PROJECT_PER_MIN}/min/project); "
        f"{google_per_user_min:.0f}/min per delegated user here"
    )
    print(
        "  rows per change: "
        + ", ".join(
            f"{t} {rows / max(1, len(made)):.2f}"
            for t, rows in sorted(work.rows.items())
            if rows > 0
        )
        + "; per poll: "
        + ", ".join(f"{t} {rows / n:.2f}" for t, rows in sorted(poll.rows.items()) if rows > 0)
    )
    biggest = sorted(growth.items(), key=lambda item: -item[1])[:5]
    print(
        f"  database growth per year, {n} rooms: {year_gb:.2f} GB ("
        + ", ".join(f"{t} {rows_hour[t] * 8760:,.0f} rows {g / 1e9:.2f} GB" for t, g in biggest)
        + ")"
    )
    print("  (CPU figures on a shared machine are upper bounds; see README 'Scaling'.)")

    figures = [
        results.Figure("changes made", len(made), "changes", len(changes), "higher"),
        results.Figure("changes missed", len(misses), "changes", 0),
        results.Figure("lag p95 (all changes)", percentile(lags, 0.95), "s"),
        results.Figure("lag p95 remote to Reserva", percentile(remote_lags, 0.95), "s"),
        results.Figure("lag p95 local to provider", percentile(local_lags, 0.95), "s"),
        results.Figure("provider requests during run", drive.requests / drive.seconds, "req/s"),
        results.Figure("provider requests per change", per_change_requests, "requests"),
        results.Figure("provider requests per room polled", per_poll_requests, "requests"),
        results.Figure("provider requests per renewal", per_renew_requests, "requests"),
        results.Figure("worker CPU per change", per_change_cpu * 1000, "ms"),
        results.Figure("worker CPU per room polled", per_poll_cpu * 1000, "ms"),
        results.Figure("worker CPU per renewal", per_renew_cpu * 1000, "ms"),
        results.Figure("renewals per simulated hour", renewals_per_hour, "renewals"),
        results.Figure("renewals during run", renewal_requests(work), "requests"),
        results.Figure("provider requests at real speed", requests_hour / 3600, "req/s"),
        results.Figure("worker CPU per simulated hour", cpu_hour, "s"),
        results.Figure("max queue depth", depth, "messages"),
        results.Figure("database growth per year", year_gb, "GB"),
    ]
    return [f for f in figures if not math.isnan(f.value)]  # no lag without changes seen


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(argv)
    if not os.environ.get("REDIS_URL"):
        print("Needs REDIS_URL (Celery's broker for the real workers) and PostgreSQL.")
        return 2
    if urlsplit(opts.database_url).scheme not in ("postgres", "postgresql", "pgsql"):
        print("Needs PostgreSQL (--database-url or BENCH_DATABASE_URL).")
        return 2
    prepare_database(opts.database_url)
    folder = opts.log_dir or Path(tempfile.mkdtemp(prefix="scale-bench-"))
    (folder / "sandbox").mkdir(parents=True, exist_ok=True)
    keep = opts.keep_logs or opts.log_dir is not None
    print(f"logs in {folder}" + ("" if keep else " (removed at the end; --keep-logs keeps them)"))
    began = time.monotonic()
    try:
        figures = run(opts, folder)
        print(f"  the whole bench took {time.monotonic() - began:.0f} s")
    finally:
        if not keep:
            shutil.rmtree(folder, ignore_errors=True)
    arguments = {
        k: getattr(opts, k)
        for k in ("rooms", "minutes", "speed", "workers", "concurrency", "google_rooms_per_user")
    }
    results.record(opts.results, "scale", figures, arguments=arguments, quick=opts.quick)
    return 0


if __name__ == "__main__":
    sys.exit(main())
