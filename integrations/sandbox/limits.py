"""Per-bucket limits, injected faults and latency, shared by every emulated service.

Limits follow the providers' published model: Exchange Online counts per (app id, mailbox) at
most 4 requests in flight and 10,000 requests per 10 minutes; Google counts per user. A bucket
is any tuple (``("graph", app_id, mailbox)``, ``("google", user)``); its rule is looked up by
the tuple's first element, the service family. Batch items are counted one by one, because
that is how Graph and Google evaluate them.

Windows are measured on the sandbox clock, so a test can move the clock instead of sleeping.
"""

from __future__ import annotations

import random
import re
import threading
from collections import Counter, defaultdict, deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

# Retry-After for a concurrency refusal: a slot frees up as soon as a request finishes.
CONCURRENCY_RETRY_AFTER = 1


@dataclass
class LimitRule:
    """Limits of one service family; ``None`` switches a limit off."""

    max_in_flight: int | None = 4
    max_requests: int | None = 10_000
    window_seconds: float = 600.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Denial:
    """Why a request was refused: ``kind`` is "concurrency" or "rate"."""

    kind: str
    retry_after: int


class Slot:
    """A held place in a bucket; release it when the request (or batch item) is done."""

    def __init__(self, limiter: Limiter, key: tuple[str, ...]) -> None:
        self._limiter, self.key, self._released = limiter, key, False

    def release(self) -> None:
        if not self._released:
            self._released = True
            self._limiter._release(self.key)


class Limiter:
    """Concurrency and rate limits per bucket tuple."""

    def __init__(self, now: Callable[[], float], rules: dict[str, LimitRule] | None = None):
        self._now = now
        self._lock = threading.Lock()
        self.rules: dict[str, LimitRule] = dict(rules or {})
        self._in_flight: dict[tuple[str, ...], int] = defaultdict(int)
        self._history: dict[tuple[str, ...], deque[float]] = defaultdict(deque)
        # The latest refusal per bucket: (refused at, not before) on the sandbox clock, and
        # how many requests arrived after a refusal and before its Retry-After was up.
        self._refused: dict[tuple[str, ...], tuple[float, float]] = {}
        self.early: Counter[tuple[str, ...]] = Counter()

    def rule_for(self, key: tuple[str, ...]) -> LimitRule | None:
        return self.rules.get(key[0]) if key else None

    def set_rule(self, family: str, **changes: Any) -> LimitRule:
        """Adjust a family's rule in place (unknown fields raise TypeError)."""
        with self._lock:
            current = self.rules.get(family, LimitRule())
            data = current.to_dict() | changes
            self.rules[family] = LimitRule(**data)
            return self.rules[family]

    def enter(self, key: tuple[str, ...], arrived: float | None = None) -> Slot | Denial:
        """Take a slot in ``key``'s bucket, or say why not and when to retry.

        ``arrived``: when the request reached the sandbox (a batch item: its batch). One that
        arrived after a refusal of this bucket and before that refusal's ``Retry-After`` was
        up is counted in ``early`` (the client did not wait as told; with several requests
        in flight at once, one may have been sent before its client saw the refusal)."""
        rule = self.rule_for(key)
        with self._lock:
            if rule is None:
                self._in_flight[key] += 1
                return Slot(self, key)
            now = self._now()
            refused = self._refused.get(key)
            if refused and arrived is not None and refused[0] < arrived < refused[1]:
                self.early[key] += 1
            denial = self._enter(key, rule, now)
            if isinstance(denial, Denial):
                until = max(now + denial.retry_after, refused[1] if refused else 0.0)
                self._refused[key] = (now, until)
            return denial

    def _enter(self, key: tuple[str, ...], rule: LimitRule, now: float) -> Slot | Denial:
        """``enter`` under the lock."""
        history = self._history[key]
        while history and history[0] <= now - rule.window_seconds:
            history.popleft()
        if rule.max_in_flight is not None and self._in_flight[key] >= rule.max_in_flight:
            return Denial("concurrency", CONCURRENCY_RETRY_AFTER)
        if rule.max_requests is not None and len(history) >= rule.max_requests:
            wait = history[0] + rule.window_seconds - now
            return Denial("rate", max(1, int(wait + 0.999)))
        history.append(now)
        self._in_flight[key] += 1
        return Slot(self, key)

    def _release(self, key: tuple[str, ...]) -> None:
        with self._lock:
            self._in_flight[key] = max(0, self._in_flight[key] - 1)

    def reset(self) -> None:
        with self._lock:
            self._history.clear()
            self._refused.clear()
            self.early.clear()

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "rules": {name: rule.to_dict() for name, rule in self.rules.items()},
                "buckets": [
                    {
                        "key": list(key),
                        "in_flight": self._in_flight.get(key, 0),
                        "in_window": len(self._history.get(key, ())),
                        "early": self.early.get(key, 0),
                    }
                    for key in sorted(set(self._in_flight) | set(self._history))
                ],
            }


FAULT_KINDS = ("500", "503", "slow", "drop")


@dataclass
class Fault:
    """One injected fault rule.

    ``kind``: "500", "503" (with ``retry_after``), "slow" (the handler runs, so a write lands,
    then the response waits ``delay_seconds``, longer than a sane client timeout) or "drop"
    (the connection closes without a response; with ``after_write`` the handler runs first).
    Matches requests by ``service`` / ``method`` / ``path`` (a regex searched in the path) /
    ``body`` (a regex searched in the request body: one SOAP operation of EWS, whose requests
    all go to one path); lets the first ``skip`` matches through, then fires for the next
    ``count`` matches, or at ``rate`` (0..1) for every match when count is None.
    """

    kind: str
    service: str | None = None
    method: str | None = None
    path: str | None = None
    count: int | None = 1
    rate: float | None = None
    retry_after: int = 5
    delay_seconds: float = 30.0
    after_write: bool = False
    body: str | None = None
    skip: int = 0
    id: int = 0
    fired: int = 0
    _pattern: re.Pattern[str] | None = field(default=None, repr=False, compare=False)
    _body: re.Pattern[bytes] | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; use one of {FAULT_KINDS}")
        if self.rate is not None and not 0 <= self.rate <= 1:
            raise ValueError("rate must be between 0 and 1")
        if self.count is None and self.rate is None:
            raise ValueError("give count (next N requests) or rate")
        if self.skip < 0:
            raise ValueError("skip must be 0 or more")
        self._pattern = re.compile(self.path) if self.path else None
        self._body = re.compile(self.body.encode("utf-8")) if self.body else None

    def matches(self, service: str, method: str, path: str, body: bytes = b"") -> bool:
        return (
            (self.service is None or self.service == service)
            and (self.method is None or self.method.upper() == method)
            and (self._pattern is None or bool(self._pattern.search(path)))
            and (self._body is None or bool(self._body.search(body)))
        )

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("_pattern", None)
        data.pop("_body", None)
        return data


class FaultInjector:
    """Holds fault rules; ``pick`` says which one (if any) hits a request."""

    def __init__(self, seed: int | None = None) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._next_id = 1
        self._random = random.Random(seed)

    def add(self, **spec: Any) -> Fault:
        internal = {"id", "fired", "_pattern", "_body"}
        fault = Fault(**{k: v for k, v in spec.items() if k not in internal})
        with self._lock:
            fault.id = self._next_id
            self._next_id += 1
            self._faults.append(fault)
        return fault

    def reseed(self, seed: int) -> None:
        """Rate faults drawn from this seed from now on (a replayable run's)."""
        with self._lock:
            self._random.seed(seed)

    def pick(self, service: str, method: str, path: str, body: bytes = b"") -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if not fault.matches(service, method, path, body):
                    continue
                if fault.skip > 0:
                    fault.skip -= 1
                    continue
                if fault.count is not None:
                    fault.fired += 1
                    if fault.fired >= fault.count:
                        self._faults.remove(fault)
                    return fault
                if fault.rate is not None and self._random.random() < fault.rate:
                    fault.fired += 1
                    return fault
            return None

    def remove(self, fault_id: int) -> bool:
        with self._lock:
            before = len(self._faults)
            self._faults = [f for f in self._faults if f.id != fault_id]
            return len(self._faults) != before

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def list(self) -> list[dict[str, Any]]:
        with self._lock:
            return [fault.to_dict() for fault in self._faults]


@dataclass
class Latency:
    """Service time in seconds: per request, and per batch item on top of it. A request is
    answered no sooner than this after it arrives; the sandbox's own work counts toward it."""

    per_request: float = 0.0
    per_item: float = 0.0
    # Per-service overrides of per_request, e.g. {"graph": 0.2}.
    services: dict[str, float] = field(default_factory=dict)

    def for_service(self, service: str) -> float:
        return self.services.get(service, self.per_request)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
