"""Pull benchmark against the provider sandbox (prints figures; not a test).

One room bound to the Microsoft sandbox's ``atlas@contoso.test`` (and, with ``--google``, one
bound to the Google sandbox's Atlas resource calendar). After a first pull (a full read that
stores the delta link / sync token), it measures with ``calendars.sync.pull.pull_binding``:

1. a pull with no change: provider HTTP requests (target: 1, the delta / sync-token call; the
   application token is cached by then) and database queries (target: at most 5);
2. a pull after ``--changes`` (default 100) events were created in the sandbox "as a person in
   Outlook / Google Calendar": requests (pages of 10 in the Microsoft sandbox, Graph's
   default; ``odata.maxpagesize`` as the client asks), queries, wall time;
3. a pull after the same events were moved (100 updates);
4. a pull after the same events were deleted (100 cancellations).

Each changed-event pull prints its database queries per changed event beside the target
(at most 5: links and reservations are read in bulk, history rows written in bulk).

Webhook latency (sandbox edit -> reservation changed through a notification, p95) belongs to
the webhook benchmark (``bench/webhook.py``); this one measures the pull itself, which that
path ends in.

It uses its own database: a SQLite file ``/tmp/reserva_pull_bench.sqlite3`` by default
(recreated at each run), or ``--database-url postgres://.../reserva_pull_bench`` (dropped and
created; only a name containing "bench" is accepted).

Run::

    make bench-pull
    .venv/bin/python bench/pull.py --changes 100 --google
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

import results  # noqa: E402 (bench/results.py)
from export import allow_sandbox, prepare_database, setup_django  # noqa: E402 (bench/export.py)

DEFAULT_DATABASE_URL = "sqlite:////tmp/reserva_pull_bench.sqlite3"
MS_ROOM = "atlas@contoso.test"
GOOGLE_ROOM = "c_188a1f0e7d2b4c31@resource.calendar.google.com"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--database-url", default=os.environ.get("BENCH_PULL_DATABASE_URL", DEFAULT_DATABASE_URL)
    )
    parser.add_argument("--changes", type=int, default=100)
    parser.add_argument("--google", action="store_true", help="also measure a Google binding")
    parser.add_argument("--quick", action="store_true", help="20 changes (make bench)")
    results.add_argument(parser)
    args = parser.parse_args(argv)
    if args.quick:
        args.changes = 20
    return args


def make_bindings(handle, google: bool):
    """Providers on the sandbox (as tests/calendars/conftest.py makes them) and bindings."""
    import json

    from calendars.models import (
        CalendarProvider,
        ConnectionAlias,
        CredentialAlias,
        ProviderKind,
        SpaceCalendar,
    )
    from integrations.sandbox.config import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_TENANT_ID
    from reservations.models import Location, Space

    location = Location.objects.create(name="Bench", time_zone="Europe/London")
    ms = CalendarProvider.objects.create(
        name="Sandbox Microsoft 365",
        kind=ProviderKind.MICROSOFT,
        connection=ConnectionAlias.objects.create(
            name="Sandbox MS",
            kind=ProviderKind.MICROSOFT,
            authority_url=handle.base_url,
            authorization_url=handle.base_url,
            api_base_url=f"{handle.base_url}/v1.0",
            ca_bundle=str(handle.ca_file),
        ),
        credential=CredentialAlias.objects.create(
            name="Sandbox MS app",
            kind=ProviderKind.MICROSOFT,
            tenant_id=DEMO_TENANT_ID,
            client_id=DEMO_CLIENT_ID,
            client_secret=DEMO_CLIENT_SECRET,
        ),
    )
    space = Space.objects.create(location=location, name="Atlas", capacity=8)
    bindings = {
        "microsoft": SpaceCalendar.objects.create(space=space, provider=ms, resource_email=MS_ROOM)
    }
    if google:
        key = json.loads(
            (Path(handle.sandbox.state_dir) / "google" / "reserva-sync.json").read_text()
        )
        gp = CalendarProvider.objects.create(
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
            delegated_user_email="reserva-blocker@northwind.test",
        )
        g_space = Space.objects.create(location=location, name="Atlas NY", capacity=8)
        bindings["google"] = SpaceCalendar.objects.create(
            space=g_space, provider=gp, resource_email=GOOGLE_ROOM, calendar_id=GOOGLE_ROOM
        )
    return bindings


def provider_requests(handle, since: int) -> int:
    """HTTP requests to the provider (control calls left out) since a log sequence number."""
    with handle.sandbox.lock:
        return sum(
            1
            for e in handle.sandbox.log
            if e["seq"] > since and e["service"] != "control" and not e["batch_item"]
        )


def last_seq(handle) -> int:
    with handle.sandbox.lock:
        return handle.sandbox.log[-1]["seq"] if handle.sandbox.log else 0


def measure(handle, binding_id: int, label: str, changed: int = 0) -> list[results.Figure]:
    """Print one pull's requests, queries and time; return them as figures with targets."""
    from django.db import connection, reset_queries
    from django.test.utils import CaptureQueriesContext

    from calendars.sync import pull

    reset_queries()  # Django keeps the last 9,000 queries only: count from an empty log
    since = last_seq(handle)
    began = time.perf_counter()
    with CaptureQueriesContext(connection) as queries:
        result = pull.pull_binding(binding_id)
    took = time.perf_counter() - began
    print(
        f"  {label:<28} requests={provider_requests(handle, since):<4} "
        f"queries={len(queries):<5} time={took * 1000:7.1f} ms  "
        f"(created={result.created} updated={result.updated} cancelled={result.cancelled} "
        f"conflicts={result.conflicts} pages={result.pages} status={result.status})"
    )
    requests = provider_requests(handle, since)
    if changed:
        per_event = len(queries) / changed
        print(f"  {'':<28} queries per changed event={per_event:.2f} (target: <= 5)")
        return [results.Figure(f"{label}: queries per changed event", per_event, "queries", 5)]
    return [
        results.Figure(f"{label}: provider requests", requests, "requests", 1),
        results.Figure(f"{label}: queries", len(queries), "queries", 5),
    ]


def control(handle, kind: str):
    """A session on the sandbox's control API and the room's events path there."""
    import requests

    session = requests.Session()
    session.trust_env = False
    session.verify = str(handle.ca_file)
    path = (
        f"microsoft/mailboxes/{MS_ROOM}/events"
        if kind == "microsoft"
        else f"google/calendars/{GOOGLE_ROOM}/events"
    )
    return session, f"{handle.base_url}/_sandbox/api/{path}"


def delete(handle, kind: str, ids: list[str]) -> None:
    """Delete the events "as a person would" through the control API."""
    session, path = control(handle, kind)
    for event_id in ids:
        session.delete(f"{path}/{event_id}", timeout=30).raise_for_status()


def edit(handle, kind: str, count: int, *, move: bool, ids: list[str]) -> list[str]:
    """Create (or move) ``count`` back-to-back 30-minute events through the control API."""
    session, path = control(handle, kind)
    first = (datetime.now(UTC) + timedelta(days=2)).replace(minute=0, second=0, microsecond=0)
    shift = timedelta(days=1) if move else timedelta(0)
    made = []
    for n in range(count):
        start = first + shift + timedelta(minutes=30 * n)
        end = start + timedelta(minutes=30)
        if kind == "microsoft":
            fmt = "%Y-%m-%dT%H:%M:%S"
            times = {
                "start": {"dateTime": start.strftime(fmt), "timeZone": "UTC"},
                "end": {"dateTime": end.strftime(fmt), "timeZone": "UTC"},
            }
            body = {"subject": f"Walk-in {n}", **times}
        else:
            times = {
                "start": {"dateTime": start.isoformat().replace("+00:00", "Z")},
                "end": {"dateTime": end.isoformat().replace("+00:00", "Z")},
            }
            body = {"summary": f"Walk-in {n}", **times}
        if move:
            response = session.patch(f"{path}/{ids[n]}", json=times, timeout=30)
        else:
            response = session.post(path, json=body, timeout=30)
        response.raise_for_status()
        made.append(response.json()["id"])
    return made


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    prepare_database(args.database_url)
    setup_django(args.database_url)
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from calendars.sync import pull
    from integrations.sandbox.testing import start_sandbox

    handle = start_sandbox(Path(tempfile.mkdtemp(prefix="reserva-pull-bench-")), None)
    allow_sandbox(handle)
    try:
        figures = []
        for kind, binding in make_bindings(handle, args.google).items():
            print(f"{kind} ({binding.resource_email}):")
            pull.pull_binding(binding.pk)  # first pull: full read, token acquired and cached
            found = measure(handle, binding.pk, "no change")
            measure(handle, binding.pk, "no change (again)")
            ids = edit(handle, kind, args.changes, move=False, ids=[])
            found += measure(handle, binding.pk, f"{args.changes} new events", args.changes)
            edit(handle, kind, args.changes, move=True, ids=ids)
            found += measure(handle, binding.pk, f"{args.changes} moved events", args.changes)
            delete(handle, kind, ids)
            found += measure(handle, binding.pk, f"{args.changes} deleted events", args.changes)
            measure(handle, binding.pk, "no change after")
            figures += [replace(f, name=f"{kind}, {f.name}") for f in found]
        print(
            "targets: no change = 1 request and at most 5 queries; "
            "changed events: at most 5 queries per event"
        )
        arguments = {"changes": args.changes, "google": args.google}
        results.record(args.results, "pull", figures, arguments=arguments, quick=args.quick)
    finally:
        handle.stop()


if __name__ == "__main__":
    main()
