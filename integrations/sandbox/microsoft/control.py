"""Microsoft control routes under ``/_sandbox/api/microsoft/`` and the page's calendars.

A person "in Outlook" creates, moves, renames or deletes events here (the same validation as
Graph, and the same change tracking, so the change shows up in delta and notifications),
recurring series included: a body with ``recurrence`` makes a series, an occurrence's id
(listed with its master under ``GET .../events``) edits or deletes that one occurrence;
tests and administrators expire delta tokens and access tokens, revoke refresh tokens, fire
lifecycle notifications and read every event of a mailbox.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from ..control import ControlError, guarded
from ..core import Request, Response, Router
from . import series
from .event_model import InvalidEvent, apply_body, new_event, serialize
from .graph_delta import expire_tokens
from .state import Mailbox, MicrosoftState
from .subscriptions import LIFECYCLE_EVENTS, expire_due, send_lifecycle
from .tokens import expire_access_tokens

if TYPE_CHECKING:
    from ..server import Sandbox

API = "/_sandbox/api/microsoft"


def _state(sandbox: Sandbox) -> MicrosoftState:
    return sandbox.services["microsoft"]  # type: ignore[return-value]


def _mailbox(request: Request, sandbox: Sandbox) -> Mailbox:
    box = _state(sandbox).mailbox(unquote(request.params["mailbox"]))
    if box is None:
        raise ControlError(f"no mailbox {request.params['mailbox']!r}")
    return box


def _body(request: Request) -> dict[str, Any]:
    try:
        data = request.json() or {}
    except ValueError as exc:
        raise ControlError(f"malformed JSON body: {exc}") from exc
    if not isinstance(data, dict):
        raise ControlError("the body must be a JSON object")
    return data


def _full(event: dict[str, Any]) -> dict[str, Any]:
    """An event with every extended property, for inspection."""
    data = serialize(event, expand_ids=[pid for pid, _ in event["_ext"].values()])
    data["_mailboxCopyOf"] = event.get("_source")
    return data


def list_mailboxes(request: Request, sandbox: Sandbox) -> Response:
    value = [
        {
            "id": b.id,
            "address": b.address,
            "displayName": b.display_name,
            "kind": b.kind,
            "tenantId": b.tenant_id,
            "events": len(b.live_events()),
        }
        for b in _state(sandbox).all_mailboxes()
    ]
    return Response.json(200, {"value": value})


def list_events(request: Request, sandbox: Sandbox) -> Response:
    box = _mailbox(request, sandbox)
    with _state(sandbox).lock:
        events = sorted(box.live_events(), key=lambda e: (e["_start"], e["id"]))
        return Response.json(200, {"value": [_full(e) for e in events]})


def create_event(request: Request, sandbox: Sandbox) -> Response:
    """Body: a Graph event (subject, start, end, attendees...), as typed in Outlook."""
    state, box = _state(sandbox), _mailbox(request, sandbox)
    with state.lock:
        event = new_event(box, box.default_calendar.id, box)
        try:
            apply_body(event, _body(request), creating=True)
        except InvalidEvent as exc:
            raise ControlError(f"{exc.code}: {exc.message}") from exc
        series.create(state, box, event)
        return Response.json(201, _full(event))


def _event(request: Request, sandbox: Sandbox, box: Mailbox) -> dict[str, Any]:
    event = box.events.get(unquote(request.params["event_id"]))
    if event is None or event["_deleted"]:
        raise ControlError("no such event in this mailbox")
    return event


def get_event(request: Request, sandbox: Sandbox) -> Response:
    """One event (a master, an occurrence or an exception too) with every property."""
    state, box = _state(sandbox), _mailbox(request, sandbox)
    with state.lock:
        return Response.json(200, _full(_event(request, sandbox, box)))


def update_event(request: Request, sandbox: Sandbox) -> Response:
    """Move (new start/end) or rename (subject) an event; any writable Graph property. On an
    occurrence's id this makes it an exception; on a series master it changes the series."""
    state, box = _state(sandbox), _mailbox(request, sandbox)
    with state.lock:
        event = _event(request, sandbox, box)
        try:
            series.update(state, box, event, _body(request))
        except InvalidEvent as exc:
            raise ControlError(f"{exc.code}: {exc.message}") from exc
        return Response.json(200, _full(event))


def delete_event(request: Request, sandbox: Sandbox) -> Response:
    """Delete an event; an occurrence's id deletes that occurrence, a master the series."""
    state, box = _state(sandbox), _mailbox(request, sandbox)
    with state.lock:
        series.delete(state, box, _event(request, sandbox, box))
    return Response.empty(204)


def expire_delta(request: Request, sandbox: Sandbox) -> Response:
    """Body: {"mailbox": "room@..."} or {} for every mailbox."""
    data = _body(request)
    mailbox_id = None
    if data.get("mailbox"):
        box = _state(sandbox).mailbox(data["mailbox"])
        if box is None:
            raise ControlError(f"no mailbox {data['mailbox']!r}")
        mailbox_id = box.id
    return Response.json(200, {"expired": expire_tokens(_state(sandbox), mailbox_id)})


def expire_access(request: Request, sandbox: Sandbox) -> Response:
    """Body: {}. Every access token issued so far answers 401 "the token is expired" from
    now on, application and delegated alike (refresh tokens stay valid)."""
    return Response.json(200, {"expired": expire_access_tokens(_state(sandbox))})


def revoke_refresh(request: Request, sandbox: Sandbox) -> Response:
    """Body: {"user": "alice@..."} and/or {"client_id": ...}; {} revokes every grant."""
    data, state = _body(request), _state(sandbox)
    user = state.mailbox(data["user"]) if data.get("user") else None
    if data.get("user") and user is None:
        raise ControlError(f"no user {data['user']!r}")
    count = 0
    with state.lock:
        for grant in state.refresh_tokens.values():
            if user is not None and grant.user_id != user.id:
                continue
            if data.get("client_id") and grant.client_id != data["client_id"]:
                continue
            if not grant.revoked:
                grant.revoked = True
                count += 1
    return Response.json(200, {"revoked": count})


def list_subscriptions(request: Request, sandbox: Sandbox) -> Response:
    state = _state(sandbox)
    expire_due(state, sandbox)
    value = [
        {k: v for k, v in s.items() if k not in ("_expires",)} | {"_expires": None}
        for s in state.subscriptions.values()
    ]
    return Response.json(200, {"value": value})


def lifecycle(request: Request, sandbox: Sandbox) -> Response:
    """Body: {"event": "reauthorizationRequired" | "missed" | "subscriptionRemoved"}."""
    state, data = _state(sandbox), _body(request)
    sub = state.subscriptions.get(request.params["sub_id"])
    if sub is None:
        raise ControlError("no such subscription")
    if data.get("event") not in LIFECYCLE_EVENTS:
        raise ControlError(f"event must be one of {', '.join(LIFECYCLE_EVENTS)}")
    if not sub.get("lifecycleNotificationUrl"):
        raise ControlError("this subscription has no lifecycleNotificationUrl")
    send_lifecycle(sandbox, sub, data["event"])
    return Response.json(202, {"sent": data["event"]})


def page_calendars(state: MicrosoftState, day: dt.date) -> list[dict[str, Any]]:
    """Rooms first, then people: each mailbox's events on ``day`` (UTC)."""
    start = dt.datetime.combine(day, dt.time(), dt.UTC)
    end = start + dt.timedelta(days=1)
    result = []
    with state.lock:
        for box in state.all_mailboxes():
            events = sorted(
                (e for e in box.timed_events() if e["_start"] < end and e["_end"] > start),
                key=lambda e: e["_start"],
            )
            result.append(
                {
                    "provider": "microsoft",
                    "mailbox": box.address,
                    "title": f"{box.display_name}{' (room)' if box.kind == 'room' else ''}",
                    "events": [
                        {
                            "id": e["id"],
                            "subject": e["subject"],
                            "start": e["_start"].isoformat(),
                            "end": e["_end"].isoformat(),
                            "status": "cancelled"
                            if e["isCancelled"]
                            else e["responseStatus"]["response"],
                        }
                        for e in events
                    ],
                }
            )
    return result


def register(router: Router, sandbox: Sandbox) -> None:
    mb = f"{API}/mailboxes/(?P<mailbox>[^/]+)"
    routes = [
        ("GET", f"{API}/mailboxes", list_mailboxes, "mailboxes"),
        ("GET", f"{mb}/events", list_events, "mailbox events"),
        ("POST", f"{mb}/events", create_event, "event create"),
        ("GET", f"{mb}/events/(?P<event_id>[^/]+)", get_event, "event get"),
        ("PATCH", f"{mb}/events/(?P<event_id>[^/]+)", update_event, "event update"),
        ("DELETE", f"{mb}/events/(?P<event_id>[^/]+)", delete_event, "event delete"),
        ("POST", f"{API}/delta/expire", expire_delta, "delta expire"),
        ("POST", f"{API}/access-tokens/expire", expire_access, "access expire"),
        ("POST", f"{API}/refresh-tokens/revoke", revoke_refresh, "refresh revoke"),
        ("GET", f"{API}/subscriptions", list_subscriptions, "subscriptions"),
        ("POST", f"{API}/subscriptions/(?P<sub_id>[^/]+)/lifecycle", lifecycle, "lifecycle"),
    ]
    for method, pattern, handler, name in routes:
        router.add(
            method, pattern, guarded(handler), service="control", name=f"control microsoft {name}"
        )
