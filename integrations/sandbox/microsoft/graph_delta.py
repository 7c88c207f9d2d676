"""``calendarView/delta``: incremental sync of a mailbox's calendar view.

A round starts with ``startDateTime``/``endDateTime`` (both required) and pages with
``@odata.nextLink`` (``$skiptoken``) until an ``@odata.deltaLink`` (``$deltatoken``); the
window lives in the token. ``Prefer: odata.maxpagesize`` sets the page size. The next round
returns what changed since: events created or updated in the window, and ``@removed``
entries for events deleted or moved out of it (Graph warns these may lie outside the window).
A recurring series appears as its occurrences and exceptions, each with its own id, never as
its master: a new series yields every occurrence, a changed master every instance it changed,
a deleted occurrence one ``@removed``, a deleted master one per instance.
``$select``, ``$expand``, ``$filter``, ``$orderby`` and ``$search`` are refused, as documented.
A token expired through the control API answers 410 ``SyncStateNotFound``.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any

from ..core import Request, Response, Router
from . import timezones as tz
from .errors import GRAPH, graph_error
from .event_model import serialize
from .graph_common import GRAPH_ROOT, U, bad_request, not_found, open_mailbox, page_size
from .graph_events import CAL, calendar_of, output_zone

if TYPE_CHECKING:
    from ..server import Sandbox
    from .state import MicrosoftState

REFUSED = ("$select", "$expand", "$filter", "$orderby", "$search")


def _sync_state_gone(request: Request, state: MicrosoftState) -> Response:
    return graph_error(
        410,
        "SyncStateNotFound",
        f"The sync state generation is not found; generation=0;[highest={state.sequence}].",
        request,
    )


def _entries(round_: dict[str, Any], box_events: dict[str, dict[str, Any]]) -> list[str]:
    """Ids to report in this round, fixed when the round starts."""
    since, upto = round_["since"], round_["upto"]
    start, end, calendar = round_["start"], round_["end"], round_["calendar"]
    ids = []
    for event in sorted(box_events.values(), key=lambda e: (e["_start"], e["id"])):
        if event["_calendar"] != calendar or event["_seq"] > upto:
            continue
        if event.get("_type") == "seriesMaster":
            continue  # a view lists a series' occurrences and exceptions, never its master
        in_window = not event["_deleted"] and event["_start"] < end and event["_end"] > start
        if since is None:
            if in_window:
                ids.append(event["id"])
        elif event["_seq"] > since:
            ids.append(event["id"])
    return ids


def delta(request: Request, sandbox: Sandbox) -> Response:
    ctx = open_mailbox(request, sandbox, write=False)
    if isinstance(ctx, Response):
        return ctx
    refused = [name for name in REFUSED if name in request.query]
    if refused:
        return bad_request(
            request,
            "ErrorInvalidUrlQuery",
            "The following parameters are not supported with "
            f"change tracking over the 'CalendarView' resource: '{', '.join(refused)}'.",
        )
    state, box = ctx.state, ctx.mailbox
    skip, delta_token = request.arg("$skiptoken"), request.arg("$deltatoken")
    with state.lock:
        if skip or delta_token:
            token = state.delta_tokens.get(skip or delta_token or "")
            if token is None or token["expired"] or token["mailbox"] != box.id:
                return _sync_state_gone(request, state)
            if skip:
                round_ = token
            else:
                round_ = {**token, "since": token["upto"], "upto": state.sequence, "offset": 0}
                round_["ids"] = _entries(round_, box.events)
        else:
            cal = calendar_of(request, ctx)
            if cal is None:
                return not_found(request)
            start_raw, end_raw = request.arg("startDateTime"), request.arg("endDateTime")
            if not start_raw or not end_raw:
                return bad_request(
                    request,
                    "ErrorInvalidParameter",
                    "This request requires a "
                    "time window specified by the query string parameters "
                    "StartDateTime and EndDateTime.",
                )
            try:
                start, end = tz.parse_query_instant(start_raw), tz.parse_query_instant(end_raw)
            except ValueError:
                return bad_request(
                    request,
                    "ErrorInvalidParameter",
                    "The value of startDateTime or endDateTime is not valid.",
                )
            round_ = {
                "mailbox": box.id,
                "calendar": cal.id,
                "start": start,
                "end": end,
                "since": None,
                "upto": state.sequence,
                "offset": 0,
                "expired": False,
                "issued": sandbox.clock.timestamp(),
            }
            round_["ids"] = _entries(round_, box.events)
        default = int(sandbox.config["microsoft"].get("delta_page_size", 10))
        size, applied = page_size(request, default)
        offset = round_["offset"]
        chunk = round_["ids"][offset : offset + size]
        zone = output_zone(request)
        value = []
        for event_id in chunk:
            event = box.events[event_id]
            in_window = (
                not event["_deleted"]
                and event["_start"] < round_["end"]
                and event["_end"] > round_["start"]
            )
            if in_window:
                value.append(serialize(event, zone))
            else:
                value.append(
                    {
                        "@odata.type": "#microsoft.graph.event",
                        "id": event_id,
                        "@removed": {"reason": "deleted"},
                    }
                )
        new_token = secrets.token_urlsafe(48)
        payload: dict[str, Any] = {"@odata.context": f"{GRAPH_ROOT}/$metadata#Collection(event)"}
        if offset + size < len(round_["ids"]):
            state.delta_tokens[new_token] = {**round_, "offset": offset + size}
            payload["@odata.nextLink"] = f"{ctx.base_url}{request.path}?$skiptoken={new_token}"
        else:
            state.delta_tokens[new_token] = {**round_, "ids": [], "offset": 0}
            payload["@odata.deltaLink"] = f"{ctx.base_url}{request.path}?$deltatoken={new_token}"
    payload["value"] = value
    headers = {}
    if applied:
        headers["Preference-Applied"] = f"odata.maxpagesize={size}"
    return Response.json(200, payload, headers)


def expire_tokens(state: MicrosoftState, mailbox_id: str | None = None) -> int:
    """Expire every delta/skip token (of one mailbox); returns how many."""
    count = 0
    with state.lock:
        for token in state.delta_tokens.values():
            if not token["expired"] and (mailbox_id is None or token["mailbox"] == mailbox_id):
                token["expired"] = True
                count += 1
    return count


def register(router: Router, sandbox: Sandbox) -> None:
    pattern = f"{U}{CAL}/calendar[Vv]iew/(?:delta|microsoft\\.graph\\.delta\\(\\))"
    router.add("GET", pattern, delta, service=GRAPH, name="graph calendarView delta")
