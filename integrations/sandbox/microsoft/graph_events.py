"""Graph v1.0 calendars and events: list, get, create, update, delete, calendarView.

Paths under ``/v1.0/users/{id|upn}`` or ``/v1.0/me``, for the default calendar
(``/events``, ``/calendar/events``) or a named one (``/calendars/{id}/events``).
``transactionId`` de-duplicates creates per mailbox; ``If-Match`` guards updates and deletes
(412 ``ErrorIrresolvableConflict``); ``$expand=singleValueExtendedProperties($filter=id eq
'...')`` and ``$filter=singleValueExtendedProperties/any(ep: ep/id eq '...' and ep/value eq
'...')`` work as documented; lists page at 10 with ``@odata.nextLink`` (``$skip``).

Recurring series (:mod:`.series`): ``events`` lists single events and series masters,
``calendarView`` and ``events/{id}/instances`` their occurrences and exceptions; GET, PATCH
and DELETE on an occurrence's id read, change (making it an exception) or delete that one.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlencode

from ..core import Request, Response, Router
from . import series
from . import timezones as tz
from .errors import GRAPH, graph_error
from .event_model import InvalidEvent, apply_body, ext_value, new_event, serialize
from .graph_common import (
    GRAPH_ROOT,
    Context,
    U,
    bad_request,
    mailbox_path,
    not_found,
    open_mailbox,
)
from .state import Calendar

if TYPE_CHECKING:
    from ..server import Sandbox

CAL = r"(?:/calendar|/calendars/(?P<cal>[^/]+))?"
EVENT_ID = r"(?P<event_id>[^/]+)"
DEFAULT_PAGE = 10
_EXPAND = re.compile(r"^singleValueExtendedProperties(?:\((?P<inner>.*)\))?$", re.I)
_ID_EQ = re.compile(r"id\s+eq\s+'((?:[^']|'')*)'", re.I)
_ANY = re.compile(
    r"^singleValueExtendedProperties/any\(\s*(?P<v>\w+)\s*:\s*(?P=v)/id\s+eq\s+'(?P<id>(?:[^']|'')*)'"
    r"\s+and\s+(?P=v)/value\s+eq\s+'(?P<value>(?:[^']|'')*)'\s*\)$",
    re.I,
)
_ICAL = re.compile(r"^iCalUId\s+eq\s+'(?P<uid>[^']*)'$", re.I)


def calendar_of(request: Request, ctx: Context) -> Calendar | None:
    cal_id = request.params.get("cal")
    if cal_id:
        return ctx.mailbox.calendars.get(unquote(cal_id))
    return ctx.mailbox.default_calendar


def output_zone(request: Request) -> str:
    name = tz.preferred_zone(request.headers.get("prefer"))
    try:
        tz.zone(name)
    except tz.UnknownTimeZone:
        return "UTC"
    return name


def _json(status: int, payload: Any, request: Request, extra: dict[str, str] | None = None):
    headers = dict(extra or {})
    zone = output_zone(request)
    if "outlook.timezone" in request.headers.get("prefer", ""):
        headers["Preference-Applied"] = f'outlook.timezone="{zone}"'
    return Response.json(status, payload, headers)


def expand_ids(request: Request) -> list[str] | Response | None:
    """The extended property ids named by ``$expand`` (None when not expanded)."""
    raw = request.arg("$expand")
    if not raw:
        return None
    found = _EXPAND.match(raw.strip())
    if not found:
        return bad_request(
            request,
            "BadRequest",
            f"Parsing OData Select and Expand failed: "
            f"Could not find a property named '{raw}' on type "
            "'microsoft.graph.event'.",
        )
    ids = _ID_EQ.findall(found.group("inner") or "")
    if not ids:
        return bad_request(
            request,
            "ErrorInvalidRequest",
            "An extended property must be expanded with $filter=id eq '<property id>'.",
        )
    return [i.replace("''", "'") for i in ids]


def select_set(request: Request) -> set[str] | None:
    raw = request.arg("$select")
    return {s.strip() for s in raw.split(",") if s.strip()} if raw else None


def _filtered(request: Request, events: list[dict[str, Any]]) -> list[dict[str, Any]] | Response:
    raw = (request.arg("$filter") or "").strip()
    if not raw:
        return events
    any_match = _ANY.match(raw)
    if any_match:
        prop_id = any_match.group("id").replace("''", "'")
        value = any_match.group("value").replace("''", "'")
        return [e for e in events if ext_value(e, prop_id) == value]
    ical = _ICAL.match(raw)
    if ical:
        return [e for e in events if e["iCalUId"] == ical.group("uid")]
    return graph_error(
        501,
        "NotImplemented",
        "The sandbox emulates only these $filter forms "
        "on events: singleValueExtendedProperties/any(ep: ep/id eq '...' and "
        "ep/value eq '...') and iCalUId eq '...'.",
        request,
    )


def _page(request: Request, items: list[dict[str, Any]], context: str, ctx: Context) -> Response:
    try:
        top = int(request.arg("$top", str(DEFAULT_PAGE)) or DEFAULT_PAGE)
        skip = int(request.arg("$skip", "0") or 0)
    except ValueError:
        return bad_request(request, "BadRequest", "Invalid $top or $skip value.")
    if not 1 <= top <= 1000 or skip < 0:
        return bad_request(
            request, "ErrorInvalidParameter", "The value of $top must be between 1 and 1000."
        )
    ids = expand_ids(request)
    if isinstance(ids, Response):
        return ids
    zone, select = output_zone(request), select_set(request)
    chunk = items[skip : skip + top]
    payload: dict[str, Any] = {"@odata.context": f"{GRAPH_ROOT}/$metadata#{context}"}
    payload["value"] = [serialize(e, zone, expand_ids=ids, select=select) for e in chunk]
    if skip + top < len(items):
        query = {k: v[0] for k, v in request.query.items()} | {"$skip": str(skip + top)}
        payload["@odata.nextLink"] = f"{ctx.base_url}{request.path}?{urlencode(query)}"
    return _json(200, payload, request)


def list_calendars(request: Request, sandbox: Sandbox) -> Response:
    ctx = open_mailbox(request, sandbox, write=False)
    if isinstance(ctx, Response):
        return ctx
    owner = {"name": ctx.mailbox.display_name, "address": ctx.mailbox.address}
    value = [_calendar_json(c, owner) for c in ctx.mailbox.calendars.values()]
    context = f"{mailbox_path(ctx.mailbox)}/calendars"
    return Response.json(
        200, {"@odata.context": f"{GRAPH_ROOT}/$metadata#{context}", "value": value}
    )


def get_calendar(request: Request, sandbox: Sandbox) -> Response:
    ctx = open_mailbox(request, sandbox, write=False)
    if isinstance(ctx, Response):
        return ctx
    cal = calendar_of(request, ctx)
    if cal is None:
        return not_found(request)
    owner = {"name": ctx.mailbox.display_name, "address": ctx.mailbox.address}
    context = f"{mailbox_path(ctx.mailbox)}/calendars/$entity"
    return Response.json(
        200, {"@odata.context": f"{GRAPH_ROOT}/$metadata#{context}"} | _calendar_json(cal, owner)
    )


def _calendar_json(cal: Calendar, owner: dict[str, str]) -> dict[str, Any]:
    return {
        "id": cal.id,
        "name": cal.name,
        "color": cal.color,
        "hexColor": "",
        "isDefaultCalendar": cal.is_default,
        "changeKey": cal.id[-16:],
        "canShare": True,
        "canViewPrivateItems": True,
        "canEdit": True,
        "allowedOnlineMeetingProviders": ["teamsForBusiness"],
        "defaultOnlineMeetingProvider": "teamsForBusiness",
        "isTallyingResponses": True,
        "isRemovable": not cal.is_default,
        "owner": owner,
    }


def list_events(request: Request, sandbox: Sandbox) -> Response:
    ctx = open_mailbox(request, sandbox, write=False)
    if isinstance(ctx, Response):
        return ctx
    cal = calendar_of(request, ctx)
    if cal is None:
        return not_found(request)
    # Single instances and series masters: occurrences and exceptions only in views.
    listed = [e for e in ctx.mailbox.live_events(cal.id) if not series.is_instance(e)]
    events = _filtered(request, listed)
    if isinstance(events, Response):
        return events
    events.sort(key=lambda e: e["createdDateTime"], reverse=True)
    return _page(request, events, f"{mailbox_path(ctx.mailbox)}/events", ctx)


def _window(request: Request) -> tuple[dt.datetime, dt.datetime] | Response:
    """The required ``startDateTime``/``endDateTime`` of a view (no offset means UTC)."""
    start_raw, end_raw = request.arg("startDateTime"), request.arg("endDateTime")
    if not start_raw or not end_raw:
        return bad_request(
            request,
            "ErrorInvalidParameter",
            "This request requires a time "
            "window specified by the query string parameters StartDateTime and "
            "EndDateTime.",
        )
    try:
        return tz.parse_query_instant(start_raw), tz.parse_query_instant(end_raw)
    except ValueError:
        return bad_request(
            request,
            "ErrorInvalidParameter",
            "The value of startDateTime or endDateTime is not a valid date and time.",
        )


def calendar_view(request: Request, sandbox: Sandbox) -> Response:
    ctx = open_mailbox(request, sandbox, write=False)
    if isinstance(ctx, Response):
        return ctx
    cal = calendar_of(request, ctx)
    if cal is None:
        return not_found(request)
    window = _window(request)
    if isinstance(window, Response):
        return window
    start, end = window
    events = [
        e for e in ctx.mailbox.timed_events(cal.id) if e["_start"] < end and e["_end"] > start
    ]
    filtered = _filtered(request, events)
    if isinstance(filtered, Response):
        return filtered
    filtered.sort(key=lambda e: (e["_start"], e["id"]))
    return _page(request, filtered, f"{mailbox_path(ctx.mailbox)}/calendarView", ctx)


def list_instances(request: Request, sandbox: Sandbox) -> Response:
    """``GET .../events/{id}/instances``: a master's occurrences and exceptions in a window."""
    ctx = open_mailbox(request, sandbox, write=False)
    if isinstance(ctx, Response):
        return ctx
    event = _find(request, ctx)
    if event is None:
        return not_found(request)
    window = _window(request)
    if isinstance(window, Response):
        return window
    found = series.list_instances(ctx.mailbox, event, *window)
    context = f"{mailbox_path(ctx.mailbox)}/events('{event['id']}')/instances"
    return _page(request, found, context, ctx)


def _find(request: Request, ctx: Context) -> dict[str, Any] | None:
    cal = calendar_of(request, ctx)
    event = ctx.mailbox.events.get(unquote(request.params["event_id"]))
    if event is None or event["_deleted"] or cal is None or event["_calendar"] != cal.id:
        return None
    return event


def get_event(request: Request, sandbox: Sandbox) -> Response:
    ctx = open_mailbox(request, sandbox, write=False)
    if isinstance(ctx, Response):
        return ctx
    event = _find(request, ctx)
    if event is None:
        return not_found(request)
    ids = expand_ids(request)
    if isinstance(ids, Response):
        return ids
    payload = {
        "@odata.context": f"{GRAPH_ROOT}/$metadata#{mailbox_path(ctx.mailbox)}/events/$entity"
    }
    payload |= serialize(event, output_zone(request), expand_ids=ids, select=select_set(request))
    return _json(200, payload, request, {"ETag": f'W/"{event["changeKey"]}"'})


def _body(request: Request) -> Any:
    try:
        return request.json()
    except (ValueError, UnicodeDecodeError):
        return InvalidEvent("RequestBodyRead", "Invalid JSON in the request body.")


def create_event(request: Request, sandbox: Sandbox) -> Response:
    ctx = open_mailbox(request, sandbox, write=True)
    if isinstance(ctx, Response):
        return ctx
    cal = calendar_of(request, ctx)
    if cal is None:
        return not_found(request)
    body = _body(request)
    if isinstance(body, InvalidEvent):
        return bad_request(request, body.code, body.message)
    box = ctx.mailbox
    with ctx.state.lock:
        tx = body.get("transactionId") if isinstance(body, dict) else None
        if tx and tx in box.transactions:
            existing = box.events.get(box.transactions[tx])
            if existing is not None and not existing["_deleted"]:
                # A retried create: answer with the event the first attempt made.
                return _created(request, ctx, existing)
        event = new_event(box, cal.id, box)
        try:
            apply_body(event, body, creating=True)
        except InvalidEvent as exc:
            return bad_request(request, exc.code, exc.message, exc.status)
        if tx:
            box.transactions[tx] = event["id"]
        series.create(ctx.state, box, event)
        # Answered under the lock: a room's answer (rooms.py) runs on the background thread
        # as soon as the change is announced, and Graph's answer to the write never shows it.
        return _created(request, ctx, event)


def _created(request: Request, ctx: Context, event: dict[str, Any]) -> Response:
    payload = {
        "@odata.context": f"{GRAPH_ROOT}/$metadata#{mailbox_path(ctx.mailbox)}/events/$entity"
    } | serialize(event, output_zone(request))
    location = f"{GRAPH_ROOT}/{mailbox_path(ctx.mailbox)}/events('{event['id']}')"
    return _json(201, payload, request, {"Location": location})


def _if_match_fails(request: Request, event: dict[str, Any]) -> bool:
    wanted = request.headers.get("if-match")
    if not wanted or wanted.strip() == "*":
        return False
    tags = {t.strip().removeprefix("W/").strip('"') for t in wanted.split(",")}
    return event["changeKey"] not in tags


def _conflict(request: Request) -> Response:
    return graph_error(
        412,
        "ErrorIrresolvableConflict",
        "The send or update operation could "
        "not be performed because the change key passed in the request does not "
        "match the current change key for the item.",
        request,
    )


def update_event(request: Request, sandbox: Sandbox) -> Response:
    ctx = open_mailbox(request, sandbox, write=True)
    if isinstance(ctx, Response):
        return ctx
    body = _body(request)
    if isinstance(body, InvalidEvent):
        return bad_request(request, body.code, body.message)
    with ctx.state.lock:
        event = _find(request, ctx)
        if event is None:
            return not_found(request)
        if _if_match_fails(request, event):
            return _conflict(request)
        try:
            series.update(ctx.state, ctx.mailbox, event, body)
        except InvalidEvent as exc:
            return bad_request(request, exc.code, exc.message, exc.status)
        payload = {
            "@odata.context": f"{GRAPH_ROOT}/$metadata#{mailbox_path(ctx.mailbox)}/events/$entity"
        } | serialize(event, output_zone(request))  # under the lock, as in create_event
    return _json(200, payload, request)


def delete_event(request: Request, sandbox: Sandbox) -> Response:
    ctx = open_mailbox(request, sandbox, write=True)
    if isinstance(ctx, Response):
        return ctx
    with ctx.state.lock:
        event = _find(request, ctx)
        if event is None:
            return not_found(request)
        if _if_match_fails(request, event):
            return _conflict(request)
        series.delete(ctx.state, ctx.mailbox, event)
    return Response.empty(204)


def register(router: Router, sandbox: Sandbox) -> None:
    routes = [
        ("GET", f"{U}/calendars", list_calendars, "calendars"),
        ("GET", f"{U}(?:/calendar|/calendars/(?P<cal>[^/]+))", get_calendar, "calendar"),
        ("GET", f"{U}{CAL}/events", list_events, "events list"),
        ("POST", f"{U}{CAL}/events", create_event, "event create"),
        ("GET", f"{U}{CAL}/events/{EVENT_ID}", get_event, "event get"),
        ("GET", f"{U}{CAL}/events/{EVENT_ID}/instances", list_instances, "event instances"),
        ("PATCH", f"{U}{CAL}/events/{EVENT_ID}", update_event, "event update"),
        ("DELETE", f"{U}{CAL}/events/{EVENT_ID}", delete_event, "event delete"),
        ("GET", f"{U}{CAL}/calendar[Vv]iew", calendar_view, "calendarView"),
    ]
    for method, pattern, handler, name in routes:
        router.add(method, pattern, handler, service=GRAPH, name=f"graph {name}")
