"""Bulk export benchmark against the provider sandbox with Graph's per-mailbox limits.

The sandbox runs in this process with Exchange Online's published limits per (app, mailbox):
4 requests in flight and 10,000 requests per 10 minutes, each ``$batch`` item counted; and
``--per-item`` latency (default 50 ms) on every batch item. Reserva's own limiter (Redis when
``REDIS_URL`` is set, else files under var/limits) keeps the client under the same limits.

1. One room: ``--reservations`` (default 2,000) future reservations exported by one job.
   Printed: HTTP requests used (target: at most 105, i.e. 100 ``$batch`` requests of 20
   plus token calls), wall time against the floor 2,000 x 50 ms / 4 = 25 s (target: within
   10%), 429s received and events failed (target: 0 and 0).
2. Many rooms: ``--rooms`` (default 100) rooms x ``--per-room`` (default 100) reservations,
   one export job per room, run by ``--workers`` (default 8) worker processes, each running
   jobs one after another with the same runner the Celery task calls
   (``calendars.sync.export.run_export_job``). Printed: aggregate events per second.

It uses its own database, never ``test``: PostgreSQL ``reserva_export_bench`` by default
(dropped and created again at each run; only a name containing "bench" is accepted), or a
SQLite file with ``--database-url sqlite:////tmp/reserva_export_bench.sqlite3`` (then part 2
runs with one worker: SQLite has one writer).

Run::

    make bench-export
    .venv/bin/python bench/export.py --reservations 400 --rooms 20 --per-room 50   # quick
    REDIS_URL=redis://127.0.0.1:6379/0 .venv/bin/python bench/export.py --workers 16

About the floor: like Graph with Outlook, the sandbox runs an unordered ``$batch``'s items
up to 4 at a time, each holding one of the mailbox's 4 slots for ``--per-item`` seconds, and
Reserva's limiter lets a ``$batch`` occupy the whole mailbox (4 slots) while it runs. A batch
of 20 therefore takes 20 x 50 ms / 4 = 250 ms and one batch runs per mailbox at a time: the
floor is 2,000 x 50 ms / 4 = 25 s, reachable only if nothing but the batches themselves takes
time. The exporter reads and builds the next batch, and records the previous one, while a
batch is in flight, so the database work stays off that path.

Each run starts from an empty client-side limiter for the bench mailboxes: the sandbox is new
at every run, and Redis would otherwise still count the previous runs' items in its
10-minute window (five runs of 2,000 items in 10 minutes would exhaust it).
"""

from __future__ import annotations

import argparse
import hashlib
import multiprocessing
import os
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


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL)
    )
    parser.add_argument("--reservations", type=int, default=2000)
    parser.add_argument("--rooms", type=int, default=100)
    parser.add_argument("--per-room", type=int, default=100)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--per-item", type=float, default=0.05, help="seconds per batch item")
    parser.add_argument("--skip-one", action="store_true", help="skip part 1")
    parser.add_argument("--skip-many", action="store_true", help="skip part 2")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="400 reservations in one room, 20 rooms x 40 (make bench)",
    )
    results.add_argument(parser)
    args = parser.parse_args(argv)
    if args.quick:
        args.reservations, args.rooms, args.per_room = 400, 20, 40
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


def sandbox_config(rooms: int, per_item: float) -> dict:
    from integrations.sandbox.config import default_config, merge

    config = default_config()
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
                    "graph": {"max_in_flight": 4, "max_requests": 10_000, "window_seconds": 600}
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

    backend = _limiter_backend("microsoft")
    for i in range(rooms):
        key = f"graph:{DEMO_CLIENT_ID}:{ROOM.format(i)}"  # MicrosoftClient._limit_key
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


def make_world(handle, rooms: int, per_room: list[int]):
    """A user, a location, ``rooms`` spaces bound to the sandbox's bench rooms, and
    ``per_room[i]`` back-to-back 30-minute reservations in room i from tomorrow."""
    from django.contrib.auth import get_user_model

    from calendars.models import (
        CalendarProvider,
        ConnectionAlias,
        CredentialAlias,
        ProviderKind,
        SpaceCalendar,
    )
    from integrations.sandbox.config import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_TENANT_ID
    from reservations.models import Location, Reservation, Space

    user = get_user_model().objects.create_user(
        "bench", email="bench@example.com", first_name="Bench", last_name="Mark"
    )
    location = Location.objects.create(name="Bench", time_zone="Europe/London")
    provider = CalendarProvider.objects.create(
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
    first = (datetime.now(UTC) + timedelta(days=1)).replace(minute=0, second=0, microsecond=0)
    bindings = []
    for i in range(rooms):
        space = Space.objects.create(location=location, name=f"Bench {i:03d}", capacity=8)
        bindings.append(
            SpaceCalendar.objects.create(
                space=space, provider=provider, resource_email=ROOM.format(i)
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
        results.Figure("one room: wall time / floor", wall / floor, "x", 1.10),
        results.Figure("one room: events failed", job.failed_count, "events", 0),
    ]


def _worker(url: str, job_ids: list[int], done) -> None:
    setup_django(url)
    from django.db import connection

    from calendars.sync import export

    for job_id in job_ids:
        job = export.run_export_job(job_id)
        done.put((job_id, job.created_count if job else 0, job.failed_count if job else 0))
    connection.close()


def part_two(
    handle, url: str, bindings, per_room: int, workers: int, per_item: float
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
    done = context.Queue()
    shares = [jobs[i::workers] for i in range(workers)]
    started = time.monotonic()
    processes = [
        context.Process(target=_worker, args=(url, share, done)) for share in shares if share
    ]
    for process in processes:
        process.start()
    finished = [done.get() for _ in jobs]
    wall = time.monotonic() - started
    for process in processes:
        process.join()
    created = sum(r[1] for r in finished)
    failed = sum(r[2] for r in finished)
    seen = http_requests(handle, since)
    total = len(bindings) * per_room
    print(
        f"\n2. {len(bindings)} rooms x {per_room} reservations, {len(processes)} worker processes"
    )
    print(
        f"   created {created} of {total}, failed {failed}, 429s {seen['429']}, "
        f"HTTP requests {sum(n for k, n in seen.items() if k != '429')}"
    )
    print(
        f"   wall time {wall:.1f} s: {created / wall:.0f} events per second "
        f"(one room alone: at most {4 / per_item:.0f} per second, 4 items of "
        f"{per_item * 1000:.0f} ms at once)"
    )
    return [
        results.Figure("many rooms: events per second", created / wall, "events/s", 1000, "higher"),
        results.Figure("many rooms: events failed", failed, "events", 0),
    ]


def main(argv: list[str] | None = None) -> None:
    opts = parse_args(argv)
    prepare_database(opts.database_url)
    setup_django(opts.database_url)
    from django.core.management import call_command

    from integrations.sandbox.testing import start_sandbox

    call_command("migrate", verbosity=0)
    rooms = 0 if opts.skip_many else opts.rooms
    with tempfile.TemporaryDirectory(prefix="export-bench-") as state:
        handle = start_sandbox(state, sandbox_config(rooms + 1, opts.per_item))
        allow_sandbox(handle)
        try:
            print(
                f"sandbox {handle.base_url}; database {urlsplit(opts.database_url).path}; "
                f"limiter {'redis' if os.environ.get('REDIS_URL') else 'files'}"
            )
            counts = [0 if opts.skip_one else opts.reservations] + [opts.per_room] * rooms
            started = time.monotonic()
            reset_limiter(rooms + 1)
            bindings = make_world(handle, rooms + 1, counts)
            print(f"loaded {sum(counts)} reservations in {time.monotonic() - started:.1f} s")
            figures = []
            if not opts.skip_one:
                figures += part_one(handle, bindings[0], opts.reservations, opts.per_item)
            if rooms:
                figures += part_two(
                    handle,
                    opts.database_url,
                    bindings[1:],
                    opts.per_room,
                    opts.workers,
                    opts.per_item,
                )
        finally:
            handle.stop()
    arguments = {
        k: getattr(opts, k) for k in ("reservations", "rooms", "per_room", "workers", "per_item")
    }
    results.record(opts.results, "export", figures, arguments=arguments, quick=opts.quick)


if __name__ == "__main__":
    main()
