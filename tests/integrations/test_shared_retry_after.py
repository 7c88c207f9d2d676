"""A throttled mailbox's Retry-After holds for every process (issue 12, item 4): two worker
processes, each with its own HTTP client and limiter built separately, talk to one local
server; once it answers the first one ``429 Retry-After: 2``, the other process must not send
to that mailbox before the two seconds are up (it used to send at once, 0.16 s later)."""

from __future__ import annotations

import http.server
import subprocess
import sys
import threading
import time

import pytest
from django.conf import settings

from tests.conftest import ROOT, wait_for

RETRY_AFTER = 2

CLIENT = """
import sys
import requests
from integrations.http import HttpClient, RetryPolicy
from integrations.limiter import FileLimiter, Limiter, Limits, RedisLimiter
kind, where, url = sys.argv[1], sys.argv[2], sys.argv[3]
limits = Limits()
if kind == "file":
    backend = FileLimiter(where, limits)
else:
    import redis
    backend = RedisLimiter(redis.Redis.from_url(where), limits, prefix="reserva-test:retry-after")
session = requests.Session()
session.trust_env = False  # loopback only, never a proxy
http = HttpClient(limiter=Limiter(backend, limits), session=session, policy=RetryPolicy())
response = http.request("GET", url, limit_key="graph|app|room@example.com")
assert response.status_code == 200, response.status_code
"""


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        self.arrivals: list[tuple[float, str]] = []  # (time.time(), who)
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        with self.server.lock:
            first = not self.server.arrivals
            self.server.arrivals.append((time.time(), self.path))
        if first:
            self.send_response(429)
            self.send_header("Retry-After", str(RETRY_AFTER))
        else:
            self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


@pytest.mark.parametrize("kind", ["file", pytest.param("redis", marks=pytest.mark.redis)])
def test_two_processes_honour_one_retry_after(kind, tmp_path):
    if kind == "redis":
        import redis

        client = redis.Redis.from_url(settings.REDIS_URL)
        for key in client.scan_iter("reserva-test:retry-after:*"):
            client.delete(key)
        where = settings.REDIS_URL
    else:
        where = str(tmp_path / "limits")
    server = _Server()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        first = subprocess.Popen([sys.executable, "-c", CLIENT, kind, where, f"{base}/a"], cwd=ROOT)
        wait_for(lambda: server.arrivals, timeout=30)  # the first process was told to wait
        second = subprocess.Popen(
            [sys.executable, "-c", CLIENT, kind, where, f"{base}/b"], cwd=ROOT
        )
        assert first.wait(timeout=60) == 0
        assert second.wait(timeout=60) == 0
    finally:
        server.shutdown()
        server.server_close()
    throttled_at = server.arrivals[0][0]
    later = server.arrivals[1:]
    assert sorted(who for _, who in later) == ["/a", "/b"]
    # Neither process sent into the throttled mailbox before its Retry-After was up (10 ms
    # of slack for the two processes' reading of one clock).
    early = [
        (who, at - throttled_at) for at, who in later if at < throttled_at + RETRY_AFTER - 0.01
    ]
    assert early == []
