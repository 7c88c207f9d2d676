"""Expanding a recurring event into instances for ``singleEvents=true``.

A deliberately small subset of RFC 5545: ``RRULE`` with ``FREQ=DAILY|WEEKLY``, ``INTERVAL``,
``COUNT``, ``UNTIL`` and (weekly) ``BYDAY``; ``EXDATE`` lines are honoured. Instances get
Google's id form ``<masterId>_<YYYYMMDDTHHMMSSZ>`` (``_<YYYYMMDD>`` for all-day series),
``recurringEventId`` and ``originalStartTime`` (discovery ``Event``). Expansion is in the
series' own time zone, which Google requires recurring events to name. Anything outside the
subset is listed as the master only.
"""

from __future__ import annotations

import copy
import datetime as dt
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


def expand(
    event: StoredEvent, viewer: str, params: dict[str, Any], zone_name: str
) -> list[dict[str, Any]]:
    """The instances of ``event`` that fall inside the query's time window."""
    master = render(event, viewer)
    moments = starts(event, zone_name)
    if not moments:
        return [master]
    start, end = event_span(event, zone_name)
    length = end - start
    all_day = "date" in event.data["start"]
    excluded = _exdates(event.data.get("recurrence") or [])
    low = parse_datetime(params["timeMin"]) if "timeMin" in params else None
    high = parse_datetime(params["timeMax"]) if "timeMax" in params else None
    out = []
    for local in moments:
        stamp = (
            local.strftime("%Y%m%d")
            if all_day
            else local.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
        )
        if stamp[:8] in excluded:
            continue
        finish = local + length
        if (low and finish <= low) or (high and local >= high):
            continue
        item = copy.deepcopy(master)
        item.pop("recurrence", None)
        item["id"] = f"{event.id}_{stamp}"
        item["recurringEventId"] = event.id
        zone = event.data["start"].get("timeZone")
        if all_day:
            item["start"] = {"date": local.date().isoformat()}
            item["end"] = {"date": finish.date().isoformat()}
        else:
            item["start"] = {"dateTime": local.isoformat(), **({"timeZone": zone} if zone else {})}
            item["end"] = {"dateTime": finish.isoformat(), **({"timeZone": zone} if zone else {})}
        item["originalStartTime"] = dict(item["start"])
        out.append(item)
    return out
