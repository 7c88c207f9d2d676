"""The sandbox's shared state and its HTTPS server.

One :class:`Sandbox` holds everything the emulated services share: configuration, the clock
(which the control API can move forward), limits, faults, latency, the request log and the
counters. Provider packages plug in with ``register(router, sandbox)``; the server builds a
:class:`~integrations.sandbox.core.Request` for each HTTP request, matches the router and runs
:meth:`Sandbox.dispatch`, which wraps the handler in faults, latency and limit bookkeeping.
JSON batch handlers call ``dispatch`` for each item, so items are counted, limited, delayed
and faulted one by one, as the real services evaluate them.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib
import logging
import queue
import select
import socket
import ssl
import threading
import time
import traceback
import uuid
from collections import Counter, deque
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from . import ca
from .config import default_config
from .core import Headers, Request, Response, Router
from .limits import Denial, FaultInjector, Latency, Limiter, LimitRule, Slot

log = logging.getLogger("integrations.sandbox")

# Providers registered at start; the Google package is optional until it exists.
PROVIDERS = (
    "integrations.sandbox.microsoft",
    "integrations.sandbox.google",
    "integrations.sandbox.ews",
)
# Query parameters whose values never reach the request log.
SECRET_PARAMS = {
    "code",
    "client_secret",
    "refresh_token",
    "access_token",
    "id_token",
    "assertion",
    "client_assertion",
    "password",
    "code_verifier",
    "validationtoken",
    "key",
}

ErrorFormatter = Callable[[int, str, str, Request | None], Response]
PageSource = Callable[[dt.date], list[dict[str, Any]]]


class Drop:
    """Returned by dispatch when the connection must close without any response."""


DROP = Drop()


class Clock:
    """Wall-clock time plus an offset the control API can move forward (never back)."""

    def __init__(self) -> None:
        self._offset = 0.0
        self._lock = threading.Lock()

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC) + dt.timedelta(seconds=self._offset)

    def timestamp(self) -> float:
        return time.time() + self._offset

    def advance(self, seconds: float) -> dt.datetime:
        if seconds < 0:
            raise ValueError("the sandbox clock only moves forward")
        with self._lock:
            self._offset += seconds
        return self.now()

    @property
    def offset(self) -> float:
        return self._offset


class Sandbox:
    """Shared state of one sandbox instance; see the module docstring."""

    def __init__(self, config: dict[str, Any] | None = None, state_dir: str | Path = "") -> None:
        self.config: dict[str, Any] = config if config is not None else default_config()
        self.state_dir = Path(state_dir or Path.cwd() / "var" / "sandbox")
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.base_url = ""
        self.ca_file = self.state_dir / ca.CA_FILE
        self.clock = Clock()
        self.lock = threading.RLock()
        self.stopping = threading.Event()
        general = self.config.get("sandbox", {})
        self.limits = Limiter(self.clock.timestamp)
        for family, rule in general.get("limits", {}).items():
            self.limits.rules[family] = LimitRule(**rule)
        self.faults = FaultInjector(seed=general.get("fault_seed"))
        self.latency = Latency(**general.get("latency", {}))
        self.log: deque[dict[str, Any]] = deque(maxlen=int(general.get("log_size", 2000)))
        self.counters: dict[str, Counter[str]] = {
            k: Counter() for k in ("endpoint", "mailbox", "status", "service")
        }
        self.services: dict[str, object] = {}
        self.router = Router()
        # Hooks providers fill in at register time.
        self.error_formatters: dict[str, ErrorFormatter] = {}
        self.path_services: list[tuple[str, str]] = []  # (path prefix, service) for 404s
        self.page_sources: list[PageSource] = []
        self.clock_listeners: list[Callable[[], None]] = []
        self._jobs: queue.Queue[Callable[[], None] | None] = queue.Queue()
        self._worker = threading.Thread(target=self._run_jobs, name="sandbox-jobs", daemon=True)
        self._worker.start()
        self._log_seq = 0

    # -- provider plumbing -------------------------------------------------------------

    def register_providers(self, names: tuple[str, ...] = PROVIDERS) -> list[str]:
        """Import each provider package and call its ``register``; return those loaded."""
        from . import control

        control.register(self.router, self)
        loaded = []
        for name in names:
            try:
                module = importlib.import_module(name)
            except ModuleNotFoundError as exc:
                if exc.name and name.startswith(exc.name):
                    log.warning("sandbox provider %s is not available yet; skipped", name)
                    continue
                raise
            register = getattr(module, "register", None)
            if register is None:
                log.warning("sandbox provider %s has no register(); skipped", name)
                continue
            register(self.router, self)
            loaded.append(name)
        return loaded

    def error(
        self,
        service: str,
        status: int,
        code: str,
        message: str,
        request: Request | None = None,
        headers: dict[str, str] | None = None,
    ) -> Response:
        """An error in the shape of ``service`` (falls back to a plain JSON shape)."""
        formatter = self.error_formatters.get(service)
        if formatter is None:
            response = Response.json(status, {"error": {"code": code, "message": message}})
        else:
            response = formatter(status, code, message, request)
        for key, value in (headers or {}).items():
            response.headers[key] = value
        return response

    def service_for_path(self, path: str) -> str:
        best = ""
        service = "sandbox"
        for prefix, name in self.path_services:
            if path.startswith(prefix) and len(prefix) > len(best):
                best, service = prefix, name
        return service

    def enter_limit(self, request: Request, key: tuple[str, ...]) -> Denial | None:
        """Count ``request`` against bucket ``key``; a Denial means answer 429."""
        request.limit_key = key
        outcome = self.limits.enter(key, arrived=request.arrived)
        if isinstance(outcome, Denial):
            return outcome
        request.slots.append(outcome)
        return None

    def defer(self, job: Callable[[], None]) -> None:
        """Run ``job`` later on the sandbox's background thread (notifications, rooms)."""
        self._jobs.put(job)

    def _run_jobs(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            try:
                job()
            except Exception:
                log.exception("sandbox background job failed")
            finally:
                self._jobs.task_done()

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Block until deferred jobs have run (tests use it instead of sleeping)."""
        deadline = time.monotonic() + timeout
        while self._jobs.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.01)
        return not self._jobs.unfinished_tasks

    def advance_clock(self, seconds: float) -> dt.datetime:
        now = self.clock.advance(seconds)
        for listener in list(self.clock_listeners):
            listener()
        return now

    # -- dispatch --------------------------------------------------------------------------

    def dispatch(self, request: Request) -> Response | Drop:
        """Route one request (or batch item) through faults, the handler and latency."""
        if request.arrived is None:
            request.arrived = self.clock.timestamp()
        route, path_known = self.router.match(request)
        if route is None:
            service = self.service_for_path(request.path)
            request.service = service
            if path_known:
                return self.error(service, 405, "Request_BadRequest", "Method not allowed.")
            return self.error(
                service,
                404,
                "Request_UnsupportedQuery" if service else "NotFound",
                f"Unsupported request: {request.method} {request.path}",
                request,
            )
        fault = None
        if route.service != "control":
            fault = self.faults.pick(route.service, request.method, request.path, request.body)
        if fault and fault.kind == "drop" and not fault.after_write:
            return DROP
        if fault and fault.kind in ("500", "503"):
            status = int(fault.kind)
            code = "InternalServerError" if status == 500 else "ServiceUnavailable"
            headers = {"Retry-After": str(fault.retry_after)} if status == 503 else None
            return self.error(route.service, status, code, "Injected fault.", request, headers)
        started = time.monotonic()
        try:
            try:
                response = route.handler(request, self)
            except Exception:
                log.error("handler %s failed:\n%s", route.name, traceback.format_exc())
                response = self.error(
                    route.service, 500, "InternalServerError", "Sandbox handler error.", request
                )
            delay = self.latency.per_item * (1 if request.batch_item else request.items)
            if route.service != "control" and not request.batch_item:
                delay += self.latency.for_service(route.service)
            # Latency is the service time: the sandbox's own work counts toward it, so a
            # configured 50 ms means an answer 50 ms after arrival, as a benchmark assumes.
            delay = max(0.0, delay - (time.monotonic() - started)) if delay > 0 else 0.0
            if delay > 0 and request.slots:
                # Keep the limit slot while "the service works" so concurrency is observable.
                self.stopping.wait(delay)
                delay = 0.0
        finally:
            for slot in request.slots:
                if isinstance(slot, Slot):
                    slot.release()
            request.slots.clear()
        if delay > 0:
            self.stopping.wait(delay)
        if isinstance(response, Drop) or (fault and fault.kind == "drop"):
            return DROP
        if fault and fault.kind == "slow":
            self.stopping.wait(fault.delay_seconds)
        self.record(request, route.name, response.status, fault.kind if fault else None)
        return response

    def record(
        self, request: Request, endpoint: str, status: int, fault: str | None = None
    ) -> None:
        """Add a request-log line (no secrets) and bump the counters."""
        mailbox = request.limit_key[-1] if request.limit_key else ""
        query = {
            k: ("***" if k.lower() in SECRET_PARAMS else v[0] if len(v) == 1 else v)
            for k, v in request.query.items()
        }
        with self.lock:
            self._log_seq += 1
            self.log.append(
                {
                    "seq": self._log_seq,
                    "time": self.clock.now().isoformat(),
                    "service": request.service,
                    "endpoint": endpoint,
                    "method": request.method,
                    "path": request.path,
                    "query": query,
                    "status": status,
                    "mailbox": mailbox,
                    "bucket": list(request.limit_key or ()),
                    "batch_item": request.batch_item,
                    "fault": fault,
                    "client_request_id": request.headers.get("client-request-id"),
                }
            )
            if request.service != "control":
                self.counters["endpoint"][endpoint] += 1
                self.counters["status"][str(status)] += 1
                self.counters["service"][request.service] += 1
                if mailbox:
                    self.counters["mailbox"][mailbox] += 1

    def reset_counters(self) -> None:
        with self.lock:
            for counter in self.counters.values():
                counter.clear()
            self.log.clear()

    def close(self) -> None:
        self.stopping.set()
        self._jobs.put(None)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: SandboxHTTPServer

    def setup(self) -> None:
        # The TLS handshake runs here, in the connection's own thread, so one slow client
        # cannot stall the accept loop.
        self.request.settimeout(30)
        # Headers and body leave in two writes; without TCP_NODELAY, Nagle's algorithm and
        # the client's delayed ACK add ~40 ms to every response on loopback.
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.request.do_handshake()
        self.connection_state: dict[str, Any] = {"client_gone": self._client_gone}
        super().setup()

    def _client_gone(self) -> bool:
        """While a response streams: has the client hung up? A client sends nothing on the
        connection until the response ends, so anything readable (EOF included) means gone."""
        try:
            readable, _, _ = select.select([self.request], [], [], 0)
        except (OSError, ValueError):
            return True
        return bool(readable)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().strip().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _handle(self) -> None:
        sandbox = self.server.sandbox
        body = self._read_body()
        headers = Headers(list(self.headers.items()))
        request = Request.build(self.command, self.path, headers, body)
        request.connection = self.connection_state
        outcome = sandbox.dispatch(request)
        if isinstance(outcome, Drop):
            self.close_connection = True
            # Shut the socket down hard so the client sees a reset, not a clean empty reply.
            with contextlib.suppress(OSError):
                self.request.close()
            return
        self._write(outcome)

    def _write(self, response: Response) -> None:
        self.send_response(response.status)
        sent = set()
        for key, value in response.headers.items():
            self.send_header(key, value)
            sent.add(key)
        if "request-id" not in sent:
            self.send_header("request-id", str(uuid.uuid4()))
        if response.stream is not None:
            self._write_stream(response.stream)
            return
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if self.command != "HEAD" and response.body:
            self.wfile.write(response.body)

    def _write_stream(self, stream: Iterator[bytes]) -> None:
        """Send ``stream`` chunk by chunk as it is produced; close it whatever happens (a
        client that hangs up ends the generator, which then tidies up after itself)."""
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            for chunk in stream:
                if chunk:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except OSError:
            self.close_connection = True
        finally:
            close = getattr(stream, "close", None)
            if close is not None:
                close()

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = do_HEAD = do_OPTIONS = _handle


class SandboxHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, sandbox: Sandbox, host: str, port: int, tls: ca.TlsFiles) -> None:
        self.sandbox = sandbox
        super().__init__((host, port), _Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(tls.cert_file, tls.key_file)
        self.socket = context.wrap_socket(
            self.socket, server_side=True, do_handshake_on_connect=False
        )

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that time out or drop mid-request are part of the game; keep the log calm.
        log.debug("connection from %s ended with an error", client_address, exc_info=True)


def build_server(
    state_dir: str | Path,
    config: dict[str, Any] | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
) -> tuple[Sandbox, SandboxHTTPServer]:
    """Create the sandbox state, its TLS files, the server, and register the providers."""
    sandbox = Sandbox(config, state_dir)
    tls = ca.ensure_tls_files(sandbox.state_dir)
    sandbox.ca_file = tls.ca_file
    server = SandboxHTTPServer(sandbox, host, port, tls)
    shown_host = f"[{host}]" if ":" in host else host
    sandbox.base_url = f"https://{shown_host}:{server.server_address[1]}"
    sandbox.register_providers()
    return sandbox, server


def redacted_query(params: dict[str, str]) -> str:
    """A query string with secret values masked, for messages and logs."""
    return urlencode({k: "***" if k.lower() in SECRET_PARAMS else v for k, v in params.items()})
