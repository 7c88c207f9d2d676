"""``POST /v1.0/users/{id}/calendar/getSchedule``: free/busy of mailboxes over a window.

Returns ``scheduleInformation`` per requested address with the ``availabilityView`` string
(0 free, 1 tentative, 2 busy, 3 oof, 4 working elsewhere; one digit per interval),
``scheduleItems`` and ``workingHours``. The interval defaults to 30 minutes (5 to 1440).
An unknown address gets an ``error`` entry, as Graph reports it per schedule.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from ..core import Request, Response, Router
from . import timezones as tz
from .errors import GRAPH
from .event_model import InvalidEvent, parse_time
from .graph_common import GRAPH_ROOT, U, bad_request, open_mailbox

if TYPE_CHECKING:
    from ..server import Sandbox

CODES = {"free": "0", "tentative": "1", "busy": "2", "oof": "3", "workingElsewhere": "4"}


def get_schedule(request: Request, sandbox: Sandbox) -> Response:
    ctx = open_mailbox(request, sandbox, write=False)
    if isinstance(ctx, Response):
        return ctx
    try:
        body = request.json()
        schedules = body["schedules"]
        start, _ = parse_time(body["startTime"], "startTime")
        end, zone_name = parse_time(body["endTime"], "endTime")
        interval = int(body.get("availabilityViewInterval", 30))
    except InvalidEvent as exc:
        return bad_request(request, exc.code, exc.message)
    except (ValueError, KeyError, TypeError):
        return bad_request(
            request, "ErrorInvalidRequest", "schedules, startTime and endTime are required."
        )
    if not 5 <= interval <= 1440:
        return bad_request(
            request, "ErrorInvalidParameter", "availabilityViewInterval must be between 5 and 1440."
        )
    if not isinstance(schedules, list) or not schedules or end <= start:
        return bad_request(
            request,
            "ErrorInvalidRequest",
            "Give at least one schedule and a startTime before endTime.",
        )
    value = [
        _one(ctx.state, str(address), start, end, interval, zone_name) for address in schedules
    ]
    context = f"{GRAPH_ROOT}/$metadata#Collection(microsoft.graph.scheduleInformation)"
    return Response.json(200, {"@odata.context": context, "value": value})


def _one(
    state: Any, address: str, start: dt.datetime, end: dt.datetime, interval: int, zone_name: str
) -> dict[str, Any]:
    box = state.mailbox(address)
    if box is None:
        return {
            "scheduleId": address,
            "availabilityView": "",
            "scheduleItems": [],
            "error": {
                "message": "The specified user or room was not found.",
                "responseCode": "ErrorMailRecipientNotFound",
            },
        }
    busy = [
        e
        for e in box.timed_events()
        if e["_start"] < end
        and e["_end"] > start
        and e["showAs"] != "free"
        and not e["isCancelled"]
    ]
    view = []
    slot = start
    step = dt.timedelta(minutes=interval)
    while slot < end:
        level = "0"
        for event in busy:
            if event["_start"] < slot + step and event["_end"] > slot:
                level = max(level, CODES.get(event["showAs"], "2"))
        view.append(level)
        slot += step
    items = [
        {
            "isPrivate": e["sensitivity"] == "private",
            "status": e["showAs"],
            "subject": e["subject"],
            "location": e["location"].get("displayName", ""),
            "isMeeting": bool(e["attendees"]),
            "isRecurring": e.get("_type") in ("occurrence", "exception"),
            "isException": e.get("_type") == "exception",
            "isReminderSet": e["isReminderOn"],
            "start": tz.format_graph(e["_start"], zone_name),
            "end": tz.format_graph(e["_end"], zone_name),
        }
        for e in sorted(busy, key=lambda e: e["_start"])
    ]
    return {
        "scheduleId": box.address,
        "availabilityView": "".join(view),
        "scheduleItems": items,
        "workingHours": {
            "daysOfWeek": ["monday", "tuesday", "wednesday", "thursday", "friday"],
            "startTime": "08:00:00.0000000",
            "endTime": "17:00:00.0000000",
            "timeZone": {"name": "UTC"},
        },
    }


def register(router: Router, sandbox: Sandbox) -> None:
    router.add(
        "POST", f"{U}/calendar/getSchedule", get_schedule, service=GRAPH, name="graph getSchedule"
    )
