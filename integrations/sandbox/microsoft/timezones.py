"""Time zones as Graph accepts them: Windows names (kept as given) and IANA names.

Graph answers with the event's times in UTC unless ``Prefer: outlook.timezone="..."`` asks for
another zone, and refuses a zone it does not know with ``TimeZoneNotSupportedException``.
The Windows-to-IANA table covers the common zones from CLDR's windowsZones.xml (territory
"001"); an unknown Windows name is refused, as Graph refuses "Greenwich Mean Time".
"""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

WINDOWS_TO_IANA = {
    "UTC": "UTC",
    "Dateline Standard Time": "Etc/GMT+12",
    "Hawaiian Standard Time": "Pacific/Honolulu",
    "Alaskan Standard Time": "America/Anchorage",
    "Pacific Standard Time": "America/Los_Angeles",
    "Mountain Standard Time": "America/Denver",
    "US Mountain Standard Time": "America/Phoenix",
    "Central Standard Time": "America/Chicago",
    "Eastern Standard Time": "America/New_York",
    "Atlantic Standard Time": "America/Halifax",
    "Newfoundland Standard Time": "America/St_Johns",
    "E. South America Standard Time": "America/Sao_Paulo",
    "SA Pacific Standard Time": "America/Bogota",
    "Argentina Standard Time": "America/Buenos_Aires",
    "GMT Standard Time": "Europe/London",
    "Greenwich Standard Time": "Atlantic/Reykjavik",
    "W. Europe Standard Time": "Europe/Berlin",
    "Romance Standard Time": "Europe/Paris",
    "Central Europe Standard Time": "Europe/Budapest",
    "Central European Standard Time": "Europe/Warsaw",
    "GTB Standard Time": "Europe/Bucharest",
    "FLE Standard Time": "Europe/Kiev",
    "E. Europe Standard Time": "Europe/Chisinau",
    "Israel Standard Time": "Asia/Jerusalem",
    "South Africa Standard Time": "Africa/Johannesburg",
    "Russian Standard Time": "Europe/Moscow",
    "Turkey Standard Time": "Europe/Istanbul",
    "Arabian Standard Time": "Asia/Dubai",
    "India Standard Time": "Asia/Calcutta",
    "SE Asia Standard Time": "Asia/Bangkok",
    "China Standard Time": "Asia/Shanghai",
    "Singapore Standard Time": "Asia/Singapore",
    "Tokyo Standard Time": "Asia/Tokyo",
    "Korea Standard Time": "Asia/Seoul",
    "AUS Eastern Standard Time": "Australia/Sydney",
    "E. Australia Standard Time": "Australia/Brisbane",
    "W. Australia Standard Time": "Australia/Perth",
    "New Zealand Standard Time": "Pacific/Auckland",
}

_IANA = available_timezones()
# Graph writes seven fractional digits: 2017-04-15T12:00:00.0000000
_DT_PATTERN = re.compile(
    r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,7})?)?)(Z|[+-]\d{2}:\d{2})?$"
)


class UnknownTimeZone(ValueError):
    """The name is neither a Windows nor an IANA time zone Graph knows."""


class BadDateTime(ValueError):
    """The dateTime string is not an ISO 8601 local date and time."""


def zone(name: str | None) -> ZoneInfo:
    """The zone for a Windows or IANA name; ``UnknownTimeZone`` otherwise."""
    if not name:
        return ZoneInfo("UTC")
    iana = WINDOWS_TO_IANA.get(name, name)
    if iana not in _IANA and iana != "UTC":
        raise UnknownTimeZone(name)
    try:
        return ZoneInfo(iana)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise UnknownTimeZone(name) from exc


def parse_local(value: str, tz_name: str | None) -> dt.datetime:
    """Parse a dateTimeTimeZone pair into an aware UTC datetime."""
    found = _DT_PATTERN.match(value or "")
    if not found:
        raise BadDateTime(value)
    text, offset = found.groups()
    if "." in text:
        head, frac = text.split(".")
        text = f"{head}.{frac[:6]}"
    parsed = dt.datetime.fromisoformat(text)
    if offset:
        # An explicit offset wins over the zone name, as Graph does for query parameters.
        parsed = parsed.replace(tzinfo=dt.UTC if offset == "Z" else None)
        if offset != "Z":
            parsed = dt.datetime.fromisoformat(text + offset)
        return parsed.astimezone(dt.UTC)
    return parsed.replace(tzinfo=zone(tz_name)).astimezone(dt.UTC)


def parse_query_instant(value: str) -> dt.datetime:
    """startDateTime / endDateTime query values: no offset means UTC."""
    return parse_local(value, "UTC")


def format_graph(instant: dt.datetime, tz_name: str = "UTC") -> dict[str, str]:
    """A Graph dateTimeTimeZone: local time with seven fractional digits, plus the zone."""
    local = instant.astimezone(zone(tz_name))
    text = local.strftime("%Y-%m-%dT%H:%M:%S") + f".{local.microsecond:06d}0"
    return {"dateTime": text, "timeZone": tz_name}


def iso_z(instant: dt.datetime) -> str:
    """An instant as Graph writes createdDateTime: UTC with seven digits and Z."""
    utc = instant.astimezone(dt.UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S") + f".{utc.microsecond:06d}0Z"


def preferred_zone(prefer_header: str | None) -> str:
    """The zone named by ``Prefer: outlook.timezone="..."`` (UTC when absent)."""
    found = re.search(r'outlook\.timezone\s*=\s*"([^"]+)"', prefer_header or "")
    return found.group(1) if found else "UTC"
