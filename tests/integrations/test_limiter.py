"""The per-mailbox limiter: concurrency and rate, batch items counted, expiring leases,
shared across processes (files on the embedded default, Redis in production)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from django.conf import settings

from integrations.base import Throttled
from integrations.limiter import FileLimiter, Limiter, Limits, RedisLimiter
from tests.conftest import ROOT


@pytest.fixture(params=["file", pytest.param("redis", marks=pytest.mark.redis)])
def backend(request, tmp_path):
    limits = Limits(max_in_flight=2, max_per_window=5, window_seconds=10, lease_seconds=30)
    if request.param == "file":
        return FileLimiter(tmp_path / "limits", limits)
    import redis

    client = redis.Redis.from_url(settings.REDIS_URL)
    # No brackets in the prefix: the node's name ("...[redis]") would be a character class in
    # SCAN's glob, the old keys would survive, and a rerun within a lease would find them.
    prefix = f"reserva-test:{request.node.originalname}"
    for key in client.scan_iter(f"{prefix}:*"):
        client.delete(key)
    return RedisLimiter(client, limits, prefix=prefix)


def test_concurrency_and_rate(backend):
    key = "graph|app|room@example.com"
    assert backend.try_acquire(key, "a", 1, 1, now=100.0) == 0
    assert backend.try_acquire(key, "b", 1, 1, now=100.0) == 0
    assert backend.try_acquire(key, "c", 1, 1, now=100.0) > 0  # 2 in flight already
    backend.release(key, "a")
    assert backend.try_acquire(key, "c", 1, 1, now=101.0) == 0
    backend.release(key, "b")
    backend.release(key, "c")
    assert backend.try_acquire(key, "d", 1, 2, now=102.0) == 0  # 5 units used in the window
    backend.release(key, "d")
    wait = backend.try_acquire(key, "e", 1, 1, now=103.0)
    assert 6.5 < wait <= 7.0  # the oldest unit (t=100) leaves the 10 s window at t=110
    assert backend.try_acquire(key, "e", 1, 1, now=110.5) == 0
    assert backend.try_acquire("another mailbox", "f", 2, 2, now=103.0) == 0  # own bucket


def test_items_count_from_the_answer_on(backend):
    """The provider counts a batch's items as it processes them, up to its answer: the
    window frees them from the release on, never before the provider's does."""
    key = "user@example.com"
    assert backend.try_acquire(key, "batch", 1, 5, now=100.0) == 0
    backend.release(key, "batch", 5, now=103.0)  # answered 3 s later
    assert 12.4 < backend.try_acquire(key, "next", 1, 1, now=100.5) <= 12.5
    assert backend.try_acquire(key, "next", 1, 1, now=112.0) > 0  # 10 s after the send
    assert backend.try_acquire(key, "next", 1, 1, now=113.5) == 0  # 10 s after the answer


def test_a_batch_takes_every_slot_and_counts_each_item(backend):
    key = "room@example.com"
    assert backend.try_acquire(key, "batch", 2, 5, now=0.0) == 0
    assert backend.try_acquire(key, "single", 1, 1, now=0.0) > 0


def test_a_lease_of_a_killed_process_expires(backend):
    key = "room@example.com"
    backend.try_acquire(key, "dead1", 1, 1, now=0.0)
    backend.try_acquire(key, "dead2", 1, 1, now=0.0)  # never released
    assert backend.try_acquire(key, "live", 1, 1, now=29.0) > 0
    assert backend.try_acquire(key, "live", 1, 1, now=31.0) == 0


def test_slot_waits_then_gives_up_with_throttled(tmp_path):
    waits = []
    backend = FileLimiter(tmp_path, Limits(max_in_flight=1, max_per_window=100))
    limiter = Limiter(backend, backend.limits, max_wait=2.0, sleep=waits.append)
    with limiter.slot("room"), pytest.raises(Throttled) as err, limiter.slot("room"):
        pass
    assert err.value.code == "local_limit" and sum(waits) <= 2.0 and waits


WORKER = """
import json, sys, time
from integrations.limiter import FileLimiter, Limiter, Limits, RedisLimiter
kind, where, out = sys.argv[1], sys.argv[2], sys.argv[3]
limits = Limits(max_in_flight=2, max_per_window=1000, lease_seconds=30)
if kind == "file":
    backend = FileLimiter(where, limits)
else:
    import redis
    backend = RedisLimiter(redis.Redis.from_url(where), limits, prefix="reserva-test:xproc")
limiter = Limiter(backend, limits, max_wait=60)
spans = []
for _ in range(6):
    with limiter.slot("room@example.com"):
        start = time.monotonic()
        time.sleep(0.15)
        spans.append((start, time.monotonic()))
json.dump(spans, open(out, "w"))
"""


@pytest.mark.parametrize("kind", ["file", pytest.param("redis", marks=pytest.mark.redis)])
def test_the_limit_holds_across_processes(kind, tmp_path):
    if kind == "redis":
        import redis

        client = redis.Redis.from_url(settings.REDIS_URL)
        for key in client.scan_iter("reserva-test:xproc:*"):
            client.delete(key)
        where = settings.REDIS_URL
    else:
        where = str(tmp_path / "limits")
    outs = [tmp_path / f"spans{i}.json" for i in range(3)]
    procs = [
        subprocess.Popen([sys.executable, "-c", WORKER, kind, where, str(out)], cwd=ROOT)
        for out in outs
    ]
    for proc in procs:
        assert proc.wait(timeout=120) == 0
    spans = [tuple(span) for out in outs for span in json.loads(out.read_text())]
    assert len(spans) == 18
    # CLOCK_MONOTONIC is system-wide on Linux, so spans of different processes compare.
    events = sorted(
        [(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans], key=lambda ev: (ev[0], ev[1])
    )
    in_flight = peak = 0
    for _, delta in events:
        in_flight += delta
        peak = max(peak, in_flight)
    assert peak == 2  # never 3, though three processes wanted it at once
