"""Insights page benchmark on PostgreSQL: the page's answer time over a year of rollup rows.

What it measures, on a separate database (``reserva_insights_bench`` by default; its name
must contain "bench", which is dropped and created again unless ``--reuse``):

1. Load: ``--spaces`` spaces (default 1,000) in four locations (four zones) and ``--days``
   days (default 365, ending yesterday) of ``SpaceDayStats`` rows per space, with one to three
   ``SpaceDaySource`` rows each (``bulk_create``; the daily rollup itself is not timed here),
   then the monthly rollup of those rows (``rollup_month``, timed and printed), which the
   page reads for the whole months of a period.
2. The page: ``GET /insights/`` through Django's test client as a user with the
   ``view_insights`` permission, ``--runs`` times (default 30, after two warm-up requests) for
   each of: the default period (the last four weeks, every location), the whole year, and the
   whole year of one location. Printed: median and p95, and the number of queries.
   Target: p95 under 200 ms.

Run (PostgreSQL on 127.0.0.1:5432, trust auth)::

    make bench-insights
    .venv/bin/python bench/insights.py --reuse            # keep the loaded rows
    .venv/bin/python bench/insights.py --spaces 100 --days 60   # a quick run

Timings on a shared machine are noisy: run it twice and compare.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from datetime import date, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import results

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/reserva_insights_bench"
P95_TARGET_MS = 200.0
ZONES = ("Europe/London", "America/New_York", "Asia/Tokyo", "UTC")
SOURCES = ("portal", "rest_api", "exchange", "google", "mobile")
PREFIX = "Bench insights"
BATCH = 5000


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL),
        help="PostgreSQL database (created if missing; its name must contain 'bench'). "
        "Default: $BENCH_DATABASE_URL or %(default)s",
    )
    parser.add_argument("--spaces", type=int, default=1000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--reuse", action="store_true", help="keep rows already loaded")
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument(
        "--quick", action="store_true", help="100 spaces x 120 days, 10 runs (make bench)"
    )
    results.add_argument(parser)
    args = parser.parse_args(argv)
    if args.quick:
        args.spaces, args.days, args.runs = 100, 120, 10
    if args.spaces < 1 or args.days < 1 or args.runs < 1:
        parser.error("--spaces, --days and --runs must be at least 1")
    return args


def prepare_database(url: str, *, reuse: bool) -> None:
    """Create the bench database if missing; drop and recreate it unless ``reuse``. Only a
    database whose name contains "bench" is ever touched."""
    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    if parts.scheme not in ("postgres", "postgresql", "pgsql") or "bench" not in name:
        raise SystemExit(f"Refusing to use {name!r}: a PostgreSQL database named *bench* only.")
    maintenance = urlunsplit(parts._replace(scheme="postgresql", path="/postgres"))
    with psycopg.connect(maintenance, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if exists and not reuse:
            conn.execute(psycopg.sql.SQL("DROP DATABASE {}").format(psycopg.sql.Identifier(name)))
            exists = None
        if not exists:
            conn.execute(psycopg.sql.SQL("CREATE DATABASE {}").format(psycopg.sql.Identifier(name)))


def setup_django(url: str) -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    os.environ["DEBUG"] = "true"
    os.environ["DATABASE_URL"] = url
    os.environ["EMAIL_URL"] = "dummymail://"
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.test.utils import setup_test_environment

    setup_test_environment()  # the test client's host, nothing else changes


def load(spaces: int, days: int, rng: random.Random) -> float:
    """The locations, spaces and rollup rows; returns the seconds it took."""
    from reservations.models import (
        HOUR_FIELDS,
        Location,
        OpeningHours,
        Space,
        SpaceDaySource,
        SpaceDayStats,
        SpaceKind,
    )

    began = time.perf_counter()
    locations = [Location.objects.create(name=f"{PREFIX} {zone}", time_zone=zone) for zone in ZONES]
    for location in locations:
        OpeningHours.objects.bulk_create(
            OpeningHours(location=location, weekday=d, opens="08:00", closes="18:00")
            for d in range(5)
        )
    kinds = (SpaceKind.ROOM, SpaceKind.ROOM, SpaceKind.DESK)
    made = Space.objects.bulk_create(
        Space(
            location=locations[i % len(locations)],
            name=f"{PREFIX} space {i:04d}",
            floor=str(i % 6),
            kind=kinds[i % 3],
            capacity=1 + i % 12,
        )
        for i in range(spaces)
    )
    first = date.today() - timedelta(days=days)
    pending: list[SpaceDayStats] = []

    def flush() -> None:
        rows = SpaceDayStats.objects.bulk_create(pending)
        SpaceDaySource.objects.bulk_create(
            SpaceDaySource(
                stats=row,
                space_id=row.space_id,
                day=row.day,
                source=source,
                bookings=1 + rng.randrange(4),
            )
            for row in rows
            if row.bookings
            for source in rng.sample(SOURCES, k=1 + rng.randrange(3))
        )
        pending.clear()

    for offset in range(days):
        day = first + timedelta(days=offset)
        weekday = day.weekday()
        for space in made:
            busy = weekday < 5 and rng.random() < 0.8
            hours = [rng.choice((0, 0, 30, 60)) if busy and 8 <= h < 18 else 0 for h in range(24)]
            bookings = sum(1 for m in hours if m) // 2
            pending.append(
                SpaceDayStats(
                    space=space,
                    day=day,
                    weekday=weekday,
                    available_minutes=600 if weekday < 5 else 0,
                    booked_minutes=sum(hours),
                    bookings=bookings,
                    check_in_required=space.pk % 4 == 0,
                    checked_in=bookings // 2 if space.pk % 4 == 0 else 0,
                    released=bookings - bookings // 2 if space.pk % 4 == 0 else 0,
                    booking_minutes=sum(hours),
                    lead_minutes=bookings * 1440,
                    **dict(zip(HOUR_FIELDS, hours, strict=True)),
                )
            )
            if len(pending) >= BATCH:
                flush()
        if offset % 30 == 29:
            print(f"  loaded {offset + 1:>4} of {days} days  {time.perf_counter() - began:6.1f} s")
    if pending:
        flush()
    return time.perf_counter() - began


def roll_months(days: int) -> float:
    """The monthly rollup of every location and month the daily rows cover (as ``rebuild``
    does after the days it rebuilds), then fresh planner statistics; returns the seconds."""
    from django.db import connection

    from reservations.insights import rollup
    from reservations.models import Location

    began = time.perf_counter()
    first, last = date.today() - timedelta(days=days), date.today() - timedelta(days=1)
    for location in Location.objects.filter(name__startswith=PREFIX):
        month = rollup.month_of(first)
        while month <= last:
            rollup.rollup_month(location, month)
            month = rollup.next_month(month)
    # Planner statistics for every table the page reads, as autovacuum keeps them in a
    # running database: without them PostgreSQL takes a freshly loaded location for one
    # space and loops over the rollup rows once per space.
    tables = ("location", "space", "spacedaystats", "spacedaysource", "spacemonthstats")
    with connection.cursor() as cursor:
        for table in (*tables, "spacemonthsource"):
            cursor.execute(f"VACUUM ANALYZE reservations_{table}")
    return time.perf_counter() - began


def percentile(seconds: list[float], pct: int) -> float:
    if len(seconds) == 1:
        return seconds[0] * 1000
    return statistics.quantiles(seconds, n=100, method="inclusive")[pct - 1] * 1000


def time_page(client, params: dict, runs: int) -> tuple[list[float], int, int]:
    """Seconds per request, the number of queries of one request, its status code."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for _ in range(2):
        client.get("/insights/", params)
    seconds = []
    for _ in range(runs):
        began = time.perf_counter()
        answer = client.get("/insights/", params)
        seconds.append(time.perf_counter() - began)
    with CaptureQueriesContext(connection) as captured:
        answer = client.get("/insights/", params)
    return seconds, len(captured.captured_queries), answer.status_code


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    prepare_database(args.database_url, reuse=args.reuse)
    setup_django(args.database_url)
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Permission
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client

    from reservations.models import Location, SpaceDayStats, SpaceMonthStats

    print(f"Database: {connection.settings_dict['NAME']} on {connection.settings_dict['HOST']}")
    call_command("migrate", verbosity=0, interactive=False)
    expected = args.spaces * args.days
    if args.reuse and SpaceDayStats.objects.count() == expected:
        print("load: reusing the rows already there (--reuse)")
    else:
        if SpaceDayStats.objects.exists():
            raise SystemExit("--reuse: the database holds other rows; run once without it.")
        seconds = load(args.spaces, args.days, random.Random(args.seed))
        print(f"load: {expected:,} rollup rows in {seconds:.1f} s")
    if not (args.reuse and SpaceMonthStats.objects.exists()):
        seconds = roll_months(args.days)
        print(f"monthly rollup: {SpaceMonthStats.objects.count():,} rows in {seconds:.1f} s")
    print(
        f"rollup rows: {SpaceDayStats.objects.count():,} daily, "
        f"{SpaceMonthStats.objects.count():,} monthly (space x month x weekday)"
    )

    user, _ = get_user_model().objects.get_or_create(username="bench-analyst")
    user.user_permissions.add(Permission.objects.get(codename="view_insights"))
    client = Client()
    client.force_login(user)
    today = date.today()
    year = {"start": str(today - timedelta(days=args.days)), "end": str(today - timedelta(1))}
    one = Location.objects.order_by("pk").first()
    cases = [
        ("last 4 weeks", {}),
        ("whole year", year),
        ("year, 1 location", {**year, "location": one.pk}),
    ]
    print()
    figures = []
    for label, params in cases:
        seconds, queries, status = time_page(client, params, args.runs)
        p50, p95 = statistics.median(seconds) * 1000, percentile(seconds, 95)
        verdict = "PASS" if p95 < P95_TARGET_MS else "MISS"
        print(
            f"{label:<17} median {p50:7.1f} ms   p95 {p95:7.1f} ms   {queries} queries, "
            f"HTTP {status}, {args.runs} runs  (target p95 < {P95_TARGET_MS:.0f} ms)  {verdict}"
        )
        figures += [
            results.Figure(f"{label}: median", p50, "ms"),
            results.Figure(f"{label}: p95", p95, "ms", P95_TARGET_MS),
            results.Figure(f"{label}: queries", queries, "queries"),
        ]
    arguments = {k: getattr(args, k) for k in ("spaces", "days", "runs", "seed")}
    results.record(args.results, "insights", figures, arguments=arguments, quick=args.quick)


if __name__ == "__main__":
    main()
