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
(default: a temporary folder, removed at the end unless ``--keep-logs``). The world and the
changes live in ``bench/scale_world.py``, the processes and the measures in
``bench/scale_stack.py``.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import requests
import results
from export import prepare_database
from scale_stack import (
    Stack,
    bytes_per_row,
    delta,
    free_port,
    percentile,
    queued,
    renewal_requests,
    snapshot,
    sync_quiet,
    wait_until,
)
from scale_world import (
    GRAPH_MAILBOX_PER_10_MIN,
    Change,
    Driver,
    make_world,
    sandbox_config,
    schedule,
    settled,
    setup_django,
    start_sandbox,
    verify,
)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the sandbox and Django's apps, imported later
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/reserva_scale_bench"
NO_POLLING_MINUTES = 32767  # SyncSettings.pull_interval_minutes' largest value
# Documented limits the report compares with (README "Scaling" cites them).
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
            tasks.request_pull(binding_id)

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
            tasks.request_pull(binding_id)
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
