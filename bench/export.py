"""Bulk export benchmark against the provider sandbox with Graph's per-mailbox limits.

The sandbox runs in this process with Exchange Online's published limits per (app, mailbox):
4 requests in flight and 10,000 requests per 10 minutes, each ``$batch`` item counted; and
``--per-item`` latency (default 50 ms) on every batch item. Reserva's own limiter (Redis when
``REDIS_URL`` is set, else files under var/limits) keeps the client under the same limits.

1. One room: ``--reservations`` (default 2,000) future reservations exported by one job.
   Printed: HTTP requests used (target: at most 105, i.e. 100 ``$batch`` requests of 20
   plus token calls), wall time against the floor 2,000 x 50 ms / 4 = 25 s (target: within
   10%), 429s received and events failed (target: 0 and 0).
2. Many rooms: ``--rooms``/``--mailboxes`` (default 100) rooms x ``--per-room``/``--events``
   (default 100) reservations, one export job per room, run by ``--workers`` (default 8)
   worker processes, each running jobs one after another with the same runner the Celery
   task calls (``calendars.sync.export.run_export_job``). Printed: aggregate events per
   second, and what does not depend on how busy the machine is: CPU seconds per event in
   the workers and in the sandbox (this process, which only hosts it meanwhile), and
   database queries per event. ``--profile DIR`` writes a cProfile of every thread.
3. ``--throttle`` (alone): one mailbox with ``--events`` (default 20,000) reservations, past
   Graph's 10,000 items per 10 minutes. Printed: wall time against the throttle floor (the
   first 10,000 at 4 items at a time, the rest once the window has room: 600 s + 10,000 x
   50 ms / 4 = 725 s; target within 5%), events failed, 429s and requests that reached the
   sandbox before a ``Retry-After`` it gave was up (targets 0). ``--scale 10`` divides the
   events, the limit and its window by 10 (2,000 events, 1,000 per minute, floor 72.5 s).
4. ``--google`` (alone): one Google resource calendar with ``--events`` (default 2,000)
   against the per-user quota (600 per minute; ``--scale`` divides it and its window). Google
   runs a batch's parts one after another. Printed: batch parts refused with
   ``rateLimitExceeded`` (target 0), events failed, and wall time against the quota floor.
5. ``--provider ews``: parts 1 and 2 over EWS (Exchange Server: NTLM as the service account
   impersonating each room mailbox, multi-item ``CreateItem`` of 50, integrations/ews/batch.py),
   then over Graph with the same sizes, and the two side by side: requests per event and
   events per second, one room and many. Printed for the one room: EWS requests (target: at
   most 3 per 50 events, the look-up of what is made already (``FindItem``, ``GetItem``) and
   the ``CreateItem``, plus 5 to sign in (NTLM's two legs, the version probe) and find the
   calendar folder), ``ErrorServerBusy`` answers, events failed, and wall time against the
   EWS floor below (target within 10%).

It uses its own database, never ``test``: PostgreSQL ``reserva_export_bench`` by default
(dropped and created again at each run; only a name containing "bench" is accepted), or a
SQLite file with ``--database-url sqlite:////tmp/reserva_export_bench.sqlite3`` (then part 2
runs with one worker: SQLite has one writer).

Run::

    make bench-export
    .venv/bin/python bench/export.py --reservations 400 --rooms 20 --per-room 50   # quick
    REDIS_URL=redis://127.0.0.1:6379/0 .venv/bin/python bench/export.py --workers 16
    .venv/bin/python bench/export.py --skip-one --mailboxes 10 --events 200 --workers 2
    .venv/bin/python bench/export.py --throttle --scale 10      # 20,000 in one mailbox, / 10
    .venv/bin/python bench/export.py --google
    .venv/bin/python bench/export.py --provider ews --quick   # EWS beside Graph, quick sizes

About the floor: like Graph with Outlook, the sandbox runs an unordered ``$batch``'s items
up to 4 at a time, each holding one of the mailbox's 4 slots for ``--per-item`` seconds, and
Reserva's limiter lets a ``$batch`` occupy the whole mailbox (4 slots) while it runs. A batch
of 20 therefore takes 20 x 50 ms / 4 = 250 ms and one batch runs per mailbox at a time: the
floor is 2,000 x 50 ms / 4 = 25 s, reachable only if nothing but the batches themselves takes
time. The exporter reads and builds the next batch, and records the previous one, while a
batch is in flight, so the database work stays off that path.

The sandbox charges exactly that: each item of an unordered ``$batch`` holds one of its
mailbox's 4 slots for ``--per-item`` seconds, its own handler time included (an item costs
max(latency, handler time)), at most 4 items of one batch at once; the outer ``$batch``
request costs nothing more (``per_request`` 0). What the floor leaves out is each batch's
turnaround: the answer's way back, the client reading it, releasing and taking the limiter
slots, sending the next batch, the sandbox reading it. The mailbox is idle meanwhile (the
next batch cannot overlap: the last 4 items of a batch hold all 4 slots until it ends), so
the ratio is 1 + turnaround / 250 ms: 1.08x is 20 ms a batch, 1.26x is 65 ms, all of it
CPU of the client and the sandbox, which share the machine in this benchmark.

How the sandbox charges EWS (``integrations/sandbox/README.md``): a ``CreateItem`` (or
``UpdateItem``, ``DeleteItem``) is one HTTP request that Exchange works through one item after
another, so the sandbox holds its answer ``--per-item`` seconds for each item it writes (50
items: 50 x 50 ms = 2.5 s), the request itself costing nothing more (``per_request`` 0), and
reads (``FindItem``, ``GetFolder``) nothing at all. Reserva's limiter lets one batch at a time
hold a room mailbox (a batch takes all 4 of its slots) and counts each item against the
mailbox's 600 a minute (``integrations/registry.py``). The floor for one room is therefore
N x 50 ms with the items one after another (400: 20 s; Graph's is N x 50 ms / 4), and past
600 items the minute window: 2,000 events take at least 3 x 60 s + 200 x 50 ms = 190 s. The
sandbox's own EWS limit (27 in flight, 600 requests a minute for the service account) is far
from reached at 3 requests per 50 events. Many rooms: each worker writes one room at a time,
so at most ``--workers`` / 50 ms events per second (8: 160), against Graph's 4 times that.

Each run starts from an empty client-side limiter for the bench mailboxes: the sandbox is new
at every run, and Redis would otherwise still count the previous runs' items in its
10-minute window (five runs of 2,000 items in 10 minutes would exhaust it).
"""

from __future__ import annotations

import argparse
import hashlib
import multiprocessing
import os
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import results

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/reserva_export_bench"
ROOM = "bench-room-{:03d}@contoso.test"
# Exchange Online's per-(app, mailbox) rate limit, which part 3 goes past.
GRAPH_MAX_REQUESTS, GRAPH_WINDOW_SECONDS, THROTTLE_EVENTS = 10_000, 600, 20_000
# Google Calendar's per-user quota as the sandbox and Reserva's registry have it.
GOOGLE_MAX_REQUESTS, GOOGLE_WINDOW_SECONDS, GOOGLE_EVENTS = 600, 60, 2_000
GOOGLE_ROOM = "c_188a1f0e7d2b4c31@resource.calendar.google.com"
GOOGLE_USER = "reserva-blocker@northwind.test"  # whose quota the writes count against
EWS_ROOM = "bench-ews-{:03d}@contoso.test"  # the EWS sandbox's bench room mailboxes
# Reserva's own EWS limit per room mailbox (integrations/registry.py), items counted.
EWS_MAX_ITEMS, EWS_WINDOW_SECONDS = 600, 60


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL)
    )
    parser.add_argument("--reservations", type=int, default=2000)
    parser.add_argument("--rooms", "--mailboxes", type=int, default=100)
    parser.add_argument("--per-room", "--events", type=int, default=None, help="default 100")
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--per-item", type=float, default=0.05, help="seconds per batch item")
    parser.add_argument(
        "--profile",
        default="",
        metavar="DIR",
        help="cProfile of part 2 (workers, sandbox) into DIR",
    )
    parser.add_argument(
        "--throttle",
        action="store_true",
        help="part 3 only: one mailbox, --events (default 20,000) past the 10,000 per 10 min",
    )
    parser.add_argument(
        "--scale",
        type=int,
        default=1,
        help="part 3: divide the events, the limit and its window by this (10: 2,000 events, "
        "1,000 per minute, the same floor / 10)",
    )
    parser.add_argument(
        "--provider",
        choices=("graph", "google", "ews"),
        default="graph",
        help="graph (parts 1-2, or 3 with --throttle); google: part 4; ews: part 5 (parts 1-2 "
        "over EWS, then over Graph, figures side by side)",
    )
    parser.add_argument("--google", action="store_true", help="the same as --provider google")
    parser.add_argument("--skip-one", action="store_true", help="skip part 1")
    parser.add_argument("--skip-many", action="store_true", help="skip part 2")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="400 reservations in one room, 20 rooms x 40 (make bench)",
    )
    results.add_argument(parser)
    args = parser.parse_args(argv)
    args.google = args.google or args.provider == "google"
    args.ews = args.provider == "ews" and not args.google
    if args.quick:
        args.reservations, args.rooms, args.per_room = 400, 20, 40
    if args.per_room is None:
        args.per_room = THROTTLE_EVENTS if args.throttle else GOOGLE_EVENTS if args.google else 100
    if args.throttle or args.google:
        args.skip_one = args.skip_many = True
    return args


# --- database and Django ----------------------------------------------------------------------


def prepare_database(url: str) -> None:
    """A fresh bench database; only one whose name contains "bench" is created or dropped."""
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        path = Path(parts.path)
        if "bench" not in path.name:
            raise SystemExit(f"Refusing to use {path}: a SQLite file named *bench* only.")
        path.unlink(missing_ok=True)
        return
    import psycopg
    from psycopg import sql

    name = parts.path.lstrip("/")
    if parts.scheme not in ("postgres", "postgresql", "pgsql") or "bench" not in name:
        raise SystemExit(f"Refusing to use {name!r}: a PostgreSQL database named *bench* only.")
    maintenance = urlunsplit(parts._replace(scheme="postgresql", path="/postgres"))
    with psycopg.connect(maintenance, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def setup_django(url: str) -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    os.environ["DEBUG"] = "true"
    os.environ["DATABASE_URL"] = url
    os.environ["EMAIL_URL"] = "dummymail://"
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    # Nothing listens at PUBLIC_BASE_URL during a benchmark: no webhook subscriptions.
    os.environ["CALENDAR_WEBHOOKS"] = "false"
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from config.celery import app

    app.conf.task_always_eager = True  # nothing here goes through a broker


# --- the sandbox ------------------------------------------------------------------------------


def sandbox_config(
    rooms: int,
    per_item: float,
    max_requests: int = GRAPH_MAX_REQUESTS,
    window_seconds: float = GRAPH_WINDOW_SECONDS,
    google: tuple[int, float] = (GOOGLE_MAX_REQUESTS, GOOGLE_WINDOW_SECONDS),
    ews_rooms: int = 0,
) -> dict:
    from integrations.sandbox.config import default_config, merge

    config = default_config()
    config["ews"]["rooms"] += [
        {"email": EWS_ROOM.format(i), "name": f"Bench EWS room {i}", "capacity": 8}
        for i in range(ews_rooms)
    ]
    tenant = config["microsoft"]["tenants"][0]
    tenant["rooms"] += [
        {
            "id": f"0b7e9a40-{i:04d}-4f3e-b1d2-00000000b000",
            "email": ROOM.format(i),
            "display_name": f"Bench room {i}",
            "capacity": 8,
            "building": "Bench",
            "floor": 1,
        }
        for i in range(rooms)
    ]
    return merge(
        config,
        {
            "sandbox": {
                "limits": {
                    "graph": {
                        "max_in_flight": 4,
                        "max_requests": max_requests,
                        "window_seconds": window_seconds,
                    },
                    "google": {
                        "max_in_flight": None,
                        "max_requests": google[0],
                        "window_seconds": google[1],
                    },
                },
                "latency": {"per_request": 0.0, "per_item": per_item, "services": {}},
                "log_size": 50_000,
            }
        },
    )


def reset_limiter(rooms: int) -> None:
    """Forget what Reserva's limiter counted for the bench mailboxes in earlier runs."""
    from calendars.remote import _limiter_backend
    from integrations.limiter import FileLimiter, RedisLimiter
    from integrations.sandbox.config import DEMO_CLIENT_ID

    keys = [(f"graph:{DEMO_CLIENT_ID}:{ROOM.format(i)}", "microsoft") for i in range(rooms)]
    keys.append((f"google:{GOOGLE_USER}", "google"))  # GoogleClient._limit_key
    for key, kind in keys:  # MicrosoftClient._limit_key
        backend = _limiter_backend(kind)
        if isinstance(backend, RedisLimiter):
            backend.client.delete(*backend._keys(key))
        elif isinstance(backend, FileLimiter):
            digest = hashlib.sha256(key.encode()).hexdigest()[:32]
            (backend.folder / f"{digest}.json").unlink(missing_ok=True)


def allow_sandbox(handle) -> None:
    """Let Reserva reach the sandbox (PROVIDER_ENDPOINT_ALLOWLIST), here and in the worker
    processes spawned later, which read the setting from the environment."""
    from django.conf import settings

    os.environ["PROVIDER_ENDPOINT_ALLOWLIST"] = handle.base_url
    settings.PROVIDER_ENDPOINT_ALLOWLIST = [handle.base_url]


def graph_provider(handle):
    """Reserva's Microsoft 365 provider on the sandbox (application credentials)."""
    from calendars.models import CalendarProvider, ConnectionAlias, CredentialAlias, ProviderKind
    from integrations.sandbox.config import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_TENANT_ID

    return CalendarProvider.objects.create(
        name="Sandbox Microsoft 365",
        kind=ProviderKind.MICROSOFT,
        connection=ConnectionAlias.objects.create(
            name="Sandbox",
            kind=ProviderKind.MICROSOFT,
            authority_url=handle.base_url,
            authorization_url=handle.base_url,
            api_base_url=f"{handle.base_url}/v1.0",
            ca_bundle=str(handle.ca_file),
        ),
        credential=CredentialAlias.objects.create(
            name="Sandbox app",
            kind=ProviderKind.MICROSOFT,
            tenant_id=DEMO_TENANT_ID,
            client_id=DEMO_CLIENT_ID,
            client_secret=DEMO_CLIENT_SECRET,
        ),
        delegated_user_email="reserva-blocker@contoso.test",
    )


def ews_provider(handle):
    """Reserva's Exchange Server provider on the sandbox: NTLM as the service account that
    impersonates the room mailboxes, as the demo and the tests sign in."""
    from calendars.demo import EWS_DOMAIN, EWS_SERVICE_ACCOUNT
    from calendars.models import CalendarProvider, ConnectionAlias, CredentialAlias, ProviderKind

    return CalendarProvider.objects.create(
        name="Sandbox Exchange Server",
        kind=ProviderKind.EWS,
        connection=ConnectionAlias.objects.create(
            name="Sandbox EWS",
            kind=ProviderKind.EWS,
            api_base_url=f"{handle.base_url}/EWS/Exchange.asmx",
            ca_bundle=str(handle.ca_file),
        ),
        credential=CredentialAlias.objects.create(
            name="Sandbox EWS sync user",
            kind=ProviderKind.EWS,
            auth_method="ntlm",
            username=f"{EWS_DOMAIN}\\{EWS_SERVICE_ACCOUNT['username']}",
            password=EWS_SERVICE_ACCOUNT["password"],
            account_email=EWS_SERVICE_ACCOUNT["email"],
            access_type="impersonation",
        ),
    )


def make_world(handle, rooms: int, per_room: list[int], provider=None, room: str = ROOM):
    """A user and a location (made once), ``rooms`` spaces bound through ``provider``
    (default: a new Graph one) to the sandbox's bench rooms (``room``), and ``per_room[i]``
    back-to-back 30-minute reservations in room i from tomorrow."""
    from django.contrib.auth import get_user_model

    from calendars.models import SpaceCalendar
    from reservations.models import Location, Reservation, Space

    user, _ = get_user_model().objects.get_or_create(
        username="bench",
        defaults={"email": "bench@example.com", "first_name": "Bench", "last_name": "Mark"},
    )
    location, _ = Location.objects.get_or_create(name="Bench", time_zone="Europe/London")
    provider = provider or graph_provider(handle)
    first = (datetime.now(UTC) + timedelta(days=1)).replace(minute=0, second=0, microsecond=0)
    bindings = []
    for i in range(rooms):
        space = Space.objects.create(
            location=location, name=f"Bench {provider.kind} {i:03d}", capacity=8
        )
        bindings.append(
            SpaceCalendar.objects.create(
                space=space,
                provider=provider,
                resource_email=room.format(i),
                # EWS finds the room's calendar folder by name; Graph by the mailbox alone.
                calendar_name="Calendar" if provider.kind == "ews" else "",
            )
        )
        Reservation.objects.bulk_create(
            [
                Reservation(
                    space=space,
                    requested_for=user,
                    booked_by=user,
                    title=f"Bench {n}",
                    start=first + timedelta(minutes=30 * n),
                    end=first + timedelta(minutes=30 * n + 30),
                    # bulk_create skips save(), which stamps it; bench rooms have no buffers
                    buffered_start=first + timedelta(minutes=30 * n),
                    buffered_end=first + timedelta(minutes=30 * n + 30),
                )
                for n in range(per_room[i])
            ],
            batch_size=1000,
        )
    return bindings


# --- the runs ---------------------------------------------------------------------------------


def http_requests(handle, since: int) -> dict[str, int]:
    """HTTP requests (not batch items) by service, and 429s (items included), since a seq."""
    with handle.sandbox.lock:
        entries = [e for e in handle.sandbox.log if e["seq"] > since]
    counts: dict[str, int] = {"429": 0}
    for entry in entries:
        if entry["status"] == 429:
            counts["429"] += 1
        if entry["batch_item"] or entry["service"] == "control":
            continue
        counts[entry["service"]] = counts.get(entry["service"], 0) + 1
    return counts


def last_seq(handle) -> int:
    with handle.sandbox.lock:
        return handle.sandbox.log[-1]["seq"] if handle.sandbox.log else 0


def part_one(handle, binding, count: int, per_item: float) -> list[results.Figure]:
    from calendars import tasks

    since = last_seq(handle)
    started = time.monotonic()
    job = tasks.start_export(binding, None)  # eager: runs here, in this process
    wall = time.monotonic() - started
    job.refresh_from_db()
    seen = http_requests(handle, since)
    http = sum(n for key, n in seen.items() if key != "429")
    floor = count * per_item / 4  # see the module docstring
    print(f"\n1. One room, {count} reservations, {per_item * 1000:.0f} ms per item")
    print(
        f"   job #{job.pk}: {job.get_status_display()}, created {job.created_count}, "
        f"failed {job.failed_count}"
    )
    print(
        f"   HTTP requests: {http} ({seen.get('graph', 0)} Graph $batch/other, "
        f"{seen.get('microsoft-identity', 0)} identity)   target <= {count // 20 + 5}"
    )
    print(
        f"   wall time: {wall:.1f} s   floor {floor:.1f} s ({count} x {per_item * 1000:.0f} ms "
        f"/ 4 items at once): {wall / floor:.2f}x   target <= 1.10x"
    )
    print(f"   429s received: {seen['429']}   events failed: {job.failed_count}")
    return [
        results.Figure("one room: HTTP requests", http, "requests", count // 20 + 5),
        results.Figure("one room: requests per event", http / max(count, 1), "requests"),
        results.Figure("one room: events per second", count / wall, "events/s"),
        results.Figure("one room: wall time / floor", wall / floor, "x", 1.10),
        results.Figure("one room: events failed", job.failed_count, "events", 0),
    ]


def _cpu_seconds() -> float:
    """CPU seconds (user + system) this process has used so far, all its threads included."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class _Profiles:
    """cProfile of every thread of this process (the exporter's sender thread, the
    sandbox's connection and batch threads), written to one file each under ``folder``."""

    def __init__(self, folder: str, name: str) -> None:
        import cProfile
        import threading

        self.folder, self.name = Path(folder), name
        self.profiles = [cProfile.Profile()]

        def start(*_: object) -> None:  # runs once in each new thread, then steps aside
            profile = cProfile.Profile()
            self.profiles.append(profile)
            profile.enable()

        threading.setprofile(start)
        self.profiles[0].enable()

    def stop(self) -> None:
        import threading

        threading.setprofile(None)
        for i, profile in enumerate(self.profiles):
            profile.disable()
            profile.create_stats()
            if profile.stats:  # type: ignore[attr-defined]
                profile.dump_stats(str(self.folder / f"{self.name}-{os.getpid()}-{i}.prof"))


def _worker(url: str, job_ids: list[int], done, costs, profile_dir: str) -> None:
    setup_django(url)
    from django.db import connection

    from calendars.sync import export

    queries = 0

    def count(execute, sql, params, many, context):
        nonlocal queries
        queries += 1
        return execute(sql, params, many, context)

    cpu = _cpu_seconds()  # Django set up: only the exports' own work is counted
    profiles = _Profiles(profile_dir, "worker") if profile_dir else None
    with connection.execute_wrapper(count):
        for job_id in job_ids:
            job = export.run_export_job(job_id)
            done.put((job_id, job.created_count if job else 0, job.failed_count if job else 0))
    if profiles:
        profiles.stop()
    costs.put((_cpu_seconds() - cpu, queries))
    connection.close()


def part_two(
    handle,
    url: str,
    bindings,
    per_room: int,
    workers: int,
    per_item: float,
    profile_dir: str = "",
    *,
    label: str = "many rooms",
    room_rate: str = "",
) -> list[results.Figure]:
    from django.db import connection

    from calendars.models import JobKind, SyncJob
    from calendars.sync import export

    jobs = [
        SyncJob.objects.create(
            kind=JobKind.EXPORT, binding=b, total=export.exportable(b).count()
        ).pk
        for b in bindings
    ]
    if url.startswith("sqlite"):
        workers = 1
    connection.close()  # no connection crosses a fork
    since = last_seq(handle)
    context = multiprocessing.get_context("spawn")
    done, costs = context.Queue(), context.Queue()
    shares = [jobs[i::workers] for i in range(workers)]
    started = time.monotonic()
    processes = [
        context.Process(target=_worker, args=(url, share, done, costs, profile_dir))
        for share in shares
        if share
    ]
    for process in processes:
        process.start()
    # This process only hosts the sandbox meanwhile (and waits on the queue): its CPU time
    # is the sandbox's (the workers start in processes of their own).
    sandbox_cpu = _cpu_seconds()
    profiles = _Profiles(profile_dir, "sandbox") if profile_dir else None
    finished = [done.get() for _ in jobs]
    if profiles:
        profiles.stop()
    sandbox_cpu = _cpu_seconds() - sandbox_cpu
    wall = time.monotonic() - started
    spent = [costs.get() for _ in processes]
    for process in processes:
        process.join()
    created = sum(r[1] for r in finished)
    failed = sum(r[2] for r in finished)
    seen = http_requests(handle, since)
    total = len(bindings) * per_room
    http = sum(n for k, n in seen.items() if k != "429")
    room_rate = room_rate or (
        f"at most {4 / per_item:.0f} per second, 4 items of {per_item * 1000:.0f} ms at once"
    )
    print(
        f"\n2. {len(bindings)} rooms x {per_room} reservations, {len(processes)} worker processes"
        + (f" ({label})" if label != "many rooms" else "")
    )
    print(
        f"   created {created} of {total}, failed {failed}, 429s {seen['429']}, "
        f"HTTP requests {http} ({http / max(created, 1):.3f} per event)"
    )
    print(
        f"   wall time {wall:.1f} s: {created / wall:.0f} events per second "
        f"(one room alone: {room_rate})"
    )
    worker_cpu = sum(c for c, _ in spent)
    queries = sum(q for _, q in spent)
    per_event = max(created, 1)
    sandbox_ms = sandbox_cpu * 1000 / per_event
    print(
        f"   CPU per event: worker {worker_cpu * 1000 / per_event:.2f} ms, sandbox "
        f"{sandbox_ms:.2f} ms; queries per event: {queries / per_event:.2f}"
    )
    target = 1000 if label == "many rooms" else None  # EWS: reported beside Graph's
    return [
        results.Figure(f"{label}: events per second", created / wall, "events/s", target, "higher"),
        results.Figure(f"{label}: events failed", failed, "events", 0),
        results.Figure(f"{label}: requests per event", http / per_event, "requests"),
        results.Figure(f"{label}: worker CPU per event", worker_cpu * 1000 / per_event, "ms"),
        results.Figure(f"{label}: sandbox CPU per event", sandbox_ms, "ms"),
        results.Figure(f"{label}: queries per event", queries / per_event, "queries"),
    ]


def throttle_floor(count: int, per_item: float, limit: int, window: float) -> float:
    """The least time ``count`` items can take in one mailbox: 4 at a time, ``per_item``
    each, and at most ``limit`` in any ``window`` seconds. The first ``limit`` go at full
    speed; each later one can start only a window after the one ``limit`` places before it,
    so every further ``limit`` starts a window after the previous ``limit`` did."""
    full_windows = (count - 1) // limit
    return full_windows * window + (count - full_windows * limit) * per_item / 4


def use_limits(kind: str, max_requests: int, window_seconds: float) -> None:
    """Reserva's limiter with the (scaled) limits the sandbox enforces in parts 3 and 4."""
    import dataclasses

    from calendars import remote
    from integrations import registry

    provider = registry.PROVIDERS[kind]
    limits = dataclasses.replace(
        provider.limits, max_per_window=max_requests, window_seconds=window_seconds
    )
    registry.PROVIDERS[kind] = dataclasses.replace(provider, limits=limits)
    remote._limiter_backend.cache_clear()


def google_binding(handle, count: int):
    """A space bound to the Google sandbox's resource calendar, with ``count`` back-to-back
    reservations from tomorrow (the user and location of :func:`make_world`)."""
    import json

    from django.contrib.auth import get_user_model

    from calendars.models import (
        CalendarProvider,
        ConnectionAlias,
        CredentialAlias,
        ProviderKind,
        SpaceCalendar,
    )
    from reservations.models import Location, Reservation, Space

    key = json.loads((Path(handle.sandbox.state_dir) / "google" / "reserva-sync.json").read_text())
    provider = CalendarProvider.objects.create(
        name="Sandbox Google",
        kind=ProviderKind.GOOGLE,
        connection=ConnectionAlias.objects.create(
            name="Sandbox Google",
            kind=ProviderKind.GOOGLE,
            authority_url=f"{handle.base_url}/google/oauth2/token",
            authorization_url=f"{handle.base_url}/google/o/oauth2/v2/auth",
            api_base_url=f"{handle.base_url}/google/calendar/v3",
            ca_bundle=str(handle.ca_file),
        ),
        credential=CredentialAlias.objects.create(
            name="Sandbox Google app",
            kind=ProviderKind.GOOGLE,
            service_account_key=key,
            scopes="https://www.googleapis.com/auth/calendar",
        ),
        delegated_user_email=GOOGLE_USER,
    )
    user = get_user_model().objects.get(username="bench")
    space = Space.objects.create(location=Location.objects.get(), name="Bench NY", capacity=8)
    # Bound first: binding a room with reservations queues an export of its own at once.
    binding = SpaceCalendar.objects.create(
        space=space, provider=provider, resource_email=GOOGLE_ROOM, calendar_id=GOOGLE_ROOM
    )
    first = (datetime.now(UTC) + timedelta(days=1)).replace(minute=0, second=0, microsecond=0)
    Reservation.objects.bulk_create(
        [
            Reservation(
                space=space,
                requested_for=user,
                booked_by=user,
                title=f"Bench {n}",
                start=first + timedelta(minutes=30 * n),
                end=first + timedelta(minutes=30 * n + 30),
                buffered_start=first + timedelta(minutes=30 * n),
                buffered_end=first + timedelta(minutes=30 * n + 30),
            )
            for n in range(count)
        ],
        batch_size=1000,
    )
    return binding


def part_four(
    handle, binding, count: int, per_item: float, limit: int, window: float, scale: int
) -> list[results.Figure]:
    from calendars import tasks

    since = last_seq(handle)
    started = time.monotonic()
    job = tasks.start_export(binding, None)  # eager: runs here, in this process
    wall = time.monotonic() - started
    job.refresh_from_db()
    with handle.sandbox.lock:
        parts = [e for e in handle.sandbox.log if e["seq"] > since and e["batch_item"]]
    refused = sum(1 for e in parts if e["status"] in (403, 429))
    early = sum(handle.sandbox.limits.early.values())
    # Google runs a batch's parts one after another: one at a time, not 4.
    floor = throttle_floor(count, per_item * 4, limit, window)
    print(
        f"\n4. One Google resource calendar: {count} events, quota {limit} per {window:.0f} s"
        + (f" (600 per minute scaled by 1/{scale})" if scale > 1 else "")
    )
    print(
        f"   job #{job.pk}: {job.get_status_display()}, created {job.created_count}, "
        f"failed {job.failed_count}   target 0 failed"
    )
    print(
        f"   batch parts sent {len(parts)}, refused (rateLimitExceeded) {refused}   target 0; "
        f"sent before a Retry-After was up: {early}"
    )
    print(f"   wall time: {wall:.1f} s   quota floor {floor:.1f} s: {wall / floor:.3f}x")
    return [
        results.Figure("google: parts refused", refused, "parts", 0),
        results.Figure("google: events failed", job.failed_count, "events", 0),
        results.Figure("google: wall time / floor", wall / floor, "x"),
    ]


def soap_faults(handle, since: int) -> int:
    """EWS answers that were SOAP faults (HTTP 500): ErrorServerBusy here, no fault injected."""
    with handle.sandbox.lock:
        return sum(
            1
            for e in handle.sandbox.log
            if e["seq"] > since and e["service"] == "ews" and e["status"] == 500
        )


def ews_floor(count: int, per_item: float) -> float:
    """One room mailbox over EWS: a CreateItem's items are written one after another
    (``per_item`` each, the sandbox's charge), Reserva's limiter lets one batch at a time hold
    the mailbox, and counts at most 600 items a minute (``EWS_MAX_ITEMS``)."""
    return throttle_floor(count, per_item * 4, EWS_MAX_ITEMS, EWS_WINDOW_SECONDS)


def ews_request_target(count: int) -> int:
    """Per batch of 50: the look-up of what is made already (``FindItem``, and a ``GetItem``
    of the tagged items it finds), the ``CreateItem``; once: NTLM's two legs and the version
    probe (``ConvertId``), the root and calendar folders (``GetFolder``)."""
    return -(-count // 50) * 3 + 5


def part_five(handle, binding, count: int, per_item: float) -> list[results.Figure]:
    """One room mailbox over EWS (multi-item CreateItem of 50, integrations/ews/batch.py)."""
    from calendars import tasks

    since = last_seq(handle)
    started = time.monotonic()
    job = tasks.start_export(binding, None)  # eager: runs here, in this process
    wall = time.monotonic() - started
    job.refresh_from_db()
    seen = http_requests(handle, since)
    http = seen.get("ews", 0)
    busy = soap_faults(handle, since)
    floor = ews_floor(count, per_item)
    print(f"\n5. EWS: one room mailbox, {count} reservations, {per_item * 1000:.0f} ms per item")
    print(
        f"   job #{job.pk}: {job.get_status_display()}, created {job.created_count}, "
        f"failed {job.failed_count}"
    )
    print(
        f"   EWS requests: {http} ({http / max(count, 1):.3f} per event; target "
        f"<= {ews_request_target(count)}: 3 per CreateItem of 50 with its look-up, 5 to sign "
        f"in and find the folder); ErrorServerBusy: {busy}"
    )
    print(
        f"   wall time: {wall:.1f} s, {count / wall:.0f} events/s   floor {floor:.1f} s "
        f"({count} x {per_item * 1000:.0f} ms one after another"
        + (f", {EWS_MAX_ITEMS} items a minute" if count > EWS_MAX_ITEMS else "")
        + f"): {wall / floor:.2f}x   target <= 1.10x"
    )
    return [
        results.Figure("ews one room: EWS requests", http, "requests", ews_request_target(count)),
        results.Figure("ews one room: requests per event", http / max(count, 1), "requests"),
        results.Figure("ews one room: events per second", count / wall, "events/s"),
        results.Figure("ews one room: wall time / floor", wall / floor, "x", 1.10),
        results.Figure("ews one room: events failed", job.failed_count, "events", 0),
    ]


def part_three(
    handle, binding, count: int, per_item: float, limit: int, window: float, scale: int
) -> list[results.Figure]:
    from calendars import tasks

    since = last_seq(handle)
    started = time.monotonic()
    job = tasks.start_export(binding, None)  # eager: runs here, in this process
    wall = time.monotonic() - started
    job.refresh_from_db()
    seen = http_requests(handle, since)
    early = sum(handle.sandbox.limits.early.values())
    floor = throttle_floor(count, per_item, limit, window)
    print(
        f"\n3. One mailbox past the rate limit: {count} events, {limit} items per "
        f"{window:.0f} s" + (f" (10,000 per 10 minutes scaled by 1/{scale})" if scale > 1 else "")
    )
    print(
        f"   job #{job.pk}: {job.get_status_display()}, created {job.created_count}, "
        f"failed {job.failed_count}   target 0 failed"
    )
    print(
        f"   wall time: {wall:.1f} s   throttle floor {floor:.1f} s: {wall / floor:.3f}x   "
        "target <= 1.05x"
    )
    print(
        f"   429s received: {seen['429']}   requests sent before a Retry-After was up: {early}"
        "   target 0"
    )
    return [
        results.Figure("one mailbox past the limit: wall time / floor", wall / floor, "x", 1.05),
        results.Figure("one mailbox past the limit: events failed", job.failed_count, "events", 0),
        results.Figure(
            "one mailbox past the limit: requests before Retry-After", early, "requests", 0
        ),
    ]


def ews_parts(handle, opts: argparse.Namespace, counts: list[int]) -> list[results.Figure]:
    """Part 5: parts 1 and 2 over EWS, to the sandbox's bench room mailboxes."""
    started = time.monotonic()
    bindings = make_world(handle, len(counts), counts, ews_provider(handle), EWS_ROOM)
    print(f"loaded {sum(counts)} reservations (EWS) in {time.monotonic() - started:.1f} s")
    figures = []
    if not opts.skip_one:
        figures += part_five(handle, bindings[0], opts.reservations, opts.per_item)
    if len(bindings) > 1:
        rate = (
            f"at most {1 / opts.per_item:.0f} per second, one item of "
            f"{opts.per_item * 1000:.0f} ms after another"
        )
        figures += part_two(
            handle, opts.database_url, bindings[1:], opts.per_room, opts.workers,
            opts.per_item, opts.profile, label="ews many rooms", room_rate=rate,
        )  # fmt: skip
    return figures


def beside_graph(figures: list[results.Figure], per_item: float) -> None:
    """EWS's figures beside Graph's, both from this run (same sandbox, same machine)."""
    value = {f.name: f.value for f in figures}
    print(f"\nEWS beside Graph ({per_item * 1000:.0f} ms per item, this run):")
    print(f"   {'':32} {'EWS':>10} {'Graph':>10}")
    for part in ("one room", "many rooms"):
        for what, fmt in (("requests per event", ".3f"), ("events per second", ".0f")):
            shown = [
                format(value[key], fmt).rjust(10) if key in value else "-".rjust(10)
                for key in (f"ews {part}: {what}", f"{part}: {what}")
            ]
            print(f"   {what + ', ' + part:32} {shown[0]} {shown[1]}")
    print(
        f"   floors, one room: EWS N x {per_item * 1000:.0f} ms (items one after another; "
        f"{EWS_MAX_ITEMS} a minute), Graph N x {per_item * 1000:.0f} ms / 4 (4 items at once)"
    )


def main(argv: list[str] | None = None) -> None:
    opts = parse_args(argv)
    prepare_database(opts.database_url)
    setup_django(opts.database_url)
    from django.core.management import call_command

    from integrations.sandbox.testing import start_sandbox

    call_command("migrate", verbosity=0)
    rooms = 0 if opts.skip_many else opts.rooms
    limit, window = GRAPH_MAX_REQUESTS, GRAPH_WINDOW_SECONDS
    quota = (GOOGLE_MAX_REQUESTS // opts.scale, GOOGLE_WINDOW_SECONDS / opts.scale)
    if opts.throttle:
        limit, window = limit // opts.scale, window / opts.scale
        use_limits("microsoft", limit, window)
    if opts.google:
        use_limits("google", *quota)
    with tempfile.TemporaryDirectory(prefix="export-bench-") as state:
        ews_rooms = rooms + 1 if opts.ews else 0
        handle = start_sandbox(
            state, sandbox_config(rooms + 1, opts.per_item, limit, window, quota, ews_rooms)
        )
        allow_sandbox(handle)
        try:
            print(
                f"sandbox {handle.base_url}; database {urlsplit(opts.database_url).path}; "
                f"limiter {'redis' if os.environ.get('REDIS_URL') else 'files'}"
            )
            events = opts.per_room // opts.scale
            first = events if opts.throttle else 0 if opts.skip_one else opts.reservations
            if opts.google:
                first = 0
            counts = [first] + [opts.per_room] * rooms
            figures = []
            if opts.ews:
                figures += ews_parts(handle, opts, counts)
            started = time.monotonic()
            reset_limiter(rooms + 1)
            bindings = make_world(handle, rooms + 1, counts)
            print(f"loaded {sum(counts)} reservations in {time.monotonic() - started:.1f} s")
            if not opts.skip_one:
                figures += part_one(handle, bindings[0], opts.reservations, opts.per_item)
            if opts.throttle:
                figures += part_three(
                    handle, bindings[0], events, opts.per_item, limit, window, opts.scale
                )
            if opts.google:
                binding = google_binding(handle, events)
                figures += part_four(handle, binding, events, opts.per_item, *quota, opts.scale)
            if rooms:
                figures += part_two(
                    handle,
                    opts.database_url,
                    bindings[1:],
                    opts.per_room,
                    opts.workers,
                    opts.per_item,
                    opts.profile,
                )
            if opts.ews:
                beside_graph(figures, opts.per_item)
        finally:
            handle.stop()
    names = (
        "reservations", "rooms", "per_room", "workers", "per_item", "throttle", "google", "ews"
    )  # fmt: skip
    arguments = {k: getattr(opts, k) for k in (*names, "scale")}
    name = "export-throttle" if opts.throttle else "export-google" if opts.google else "export"
    name = "export-ews" if opts.ews else name
    results.record(opts.results, name, figures, arguments=arguments, quick=opts.quick)


if __name__ == "__main__":
    main()
