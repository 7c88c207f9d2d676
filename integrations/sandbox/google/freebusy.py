"""``freebusy.query``: busy intervals of users' and resource calendars.

Discovery ``FreeBusyRequest``: ``timeMin``/``timeMax`` (RFC 3339), ``timeZone`` (default UTC),
``items`` of ``{id}``, ``calendarExpansionMax`` at most 50. Per calendar the answer is
``{"busy": [{start, end}]}`` or ``{"errors": [{domain, reason}]}`` with ``notFound``; more than
50 calendars answer 400 (``tooManyCalendarsRequested``). Any user of the domain may see
free/busy of the domain's users and resources, as Workspace's default sharing allows.
Cancelled and ``transparent`` events are free time.
"""

from __future__ import annotations

from ..core import Response
from .api import Call, endpoint
from .errors import ApiError
from .schema import parse_datetime
from .store import event_span, rfc3339

MAX_CALENDARS = 50


@endpoint("calendar.freebusy.query")
def query(call: Call) -> Response:
    google = call.google
    body = call.body
    low = parse_datetime(body.get("timeMin") or "")
    high = parse_datetime(body.get("timeMax") or "")
    if low is None or high is None:
        raise ApiError(400, "required" if not body.get("timeMin") else "invalid", "Bad Request")
    if high <= low:
        raise ApiError(400, "timeRangeEmpty", "The specified time range is empty.")
    items = body.get("items") or []
    if len(items) > MAX_CALENDARS or int(body.get("calendarExpansionMax") or 0) > MAX_CALENDARS:
        raise ApiError(
            400,
            "tooManyCalendarsRequested",
            f"The number of calendars requested exceeds the limit of {MAX_CALENDARS}.",
        )
    calendars: dict[str, dict[str, object]] = {}
    with google.lock:
        for item in items:
            calendar_id = str(item.get("id", ""))
            key = call.principal if calendar_id == "primary" else calendar_id.lower()
            calendar = google.calendars.get(key)
            visible = calendar is not None and (
                calendar.kind != "service_account" or calendar.id == call.principal
            )
            if not visible:
                calendars[calendar_id] = {
                    "errors": [{"domain": "global", "reason": "notFound"}],
                    "busy": [],
                }
                continue
            busy = []
            for event in calendar.events.values():
                if event.cancelled or event.data.get("transparency") == "transparent":
                    continue
                start, end = event_span(event, calendar.time_zone)
                if end > low and start < high:
                    busy.append((max(start, low), min(end, high)))
            busy.sort()
            calendars[calendar_id] = {
                "busy": [{"start": rfc3339(s), "end": rfc3339(e)} for s, e in busy]
            }
    return Response.json(
        200,
        {
            "kind": "calendar#freeBusy",
            "timeMin": rfc3339(low),
            "timeMax": rfc3339(high),
            "calendars": calendars,
        },
    )
