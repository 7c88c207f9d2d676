"""Expanding a recurring event into instances for ``singleEvents=true``.

A deliberately small subset of RFC 5545: ``RRULE`` with ``FREQ=DAILY|WEEKLY``, ``INTERVAL``,
``COUNT``, ``UNTIL`` and (weekly) ``BYDAY``; ``EXDATE`` lines are honoured. Instances get
Google's id form ``<masterId>_<YYYYMMDDTHHMMSSZ>`` (the original start in UTC; ``_<YYYYMMDD>``
for all-day series), ``recurringEventId`` and ``originalStartTime`` (discovery ``Event``), the
master's ``iCalUID`` and, until edited, the master's etag. Expansion is in the
series' own time zone, which Google requires recurring events to name. Anything outside the
subset is listed as the master only.
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Collection
from typing import Any
from zoneinfo import ZoneInfo

from .schema import parse_datetime
from .store import StoredEvent, event_span, render

MAX_INSTANCES = 1000
WEEKDAYS = {"MO": 0, "TU": 1, "WE": 2, "TH": 3, "FR": 4, "SA": 5, "SU": 6}


def _rule(lines: list[str]) -> dict[str, str] | None:
    for line in lines:
        if line.upper().startswith("RRULE:"):
            return dict(part.split("=", 1) for part in line[6:].split(";") if "=" in part)
    return None


def _exdates(lines: list[str]) -> set[str]:
    out: set[str] = set()
    for line in lines:
        if line.upper().startswith("EXDATE"):
            out.update(v.strip()[:8] for v in line.split(":", 1)[1].split(","))
    return out


def _until(value: str, zone: ZoneInfo) -> dt.datetime:
    if len(value) == 8:
        return dt.datetime.strptime(value, "%Y%m%d").replace(tzinfo=zone) + dt.timedelta(days=1)
    return dt.datetime.strptime(value.rstrip("Z"), "%Y%m%dT%H%M%S").replace(tzinfo=dt.UTC)


def starts(event: StoredEvent, zone_name: str) -> list[dt.datetime]:
    """Local start times of the series' instances (empty when the rule is unsupported)."""
    lines = event.data.get("recurrence") or []
    rule = _rule(lines)
    if not rule or rule.get("FREQ") not in ("DAILY", "WEEKLY"):
        return []
    zone = ZoneInfo(event.data["start"].get("timeZone") or zone_name)
    first, _ = event_span(event, zone_name)
    first = first.astimezone(zone)
    interval = int(rule.get("INTERVAL", "1"))
    count = int(rule["COUNT"]) if "COUNT" in rule else None
    until = _until(rule["UNTIL"], zone) if "UNTIL" in rule else None
    days = sorted(WEEKDAYS[d[-2:]] for d in rule.get("BYDAY", "").split(",") if d[-2:] in WEEKDAYS)
    found: list[dt.datetime] = []
    step = 0
    while len(found) < MAX_INSTANCES and step < MAX_INSTANCES * 7:
        if rule["FREQ"] == "DAILY":
            candidates = [first + dt.timedelta(days=step * interval)]
        else:
            week_start = (
                first - dt.timedelta(days=first.weekday()) + dt.timedelta(weeks=step * interval)
            )
            candidates = (
                [week_start + dt.timedelta(days=d) for d in days]
                if days
                else [first + dt.timedelta(weeks=step * interval)]
            )
        step += 1
        for local in candidates:
            # Wall-clock time stays put across DST changes, as calendar apps expect.
            local = local.replace(tzinfo=None).replace(tzinfo=zone)
            if local < first:
                continue
            if until is not None and local > until:
                return found
            if count is not None and len(found) >= count:
                return found
            found.append(local)
        if count is None and until is None and len(found) >= 730:
            return found  # An endless series: two years of instances is plenty for a sandbox.
    return found


def occurrences(master: StoredEvent, zone_name: str) -> list[StoredEvent]:
    """Every instance of the series as the rule makes it (``EXDATE`` ones left out), each an
    unsaved :class:`StoredEvent` carrying the master's etag, status and fields; empty when the
    rule is outside the subset. An exception stored under an instance's id replaces it."""
    moments = starts(master, zone_name)
    if not moments:
        return []
    start, end = event_span(master, zone_name)
    length = end - start
    all_day = "date" in master.data["start"]
    zone = master.data["start"].get("timeZone")
    excluded = _exdates(master.data.get("recurrence") or [])
    out = []
    for local in moments:
        stamp = (
            local.strftime("%Y%m%d")
            if all_day
            else local.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
        )
        if stamp[:8] in excluded:
            continue
        data = copy.deepcopy(master.data)
        data.pop("recurrence", None)
        finish = local + length
        if all_day:
            data["start"] = {"date": local.date().isoformat()}
            data["end"] = {"date": finish.date().isoformat()}
        else:
            data["start"] = {"dateTime": local.isoformat(), **({"timeZone": zone} if zone else {})}
            data["end"] = {"dateTime": finish.isoformat(), **({"timeZone": zone} if zone else {})}
        out.append(
            StoredEvent(
                id=f"{master.id}_{stamp}",
                calendar_id=master.calendar_id,
                data=data,
                created=master.created,
                updated=master.updated,
                etag=master.etag,
                change_seq=master.change_seq,
                status=master.status,
                sequence=master.sequence,
                creator=master.creator,
                organizer=master.organizer,
                recurring_event_id=master.id,
                original_start=dict(data["start"]),
            )
        )
    return out


def series_span(event: StoredEvent, zone_name: str) -> tuple[dt.datetime, dt.datetime]:
    """From the first instance's start to the last one's end (the event's own span when it
    is not a series the subset can expand)."""
    span = event_span(event, zone_name)
    instances = occurrences(event, zone_name) if event.is_series else []
    if not instances:
        return span
    return span[0], event_span(instances[-1], zone_name)[1]


def expand(
    event: StoredEvent,
    viewer: str,
    params: dict[str, Any],
    zone_name: str,
    skip: Collection[str] = (),
) -> list[dict[str, Any]]:
    """The instances of ``event`` that fall inside the query's time window, rendered; ``skip``
    names the instances that have an exception (listed as events of their own)."""
    instances = occurrences(event, zone_name)
    if not instances:
        return [render(event, viewer)]
    low = parse_datetime(params["timeMin"]) if "timeMin" in params else None
    high = parse_datetime(params["timeMax"]) if "timeMax" in params else None
    out = []
    for instance in instances:
        if instance.id in skip:
            continue
        start, finish = event_span(instance, zone_name)
        if (low and finish <= low) or (high and start >= high):
            continue
        out.append(render(instance, viewer))
    return out
