"""exchangelib's HTTP path, made to keep the promises of ``integrations/http.py``.

exchangelib builds its own ``requests`` sessions (one per endpoint and credentials, cached in
``Protocol``) and mounts ``BaseProtocol.HTTP_ADAPTER_CLS`` on the EWS URL. That class is
global, so the per-connection settings live here, keyed by the EWS URL:

- the connection alias's **CA bundle, per request**: ``requests`` lets ``REQUESTS_CA_BUNDLE``
  (which these machines set) override a session's ``verify`` when it merges the environment;
  the adapter replaces whatever ``verify`` reaches it with the configured bundle, so nothing
  in the environment can widen or narrow whom a connection trusts;
- the alias's **timeout** instead of exchangelib's global 120 s (a notification stream reads
  with ``STREAM_READ_TIMEOUT``: it waits for the server's heartbeats);
- a ``client-request-id`` on every request (Exchange logs it and answers with its own
  ``request-id``), and one log line per request: operation, host and path, status, time and
  both ids. Never headers or bodies: NTLM, Basic and Bearer all travel in ``Authorization``;
- the status of the last answer, per thread, so ``errors.py`` can tell a 403 (EWS switched
  off) from other failures exchangelib folds into one exception.

``install()`` puts the adapter in place (idempotent) and quiets exchangelib's wire-level
debug logging, which prints request headers, Authorization included.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
from exchangelib.protocol import BaseProtocol

log = logging.getLogger("integrations.ews")

# A notification stream (GetStreamingEvents) is read for up to 30 minutes; the server's
# heartbeats keep bytes coming, so a read waits this long before the connection counts as dead
# (and the listener opens another): longer than any heartbeat gap, much shorter than the stream.
STREAM_READ_TIMEOUT = 120.0

_OPERATION = re.compile(rb"<(?:\w+:)?Body[^>]*>\s*<(?:\w+:)?(\w+)")


@dataclass(frozen=True)
class EndpointSettings:
    ca_bundle: str | None
    timeout: float


_endpoints: dict[str, EndpointSettings] = {}
_endpoints_lock = threading.Lock()
_last = threading.local()


def _key(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}{parts.path.rstrip('/').lower()}"


def configure(endpoint: str, *, ca_bundle: str | None, timeout: float) -> None:
    """Use ``ca_bundle`` (None: the system's trust) and ``timeout`` for ``endpoint``.

    One setting per EWS URL: two connection aliases naming the same URL share it (the last
    one configured wins), as exchangelib shares their sessions too.
    """
    with _endpoints_lock:
        _endpoints[_key(endpoint)] = EndpointSettings(ca_bundle or None, timeout)


def settings_for(url: str) -> EndpointSettings | None:
    return _endpoints.get(_key(url))


def last_status() -> int | None:
    """The HTTP status of the last EWS answer this thread received (None if none)."""
    return getattr(_last, "status", None)


def reset_status() -> None:
    _last.status = None


def _operation(body: Any) -> str:
    if isinstance(body, str):
        body = body.encode("utf-8", "replace")
    if not isinstance(body, bytes):
        return "?"
    match = _OPERATION.search(body[:4096])
    return match.group(1).decode("ascii", "replace") if match else "?"


class ReservaAdapter(requests.adapters.HTTPAdapter):
    """Pins the configured CA bundle and timeout per request; request ids in the log."""

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        settings = settings_for(request.url or "")
        operation = _operation(request.body)
        if settings is not None:
            if settings.ca_bundle:
                kwargs["verify"] = settings.ca_bundle
            kwargs["timeout"] = settings.timeout
            if operation == "GetStreamingEvents":
                kwargs["timeout"] = (settings.timeout, max(settings.timeout, STREAM_READ_TIMEOUT))
        request_id = str(uuid.uuid4())
        request.headers["client-request-id"] = request_id
        request.headers["return-client-request-id"] = "true"
        where = describe(request.url or "")
        started = time.monotonic()
        _last.status = None
        try:
            response = super().send(request, **kwargs)
        except requests.RequestException as exc:
            log.warning(
                "EWS %s %s failed (%s) request-id=%s",
                operation,
                where,
                type(exc).__name__,
                request_id,
            )
            raise
        _last.status = response.status_code
        log.info(
            "EWS %s %s -> %d in %.0f ms request-id=%s server-request-id=%s",
            operation,
            where,
            response.status_code,
            (time.monotonic() - started) * 1000,
            request_id,
            response.headers.get("request-id", "-"),
        )
        return response


def describe(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.netloc}{parts.path}"


class _NoWireDetail(logging.Filter):
    """exchangelib's ``post_ratelimited`` logs request headers (Authorization among them) at
    DEBUG and the whole request on unexpected errors: dropped and cut down here, whatever
    level an operator turns on."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.INFO:
            return False
        args = record.args
        if isinstance(args, tuple) and len(args) == 4:
            record.args = (args[0], args[1], "(request details withheld)", "")
        return True


_filter = _NoWireDetail()


def install() -> None:
    """Make exchangelib use :class:`ReservaAdapter` (idempotent)."""
    if not (
        isinstance(BaseProtocol.HTTP_ADAPTER_CLS, type)
        and issubclass(BaseProtocol.HTTP_ADAPTER_CLS, ReservaAdapter)
    ):
        BaseProtocol.HTTP_ADAPTER_CLS = ReservaAdapter
    for name in ("exchangelib.util", "exchangelib.protocol", "exchangelib.services.common"):
        logger = logging.getLogger(name)
        if _filter not in logger.filters:
            logger.addFilter(_filter)
