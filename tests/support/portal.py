"""The portal's test data: the day the portal tests book on and the booking and change forms
as POST bodies. (A time zone where it is about midday now, for bookings at the real time, is
``tests.conftest.midday_zone``.)"""

from __future__ import annotations

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
