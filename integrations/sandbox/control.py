"""The control API (``/_sandbox/api/...``) and the control page (``/_sandbox/``).

The generic part lives here: clock, limits, latency, faults, request log, counters and the
day view. Providers add their own control routes (create an event "as a person would",
expire delta tokens, revoke refresh tokens...) under ``/_sandbox/api/<provider>/`` with
service "control", which the server never limits, delays or faults.

The sandbox listens on loopback only and the control API has no authentication: anyone who
can reach the port owns the sandbox, which is the point of a local emulator.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from .core import Request, Response, Router
from .limits import Latency

if TYPE_CHECKING:
    from .server import Sandbox

SERVICE = "control"
API = "/_sandbox/api"


def _bad(message: str, status: int = 400) -> Response:
    return Response.json(status, {"error": {"code": "badRequest", "message": message}})


def _body(request: Request) -> dict[str, Any]:
    try:
        data = request.json()
    except ValueError as exc:
        raise ControlError(f"malformed JSON body: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ControlError("the body must be a JSON object")
    return data


class ControlError(Exception):
    """A refused control request; the message is shown to the caller."""


def state(request: Request, sandbox: Sandbox) -> Response:
    return Response.json(
        200,
        {
            "base_url": sandbox.base_url,
            "ca_file": str(sandbox.ca_file),
            "clock": {"now": sandbox.clock.now().isoformat(), "offset": sandbox.clock.offset},
            "limits": sandbox.limits.snapshot(),
            "latency": sandbox.latency.to_dict(),
            "faults": sandbox.faults.list(),
            "services": sorted(sandbox.services),
        },
    )


def advance_clock(request: Request, sandbox: Sandbox) -> Response:
    data = _body(request)
    seconds = float(data.get("seconds", 0)) + 60 * float(data.get("minutes", 0))
    seconds += 86400 * float(data.get("days", 0))
    if seconds <= 0:
        raise ControlError("give a positive seconds, minutes or days")
    now = sandbox.advance_clock(seconds)
    return Response.json(200, {"now": now.isoformat(), "offset": sandbox.clock.offset})


def get_limits(request: Request, sandbox: Sandbox) -> Response:
    return Response.json(200, sandbox.limits.snapshot())


def set_limits(request: Request, sandbox: Sandbox) -> Response:
    """Body: {"graph": {"max_in_flight": 2, "max_requests": 50, "window_seconds": 600}}."""
    data = _body(request)
    for family, changes in data.items():
        if not isinstance(changes, dict):
            raise ControlError(f"{family}: expected an object of limit fields")
        try:
            sandbox.limits.set_rule(family, **changes)
        except TypeError as exc:
            raise ControlError(str(exc)) from exc
    return Response.json(200, sandbox.limits.snapshot())


def reset_limits(request: Request, sandbox: Sandbox) -> Response:
    sandbox.limits.reset()
    return Response.json(200, sandbox.limits.snapshot())


def get_latency(request: Request, sandbox: Sandbox) -> Response:
    return Response.json(200, sandbox.latency.to_dict())


def set_latency(request: Request, sandbox: Sandbox) -> Response:
    """Body: {"per_request": 0.2, "per_item": 0.05, "services": {"graph": 0.3}} (seconds)."""
    data = sandbox.latency.to_dict() | _body(request)
    try:
        sandbox.latency = Latency(**data)
    except TypeError as exc:
        raise ControlError(str(exc)) from exc
    return Response.json(200, sandbox.latency.to_dict())


def list_faults(request: Request, sandbox: Sandbox) -> Response:
    return Response.json(200, {"value": sandbox.faults.list()})


def add_fault(request: Request, sandbox: Sandbox) -> Response:
    """Body: {"kind": "503", "service": "graph", "method": "POST", "path": "/events$",
    "count": 2} or {"kind": "500", "rate": 0.1, "count": null}; "body" (a regex searched in
    the request body) and "skip" (matches let through first) narrow it further."""
    try:
        fault = sandbox.faults.add(**_body(request))
    except (TypeError, ValueError) as exc:
        raise ControlError(str(exc)) from exc
    return Response.json(201, fault.to_dict())


def delete_fault(request: Request, sandbox: Sandbox) -> Response:
    if not sandbox.faults.remove(int(request.params["fault_id"])):
        return _bad("no such fault", 404)
    return Response.empty(204)


def clear_faults(request: Request, sandbox: Sandbox) -> Response:
    sandbox.faults.clear()
    return Response.empty(204)


def get_log(request: Request, sandbox: Sandbox) -> Response:
    """Newest last; ?service=graph&limit=100&since=<seq>."""
    service = request.arg("service")
    since = int(request.arg("since", "0") or 0)
    limit = int(request.arg("limit", "200") or 200)
    with sandbox.lock:
        entries = [
            entry
            for entry in sandbox.log
            if entry["seq"] > since and (not service or entry["service"] == service)
        ]
    return Response.json(200, {"value": entries[-limit:]})


def get_counters(request: Request, sandbox: Sandbox) -> Response:
    with sandbox.lock:
        return Response.json(200, {k: dict(v) for k, v in sandbox.counters.items()})


def reset_counters(request: Request, sandbox: Sandbox) -> Response:
    sandbox.reset_counters()
    return Response.empty(204)


def day_view(request: Request, sandbox: Sandbox) -> Response:
    """Every calendar the providers show on the page, for one day (?date=YYYY-MM-DD)."""
    raw = request.arg("date")
    try:
        day = dt.date.fromisoformat(raw) if raw else sandbox.clock.now().date()
    except ValueError as exc:
        raise ControlError(f"date: {exc}") from exc
    calendars: list[dict[str, Any]] = []
    for source in sandbox.page_sources:
        calendars.extend(source(day))
    return Response.json(
        200,
        {"date": day.isoformat(), "now": sandbox.clock.now().isoformat(), "calendars": calendars},
    )


def page(request: Request, sandbox: Sandbox) -> Response:
    from .page import render_page

    return Response.text(200, render_page(sandbox), "text/html; charset=utf-8")


def _guarded(handler: Any) -> Any:
    def run(request: Request, sandbox: Sandbox) -> Response:
        try:
            return handler(request, sandbox)
        except ControlError as exc:
            return _bad(str(exc))

    run.__name__ = handler.__name__
    return run


def guarded(handler: Any) -> Any:
    """Wrap a control handler so a :class:`ControlError` becomes a 400 (for providers)."""
    return _guarded(handler)


def register(router: Router, sandbox: Sandbox) -> None:
    routes = [
        ("GET", "/_sandbox/?", page, "control page"),
        ("GET", f"{API}/state", state, "state"),
        ("POST", f"{API}/clock/advance", advance_clock, "clock advance"),
        ("GET", f"{API}/limits", get_limits, "limits"),
        ("PUT", f"{API}/limits", set_limits, "limits set"),
        ("POST", f"{API}/limits/reset", reset_limits, "limits reset"),
        ("GET", f"{API}/latency", get_latency, "latency"),
        ("PUT", f"{API}/latency", set_latency, "latency set"),
        ("GET", f"{API}/faults", list_faults, "faults"),
        ("POST", f"{API}/faults", add_fault, "fault add"),
        ("DELETE", f"{API}/faults", clear_faults, "faults clear"),
        ("DELETE", f"{API}/faults/(?P<fault_id>\\d+)", delete_fault, "fault delete"),
        ("GET", f"{API}/log", get_log, "log"),
        ("GET", f"{API}/counters", get_counters, "counters"),
        ("DELETE", f"{API}/counters", reset_counters, "counters reset"),
        ("GET", f"{API}/day", day_view, "day view"),
    ]
    for method, pattern, handler, name in routes:
        router.add(method, pattern, _guarded(handler), service=SERVICE, name=f"control {name}")
    sandbox.path_services.append(("/_sandbox", SERVICE))
