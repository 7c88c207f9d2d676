"""Control API for the Google half (``/_sandbox/api/google/...``) and its page calendars.

Changes made here are made "as a person would" in Google Calendar: they go through the same
store as the API, so they show up in incremental syncs, push a notification on every watching
channel and are answered by rooms. Routes (JSON in and out):

* ``GET  /_sandbox/api/google``                                   files, URLs, limits
* ``GET  .../calendars``                      calendars with event counts
* ``GET  .../calendars/<id>/events``          every event, deleted included
* ``POST .../calendars/<id>/events``          create (an Event body; ``id`` optional)
* ``PATCH .../calendars/<id>/events/<event>`` rename or move (a patch body)
* ``DELETE .../calendars/<id>/events/<event>`` delete

``<event>`` may be the id of one instance of a recurring series
(``<seriesId>_<YYYYMMDDTHHMMSSZ>``, as ``events.list?singleEvents=true`` and the day view show
it): moving or renaming it makes an exception, deleting it cancels that instance only, as a
person's "this event" edit in Google Calendar does. Deleting the series cancels it whole.
* ``POST .../sync-tokens/expire``             ``{"calendar": id}``, or every calendar
* ``POST .../tokens/revoke``                  ``{"user": email}``, ``{"client_id": id}`` or all
* ``POST .../access-tokens/expire``           every access token issued so far expires now
* ``PUT  .../limits`` ``{"requests_per_minute": n, "rate_limit_status": 429}``
* ``GET  .../channels``                       push channels and their deliveries
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from ..control import API, ControlError, guarded
from ..core import Request, Response, Router
from .errors import ApiError
from .instances import find_event, instance_data
from .oauth import revoke_grant
from .recurrence import occurrences
from .service import GoogleService
from .store import (
    EVENT_ID_RE,
    Calendar,
    StoredEvent,
    check_times,
    event_span,
    merge_patch,
    render,
    writable,
)

if TYPE_CHECKING:
    from ..server import Sandbox

BASE = f"{API}/google"


def _google(sandbox: Sandbox) -> GoogleService:
    return sandbox.services["google"]  # type: ignore[return-value]


def _body(request: Request) -> dict[str, Any]:
    try:
        data = request.json()
    except ValueError as exc:
        raise ControlError(f"malformed JSON body: {exc}") from exc
    if data is not None and not isinstance(data, dict):
        raise ControlError("the body must be a JSON object")
    return data or {}


def _calendar(google: GoogleService, request: Request) -> Calendar:
    calendar = google.calendars.get(unquote(request.params["calendar"]).lower())
    if calendar is None:
        raise ControlError("no such calendar")
    return calendar


def _api_error(exc: ApiError) -> Response:
    return Response.json(exc.status, {"error": {"code": exc.reason, "message": exc.message}})


def overview(request: Request, sandbox: Sandbox) -> Response:
    google = _google(sandbox)
    directory = google.directory
    return Response.json(
        200,
        {
            "base_url": f"{sandbox.base_url}/google",
            "calendar_api": google.api_root,
            "batch_url": f"{sandbox.base_url}/google/batch/calendar/v3",
            "token_uri": f"{sandbox.base_url}/google/oauth2/token",
            "authorize_uri": f"{sandbox.base_url}/google/o/oauth2/v2/auth",
            "domain": directory.domain,
            "service_accounts": [
                {
                    "email": a.email,
                    "key_file": str(a.key_file),
                    "domain_wide_delegation": a.domain_wide_delegation,
                }
                for a in directory.service_accounts.values()
            ],
            "oauth_clients": [
                {"client_id": c.client_id, "secrets_file": str(c.secrets_file)}
                for c in directory.clients.values()
            ],
            "users": sorted(directory.users),
            "resources": [{"email": r.email, "name": r.name} for r in directory.resources.values()],
            "requests_per_minute": google.settings["requests_per_minute"],
            "rate_limit_status": google.settings["rate_limit_status"],
        },
    )


def calendars(request: Request, sandbox: Sandbox) -> Response:
    google = _google(sandbox)
    with google.lock:
        items = [
            {
                "id": c.id,
                "kind": c.kind,
                "summary": c.summary,
                "events": sum(not e.cancelled for e in c.events.values()),
                "writers": sorted(c.writers),
                "readers": sorted(c.readers),
            }
            for c in google.calendars.values()
        ]
    return Response.json(200, {"value": items})


def events(request: Request, sandbox: Sandbox) -> Response:
    google = _google(sandbox)
    with google.lock:
        calendar = _calendar(google, request)
        items = [render(e, calendar.id, minimal_cancelled=False) for e in calendar.events.values()]
    return Response.json(200, {"value": items})


def create_event(request: Request, sandbox: Sandbox) -> Response:
    google = _google(sandbox)
    body = _body(request)
    event_id = body.get("id")
    if event_id is not None and not EVENT_ID_RE.match(str(event_id)):
        raise ControlError("id: base32hex (a-v, 0-9), 5-1024 characters")
    with google.lock:
        calendar = _calendar(google, request)
        if event_id in calendar.events:
            raise ControlError("an event with this id exists in the calendar")
        data = writable(body)
        try:
            check_times(data, calendar.time_zone)
        except ApiError as exc:
            return _api_error(exc)
        event = google.create(calendar, event_id, data, calendar.id)
        return Response.json(201, render(event, calendar.id))


def change_event(request: Request, sandbox: Sandbox) -> Response:
    google = _google(sandbox)
    body = _body(request)
    with google.lock:
        calendar = _calendar(google, request)
        event = find_event(calendar, unquote(request.params["event"]))
        if event is None or event.cancelled:
            raise ControlError("no such event")
        data = merge_patch(dict(event.data, status=event.status), writable(body))
        data = instance_data(event, data)
        try:
            check_times(data, calendar.time_zone)
        except ApiError as exc:
            return _api_error(exc)
        google.replace(calendar, event, data)
        return Response.json(200, render(event, calendar.id))


def delete_event(request: Request, sandbox: Sandbox) -> Response:
    google = _google(sandbox)
    with google.lock:
        calendar = _calendar(google, request)
        event = find_event(calendar, unquote(request.params["event"]))
        if event is None or event.cancelled:
            raise ControlError("no such event")
        google.cancel(calendar, event)
    return Response.empty(204)


def expire_sync_tokens(request: Request, sandbox: Sandbox) -> Response:
    google = _google(sandbox)
    calendar_id = _body(request).get("calendar")
    if calendar_id and calendar_id.lower() not in google.calendars:
        raise ControlError("no such calendar")
    count = google.expire_sync_tokens(calendar_id.lower() if calendar_id else None)
    return Response.json(200, {"calendars": count})


def expire_access_tokens(request: Request, sandbox: Sandbox) -> Response:
    """Every access token issued so far (service accounts' and people's) has expired: the
    API answers 401 until the client gets a new one; refresh grants stay valid."""
    google = _google(sandbox)
    now = google.now()
    with google.lock:
        live = [t for t in google.access_tokens.values() if t.expires_at > now]
        for access in live:
            access.expires_at = now
    return Response.json(200, {"expired": len(live)})


def revoke_tokens(request: Request, sandbox: Sandbox) -> Response:
    """Revoke refresh grants (and their access tokens) as a user or admin would."""
    google = _google(sandbox)
    body = _body(request)
    user, client_id = (body.get("user") or "").lower(), body.get("client_id")
    revoked = 0
    with google.lock:
        for grant in google.refresh_tokens.values():
            if (
                grant.revoked
                or (user and grant.user != user)
                or (client_id and grant.client_id != client_id)
            ):
                continue
            revoke_grant(google, grant, None)
            revoked += 1
        for key, access in list(google.access_tokens.items()):
            if (not user or access.principal == user) and (
                not client_id or access.client_id == client_id
            ):
                del google.access_tokens[key]
    return Response.json(200, {"revoked_grants": revoked})


def set_limits(request: Request, sandbox: Sandbox) -> Response:
    google = _google(sandbox)
    body = _body(request)
    if "rate_limit_status" in body:
        if body["rate_limit_status"] not in (403, 429):
            raise ControlError("rate_limit_status: 403 or 429")
        google.settings["rate_limit_status"] = body["rate_limit_status"]
    if "requests_per_minute" in body:
        value = body["requests_per_minute"]
        if value is not None and (not isinstance(value, int) or value < 1):
            raise ControlError("requests_per_minute: a positive integer or null (no limit)")
        google.settings["requests_per_minute"] = value
        sandbox.limits.set_rule("google", max_requests=value, max_in_flight=None, window_seconds=60)
    return Response.json(
        200,
        {k: google.settings[k] for k in ("requests_per_minute", "rate_limit_status")},
    )


def channels(request: Request, sandbox: Sandbox) -> Response:
    google = _google(sandbox)
    with google.lock:
        items = [
            {
                "id": c.id,
                "resourceId": c.resource_id,
                "calendar": c.calendar_id,
                "address": c.address,
                "expiration": c.expiration.isoformat(),
                "stopped": c.stopped,
                "deliveries": list(c.deliveries),
            }
            for c in google.channels.values()
        ]
    return Response.json(200, {"value": items})


def page_calendars(google: GoogleService, day: dt.date) -> list[dict[str, Any]]:
    """The day view's Google columns: resource calendars first, then users. A series shows
    as its instances (by instance id, which the control routes accept), exceptions in place."""
    start = dt.datetime.combine(day, dt.time(), dt.UTC)
    end = start + dt.timedelta(days=1)
    out = []
    with google.lock:
        ordered = sorted(google.calendars.values(), key=lambda c: (c.kind != "resource", c.id))
        for calendar in ordered:
            shown = []
            for event in _day_events(calendar):
                if event.cancelled:
                    continue
                first, last = event_span(event, calendar.time_zone)
                if last > start and first < end:
                    shown.append(
                        {
                            "id": event.id,
                            "subject": event.data.get("summary", "(No title)"),
                            "start": first.isoformat(),
                            "end": last.isoformat(),
                            "status": event.status,
                        }
                    )
            out.append(
                {
                    "provider": "Google",
                    "calendar": calendar.id,
                    "title": calendar.summary,
                    "events": shown,
                }
            )
    return out


def _day_events(calendar: Calendar) -> list[StoredEvent]:
    out: list[StoredEvent] = []
    for event in calendar.events.values():
        master = calendar.events.get(event.recurring_event_id or "")
        if master is not None and master.is_series:
            continue  # shown in place of its instance, with its series
        instances = occurrences(event, calendar.time_zone) if event.is_series else []
        if not instances:
            out.append(event)
            continue
        for instance in instances:
            out.append(calendar.events.get(instance.id, instance))
    return out


def register(router: Router, sandbox: Sandbox) -> None:
    cal = f"{BASE}/calendars/(?P<calendar>[^/]+)"
    routes = [
        ("GET", BASE, overview, "overview"),
        ("GET", f"{BASE}/calendars", calendars, "calendars"),
        ("GET", f"{cal}/events", events, "events"),
        ("POST", f"{cal}/events", create_event, "event create"),
        ("PATCH", f"{cal}/events/(?P<event>[^/]+)", change_event, "event change"),
        ("DELETE", f"{cal}/events/(?P<event>[^/]+)", delete_event, "event delete"),
        ("POST", f"{BASE}/sync-tokens/expire", expire_sync_tokens, "expire sync tokens"),
        ("POST", f"{BASE}/tokens/revoke", revoke_tokens, "revoke tokens"),
        ("POST", f"{BASE}/access-tokens/expire", expire_access_tokens, "expire access tokens"),
        ("PUT", f"{BASE}/limits", set_limits, "limits"),
        ("GET", f"{BASE}/channels", channels, "channels"),
    ]
    for method, pattern, handler, name in routes:
        router.add(
            method, pattern, guarded(handler), service="control", name=f"control google {name}"
        )
