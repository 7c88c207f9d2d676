"""The portal under load (``make bench-portal``): locust against the production stack.

1. The data set of ``bench/booking.py`` (1,000 spaces, 1,000,000 reservations by default;
   ``--quick``: 100 x 200) in a PostgreSQL database whose name contains "bench", loaded once
   and kept; the static files collected into ``var/bench-static``.
2. ``--people`` of its people signed in: a session each, made in the database (signing in is
   not part of the mix), each at one of the locations (their profile's default), written with
   the rooms of each location to ``var/bench-portal-people.json``.
3. The production stack: ``gunicorn config.wsgi --workers 3`` (sync workers), ``DEBUG=false``,
   PostgreSQL, Redis (``--redis-url``: the cache and Celery's broker; the booking emails are
   queued there, no worker takes them), WhiteNoise serving the static files;
   ``--pool``: ``DATABASE_POOL=true`` (``psycopg[pool]`` is in the lock files).
4. ``locust -f bench/portal_locust.py --headless`` with ``--people`` users for ``--warmup``
   seconds (30; not measured: a gunicorn worker compiles each template and query on its first
   use, as a production server has long done), then again for ``--duration`` seconds (the
   mix and the think time are in that file); locust comes from the development lock
   (``.venv/bin/locust``, beside this interpreter), or ``--locust PATH`` / ``$LOCUST``.
5. Printed: per page, requests, failures, p50 and p95 with the target beside it (p95 under
   100 ms), requests per second, and the double bookings: slot-holding bookings of a space
   made or changed during the run that overlap another one of the same space (target 0; the
   exclusion constraint should make it impossible, this counts what happened); and where the
   CPU went, per request: gunicorn's processes (Django), PostgreSQL's (every ``postgres``
   process: on a machine running other databases, theirs too), locust's, and the rest of the
   machine (``/proc/stat``'s busy time less those three), with how busy the cores were.

Wall-clock figures: run it on a machine that does nothing else; on a shared one, use
``bench/portal_pages.py`` (queries and CPU time per page).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import booking
import portal_pages
import results

ROOT = Path(__file__).resolve().parents[1]
P95_TARGET_MS = 100.0
PEOPLE_FILE = ROOT / "var" / "bench-portal-people.json"
CSV_PREFIX = ROOT / "var" / "bench-portal"
PAGES = (
    "find",
    "schedule",
    "mine",
    "book form",
    "book",
    "reschedule form",
    "reschedule",
    "cancel form",
    "cancel",
    "detail",
)


@dataclass(frozen=True)
class Options:
    database_url: str
    redis_url: str
    spaces: int
    per_space: int
    people: int
    duration: int
    warmup: int
    workers: int
    port: int
    think_min: float
    think_max: float
    pool: bool
    locust: str | None
    seed: int
    quick: bool
    results: Path | None


def parse_args(argv: list[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_DATABASE_URL", booking.DEFAULT_DATABASE_URL),
    )
    parser.add_argument(
        "--redis-url", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/3")
    )
    parser.add_argument("--spaces", type=int, default=1000)
    parser.add_argument("--per-space", type=int, default=1000)
    parser.add_argument("--people", type=int, default=50, help="concurrent signed-in people")
    parser.add_argument("--duration", type=int, default=300, help="seconds of load")
    parser.add_argument(
        "--warmup",
        type=int,
        default=30,
        help="seconds of the same load first, not measured (each gunicorn worker compiles "
        "its templates and queries on first use)",
    )
    parser.add_argument("--workers", type=int, default=3, help="gunicorn sync workers")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--think-min", type=float, default=0.2, help="seconds between pages")
    parser.add_argument("--think-max", type=float, default=0.8)
    parser.add_argument("--pool", action="store_true", help="DATABASE_POOL=true")
    beside = Path(sys.executable).with_name("locust")
    default = os.environ.get("LOCUST") or (
        str(beside) if beside.exists() else shutil.which("locust")
    )
    parser.add_argument("--locust", default=default)
    parser.add_argument("--seed", type=int, default=2)
    parser.add_argument(
        "--quick", action="store_true", help="100 spaces x 200 reservations, 10 people, 30 s"
    )
    results.add_argument(parser)
    args = parser.parse_args(argv)
    if args.quick:
        args.spaces, args.per_space, args.people, args.duration = 100, 200, 10, 30
        args.warmup = 5
    if not 1 <= args.people <= booking.USERS:
        parser.error(f"--people must be between 1 and {booking.USERS} (the data set's people)")
    return Options(**{k: v for k, v in vars(args).items()})


def sign_in(people: int) -> None:
    """A session per person, each person's default location one of the data set's, and the
    rooms they book from and the floors of each location; written to PEOPLE_FILE for the
    locust scenario."""
    from importlib import import_module

    from django.conf import settings
    from django.contrib.auth import (
        BACKEND_SESSION_KEY,
        HASH_SESSION_KEY,
        SESSION_KEY,
        get_user_model,
    )

    from reservations import queries
    from reservations.models import Location, Profile, SpaceKind

    store = import_module(settings.SESSION_ENGINE).SessionStore
    locations = list(Location.objects.filter(name__startswith=booking.BENCH_PREFIX).order_by("pk"))
    users = get_user_model().objects.filter(username__startswith="bench").order_by("username")
    entries = []
    for index, user in enumerate(users[:people]):
        location = locations[index % len(locations)]
        Profile.objects.update_or_create(user=user, defaults={"default_location": location})
        session = store()
        session[SESSION_KEY] = str(user.pk)
        session[BACKEND_SESSION_KEY] = settings.AUTHENTICATION_BACKENDS[0]
        session[HASH_SESSION_KEY] = user.get_session_auth_hash()
        session.create()
        entries.append(
            {"username": user.username, "session": session.session_key, "location": location.pk}
        )
    rooms = {
        str(location.pk): list(
            queries.bookable_spaces()
            .filter(location=location, kind=SpaceKind.ROOM)
            .values_list("pk", flat=True)
        )
        for location in locations
    }
    floors = {
        str(location.pk): sorted(
            set(
                queries.bookable_spaces()
                .filter(location=location)
                .exclude(floor="")
                .values_list("floor", flat=True)
            )
        )
        for location in locations
    }
    PEOPLE_FILE.parent.mkdir(exist_ok=True)
    PEOPLE_FILE.write_text(
        json.dumps(
            {
                "cookie": settings.SESSION_COOKIE_NAME,
                "people": entries,
                "rooms": rooms,
                "floors": floors,
            }
        )
    )


def start_gunicorn(opts: Options) -> subprocess.Popen:
    env = {
        **os.environ,
        **portal_pages.production_environment(opts.database_url),
        "REDIS_URL": opts.redis_url,
        "DATABASE_POOL": "true" if opts.pool else "false",
    }
    if opts.pool:
        env["CONN_MAX_AGE"] = "0"
    server = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("gunicorn")),
            "config.wsgi",
            "--workers",
            str(opts.workers),
            "--bind",
            f"127.0.0.1:{opts.port}",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"gunicorn stopped at start (exit {server.returncode})")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{opts.port}/healthz", timeout=5) as r:
                if r.status == 200:
                    return server
        except OSError:
            time.sleep(0.5)
    server.terminate()
    raise SystemExit("gunicorn did not answer /healthz within 60 s")


def run_locust(opts: Options, seconds: int, csv_prefix: Path = CSV_PREFIX) -> None:
    command = [
        opts.locust,
        "-f",
        str(ROOT / "bench" / "portal_locust.py"),
        "--headless",
        "--users",
        str(opts.people),
        "--spawn-rate",
        str(max(1, opts.people // 5)),
        "--run-time",
        f"{seconds}s",
        "--host",
        f"http://127.0.0.1:{opts.port}",
        "--csv",
        str(csv_prefix),
        "--only-summary",
        "--people-file",
        str(PEOPLE_FILE),
        "--think-min",
        str(opts.think_min),
        "--think-max",
        str(opts.think_max),
    ]
    # locust exits 1 when any request failed; the figures say so below.
    subprocess.run(command, cwd=ROOT, check=False)


# -- where the CPU goes: Django (gunicorn), PostgreSQL, the load generator, the rest -------------

TICK = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str] | None:
    """/proc/<pid>/stat's fields after the command name, or None for a process gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()


def _cpu_of(pid: int, reaped: bool = False) -> float:
    """CPU seconds of a live process (utime + stime), plus those of the children it has
    reaped (cutime + cstime) when ``reaped``."""
    fields = _stat(pid)
    if fields is None:
        return 0.0
    ticks = int(fields[11]) + int(fields[12])  # utime, stime
    if reaped:
        ticks += int(fields[13]) + int(fields[14])  # cutime, cstime
    return ticks / TICK


def _processes() -> list[tuple[int, int, str]]:
    """(pid, parent pid, command name) of every process."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                text = (entry / "stat").read_text()
            except OSError:
                continue
            name = text[text.index("(") + 1 : text.rindex(")")]
            found.append((int(entry.name), int(text[text.rindex(")") + 2 :].split()[1]), name))
    return found


def server_cpu(server_pid: int) -> dict[str, float]:
    """CPU seconds so far of the gunicorn master and its workers (with what it reaped), of
    every PostgreSQL process (the postmaster with its exited backends), and the machine's busy
    time (/proc/stat: user, nice, system, irq, softirq, steal, over all cores)."""
    processes = _processes()
    workers = [pid for pid, parent, _ in processes if parent == server_pid]
    postgres = [pid for pid, _, name in processes if name.startswith("postgres")]
    postmaster = min(postgres, default=None)
    with Path("/proc/stat").open() as handle:
        cpu = [int(value) for value in handle.readline().split()[1:]]
    busy = sum(cpu[i] for i in (0, 1, 2, 5, 6, 7) if i < len(cpu)) / TICK
    return {
        "django": _cpu_of(server_pid, reaped=True) + sum(_cpu_of(pid) for pid in workers),
        "postgres": sum(_cpu_of(pid, reaped=pid == postmaster) for pid in postgres),
        "machine": busy,
    }


def load_generator_cpu() -> float:
    """CPU seconds of this process's reaped children so far (locust, once it has exited)."""
    times = os.times()
    return times.children_user + times.children_system


@dataclass(frozen=True)
class PageFigures:
    name: str
    requests: int
    failures: int
    p50_ms: float
    p95_ms: float


def read_stats() -> tuple[list[PageFigures], PageFigures, float]:
    """Per page, the aggregate, and requests per second, from locust's CSV."""
    pages, total, rate = [], None, 0.0
    with Path(f"{CSV_PREFIX}_stats.csv").open() as handle:
        for row in csv.DictReader(handle):
            figures = PageFigures(
                row["Name"],
                int(row["Request Count"]),
                int(row["Failure Count"]),
                float(row["50%"] or 0),
                float(row["95%"] or 0),
            )
            if row["Name"] == "Aggregated":
                total, rate = figures, float(row["Requests/s"])
            else:
                pages.append(figures)
    pages.sort(key=lambda p: PAGES.index(p.name) if p.name in PAGES else len(PAGES))
    if total is None:
        raise SystemExit("locust wrote no aggregate figures")
    return pages, total, rate


def double_bookings(since: datetime) -> int:
    """Slot-holding bookings made or changed since ``since`` that overlap another slot-holding
    booking of the same space."""
    from django.db import connection

    from reservations.models import SLOT_HOLDING_STATUSES

    holding = [str(status) for status in SLOT_HOLDING_STATUSES]
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT count(DISTINCT a.id)
            FROM reservations_reservation a
            JOIN reservations_reservation b
              ON b.space_id = a.space_id AND b.id <> a.id
             AND b.start < a."end" AND a.start < b."end" AND b.status = ANY(%s)
            WHERE a.updated >= %s AND a.status = ANY(%s)
            """,
            [holding, since, holding],
        )
        return cursor.fetchone()[0]


def main(argv: list[str] | None = None) -> None:
    opts = parse_args(argv)
    if not opts.locust or not Path(opts.locust).exists():
        raise SystemExit(
            "locust not found: run make install (it is in requirements-dev.lock), or give "
            "--locust PATH / set LOCUST"
        )
    booking.prepare_database(opts.database_url, reuse=True)
    portal_pages.setup_django(opts.database_url)
    from django.db import connection

    portal_pages.prepare(opts.database_url, opts.spaces, opts.per_space, opts.seed)
    sign_in(opts.people)
    connection.close()
    print(
        f"{opts.people} people, {opts.duration} s (after {opts.warmup} s of warm-up), "
        f"gunicorn --workers {opts.workers}, "
        f"DATABASE_POOL={'true' if opts.pool else 'false'}, think time "
        f"{opts.think_min}-{opts.think_max} s, {opts.spaces * opts.per_space:,} reservations"
    )
    began = datetime.now(UTC)
    server = start_gunicorn(opts)
    try:
        if opts.warmup:
            run_locust(opts, opts.warmup, CSV_PREFIX.with_name(CSV_PREFIX.name + "-warmup"))
        before, locust_before = server_cpu(server.pid), load_generator_cpu()
        run_locust(opts, opts.duration)
        after, locust_after = server_cpu(server.pid), load_generator_cpu()
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
    pages, total, rate = read_stats()
    doubles = double_bookings(began)
    spent = {key: after[key] - before[key] for key in after}
    spent["locust"] = locust_after - locust_before
    spent["rest"] = spent["machine"] - spent["django"] - spent["postgres"] - spent["locust"]

    print(f"\n{'page':<16} {'requests':>8} {'failures':>8} {'p50 ms':>7} {'p95 ms':>7}")
    for page in pages:
        verdict = "PASS" if page.p95_ms < P95_TARGET_MS else "MISS"
        print(
            f"{page.name:<16} {page.requests:>8} {page.failures:>8} {page.p50_ms:>7.0f} "
            f"{page.p95_ms:>7.0f}   (target p95 < {P95_TARGET_MS:.0f} ms) {verdict}"
        )
    print(
        f"{'all':<16} {total.requests:>8} {total.failures:>8} {total.p50_ms:>7.0f} "
        f"{total.p95_ms:>7.0f}   {rate:.1f} requests/s"
    )
    print(f"errors: {total.failures}   (target 0) {'PASS' if not total.failures else 'MISS'}")
    print(f"double bookings: {doubles}   (target 0) {'PASS' if not doubles else 'MISS'}")
    per_request = {key: 1000 * value / max(total.requests, 1) for key, value in spent.items()}
    cores = os.cpu_count() or 1
    busy = 100 * spent["machine"] / (cores * opts.duration)
    print(
        f"CPU per request: Django (gunicorn) {per_request['django']:.1f} ms, PostgreSQL "
        f"{per_request['postgres']:.1f} ms, locust {per_request['locust']:.1f} ms, the rest of "
        f"the machine {per_request['rest']:.1f} ms; machine busy {busy:.0f}% of {cores} cores"
    )
    figures = [
        results.Figure(f"{page.name}: p95", page.p95_ms, "ms", P95_TARGET_MS) for page in pages
    ]
    figures += [
        results.Figure("all pages: p95", total.p95_ms, "ms", P95_TARGET_MS),
        results.Figure("requests per second", rate, "requests/s"),
        results.Figure("errors", total.failures, "requests", 0),
        results.Figure("double bookings", doubles, "bookings", 0),
        *(
            results.Figure(f"CPU per request: {key}", round(value, 2), "ms")
            for key, value in per_request.items()
            if key != "machine"
        ),
    ]
    results.record(
        opts.results,
        "portal_load",
        figures,
        arguments={
            k: getattr(opts, k)
            for k in ("spaces", "per_space", "people", "duration", "warmup", "workers", "pool")
        }
        | {"think": f"{opts.think_min}-{opts.think_max}"},
        quick=opts.quick,
    )


if __name__ == "__main__":
    main()
