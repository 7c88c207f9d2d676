"""Graph's ``dateTimeTimeZone`` values as aware UTC datetimes.

Graph names zones the Windows way ("Pacific Standard Time"), sometimes by IANA name, and
writes seven fractional digits ("2030-01-07T09:00:00.0000000"), which ``fromisoformat``
refuses. Reserva asks for UTC on every request (``Prefer: outlook.timezone="UTC"``), so most
values are already UTC; the table matters for values Graph leaves in the event's own zone
(``originalStartTimeZone``, getSchedule working hours, responses where the preference is not
applied).

The table is CLDR's windowsZones.xml, territory "001" (the zone each Windows name maps to by
default), for the zones Exchange Online offers; it is short enough to keep here rather than
depend on a package for it.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

log = logging.getLogger(__name__)

WINDOWS_TO_IANA: dict[str, str] = {
    "Dateline Standard Time": "Etc/GMT+12",
    "UTC-11": "Etc/GMT+11",
    "Aleutian Standard Time": "America/Adak",
    "Hawaiian Standard Time": "Pacific/Honolulu",
    "Alaskan Standard Time": "America/Anchorage",
    "Pacific Standard Time (Mexico)": "America/Tijuana",
    "Pacific Standard Time": "America/Los_Angeles",
    "US Mountain Standard Time": "America/Phoenix",
    "Mountain Standard Time (Mexico)": "America/Mazatlan",
    "Mountain Standard Time": "America/Denver",
    "Central America Standard Time": "America/Guatemala",
    "Central Standard Time": "America/Chicago",
    "Central Standard Time (Mexico)": "America/Mexico_City",
    "Canada Central Standard Time": "America/Regina",
    "SA Pacific Standard Time": "America/Bogota",
    "Eastern Standard Time": "America/New_York",
    "Eastern Standard Time (Mexico)": "America/Cancun",
    "US Eastern Standard Time": "America/Indiana/Indianapolis",
    "Venezuela Standard Time": "America/Caracas",
    "Paraguay Standard Time": "America/Asuncion",
    "Atlantic Standard Time": "America/Halifax",
    "SA Western Standard Time": "America/La_Paz",
    "Pacific SA Standard Time": "America/Santiago",
    "Newfoundland Standard Time": "America/St_Johns",
    "E. South America Standard Time": "America/Sao_Paulo",
    "Argentina Standard Time": "America/Argentina/Buenos_Aires",
    "SA Eastern Standard Time": "America/Cayenne",
    "Greenland Standard Time": "America/Godthab",
    "Montevideo Standard Time": "America/Montevideo",
    "UTC-02": "Etc/GMT+2",
    "Azores Standard Time": "Atlantic/Azores",
    "Cape Verde Standard Time": "Atlantic/Cape_Verde",
    "UTC": "Etc/UTC",
    "GMT Standard Time": "Europe/London",
    "Greenwich Standard Time": "Atlantic/Reykjavik",
    "Morocco Standard Time": "Africa/Casablanca",
    "W. Europe Standard Time": "Europe/Berlin",
    "Central Europe Standard Time": "Europe/Budapest",
    "Romance Standard Time": "Europe/Paris",
    "Central European Standard Time": "Europe/Warsaw",
    "W. Central Africa Standard Time": "Africa/Lagos",
    "Jordan Standard Time": "Asia/Amman",
    "GTB Standard Time": "Europe/Bucharest",
    "Middle East Standard Time": "Asia/Beirut",
    "Egypt Standard Time": "Africa/Cairo",
    "E. Europe Standard Time": "Europe/Chisinau",
    "Syria Standard Time": "Asia/Damascus",
    "South Africa Standard Time": "Africa/Johannesburg",
    "FLE Standard Time": "Europe/Kiev",
    "Israel Standard Time": "Asia/Jerusalem",
    "Kaliningrad Standard Time": "Europe/Kaliningrad",
    "Arabic Standard Time": "Asia/Baghdad",
    "Turkey Standard Time": "Europe/Istanbul",
    "Arab Standard Time": "Asia/Riyadh",
    "Belarus Standard Time": "Europe/Minsk",
    "Russian Standard Time": "Europe/Moscow",
    "E. Africa Standard Time": "Africa/Nairobi",
    "Iran Standard Time": "Asia/Tehran",
    "Arabian Standard Time": "Asia/Dubai",
    "Azerbaijan Standard Time": "Asia/Baku",
    "Georgian Standard Time": "Asia/Tbilisi",
    "Caucasus Standard Time": "Asia/Yerevan",
    "Afghanistan Standard Time": "Asia/Kabul",
    "West Asia Standard Time": "Asia/Tashkent",
    "Ekaterinburg Standard Time": "Asia/Yekaterinburg",
    "Pakistan Standard Time": "Asia/Karachi",
    "India Standard Time": "Asia/Kolkata",
    "Sri Lanka Standard Time": "Asia/Colombo",
    "Nepal Standard Time": "Asia/Kathmandu",
    "Central Asia Standard Time": "Asia/Almaty",
    "Bangladesh Standard Time": "Asia/Dhaka",
    "Myanmar Standard Time": "Asia/Yangon",
    "SE Asia Standard Time": "Asia/Bangkok",
    "N. Central Asia Standard Time": "Asia/Novosibirsk",
    "China Standard Time": "Asia/Shanghai",
    "North Asia Standard Time": "Asia/Krasnoyarsk",
    "Singapore Standard Time": "Asia/Singapore",
    "W. Australia Standard Time": "Australia/Perth",
    "Taipei Standard Time": "Asia/Taipei",
    "Ulaanbaatar Standard Time": "Asia/Ulaanbaatar",
    "Tokyo Standard Time": "Asia/Tokyo",
    "Korea Standard Time": "Asia/Seoul",
    "Yakutsk Standard Time": "Asia/Yakutsk",
    "Cen. Australia Standard Time": "Australia/Adelaide",
    "AUS Central Standard Time": "Australia/Darwin",
    "E. Australia Standard Time": "Australia/Brisbane",
    "AUS Eastern Standard Time": "Australia/Sydney",
    "West Pacific Standard Time": "Pacific/Port_Moresby",
    "Tasmania Standard Time": "Australia/Hobart",
    "Vladivostok Standard Time": "Asia/Vladivostok",
    "Magadan Standard Time": "Asia/Magadan",
    "Central Pacific Standard Time": "Pacific/Guadalcanal",
    "New Zealand Standard Time": "Pacific/Auckland",
    "UTC+12": "Etc/GMT-12",
    "Fiji Standard Time": "Pacific/Fiji",
    "Tonga Standard Time": "Pacific/Tongatapu",
    "Samoa Standard Time": "Pacific/Apia",
    "Line Islands Standard Time": "Pacific/Kiritimati",
}
# Names Graph uses for UTC besides "UTC" itself.
_UTC_NAMES = {"utc", "etc/utc", "gmt", "tzone://microsoft/utc", "coordinated universal time"}
# 2030-01-07T09:00:00.0000000, with an optional Z or offset; seconds and fraction optional.
_DATETIME = re.compile(
    r"^(?P<base>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2})?)(?:\.(?P<frac>\d+))?"
    r"(?P<offset>Z|[+-]\d{2}:\d{2})?$"
)


def zone_for(name: str | None) -> ZoneInfo | None:
    """The zone a Graph time-zone name means, or None when it is unknown."""
    if not name or name.strip().lower() in _UTC_NAMES:
        return ZoneInfo("UTC")
    name = name.strip()
    iana = WINDOWS_TO_IANA.get(name, name)
    try:
        return ZoneInfo(iana)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def parse_datetime(text: str, zone_name: str | None = "UTC") -> datetime:
    """A Graph date-time string in ``zone_name`` as an aware UTC datetime.

    Raises ValueError for text that is not a date-time.
    """
    found = _DATETIME.match(text.strip())
    if not found:
        raise ValueError(f"not a Graph date-time: {text!r}")
    fraction = (found.group("frac") or "0")[:6].ljust(6, "0")  # Python keeps microseconds
    value = datetime.fromisoformat(f"{found.group('base')}.{fraction}")
    offset = found.group("offset")
    if offset:
        return datetime.fromisoformat(f"{value.isoformat()}{offset.replace('Z', '+00:00')}")
    zone = zone_for(zone_name)
    if zone is None:
        # A custom zone ("tzone://Microsoft/Custom") cannot be resolved; Reserva asks Graph
        # for UTC on every call, so such values are rare. Reading them as UTC is logged.
        log.warning("Unknown time zone %r in a Graph response; read as UTC", zone_name)
        zone = ZoneInfo("UTC")
    return value.replace(tzinfo=zone).astimezone(UTC)


def parse_graph_time(value: Any) -> datetime | None:
    """A ``dateTimeTimeZone`` dict (``{"dateTime", "timeZone"}``) as aware UTC, or None."""
    if not isinstance(value, dict) or not value.get("dateTime"):
        return None
    return parse_datetime(str(value["dateTime"]), value.get("timeZone") or "UTC")


def graph_time(instant: datetime) -> dict[str, str]:
    """An aware datetime as the ``dateTimeTimeZone`` Reserva sends: naive UTC, zone "UTC"."""
    if instant.tzinfo is None:
        raise ValueError("Reserva sends aware datetimes only")
    utc = instant.astimezone(UTC)
    return {"dateTime": utc.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"}


def query_time(instant: datetime) -> str:
    """An instant for calendarView's ``startDateTime``/``endDateTime`` (ISO 8601, UTC)."""
    if instant.tzinfo is None:
        raise ValueError("Reserva sends aware datetimes only")
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
