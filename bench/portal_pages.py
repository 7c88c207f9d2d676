"""Portal pages on the booking benchmark's data: queries and CPU time per request, per page.

A figure that means something on a busy machine: each page of the load test's mix
(``bench/portal_locust.py``) is requested in-process through Django's test ``Client`` by one
signed-in person of ``bench/booking.py``'s data set (1,000 spaces, 1,000,000 reservations by
default; ``--quick``: 100 x 200), and this prints, per page, the number of SQL queries and the
median process CPU time (``time.process_time``: this process only, so other work on the
machine slows it little; the database server's own time is not in it) over ``--repeat``
requests. The settings are production's (``DEBUG`` off, the cached template loader, the
manifest static storage, PostgreSQL); the static files are collected once into
``var/bench-static``.

Pages, as the load test names them:

- ``find``: the search page with its default search (the next half hour at the person's
  default location);
- ``schedule``: the day grid of that location for tomorrow as it opens (all floors: the
  first page of ``SCHEDULE_PAGE_SIZE``, 50 spaces, of the location's 250; half-hour cells
  over the opening hours: on this data set 00:00-23:59);
- ``mine``: upcoming reservations, first page of 25;
- ``detail``: one of the person's upcoming reservations, with its history;
- ``book form`` / ``book``: the booking form for a free half hour, then its POST (a real
  booking through the service);
- ``reschedule form`` / ``reschedule``: the change form of that booking, then its POST to
  another free slot;
- ``cancel``: the POST that cancels it.

Run (PostgreSQL on 127.0.0.1:5432, trust auth; the data is loaded once and kept)::

    .venv/bin/python bench/portal_pages.py --quick
    .venv/bin/python bench/portal_pages.py --profile schedule    # cProfile of one page
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import random
import re
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import booking
import results

ROOT = Path(__file__).resolve().parents[1]
CPU_TARGET_MS = 10.0  # ~40 ms today; 50 people on 3 workers need several times less
PAGES = (
    "find",
    "schedule",
    "mine",
    "detail",
    "book form",
    "book",
    "reschedule form",
    "reschedule",
    "cancel",
)


@dataclass(frozen=True)
class Options:
    database_url: str
    spaces: int
    per_space: int
    repeat: int
    seed: int
    quick: bool
    profile: str | None
    results: Path | None
    html: Path | None = None


def parse_args(argv: list[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_DATABASE_URL", booking.DEFAULT_DATABASE_URL),
        help="PostgreSQL database (name containing 'bench'); loaded by bench/booking.py's "
        "loader when it does not hold the data set yet. Default: $BENCH_DATABASE_URL or "
        "%(default)s",
    )
    parser.add_argument("--spaces", type=int, default=1000)
    parser.add_argument("--per-space", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=15, help="requests per page (median)")
    parser.add_argument("--seed", type=int, default=2)
    parser.add_argument(
        "--quick", action="store_true", help="100 spaces x 200 reservations, 5 requests a page"
    )
    parser.add_argument("--profile", choices=PAGES, help="print a cProfile of this page")
    parser.add_argument(
        "--html",
        type=Path,
        help="also write each page's last response into this folder (to compare the markup "
        "before and after a change)",
    )
    results.add_argument(parser)
    args = parser.parse_args(argv)
    if args.quick:
        args.spaces, args.per_space, args.repeat = 100, 200, 5
    return Options(
        database_url=args.database_url,
        spaces=args.spaces,
        per_space=args.per_space,
        repeat=max(1, args.repeat),
        seed=args.seed,
        quick=args.quick,
        profile=args.profile,
        results=args.results,
        html=args.html,
    )


def production_environment(database_url: str) -> dict[str, str]:
    """The environment of a production process on this machine, over plain HTTP."""
    return {
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DEBUG": "false",
        "SECRET_KEY": "bench-only-secret-key-not-for-production-0123456789abcdef",
        "ALLOWED_HOSTS": "127.0.0.1,localhost,testserver",
        "SECURE_SSL_REDIRECT": "false",
        "SESSION_COOKIE_SECURE": "false",
        "CSRF_COOKIE_SECURE": "false",
        "DATABASE_URL": database_url,
        "EMAIL_URL": "dummymail://",
        "STATIC_ROOT": str(ROOT / "var" / "bench-static"),
        "LOG_LEVEL": "WARNING",
    }


def setup_django(database_url: str) -> None:
    os.environ.update(production_environment(database_url))
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def prepare(database_url: str, spaces: int, per_space: int, seed: int) -> None:
    """Load the data set if the database does not hold it; collect the static files once."""
    from django.conf import settings
    from django.core.management import call_command

    from reservations.models import Space

    call_command("migrate", verbosity=0, interactive=False)
    data = booking.Options(
        database_url=database_url,
        spaces=spaces,
        per_space=per_space,
        bookings=0,
        queries=0,
        min_capacity=1,
        reuse=True,
        seed=seed,
    )
    if not booking.loaded(data):
        if Space.objects.exists():
            raise SystemExit("The database holds other data; use another --database-url.")
        seconds = booking.load(data, datetime.now(UTC))
        print(f"load: {spaces * per_space:,} reservations in {seconds:.1f} s")
        booking.settle()
    if not (Path(settings.STATIC_ROOT) / "staticfiles.json").exists():
        call_command("collectstatic", verbosity=0, interactive=False)


# --- one person's requests ------------------------------------------------------------------


@dataclass
class Page:
    name: str
    request: Callable[[], Any]  # returns the response; what is timed and counted
    expect: int = 200
    before: Callable[[], None] | None = None  # set-up, not timed


def person_and_targets() -> tuple[Any, Any, Any]:
    """The person (a bench user), one of their upcoming reservations and their location."""
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from reservations import queries
    from reservations.models import Profile

    user = get_user_model().objects.get(username="bench007")
    upcoming = (
        queries.slot_holding()
        .filter(requested_for=user, start__gt=timezone.now() + timedelta(days=2))
        .select_related("space__location")
        .order_by("start")
        .first()
    )
    profile = Profile.for_user(user)
    if profile.default_location_id != upcoming.space.location_id:
        profile.default_location = upcoming.space.location
        profile.save()
    return user, upcoming, upcoming.space.location


def pages(client: Any, user: Any, upcoming: Any, location: Any, rng: random.Random) -> list[Page]:
    """The mix's requests; the POSTs book, move and cancel a fresh booking each time."""
    from django.urls import resolve, reverse

    from reservations import queries
    from reservations.models import Reservation, SpaceKind

    # Rooms: the person holds desks most days, and one person may not hold two desks at once.
    spaces = list(
        queries.bookable_spaces()
        .filter(location=location, kind=SpaceKind.ROOM)
        .select_related("location")
    )
    tomorrow = (datetime.now(location.zone) + timedelta(days=1)).date()
    made: list[Reservation] = []
    slots: list[tuple] = []

    def slot() -> tuple:
        if not slots:
            slots.extend(booking.bookable_slots(spaces, 10, rng))
        return slots.pop()

    def as_fields(space, start, end) -> dict[str, str]:
        local_start, local_end = start.astimezone(location.zone), end.astimezone(location.zone)
        return {
            "space": str(space.pk),
            "date": local_start.date().isoformat(),
            "start": f"{local_start:%H:%M}",
            "end": f"{local_end:%H:%M}",
        }

    def book_form():
        space, start, end = slot()
        return client.get(reverse("portal:book"), as_fields(space, start, end))

    def book():
        space, start, end = slot()
        response = client.post(
            reverse("portal:book"),
            {**as_fields(space, start, end), "title": "Bench", "interval": "1"},
        )
        made.append(response)  # its Location names the new booking (the details page)
        return response

    def fresh() -> Reservation:
        """The booking just made, as it is now (its version), read before the clock starts."""
        if not isinstance(made[-1], Reservation):
            made[-1] = Reservation.objects.get(pk=resolve(made[-1]["Location"]).kwargs["pk"])
        made[-1].refresh_from_db()
        return made[-1]

    def reschedule():
        reservation = made[-1]
        space, start, end = slot()
        fields = as_fields(space, start, end)
        return client.post(
            reverse("portal:change", args=[reservation.pk]),
            {**fields, "title": "Bench", "expected_version": str(reservation.version)},
        )

    def cancel():
        reservation = made.pop()
        return client.post(
            reverse("portal:cancel", args=[reservation.pk]),
            {"reason": "", "expected_version": str(reservation.version)},
        )

    return [
        Page("find", lambda: client.get(reverse("portal:find"))),
        Page(
            "schedule",
            lambda: client.get(
                reverse("portal:schedule"), {"location": location.pk, "date": str(tomorrow)}
            ),
        ),
        Page("mine", lambda: client.get(reverse("portal:mine"))),
        Page("detail", lambda: client.get(reverse("portal:detail", args=[upcoming.pk]))),
        Page("book form", book_form),
        Page("book", book, expect=302),
        Page(
            "reschedule form",
            lambda: client.get(reverse("portal:change", args=[made[-1].pk])),
            before=fresh,
        ),
        Page("reschedule", reschedule, expect=302, before=fresh),
        Page("cancel", cancel, expect=302, before=fresh),
    ]


def profile(page: Page) -> None:
    """cProfile of one request of ``page`` (after a warm-up), then its SQL."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    _once(page)
    if page.before is not None:
        page.before()
    profiler = cProfile.Profile()
    with CaptureQueriesContext(connection) as captured:
        profiler.enable()
        page.request()
        profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out).sort_stats("cumulative")
    stats.print_stats(45)
    stats.sort_stats("tottime").print_stats(25)
    print(out.getvalue())
    print(f"{len(captured)} queries:")
    for query in captured:
        print(f"  {query['time']:>6} s  {query['sql'][:400]}")


def main(argv: list[str] | None = None) -> None:
    opts = parse_args(argv)
    booking.prepare_database(opts.database_url, reuse=True)
    setup_django(opts.database_url)
    from django.db import connection
    from django.test import Client

    from reservations.receivers import emails_muted

    prepare(opts.database_url, opts.spaces, opts.per_space, opts.seed)
    rng = random.Random(opts.seed)
    user, upcoming, location = person_and_targets()
    client = Client()
    client.force_login(user)
    loaded = opts.spaces * opts.per_space
    print(
        f"Database: {connection.settings_dict['NAME']} ({loaded:,} reservations);"
        f" {user.username} at {location.name}"
    )
    with emails_muted():
        mix = pages(client, user, upcoming, location, rng)
        if opts.profile:
            profile(next(page for page in mix if page.name == opts.profile))
            return
        # The POSTs depend on each other (book, then move, then cancel that booking): one
        # round of the mix at a time, ``repeat + 1`` rounds.
        figures: dict[str, list[tuple[int, float]]] = {page.name: [] for page in mix}
        for _ in range(opts.repeat + 1):
            for page in mix:
                figures[page.name].append(_once(page, opts.html))
    print(f"\n{'page':<16} {'queries':>7} {'CPU ms (median of ' + str(opts.repeat) + ')':>24}")
    recorded = []
    for name, runs in figures.items():
        kept = runs[1:]  # the first round warms caches
        count = round(statistics.median(q for q, _ in kept))
        cpu_ms = statistics.median(c for _, c in kept) * 1000
        verdict = "PASS" if cpu_ms < CPU_TARGET_MS else "MISS"
        print(f"{name:<16} {count:>7} {cpu_ms:>16.1f}   (target < {CPU_TARGET_MS:.0f}) {verdict}")
        recorded += [
            results.Figure(f"{name}: queries", count, "queries"),
            results.Figure(f"{name}: CPU", cpu_ms, "ms", CPU_TARGET_MS),
        ]
    results.record(
        opts.results,
        "portal_pages",
        recorded,
        arguments={
            "spaces": opts.spaces,
            "per_space": opts.per_space,
            "repeat": opts.repeat,
            "seed": opts.seed,
        },
        quick=opts.quick,
    )


def _once(page: Page, html: Path | None = None) -> tuple[int, float]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    if page.before is not None:
        page.before()
    with CaptureQueriesContext(connection) as captured:
        began = time.process_time()
        response = page.request()
        spent = time.process_time() - began
    if response.status_code != page.expect:
        errors = re.findall(r"(?:error|alert)[^>]*>\s*(?:<p>)?([^<]+)", response.content.decode())
        raise SystemExit(f"{page.name}: HTTP {response.status_code}, not {page.expect} {errors}")
    if html is not None:
        html.mkdir(parents=True, exist_ok=True)
        (html / f"{page.name.replace(' ', '-')}.html").write_bytes(response.content)
    return len(captured), spent


if __name__ == "__main__":
    main()
