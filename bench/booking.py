"""Booking engine benchmark on PostgreSQL: bookings per second, and the free-spaces query.

What it measures, on a separate database (``reserva_bench`` by default, never ``test``):

1. Load: ``--spaces`` spaces (default 1,000) with ``--per-space`` reservations each (default
   1,000, so 1,000,000 rows) spread over a year either side of today, written straight into the
   table with ``INSERT ... SELECT generate_series`` (not through the service: a million service
   calls would take hours). Each space's bookings sit in their own non-overlapping slots of its
   timeline, so the rows satisfy the exclusion constraint; about 5% are pending and 3% cancelled.
2. Booking: ``--bookings`` sequential ``reservations.services.book`` calls (default 500) by a
   real user with full validation, each in a free gap of a random space in the coming year.
   Printed: bookings per second, p50, p95. Target: p95 under 20 ms.
3. Free spaces: ``--queries`` calls (default 300) of
   ``list(queries.free_spaces(start, end, min_capacity=N))`` for random whole hours inside the
   busy range, across all spaces. Printed: p50, p95, and one EXPLAIN ANALYZE.
   Target: p95 under 50 ms.

Locations are open 00:00-23:59 every day with a long horizon, so what is timed is the database
work, not validation refusals. Booking emails are muted (nothing is queued for Celery) and the
email backend is a dummy.

Run (PostgreSQL on 127.0.0.1:5432, trust auth)::

    make bench-booking
    .venv/bin/python bench/booking.py --reuse                 # keep the loaded data
    .venv/bin/python bench/booking.py --spaces 100 --per-space 200   # a quick run

Timings on a shared machine are noisy: run it twice and compare.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

import psycopg
import results

if TYPE_CHECKING:
    from reservations.models import Space

    Slot = tuple[Space, datetime, datetime]

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/reserva_bench"

BOOKING_P95_TARGET_MS = 20.0
FREE_SPACES_P95_TARGET_MS = 50.0

SLOT = timedelta(minutes=15)  # every generated start and end falls on a quarter hour
BUSY_DAYS = 365  # the loaded reservations cover today +/- this many days
LOCATION_ZONES = ("Europe/London", "America/New_York", "Asia/Tokyo", "UTC")
ROOM_CAPACITIES = (2, 4, 6, 8, 10, 12, 16, 20)
BENCH_PREFIX = "Bench"
USERS = 100


@dataclass(frozen=True)
class Options:
    database_url: str
    spaces: int
    per_space: int
    bookings: int
    queries: int
    min_capacity: int
    reuse: bool
    seed: int
    quick: bool = False
    results: Path | None = None


def parse_args(argv: list[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL),
        help="PostgreSQL database to use (created if missing; its name must contain 'bench'). "
        "Default: $BENCH_DATABASE_URL or %(default)s",
    )
    parser.add_argument("--spaces", type=int, default=1000)
    parser.add_argument("--per-space", type=int, default=1000, help="reservations per space")
    parser.add_argument("--bookings", type=int, default=500, help="service bookings to time")
    parser.add_argument("--queries", type=int, default=300, help="free-spaces queries to time")
    parser.add_argument("--min-capacity", type=int, default=4)
    parser.add_argument(
        "--reuse", action="store_true", help="keep the data already loaded if it matches"
    )
    parser.add_argument("--seed", type=int, default=2)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="100 spaces x 200 reservations, 200 bookings, 100 queries (make bench)",
    )
    results.add_argument(parser)
    args = parser.parse_args(argv)
    if args.quick:
        args.spaces, args.per_space, args.bookings, args.queries = 100, 200, 200, 100
    slots_per_space = int(2 * BUSY_DAYS * timedelta(days=1) / SLOT)
    if not 1 <= args.per_space <= slots_per_space // 3:
        parser.error(f"--per-space must be between 1 and {slots_per_space // 3}")
    if args.spaces < 1:
        parser.error("--spaces must be at least 1")
    return Options(
        database_url=args.database_url,
        spaces=args.spaces,
        per_space=args.per_space,
        bookings=args.bookings,
        queries=args.queries,
        min_capacity=args.min_capacity,
        reuse=args.reuse,
        seed=args.seed,
        quick=args.quick,
        results=args.results,
    )


# --- the database ---------------------------------------------------------------------------


def prepare_database(url: str, *, reuse: bool) -> None:
    """Create the bench database if missing; drop and recreate it unless ``reuse``.

    Only a database whose name contains "bench" is ever created or dropped, so a mistyped URL
    cannot wipe the test database or a real one.
    """
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


def busy_range(today: datetime) -> tuple[datetime, datetime]:
    """The span the loaded reservations cover: midnight UTC, a year either side of today."""
    midnight = today.replace(hour=0, minute=0, second=0, microsecond=0)
    return midnight - timedelta(days=BUSY_DAYS), midnight + timedelta(days=BUSY_DAYS)


def loaded(opts: Options) -> bool:
    from reservations.models import Reservation, Space

    spaces = Space.objects.filter(name__startswith=f"{BENCH_PREFIX} space ")
    return (
        spaces.count() == opts.spaces
        and Reservation.objects.filter(space__in=spaces).count() >= opts.spaces * opts.per_space
    )


# Each space's timeline is cut into per_space equal periods (a whole number of quarter hours);
# reservation k lies inside period k: a random length of 30 min to 4 h (shorter when periods are
# short) at a random quarter-hour offset. Periods do not overlap, so neither do the bookings.
INSERT_RESERVATIONS = """
INSERT INTO reservations_reservation (
    space_id, requested_for_id, booked_by_id, start, "end", buffered_start, buffered_end,
    title, public_nickname, description, kind, attendees, status, source, sync_mailbox,
    series_id, organizer_name, organizer_email, cancel_reason, approval, created, updated,
    version
)
SELECT
    space_id, user_id, user_id,
    period_start + offset_slots * %(slot)s,
    period_start + (offset_slots + length_slots) * %(slot)s,
    period_start + offset_slots * %(slot)s,  -- the buffered range: bench spaces have none
    period_start + (offset_slots + length_slots) * %(slot)s,
    'Bench booking', '', '', 'standard', '[]'::jsonb,
    CASE WHEN dice < 0.03 THEN 'cancelled' WHEN dice < 0.08 THEN 'pending' ELSE 'confirmed' END,
    'portal', 'room', NULL, '', '', '', '', now(), now(), 1
FROM (
    SELECT space_id, period_start, user_id, dice, length_slots,
           floor(random() * (%(period_slots)s - length_slots + 1))::int AS offset_slots
    FROM (
        SELECT s.id AS space_id,
               %(first)s + k * %(period_slots)s * %(slot)s AS period_start,
               (%(users)s::bigint[])[1 + (s.id + k) %% cardinality(%(users)s::bigint[])]
                   AS user_id,
               random() AS dice,
               least(2 + floor(random() * 15)::int, %(period_slots)s) AS length_slots
        FROM reservations_space s
        CROSS JOIN generate_series(0, %(per_space)s - 1) AS k
        WHERE s.id = ANY(%(space_ids)s)
    ) AS periods
) AS slots
"""


def load(opts: Options, today: datetime) -> float:
    """Write the locations, spaces, users and reservations; returns the seconds it took."""
    from django.contrib.auth import get_user_model
    from django.db import connection, transaction

    from reservations.models import Location, OpeningHours, Space, SpaceKind

    began = time.perf_counter()
    rng = random.Random(opts.seed)
    with transaction.atomic():
        locations = [
            Location.objects.create(
                name=f"{BENCH_PREFIX} {zone}",
                time_zone=zone,
                booking_horizon_days=BUSY_DAYS + 30,
                max_booking_minutes=24 * 60,
            )
            for zone in LOCATION_ZONES
        ]
        OpeningHours.objects.bulk_create(
            OpeningHours(location=location, weekday=day, opens="00:00", closes="23:59")
            for location in locations
            for day in range(7)
        )
        spaces = []
        for number in range(1, opts.spaces + 1):
            desk = number % 5 in (0, 1)
            spaces.append(
                Space(
                    location=locations[number % len(locations)],
                    floor=str(number // 100),
                    name=f"{BENCH_PREFIX} space {number:05d}",
                    kind=SpaceKind.DESK if desk else SpaceKind.ROOM,
                    capacity=1 if desk else rng.choice(ROOM_CAPACITIES),
                )
            )
        Space.objects.bulk_create(spaces, batch_size=1000)
        users = get_user_model().objects.bulk_create(
            get_user_model()(username=f"bench{n:03d}", email=f"bench{n:03d}@example.com")
            for n in range(USERS)
        )
    user_ids = [user.pk for user in users]
    space_ids = [space.pk for space in spaces]

    first, last = busy_range(today)
    period_slots = int((last - first) / SLOT) // opts.per_space
    batch = max(1, 200_000 // opts.per_space)  # spaces per INSERT: about 200k rows each
    with connection.cursor() as cursor:
        cursor.execute("SET synchronous_commit = off")  # a bench load; durability not needed
        cursor.execute("SELECT setseed(%s)", [opts.seed / 2**31])
        for index in range(0, len(space_ids), batch):
            with transaction.atomic():
                cursor.execute(
                    INSERT_RESERVATIONS,
                    {
                        "slot": SLOT,
                        "period_slots": period_slots,
                        "first": first,
                        "per_space": opts.per_space,
                        "users": user_ids,
                        "space_ids": space_ids[index : index + batch],
                    },
                )
            done = min(index + batch, len(space_ids)) * opts.per_space
            print(f"  loaded {done:>9,} reservations  {time.perf_counter() - began:6.1f} s")
        cursor.execute("SET synchronous_commit = on")
    return time.perf_counter() - began


def settle() -> None:
    """Statistics for the planner, then write out what the bulk load left behind.

    Without this the first timed bookings after a load share the disk with the checkpoint that
    flushes the load's pages and with autovacuum's first pass (p95 25 ms instead of 7 ms).
    """
    from django.db import connection
    from django.db.utils import DatabaseError

    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE reservations_reservation")
        cursor.execute("ANALYZE reservations_space")
        try:
            cursor.execute("CHECKPOINT")  # superuser or pg_checkpoint only; optional
        except DatabaseError as exc:
            print(f"  (no CHECKPOINT: {exc})")


# --- measurements ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Timings:
    seconds: list[float]

    @property
    def p50_ms(self) -> float:
        return self._percentile(50)

    @property
    def p95_ms(self) -> float:
        return self._percentile(95)

    def _percentile(self, pct: int) -> float:
        if len(self.seconds) == 1:
            return self.seconds[0] * 1000
        return statistics.quantiles(self.seconds, n=100, method="inclusive")[pct - 1] * 1000


@contextmanager
def stopwatch(into: list[float]) -> Iterator[None]:
    began = time.perf_counter()
    try:
        yield
    finally:
        into.append(time.perf_counter() - began)


def bench_bookings(opts: Options, rng: random.Random) -> tuple[Timings, float, int]:
    """Time ``services.book`` for free slots; returns the timings, wall seconds and refusals."""
    from django.contrib.auth import get_user_model

    from reservations import queries, services
    from reservations.receivers import emails_muted

    booker, _ = get_user_model().objects.get_or_create(
        username="bench-booker", defaults={"email": "bench-booker@example.com"}
    )
    spaces = list(queries.bookable_spaces().select_related("location"))
    slots = bookable_slots(spaces, opts.bookings, rng)
    durations: list[float] = []
    refused = 0
    began = time.perf_counter()
    with emails_muted():
        for space, start, end in slots:
            with stopwatch(durations):
                try:
                    services.book(actor=booker, space=space, start=start, end=end, title="Bench")
                except services.BookingError as exc:
                    refused += 1
                    print(f"  refused: {exc.message}")
    wall = time.perf_counter() - began
    return Timings(durations), wall, refused


def bookable_slots(spaces: list[Space], count: int, rng: random.Random) -> list[Slot]:
    """``count`` (space, start, end) slots in the coming year that are free and valid.

    Found before the clock starts: candidates that clash or break a rule are skipped, so every
    timed call is a successful booking.
    """
    from django.utils import timezone

    from reservations import queries, services

    now = timezone.now()
    chosen: list[Slot] = []
    while len(chosen) < count:
        space = rng.choice(spaces)
        start = (now + timedelta(days=rng.randint(1, BUSY_DAYS - 5))).replace(
            minute=rng.choice((0, 15, 30, 45)), second=0, microsecond=0
        )
        end = start + timedelta(minutes=rng.choice((30, 60)))
        if any(other.pk == space.pk and a < end and start < b for other, a, b in chosen):
            continue
        if services.slot_problem(space, start, end, now=now):
            continue
        if queries.clashes(space.pk, start, end).exists():
            continue
        chosen.append((space, start, end))
    return chosen


def random_hours(count: int, today: datetime, rng: random.Random) -> list[datetime]:
    first, last = busy_range(today)
    hours = int((last - first) / timedelta(hours=1)) - 1
    return [first + timedelta(hours=rng.randint(0, hours)) for _ in range(count)]


def bench_free_spaces(
    opts: Options, today: datetime, rng: random.Random
) -> tuple[Timings, float, str]:
    """Time the free-spaces query; returns the timings, the mean result size and a plan."""
    from reservations import queries

    def run(start: datetime) -> int:
        return len(
            list(
                queries.free_spaces(
                    start, start + timedelta(hours=1), min_capacity=opts.min_capacity
                )
            )
        )

    for start in random_hours(10, today, rng):  # warm the cache and the connection
        run(start)
    durations: list[float] = []
    sizes: list[int] = []
    for start in random_hours(opts.queries, today, rng):
        with stopwatch(durations):
            sizes.append(run(start))
    sample = random_hours(1, today, rng)[0]
    plan = queries.free_spaces(
        sample, sample + timedelta(hours=1), min_capacity=opts.min_capacity
    ).explain(analyze=True, buffers=True)
    return Timings(durations), statistics.mean(sizes), plan


def verdict(value_ms: float, target_ms: float) -> str:
    return f"(target p95 < {target_ms:.0f} ms)  {'PASS' if value_ms < target_ms else 'MISS'}"


def report(title: str, timings: Timings, target_ms: float, extra: str = "") -> None:
    print(
        f"{title:<13} p50 {timings.p50_ms:7.2f} ms   p95 {timings.p95_ms:7.2f} ms   "
        f"{verdict(timings.p95_ms, target_ms)}{extra}"
    )


def timed(label: str, action: Callable[[], object]) -> None:
    began = time.perf_counter()
    action()
    print(f"{label} in {time.perf_counter() - began:.1f} s")


def main(argv: list[str] | None = None) -> None:
    opts = parse_args(argv)
    prepare_database(opts.database_url, reuse=opts.reuse)
    setup_django(opts.database_url)
    from django.core.management import call_command
    from django.db import connection

    from reservations.models import Reservation, Space

    today = datetime.now(UTC)
    rng = random.Random(opts.seed)
    print(f"Database: {connection.settings_dict['NAME']} on {connection.settings_dict['HOST']}")
    timed("migrate", lambda: call_command("migrate", verbosity=0, interactive=False))
    if opts.reuse and loaded(opts):
        print("load: reusing the data already there (--reuse)")
    else:
        if Space.objects.exists():
            raise SystemExit("--reuse: the database holds other data; run once without it.")
        seconds = load(opts, today)
        print(f"load: {opts.spaces * opts.per_space:,} reservations in {seconds:.1f} s")
    timed("VACUUM ANALYZE, CHECKPOINT", settle)
    print(f"reservations in the table: {Reservation.objects.count():,}")
    print()

    bookings, wall, refused = bench_bookings(opts, rng)
    rate = len(bookings.seconds) / wall
    report(
        "booking",
        bookings,
        BOOKING_P95_TARGET_MS,
        f"   {rate:.0f} bookings/s over {len(bookings.seconds)} sequential calls"
        + (f", {refused} refused" if refused else ""),
    )
    free, mean_size, plan = bench_free_spaces(opts, today, rng)
    report(
        "free spaces",
        free,
        FREE_SPACES_P95_TARGET_MS,
        f"   {len(free.seconds)} queries, capacity >= {opts.min_capacity}, "
        f"{mean_size:.0f} of {opts.spaces} spaces free on average",
    )
    print()
    print("EXPLAIN ANALYZE of one free-spaces query:")
    print(plan)
    results.record(
        opts.results,
        "booking",
        [
            results.Figure("booking: p50", bookings.p50_ms, "ms"),
            results.Figure("booking: p95", bookings.p95_ms, "ms", BOOKING_P95_TARGET_MS),
            results.Figure("bookings per second", rate, "bookings/s"),
            results.Figure("free spaces: p50", free.p50_ms, "ms"),
            results.Figure("free spaces: p95", free.p95_ms, "ms", FREE_SPACES_P95_TARGET_MS),
        ],
        arguments={
            k: getattr(opts, k)
            for k in ("spaces", "per_space", "bookings", "queries", "min_capacity", "seed")
        },
        quick=opts.quick,
    )


if __name__ == "__main__":
    main()
