"""``events.list``: paging, filters and incremental sync, as the sync guide describes it.

* Full listing: ``timeMin`` (exclusive bound on the end), ``timeMax`` (exclusive bound on the
  start), ``privateExtendedProperty``/``sharedExtendedProperty`` (``name=value``, repeatable,
  ANDed), ``iCalUID``, ``q``, ``updatedMin``, ``showDeleted``, ``orderBy``.
* Paging: ``maxResults`` (default 250, never more than 2500 a page); ``nextPageToken`` on every
  page but the last, which carries ``nextSyncToken`` instead (discovery ``Events``).
* Incremental: ``syncToken`` returns every change after the token, deleted events included
  (``status: cancelled``); the filters listed in ``INCOMPATIBLE`` are refused with 400, as is
  ``showDeleted=false``; a token expired on demand answers 410 ``fullSyncRequired``.

Recurring series (discovery ``singleEvents``/``showDeleted``, recurring-events guide):

* ``singleEvents=true``: a series is listed as its instances, never as itself; an exception
  (an edited instance) is listed in place of its instance, a cancelled one only with
  ``showDeleted`` or in an incremental sync. A deleted series is listed as its instances,
  cancelled, in an incremental sync (and with ``showDeleted``); that is what clients see when
  a series is deleted in Google Calendar (googleapis/google-api-ruby-client#860).
* ``singleEvents=false``: the series is one event and its exceptions are events of their own;
  cancelled exceptions of a live series are listed even without ``showDeleted`` ("Cancelled
  instances of recurring events ... will still be included if showDeleted and singleEvents are
  both False").
* Incremental syncs report what changed: an edited or deleted instance is reported alone, an
  edited series as all its instances (``singleEvents=true``) or as itself.

Pages are cut from a snapshot (the change sequence at the first page): an event changed while
a client pages is left to the next sync, so nothing is lost and nothing is reported twice on
one pass.
"""

from __future__ import annotations

import secrets
from typing import Any

from ..core import Response
from .api import Call, endpoint
from .errors import ApiError
from .recurrence import expand, series_span
from .schema import parse_datetime
from .service import GoogleService, SyncState
from .store import Calendar, StoredEvent, event_span, new_etag, render, rfc3339

DEFAULT_PAGE = 250
MAX_PAGE = 2500
# Discovery events.list.syncToken: "There are several query parameters that cannot be
# specified together with nextSyncToken to ensure consistency of the client state."
INCOMPATIBLE = (
    "iCalUID", "orderBy", "privateExtendedProperty", "q", "sharedExtendedProperty",
    "timeMin", "timeMax", "updatedMin",
)  # fmt: skip


def _property_filters(values: list[str], name: str) -> list[tuple[str, str]]:
    pairs = []
    for value in values:
        key, sep, wanted = value.partition("=")
        if not sep or not key:
            raise ApiError(400, "invalid", f"Invalid {name} value: '{value}'.")
        pairs.append((key, wanted))
    return pairs


def _matches(event: StoredEvent, params: dict[str, Any], calendar: Calendar) -> bool:
    if event.cancelled and not params.get("showDeleted"):
        master = calendar.events.get(event.recurring_event_id or "")
        if params.get("singleEvents") or master is None or master.cancelled:
            return False
    props = event.data.get("extendedProperties") or {}
    for kind, name in (
        ("private", "privateExtendedProperty"),
        ("shared", "sharedExtendedProperty"),
    ):
        for key, wanted in _property_filters(params.get(name, []), name):
            if (props.get(kind) or {}).get(key) != wanted:
                return False
    if params.get("iCalUID") and params["iCalUID"] != event.ical_uid:
        return False
    if params.get("updatedMin") and event.updated < parse_datetime(params["updatedMin"]):
        return False
    if params.get("q"):
        text = " ".join(str(event.data.get(k, "")) for k in ("summary", "description", "location"))
        if params["q"].lower() not in text.lower():
            return False
    if "timeMin" in params or "timeMax" in params:
        if event.cancelled:
            return True  # Deleted events only keep their id; showDeleted lists them all.
        start, end = series_span(event, calendar.time_zone)
        if "timeMin" in params and end <= parse_datetime(params["timeMin"]):
            return False
        if "timeMax" in params and start >= parse_datetime(params["timeMax"]):
            return False
    return True


def _token(store: dict[str, SyncState], state: SyncState, prefix: str) -> str:
    value = prefix + secrets.token_urlsafe(24)
    store[value] = state
    return value


def list_events(call: Call) -> Response:
    google: GoogleService = call.google
    params = call.params
    calendar = google.calendar(call.principal, call.path("calendarId"))
    page_size = min(params.get("maxResults", DEFAULT_PAGE), MAX_PAGE)
    single = bool(params.get("singleEvents"))
    low, high = parse_datetime(params.get("timeMin", "")), parse_datetime(params.get("timeMax", ""))
    if low and high and low >= high:
        raise ApiError(400, "timeRangeEmpty", "The specified time range is empty.")
    if params.get("orderBy") == "startTime" and not single:
        raise ApiError(
            400, "badRequest", "The requested ordering is not available for the particular query."
        )
    signature = (calendar.id, single)
    with google.lock:
        since: int | None = None
        offset = 0
        snapshot = google.seq
        if params.get("syncToken"):
            given = [name for name in INCOMPATIBLE if name in params]
            if given:
                raise ApiError(
                    400,
                    "invalid",
                    f"The parameter {given[0]} cannot be used together with syncToken.",
                )
            if params.get("showDeleted") is False:
                raise ApiError(
                    400, "invalid", "showDeleted cannot be false together with syncToken."
                )
            state = google.sync_tokens.get(params["syncToken"])
            if state is None or state.calendar_id != calendar.id:
                raise ApiError(400, "invalid", "Invalid sync token value.")
            if state.epoch != calendar.epoch:
                raise ApiError(
                    410,
                    "fullSyncRequired",
                    "Sync token is no longer valid, a full sync is required.",
                )
            since = state.seq
        if params.get("pageToken"):
            state = google.page_tokens.get(params["pageToken"])
            if state is None or state.calendar_id != calendar.id or state.signature != signature:
                raise ApiError(400, "invalid", "Invalid page token value.")
            if state.since is not None and state.epoch != calendar.epoch:
                raise ApiError(
                    410,
                    "fullSyncRequired",
                    "Sync token is no longer valid, a full sync is required.",
                )
            since, offset, snapshot = state.since, state.offset, state.seq
        events = [e for e in calendar.events.values() if e.change_seq <= snapshot]
        if since is not None:
            chosen = [e for e in events if e.change_seq > since]
        else:
            chosen = [e for e in events if _matches(e, params, calendar)]
        chosen.sort(key=lambda e: e.updated if params.get("orderBy") == "updated" else e.ordinal)
        items = _items(chosen, events, call.principal, single, params, calendar)
        page = items[offset : offset + page_size]
        body: dict[str, Any] = {
            "kind": "calendar#events",
            "etag": new_etag(google.now()),
            "summary": calendar.summary,
            "description": calendar.description,
            "updated": rfc3339(
                max((e.updated for e in calendar.events.values()), default=google.now())
            ),
            "timeZone": calendar.time_zone,
            "accessRole": calendar.role_of(call.principal),
            "defaultReminders": [],
        }
        if offset + page_size < len(items):
            state = SyncState(
                calendar.id, snapshot, calendar.epoch, signature, since, offset + page_size
            )
            body["nextPageToken"] = _token(google.page_tokens, state, "CiAKGj")
        else:
            state = SyncState(calendar.id, snapshot, calendar.epoch, signature)
            body["nextSyncToken"] = _token(google.sync_tokens, state, "CPDAlvWDx70CEPDAlvWDx70CGAU")
        body["items"] = page
    return Response.json(200, body)


def _items(
    chosen: list[StoredEvent],
    snapshot: list[StoredEvent],
    viewer: str,
    single: bool,
    params: dict[str, Any],
    calendar: Calendar,
) -> list[dict[str, Any]]:
    """Render the chosen events; ``snapshot`` (every event of the listing's snapshot) tells
    which instances have an exception of their own."""
    exceptions: dict[str, set[str]] = {}
    for event in snapshot:
        if event.recurring_event_id:
            exceptions.setdefault(event.recurring_event_id, set()).add(event.id)
    rendered: list[dict[str, Any]] = []
    for event in chosen:
        if single and event.is_series:
            skip = exceptions.get(event.id, set())
            rendered.extend(expand(event, viewer, params, calendar.time_zone, skip))
        else:
            rendered.append(render(event, viewer))
    if params.get("orderBy") == "startTime":
        rendered.sort(key=lambda item: _start_key(item, calendar.time_zone))
    return rendered


def _start_key(item: dict[str, Any], zone: str) -> str:
    if "start" not in item:
        return ""
    start, _ = event_span(item, zone)
    return start.isoformat()


events_list = endpoint("calendar.events.list")(list_events)
