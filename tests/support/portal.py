"""The portal's test data: the day the portal tests book on, the booking and change forms
as POST bodies, and a time zone in which it is daytime now (check-in windows)."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from django.utils import timezone

from tests.conftest import next_weekday

DAY = next_weekday(1)  # a Tuesday next week


def book_form(space, *, start="10:00", end="11:00", day=DAY, **extra) -> dict:
    data = {"space": space.pk, "date": day.isoformat(), "start": start, "end": end}
    data.update({"title": "", "public_nickname": "", "description": "", "interval": 1})
    data.update(extra)
    return data


def change_form(reservation, **extra) -> dict:
    start, end = reservation.local_start, reservation.local_end
    data = {
        "space": reservation.space_id,
        "date": start.date().isoformat(),
        "start": f"{start:%H:%M}",
        "end": f"{end:%H:%M}",
        "title": reservation.title,
        "public_nickname": reservation.public_nickname,
        "description": reservation.description,
        "expected_version": reservation.version,
        "scope": "this",
    }
    data.update(extra)
    return data


def daytime_zone() -> str:
    """A zone where it is daytime now, so a booking around now fits in one local day."""
    now = timezone.now()
    for name in ("Europe/London", "Asia/Tokyo", "America/New_York", "Pacific/Auckland"):
        if 3 <= now.astimezone(ZoneInfo(name)).hour <= 20:
            return name
    return "UTC"
