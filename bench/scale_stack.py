"""The scale bench's processes and measures: each process in its own group, CPU seconds from
/proc, the sandbox's counters and the database's rows in snapshots, Celery's queues."""

from __future__ import annotations

import contextlib
import math
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CLOCK_TICK = os.sysconf("SC_CLK_TCK")


# --- processes --------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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


def snapshot(sandbox: Any, stack: Stack) -> Snapshot:
    """``sandbox``: anything with ``counters()`` (``scale_world.Sandbox``)."""
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


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]
