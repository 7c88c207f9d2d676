"""Shared fixtures for the calendars tests: a provider sandbox, and providers and bindings whose
aliases point at it (so the real clients talk to it over HTTPS, as in production).

- ``sandbox``: a fresh sandbox per test (``.base_url``, ``.ca_file``, ``.sandbox``);
- ``ms_provider`` / ``google_provider``: a Microsoft 365 / Google provider on it (the
  delegated user is the sandbox's ``reserva-blocker@`` account);
- ``ews_provider``: an Exchange Server (EWS) provider on it (NTLM, impersonation by the
  sandbox's ``svc-reserva@`` account);
- ``ms_binding`` / ``google_binding`` / ``ews_binding``: a room bound to ``atlas@contoso.test``
  / the Atlas resource calendar / the EWS ``atlas@contoso.test`` room mailbox;
  ``binding_for(kind, request)`` names the one for ``kind``;
- ``remote_events(handle, provider_kind, calendar)``: every event the sandbox holds there;
- ``sync_worker(prefix, **env)``: a real Celery worker process on a private queue, with this
  process's tasks (the ``sync`` ones included) routed to it, for the ``worker`` tests;
  ``sync_workers(prefix, folder, count)``: several, which a test can SIGKILL and restart.

Test modules may define their own ``sandbox`` fixture; theirs wins in that module.
"""

from __future__ import annotations

import itertools
import json
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests
from django.conf import settings

from calendars import remote
from calendars.models import (
    CalendarProvider,
    ConnectionAlias,
    CredentialAlias,
    ProviderKind,
    SpaceCalendar,
)
from integrations.google import auth as google_auth
from integrations.microsoft import auth as microsoft_auth
from integrations.sandbox.config import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_TENANT_ID
from integrations.sandbox.testing import SandboxHandle, start_sandbox
from tests.conftest import ROOT, endpoints_allowed, subprocess_env, wait_for

MS_ROOM = "atlas@contoso.test"
MS_ROOM2 = "borealis@contoso.test"
MS_DELEGATE = "reserva-blocker@contoso.test"
GOOGLE_ROOM = "c_188a1f0e7d2b4c31@resource.calendar.google.com"
GOOGLE_ROOM2 = "c_188b2e1f8e3c5d42@resource.calendar.google.com"
GOOGLE_DELEGATE = "reserva-blocker@northwind.test"
GOOGLE_CLIENT_ID = "284719300001-reservasandbox.apps.googleusercontent.com"
GOOGLE_CLIENT_SECRET = "GOCSPX-sandbox-demo-not-a-real-secret"
GOOGLE_SCOPE = "https://www.googleapis.com/auth/calendar"
EWS_ROOM = "atlas@contoso.test"
EWS_ROOM2 = "borealis@contoso.test"
EWS_USER = "CONTOSO\\svc-reserva"
EWS_PASSWORD = "Reserva-sandbox-1"
EWS_ACCOUNT = "svc-reserva@contoso.test"
ROOMS = {"microsoft": MS_ROOM, "google": GOOGLE_ROOM, "ews": EWS_ROOM}

_names = itertools.count(1)


def _clear_client_caches() -> None:
    remote._clients.clear()
    microsoft_auth.clear_application_tokens()
    google_auth.clear_service_account_tokens()


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[SandboxHandle]:
    _clear_client_caches()
    handle = start_sandbox(tmp_path / "sandbox", None)
    try:
        with endpoints_allowed(handle.base_url):
            yield handle
    finally:
        handle.stop()
        _clear_client_caches()


def control(handle: SandboxHandle, method: str, path: str, **kwargs: Any) -> Any:
    """Call the sandbox's control API (``/_sandbox/api/<path>``)."""
    session = requests.Session()
    session.trust_env = False
    session.verify = str(handle.ca_file)
    response = session.request(
        method, f"{handle.base_url}/_sandbox/api/{path}", timeout=30, **kwargs
    )
    assert response.status_code < 400, response.text
    return response.json() if response.content else None


def hold_graph_answer(handle: SandboxHandle, method: str, path: str, seconds: float = 60) -> None:
    """The sandbox's next Graph ``method`` request whose path matches ``path`` does its work,
    then holds its answer ``seconds`` (a worker killed meanwhile never hears it)."""
    fault = {"kind": "slow", "service": "graph", "method": method, "path": path}
    control(handle, "POST", "faults", json={**fault, "delay_seconds": seconds, "count": 1})


def remote_events(handle: SandboxHandle, kind: str, calendar: str) -> list[dict[str, Any]]:
    """Live events in a mailbox / calendar, as the sandbox holds them (deleted ones left out)."""
    if kind == ProviderKind.MICROSOFT:
        items = control(handle, "GET", f"microsoft/mailboxes/{calendar}/events")["value"]
        return [e for e in items if not e.get("isCancelled")]
    if kind == ProviderKind.EWS:
        items = control(handle, "GET", f"ews/mailboxes/{calendar}/items")["value"]
        return [e for e in items if not e.get("is_cancelled")]
    items = control(handle, "GET", f"google/calendars/{calendar}/events")["value"]
    return [e for e in items if e.get("status") != "cancelled"]


@pytest.fixture
def ms_provider(db, sandbox: SandboxHandle) -> CalendarProvider:
    n = next(_names)
    connection = ConnectionAlias.objects.create(
        name=f"Sandbox Microsoft {n}",
        kind=ProviderKind.MICROSOFT,
        authority_url=sandbox.base_url,
        authorization_url=sandbox.base_url,
        api_base_url=f"{sandbox.base_url}/v1.0",
        ca_bundle=str(sandbox.ca_file),
        timeout_seconds=10,
    )
    credential = CredentialAlias.objects.create(
        name=f"Sandbox Microsoft app {n}",
        kind=ProviderKind.MICROSOFT,
        tenant_id=DEMO_TENANT_ID,
        client_id=DEMO_CLIENT_ID,
        client_secret=DEMO_CLIENT_SECRET,
        scopes="Calendars.ReadWrite",
    )
    return CalendarProvider.objects.create(
        name=f"Microsoft 365 sandbox {n}",
        kind=ProviderKind.MICROSOFT,
        connection=connection,
        credential=credential,
        delegated_user_email=MS_DELEGATE,
    )


@pytest.fixture
def google_provider(db, sandbox: SandboxHandle) -> CalendarProvider:
    n = next(_names)
    key_path = Path(sandbox.sandbox.state_dir) / "google" / "reserva-sync.json"
    connection = ConnectionAlias.objects.create(
        name=f"Sandbox Google {n}",
        kind=ProviderKind.GOOGLE,
        authority_url=f"{sandbox.base_url}/google/oauth2/token",
        authorization_url=f"{sandbox.base_url}/google/o/oauth2/v2/auth",
        api_base_url=f"{sandbox.base_url}/google/calendar/v3",
        ca_bundle=str(sandbox.ca_file),
        timeout_seconds=10,
    )
    credential = CredentialAlias.objects.create(
        name=f"Sandbox Google app {n}",
        kind=ProviderKind.GOOGLE,
        client_id=GOOGLE_CLIENT_ID,
        client_secret=GOOGLE_CLIENT_SECRET,
        service_account_key=json.loads(key_path.read_text()),
        scopes=GOOGLE_SCOPE,
    )
    return CalendarProvider.objects.create(
        name=f"Google sandbox {n}",
        kind=ProviderKind.GOOGLE,
        connection=connection,
        credential=credential,
        delegated_user_email=GOOGLE_DELEGATE,
    )


@pytest.fixture
def ews_provider(db, sandbox: SandboxHandle) -> CalendarProvider:
    n = next(_names)
    connection = ConnectionAlias.objects.create(
        name=f"Sandbox EWS {n}",
        kind=ProviderKind.EWS,
        api_base_url=f"{sandbox.base_url}/EWS/Exchange.asmx",
        ca_bundle=str(sandbox.ca_file),
        timeout_seconds=10,
    )
    credential = CredentialAlias.objects.create(
        name=f"Sandbox EWS sync user {n}",
        kind=ProviderKind.EWS,
        auth_method="ntlm",
        username=EWS_USER,
        password=EWS_PASSWORD,
        account_email=EWS_ACCOUNT,
        access_type="impersonation",
    )
    return CalendarProvider.objects.create(
        name=f"Exchange Server sandbox {n}",
        kind=ProviderKind.EWS,
        connection=connection,
        credential=credential,
    )


def bind(space, provider: CalendarProvider, resource: str, **extra: Any) -> SpaceCalendar:
    return SpaceCalendar.objects.create(
        space=space, provider=provider, resource_email=resource, calendar_name="Calendar", **extra
    )


@pytest.fixture
def ms_binding(ms_provider: CalendarProvider, make_space) -> SpaceCalendar:
    return bind(make_space(name="Atlas"), ms_provider, MS_ROOM)


@pytest.fixture
def google_binding(google_provider: CalendarProvider, make_space) -> SpaceCalendar:
    return bind(make_space(name="Atlas NY"), google_provider, GOOGLE_ROOM, calendar_id=GOOGLE_ROOM)


@pytest.fixture
def ews_binding(ews_provider: CalendarProvider, make_space) -> SpaceCalendar:
    return bind(make_space(name="Atlas Berlin"), ews_provider, EWS_ROOM)


BINDING_FIXTURES = {"microsoft": "ms_binding", "google": "google_binding", "ews": "ews_binding"}


def binding_for(kind: str, request) -> SpaceCalendar:
    """The sandbox-bound room of ``kind`` (its ``*_binding`` fixture)."""
    return request.getfixturevalue(BINDING_FIXTURES[kind])


def database_sessions(application_name: str) -> list[tuple]:
    """PostgreSQL sessions on this database opened by processes of that name (PGAPPNAME);
    always none on SQLite."""
    from django.db import connection

    if connection.vendor != "postgresql":
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid, state, backend_start FROM pg_stat_activity"
            " WHERE datname = current_database() AND application_name = %s",
            [application_name],
        )
        return cursor.fetchall()


def reset_router(app) -> None:
    """Celery caches the routing table and the router built from it: rebuild both."""
    app.amqp.flush_routes()
    app.amqp.__dict__.pop("router", None)


class SyncWorkers:
    """Real Celery worker processes (solo pool each) consuming one private queue, started,
    SIGKILLed and restarted on demand: the crash tests' and the convergence run's workers.

    Each process writes its output to ``<folder>/worker-<slot>-<n>.log`` (a file, not a pipe:
    nobody reads a pipe while the test runs, and a full pipe blocks the worker on its next log
    line) and, while it runs a task, names it in ``<folder>/busy/<pid>`` (``worker_app.py``),
    so a test can kill a worker in the middle of a task. ``stop()`` ends every process and
    reaps it (SIGTERM, 20 s, then SIGKILL): none is left consuming when the test ends.
    """

    def __init__(self, queue: str, folder: Path, *, loglevel: str = "WARNING", **env: str):
        self.queue, self.folder, self.loglevel = queue, folder, loglevel
        self.env = {"EMAIL_URL": "consolemail://", **env}
        self.busy_dir = folder / "busy"
        self.busy_dir.mkdir(parents=True, exist_ok=True)
        self.processes: dict[int, subprocess.Popen] = {}
        self.logs: list[Path] = []
        self._started = itertools.count(1)

    def start(self, slot: int) -> subprocess.Popen:
        log = self.folder / f"worker-{slot}-{next(self._started)}.log"
        self.logs.append(log)
        with log.open("w", encoding="utf-8") as output:
            process = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "tests.calendars.worker_app", "worker",
                 "--pool=solo", f"--loglevel={self.loglevel}", "-Q", self.queue,
                 "-n", f"{self.queue}-{slot}@%h", "--without-heartbeat", "--without-mingle",
                 "--without-gossip"],
                cwd=ROOT,
                env=subprocess_env(
                    REDIS_URL=settings.REDIS_URL,
                    RESERVA_TEST_QUEUE=self.queue,
                    RESERVA_TEST_BUSY_DIR=str(self.busy_dir),
                    PGAPPNAME=self.queue,  # names its PostgreSQL sessions (see stop)
                    **self.env,
                ),
                stdout=output,
                stderr=subprocess.STDOUT,
                text=True,
            )  # fmt: skip
        self.processes[slot] = process
        return process

    def wait_ready(self, timeout: float = 120) -> None:
        """Until every process says it is ready to take tasks."""

        def ready() -> bool:
            logs = {log.name.split("-")[1]: log for log in self.logs}  # the latest per slot
            return all(" ready." in logs[str(slot)].read_text() for slot in self.processes)

        assert wait_for(ready, timeout), f"workers not ready in {timeout} s:\n{self.tail()}"

    def queued(self) -> int:
        """Messages waiting in the queue (not those a worker has taken)."""
        import redis

        return redis.Redis.from_url(settings.REDIS_URL).llen(self.queue)

    def busy_with(self, slot: int) -> str:
        """The task the slot's process is running now ("" when idle or gone)."""
        process = self.processes.get(slot)
        if process is None or process.poll() is not None:
            return ""
        try:
            return (self.busy_dir / str(process.pid)).read_text()
        except OSError:
            return ""

    def kill(self, slot: int, *, stack: bool = False) -> int:
        """SIGKILL the slot's process (no warm shutdown, no cleanup, as the OOM killer or a
        power cut does) and reap it; returns its pid. ``stack``: first have it write where it
        is to its log (SIGUSR1, ``worker_app.py``)."""
        process = self.processes.pop(slot)
        if stack:
            process.send_signal(signal.SIGUSR1)
            time.sleep(0.05)
        process.kill()
        process.wait()
        (self.busy_dir / str(process.pid)).unlink(missing_ok=True)
        return process.pid

    def stop(self) -> None:
        for process in self.processes.values():
            process.terminate()
        for process in self.processes.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        left = [p.pid for p in self.processes.values() if p.returncode is None]
        self.processes.clear()
        assert not left, f"worker processes still alive after stop: {left}"
        sessions = wait_for(lambda: not database_sessions(self.queue), 10)
        assert sessions, (
            f"the workers' database sessions outlived them: {database_sessions(self.queue)}"
        )

    def tail(self, chars: int = 4000) -> str:
        return "\n".join(
            f"--- {log.name}\n{log.read_text(errors='replace')[-chars:]}"
            for log in self.logs
            if log.exists()
        )


@contextmanager
def route_to(queue: str) -> Iterator[None]:
    """Tasks sent from this process, the ``sync`` ones included, go to ``queue`` until the
    block ends."""
    from config.celery import app

    routes = app.conf.task_routes
    app.conf.task_always_eager = False
    app.conf.task_default_queue = queue
    app.conf.task_routes = {"*": {"queue": queue}}  # instead of the queues tasks name
    reset_router(app)
    try:
        yield
    finally:
        app.conf.task_default_queue = settings.CELERY_TASK_DEFAULT_QUEUE
        app.conf.task_routes = routes
        reset_router(app)


@contextmanager
def sync_workers(
    prefix: str, folder: Path, count: int = 2, **options: Any
) -> Iterator[SyncWorkers]:
    """``count`` worker processes on a private queue (``SyncWorkers``), this process's tasks
    routed to it; every process is stopped and reaped when the block ends."""
    workers = SyncWorkers(f"{prefix}-{uuid.uuid4().hex[:8]}", folder, **options)
    try:
        for slot in range(count):
            workers.start(slot)
        with route_to(workers.queue):
            yield workers
    finally:
        workers.stop()


@contextmanager
def sync_worker(prefix: str = "test-push", **env: str) -> Iterator[subprocess.Popen]:
    """A real Celery worker (solo pool) on a private queue that nothing else consumes; tasks
    sent from this process, the ``sync`` ones included, go to it until the block ends, and so
    do those the worker sends itself (``worker_app.py``).

    ``env`` adds to the worker's environment (``EMAIL_URL`` defaults to the console). The
    worker's output goes to a file, not a pipe (see ``SyncWorkers``), and its end is printed
    when it stops, so pytest shows it when the test fails. The process is reaped before the
    block ends.
    """
    with tempfile.TemporaryDirectory() as folder:
        workers = SyncWorkers(f"{prefix}-{uuid.uuid4().hex[:8]}", Path(folder), **env)
        try:
            process = workers.start(0)
            with route_to(workers.queue):
                yield process
        finally:
            workers.stop()
            print(workers.tail())


KINDS = ["microsoft", "google", "ews"]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A test that asks for ``kind`` (itself or through a fixture) runs once per provider.

    A module whose per-kind helpers know EWS says so with ``EWS_READY = True``; elsewhere the
    test runs for Microsoft and Google only (issue 16: the rest are still to be given EWS
    helpers), so no run is collected only to be skipped (CI's PostgreSQL leg allows no skip).
    ``@pytest.mark.kinds("microsoft", "google")`` narrows one test to the kinds it applies to;
    a test that parametrizes ``kind`` itself is left alone.
    """
    if "kind" not in metafunc.fixturenames:
        return
    for marker in metafunc.definition.iter_markers("parametrize"):
        names = marker.args[0]
        if "kind" in ([n.strip() for n in names.split(",")] if isinstance(names, str) else names):
            return
    kinds = KINDS if getattr(metafunc.module, "EWS_READY", False) else KINDS[:2]
    only = metafunc.definition.get_closest_marker("kinds")
    if only is not None:
        kinds = [kind for kind in kinds if kind in only.args]
    metafunc.parametrize("kind", kinds)
