"""Rate limits of the API and its token endpoint, counted in the shared cache.

``consume`` is a fixed-window counter made of two atomic cache operations: ``add`` (``SET NX``
on Redis) opens a window at a client's first request, ``incr`` (``INCRBY``) counts in it. No
process reads a count, changes it and writes it back, so N requests per window hold however
many gunicorn workers share the Redis cache. DRF's ``SimpleRateThrottle`` does read-modify-write
a list of timestamps: three workers let through well over N between them.

The window opens at the first request (it is not aligned to the clock), so a burst cannot get
N requests at the end of one minute and N more at the start of the next.

``ClientRateThrottle`` keeps one bucket per OAuth application (all its tokens together), or per
user for session calls. The rate is read from settings on every request, so it can be changed
without a restart of the class-level DRF configuration (and in tests).
"""

from __future__ import annotations

import math
import time

from allauth.account.adapter import get_adapter
from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from rest_framework.throttling import BaseThrottle

PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_rate(rate: str) -> tuple[int, int] | None:
    """``"60/minute"`` -> ``(60, 60)``: requests and seconds (DRF's notation, ``N/second``,
    ``/minute``, ``/hour``, ``/day``; only the first letter of the period counts). Empty: none."""
    if not rate:
        return None
    number, _, period = rate.partition("/")
    return int(number), PERIODS[period.strip()[0].lower()]


def consume(key: str, rate: str) -> float | None:
    """Count one request against ``key``; ``None`` if it is within ``rate``, else the seconds
    until the window ends (a Retry-After)."""
    parsed = parse_rate(rate)
    if parsed is None:
        return None
    limit, duration = parsed
    now = time.time()
    window_key = f"ratelimit:{key}:{limit}/{duration}"
    # Every process agrees on the window's start: only the first add wins.
    cache.add(window_key, now, timeout=duration)
    started = cache.get(window_key, now)
    count_key = f"{window_key}:{started:.6f}"
    cache.add(count_key, 0, timeout=duration + 1)
    try:
        count = cache.incr(count_key)
    except ValueError:  # the window ended between add and incr: this request opens the next
        cache.add(count_key, 1, timeout=duration + 1)
        count = 1
    if count <= limit:
        return None
    return max(1.0, math.ceil(started + duration - now))


def client_address(request: HttpRequest) -> str:
    """The caller's address as the sign-in lockouts see it (allauth: REMOTE_ADDR, or the proxy's
    last X-Forwarded-For hop when TRUST_PROXY_HEADERS), never a header a client may forge."""
    try:
        return get_adapter(request).get_client_ip(request)
    except PermissionDenied:  # no address at all (a WSGI call without REMOTE_ADDR)
        return "unknown"


class ClientRateThrottle(BaseThrottle):
    """API_RATE_LIMIT per client; a refused request is DRF's 429 with Retry-After."""

    def __init__(self) -> None:
        self.retry_after: float | None = None

    def allow_request(self, request, view) -> bool:
        application = getattr(request.auth, "application", None)
        if application is not None:
            ident = f"app:{application.pk}"
        elif request.user and request.user.is_authenticated:
            ident = f"user:{request.user.pk}"
        else:
            ident = f"anon:{client_address(request)}"
        self.retry_after = consume(f"api:{ident}", settings.API_RATE_LIMIT)
        return self.retry_after is None

    def wait(self) -> float | None:
        return self.retry_after
