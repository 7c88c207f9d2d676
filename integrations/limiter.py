"""A per-mailbox limiter shared by every process: at most N requests in flight and at most M
requests per window, with each batch item counted.

Exchange Online allows 4 concurrent requests and 10,000 requests per 10 minutes per app and
mailbox, counting each ``$batch`` item; Google counts each batch part against per-user quotas.
Staying under those limits here is cheaper than being answered 429.

Two back ends with the same rules:

- ``RedisLimiter`` (production, ``REDIS_URL``): one Lua script per acquire, atomic across
  every web, worker and beat process on every host.
- ``FileLimiter`` (the embedded default): one small JSON file per key under a folder, changed
  under an exclusive ``flock``, so the processes of one machine share it.

Every in-flight slot is a lease that expires (``lease_seconds``), so a process killed
mid-request never holds a slot for ever. A batch takes at most ``max_in_flight`` slots (it
occupies the whole mailbox while it runs) and ``items`` units of rate. Its units count from
its answer on (``release``): the provider counts each item when it runs it, up to the answer
(Google runs a batch's parts one after another), so counting them from the send would free
them here before the provider does, and the next batch would meet ``rateLimitExceeded`` at
the window's edge.

A provider's ``Retry-After`` is shared too (``hold_off``): once one process is told to wait,
no process sends to that mailbox before the time is up (the key stores the latest "not
before" time, and every acquire waits for it).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import random
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from .base import Throttled


@dataclass(frozen=True)
class Limits:
    max_in_flight: int = 4
    max_per_window: int = 10_000
    window_seconds: float = 600.0
    lease_seconds: float = 60.0  # twice the requests' timeout (integrations/http.py: 30 s)


class Backend(Protocol):
    def try_acquire(self, key: str, lease_id: str, slots: int, units: int, now: float) -> float:
        """Take the slots and units and return 0, or take nothing and return seconds to wait."""

    def release(self, key: str, lease_id: str, units: int = 0, now: float | None = None) -> None:
        """Free the lease's slots; with ``now``, its ``units`` count from ``now`` on."""

    def hold_off(self, key: str, until: float) -> None:
        """No slot for ``key`` before ``until`` (a later time already stored is kept)."""


class Limiter:
    """Blocking acquire with a deadline, on top of a back end."""

    def __init__(
        self,
        backend: Backend,
        limits: Limits | None = None,
        *,
        max_wait: float = 60.0,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.backend = backend
        self.limits = limits or Limits()
        self.max_wait = max_wait
        self.clock = clock
        self.sleep = sleep

    @contextlib.contextmanager
    def slot(self, key: str, items: int = 1) -> Iterator[None]:
        """Hold capacity for one request of ``items`` items (a batch counts each item)."""
        lease_id = uuid.uuid4().hex
        slots = max(1, min(items, self.limits.max_in_flight))
        waited = 0.0
        while True:
            wait = self.backend.try_acquire(key, lease_id, slots, max(1, items), self.clock())
            if wait <= 0:
                break
            if waited + wait > self.max_wait:
                raise Throttled(
                    f"Local limit for {key!r} is busy; try again in {wait:.0f} s.",
                    retry_after=wait,
                    code="local_limit",
                )
            # Jitter only, and never past the deadline: the jitter alone let the waits add up
            # to 20% of a pause more than max_wait (a limiter test failed on it in CI).
            pause = min(min(wait, 1.0) * random.uniform(0.8, 1.2), self.max_wait - waited)
            self.sleep(pause)
            waited += pause
        try:
            yield
        finally:
            # The provider counts each item when it processes it, which can be up to the
            # answer (a Google batch runs its parts one after another): the items count from
            # the answer on here, so this window never frees before the provider's does.
            self.backend.release(key, lease_id, max(1, items), self.clock())

    def hold_off(self, key: str, seconds: float) -> None:
        """The provider said "Retry-After: seconds" for ``key``: every process waits."""
        if seconds > 0:
            self.backend.hold_off(key, self.clock() + seconds)


# --- Redis ----------------------------------------------------------------------------------

_ACQUIRE = """
local inflight, rate = KEYS[1], KEYS[2]
local now, slots, units = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local max_in_flight, max_rate = tonumber(ARGV[4]), tonumber(ARGV[5])
local window, lease, lease_id = tonumber(ARGV[6]), tonumber(ARGV[7]), ARGV[8]
local not_before = tonumber(redis.call('GET', KEYS[3]) or '0')
if not_before > now then
  return tostring(not_before - now)
end
redis.call('ZREMRANGEBYSCORE', inflight, '-inf', now)
redis.call('ZREMRANGEBYSCORE', rate, '-inf', now - window)
if redis.call('ZCARD', inflight) + slots > max_in_flight then
  return '0.05'
end
if redis.call('ZCARD', rate) + units > max_rate then
  local oldest = redis.call('ZRANGE', rate, 0, units - 1, 'WITHSCORES')
  return tostring(math.max(tonumber(oldest[#oldest]) + window - now, 0.05))
end
for i = 1, slots do redis.call('ZADD', inflight, now + lease, lease_id .. ':' .. i) end
for i = 1, units do redis.call('ZADD', rate, now, lease_id .. ':' .. i) end
redis.call('EXPIRE', inflight, math.ceil(lease) + 1)
redis.call('EXPIRE', rate, math.ceil(window) + 1)
return '0'
"""

_RELEASE = """
local members = redis.call('ZRANGE', KEYS[1], 0, -1)
for _, m in ipairs(members) do
  if string.sub(m, 1, string.len(ARGV[1]) + 1) == ARGV[1] .. ':' then
    redis.call('ZREM', KEYS[1], m)
  end
end
local units = tonumber(ARGV[3])
if units > 0 then
  for i = 1, units do redis.call('ZADD', KEYS[2], 'XX', ARGV[2], ARGV[1] .. ':' .. i) end
  redis.call('EXPIRE', KEYS[2], math.ceil(tonumber(ARGV[4])) + 1)
end
return 0
"""


_HOLD_OFF = """
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
local not_before = tonumber(ARGV[1])
if not_before > current then
  redis.call('SET', KEYS[1], ARGV[1], 'EX', math.ceil(tonumber(ARGV[2])) + 1)
end
return 0
"""


class RedisLimiter:
    def __init__(self, client, limits: Limits, prefix: str = "reserva:limit") -> None:
        self.client = client
        self.limits = limits
        self.prefix = prefix
        self._acquire = client.register_script(_ACQUIRE)
        self._release = client.register_script(_RELEASE)
        self._hold_off = client.register_script(_HOLD_OFF)

    def _keys(self, key: str) -> list[str]:
        digest = hashlib.sha256(key.encode()).hexdigest()[:32]  # no addresses in Redis keys
        return [
            f"{self.prefix}:{digest}:inflight",
            f"{self.prefix}:{digest}:rate",
            f"{self.prefix}:{digest}:until",
        ]

    def try_acquire(self, key: str, lease_id: str, slots: int, units: int, now: float) -> float:
        lim = self.limits
        args = [
            now,
            slots,
            units,
            lim.max_in_flight,
            lim.max_per_window,
            lim.window_seconds,
            lim.lease_seconds,
            lease_id,
        ]
        return float(self._acquire(keys=self._keys(key), args=args))

    def release(self, key: str, lease_id: str, units: int = 0, now: float | None = None) -> None:
        restamp = units if now is not None else 0
        self._release(
            keys=self._keys(key)[:2],
            args=[lease_id, now or 0, restamp, self.limits.window_seconds],
        )

    def hold_off(self, key: str, until: float) -> None:
        # The key's own expiry: the time left, from this host's clock (Redis keeps no clock
        # of ours); the value is compared with each caller's clock, as the leases are.
        self._hold_off(keys=self._keys(key)[2:], args=[until, max(until - time.time(), 1)])


# --- files ----------------------------------------------------------------------------------


class FileLimiter:
    def __init__(self, folder: Path | str, limits: Limits) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.limits = limits

    @contextlib.contextmanager
    def _state(self, key: str) -> Iterator[dict]:
        path = self.folder / f"{hashlib.sha256(key.encode()).hexdigest()[:32]}.json"
        with open(path, "a+", encoding="utf-8") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                handle.seek(0)
                text = handle.read()
                state = json.loads(text) if text.strip() else {}
                state.setdefault("inflight", {})  # lease_id -> [expires_at, slots]
                state.setdefault("rate", [])  # [timestamp, units, lease_id], oldest first
                yield state
                handle.seek(0)
                handle.truncate()
                handle.write(json.dumps(state))
                handle.flush()
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def try_acquire(self, key: str, lease_id: str, slots: int, units: int, now: float) -> float:
        lim = self.limits
        with self._state(key) as state:
            state["inflight"] = {k: v for k, v in state["inflight"].items() if v[0] > now}
            state["rate"] = [r for r in state["rate"] if r[0] > now - lim.window_seconds]
            if state.get("until", 0) > now:
                return state["until"] - now
            if sum(v[1] for v in state["inflight"].values()) + slots > lim.max_in_flight:
                return 0.05
            used = sum(r[1] for r in state["rate"])
            if used + units > lim.max_per_window:
                freed, wait = 0, lim.window_seconds
                for stamp, count, *_ in state["rate"]:  # oldest first
                    freed += count
                    wait = stamp + lim.window_seconds - now
                    if used - freed + units <= lim.max_per_window:
                        break
                return max(wait, 0.05)
            state["inflight"][lease_id] = [now + lim.lease_seconds, slots]
            state["rate"].append([now, units, lease_id])
            return 0.0

    def release(self, key: str, lease_id: str, units: int = 0, now: float | None = None) -> None:
        with self._state(key) as state:
            state["inflight"].pop(lease_id, None)
            if now is None:
                return
            mine = [r for r in state["rate"] if r[2:] == [lease_id]]
            if mine:
                state["rate"] = [r for r in state["rate"] if r[2:] != [lease_id]]
                state["rate"].append([max(now, mine[0][0]), mine[0][1], lease_id])

    def hold_off(self, key: str, until: float) -> None:
        with self._state(key) as state:
            state["until"] = max(state.get("until", 0), until)
