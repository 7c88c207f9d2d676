"""The one outbound HTTP path to calendar providers.

Every call to Microsoft or Google goes through :class:`HttpClient`, which adds:

- a timeout on every request, and a ``client-request-id`` (a fresh GUID, the header Microsoft
  asks clients to send and log) so a failure can be traced on both sides;
- the connection alias's CA bundle passed *per request*: ``requests`` lets the
  ``REQUESTS_CA_BUNDLE`` environment variable override a Session's own ``verify``, but not a
  ``verify`` given to the call itself;
- retries with full-jitter exponential backoff on 429, 503, 504 and connection errors,
  honouring ``Retry-After``, which is shared with every process through the limiter
  (``hold_off``). A POST/PATCH whose outcome is unknown (timeout, dropped connection) is
  retried only when the caller made it idempotent (``idempotent=True``: Graph
  ``transactionId``, a Google client-chosen id); a 429 or 503 means "not processed" and is
  always safe to retry;
- the per-mailbox limiter (``integrations.limiter``) around every attempt, a batch counting
  each of its items;
- logging of method, host and path, status, duration and request id: never headers, bodies or
  query strings, which may carry tokens.

It takes plain values and knows nothing of Django or the ORM.
"""

from __future__ import annotations

import email.utils
import logging
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests

from .base import Throttled, TlsError, TransientError
from .limiter import Limiter

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({429, 503, 504})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})  # idempotent by HTTP


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    backoff_base: float = 0.5
    backoff_cap: float = 30.0
    max_retry_after: float = 120.0  # longer waits are left to the caller (a task retry)


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (now if now is not None else time.time()))


def backoff(attempt: int, policy: RetryPolicy, retry_after: float | None = None) -> float:
    """How long to wait before attempt ``attempt + 1`` (attempt counts from 1)."""
    if retry_after is not None:
        return retry_after
    ceiling = min(policy.backoff_cap, policy.backoff_base * 2 ** (attempt - 1))
    return random.uniform(0, ceiling)  # jitter, not cryptography


def describe(url: str) -> str:
    """Host and path only: query strings (delta tokens, codes) stay out of logs and errors."""
    parts = urlsplit(url)
    return f"{parts.netloc}{parts.path}"


class HttpClient:
    def __init__(
        self,
        *,
        ca_bundle: str | None = None,
        timeout: float = 30.0,
        policy: RetryPolicy | None = None,
        limiter: Limiter | None = None,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.verify: str | bool = ca_bundle or True
        self.timeout = timeout
        self.policy = policy or RetryPolicy()
        self.limiter = limiter
        self.session = session or requests.Session()
        self.sleep = sleep

    def request(
        self,
        method: str,
        url: str,
        *,
        limit_key: str | None = None,
        items: int = 1,
        idempotent: bool | None = None,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> requests.Response:
        """Send with retries; return the final response (any status the caller must judge).

        Raises ``Throttled``/``TransientError`` when retries are exhausted on a retryable
        failure, ``TlsError`` when the certificate is not trusted.
        """
        method = method.upper()
        if idempotent is None:
            idempotent = method in SAFE_METHODS
        policy = self.policy
        for attempt in range(1, policy.max_attempts + 1):
            request_id = str(uuid.uuid4())
            sent_headers = {**(headers or {}), "client-request-id": request_id}
            started = time.monotonic()
            try:
                response = self._send(method, url, limit_key, items, sent_headers, kwargs)
            except requests.exceptions.SSLError as exc:
                raise TlsError(
                    f"The certificate of {urlsplit(url).netloc} is not trusted; check the "
                    "connection alias's CA bundle.",
                    code="tls",
                ) from exc
            except (requests.ConnectionError, requests.Timeout) as exc:
                unsent = isinstance(exc, requests.exceptions.ConnectTimeout)
                log.warning(
                    "%s %s failed (%s) request-id=%s attempt=%d",
                    method,
                    describe(url),
                    type(exc).__name__,
                    request_id,
                    attempt,
                )
                if (idempotent or unsent) and attempt < policy.max_attempts:
                    self.sleep(backoff(attempt, policy))
                    continue
                raise TransientError(
                    f"{describe(url)} did not answer ({type(exc).__name__}).", code="network"
                ) from exc
            log.info(
                "%s %s -> %d in %.0f ms request-id=%s",
                method,
                describe(url),
                response.status_code,
                (time.monotonic() - started) * 1000,
                request_id,
            )
            if response.status_code not in RETRY_STATUSES:
                return response
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            self.hold_off(limit_key, retry_after)
            if attempt < policy.max_attempts and (retry_after or 0) <= policy.max_retry_after:
                self.sleep(backoff(attempt, policy, retry_after))
                continue
            error = Throttled if response.status_code == 429 else TransientError
            raise error(
                f"{describe(url)} answered {response.status_code} after {attempt} attempt(s).",
                status=response.status_code,
                retry_after=retry_after,
            )
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    def hold_off(self, limit_key: str | None, retry_after: float | None) -> None:
        """A provider's ``Retry-After`` for this mailbox, shared with every process through
        the limiter: none of them sends to it before the time is up (not only this one)."""
        if self.limiter is not None and limit_key is not None and retry_after:
            self.limiter.hold_off(limit_key, retry_after)

    def _send(self, method, url, limit_key, items, headers, kwargs) -> requests.Response:
        kwargs.setdefault("timeout", self.timeout)
        if self.limiter is None or limit_key is None:
            return self.session.request(method, url, headers=headers, verify=self.verify, **kwargs)
        with self.limiter.slot(limit_key, items):
            return self.session.request(method, url, headers=headers, verify=self.verify, **kwargs)
