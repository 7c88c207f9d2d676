"""The contract every part of the sandbox is written against.

The sandbox is one HTTPS server (``server.py``) that serves several emulated services: the
Microsoft identity platform, Microsoft Graph, Google's OAuth endpoints, Google Calendar v3 and
the control API/page. Each service registers routes on a shared :class:`Router`; a handler
takes a :class:`Request` and the shared :class:`Sandbox` state and returns a :class:`Response`.

Cross-cutting behaviour (the request log, counters, latency, injected faults and per-mailbox or
per-user limits) lives in the server and in ``limits.py``; a handler only says which limit
bucket a request belongs to through ``Request.limit_key`` (set by the handler before doing
work, or by calling ``sandbox.limits.enter(...)`` itself for batch items).

This module imports nothing but the standard library, so every provider module can import it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs


class Headers(dict):
    """Case-insensitive header mapping (keys are stored lower-cased)."""

    def __init__(self, items: dict[str, str] | list[tuple[str, str]] | None = None) -> None:
        super().__init__()
        for key, value in items.items() if isinstance(items, dict) else items or []:
            self[key] = value

    def __setitem__(self, key: str, value: str) -> None:
        super().__setitem__(key.lower(), value)

    def __getitem__(self, key: str) -> str:
        return super().__getitem__(key.lower())

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and super().__contains__(key.lower())

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        return super().get(key.lower(), default)


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: Headers
    body: bytes = b""
    # Filled by the router: the named groups of the matched route pattern.
    params: dict[str, str] = field(default_factory=dict)
    # Which service answered ("microsoft-identity", "graph", "google-oauth", "google-calendar",
    # "control"), and the limit bucket (e.g. ("graph", app_id, mailbox)); used for counters.
    service: str = ""
    limit_key: tuple[str, ...] | None = None
    # Limit slots taken while handling this request; the server releases them after the
    # handler (and the configured latency) so a slow response keeps its place in flight.
    slots: list[Any] = field(default_factory=list)
    # Set on the items of a JSON batch, which are dispatched like requests of their own.
    batch_item: bool = False
    # Items one request writes one after another (an EWS CreateItem, UpdateItem or DeleteItem
    # of several items; set by its handler): each is charged the per-item latency.
    items: int = 0
    # When the client's request arrived (sandbox clock); a batch's items share their batch's.
    arrived: float | None = None
    # State kept for the life of the client's TCP connection (the server passes the same
    # dict for every request on it): NTLM authenticates a connection, not a request.
    connection: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def build(cls, method: str, target: str, headers: Headers, body: bytes = b"") -> Request:
        path, _, qs = target.partition("?")
        return cls(method.upper(), path, parse_qs(qs, keep_blank_values=True), headers, body)

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default

    def json(self) -> Any:
        """The body parsed as JSON; raises ValueError on a malformed body."""
        return json.loads(self.body.decode("utf-8") or "null")

    def form(self) -> dict[str, str]:
        """An application/x-www-form-urlencoded body, one value per key."""
        parsed = parse_qs(self.body.decode("utf-8"), keep_blank_values=True)
        return {key: values[0] for key, values in parsed.items()}

    def bearer_token(self) -> str | None:
        auth = self.headers.get("authorization", "")
        scheme, _, token = auth.partition(" ")
        return token.strip() if scheme.lower() == "bearer" and token.strip() else None


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: Headers = field(default_factory=Headers)
    # A body sent as it is produced (chunked transfer encoding), e.g. EWS streaming
    # notifications; ``body`` is ignored when it is set. The server closes it when done.
    stream: Iterator[bytes] | None = None

    @classmethod
    def json(cls, status: int, payload: Any, headers: dict[str, str] | None = None) -> Response:
        hdrs = Headers({"Content-Type": "application/json; charset=utf-8"})
        for key, value in (headers or {}).items():
            hdrs[key] = value
        return cls(status, json.dumps(payload).encode("utf-8"), hdrs)

    @classmethod
    def text(
        cls, status: int, text: str, content_type: str = "text/plain; charset=utf-8"
    ) -> Response:
        return cls(status, text.encode("utf-8"), Headers({"Content-Type": content_type}))

    @classmethod
    def empty(cls, status: int = 204, headers: dict[str, str] | None = None) -> Response:
        return cls(status, b"", Headers(headers or {}))


Handler = Callable[[Request, Any], Response]


@dataclass
class Route:
    method: str
    pattern: re.Pattern[str]
    handler: Handler
    service: str
    # A readable endpoint label for counters and the request log ("GET events").
    name: str = ""


class Router:
    """Maps (method, path regex) to handlers. Patterns use named groups for parameters."""

    def __init__(self) -> None:
        self.routes: list[Route] = []

    def add(
        self, method: str, pattern: str, handler: Handler, *, service: str, name: str = ""
    ) -> None:
        label = name or f"{method.upper()} {pattern}"
        self.routes.append(
            Route(method.upper(), re.compile(f"^{pattern}$"), handler, service, label)
        )

    def match(self, request: Request) -> tuple[Route | None, bool]:
        """Return (route, path_known). path_known=True with no route means 405."""
        path_known = False
        for route in self.routes:
            found = route.pattern.match(request.path)
            if not found:
                continue
            path_known = True
            if route.method == request.method:
                request.params = found.groupdict()
                request.service = route.service
                return route, True
        return None, path_known
