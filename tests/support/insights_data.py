"""A small office with two days of bookings whose insights are counted by hand below; shared by
the rollup, page and browser tests of the Insights page.

HQ (Europe/Berlin, so local hours are not UTC hours) opens Monday-Friday 08:00-18:00 (600
minutes). On Tuesday 10 February 2026 (D1):
- Room A (check-in required): 09:30-11:00 portal, made two days before, checked in (90 min,
  over three hours); 13:00-14:00 REST API, made an hour before, nobody checked in: released at
  13:15 (15 booked minutes, 45 released).
- Room B, closed 08:00-10:00 (480 open minutes): 10:00-12:00 from Exchange, made a day before;
  14:30-15:00 cancelled (not counted).
- Desk C: 08:00-16:00 from Google, made 30 minutes before (480 minutes).
On Wednesday 11 February (D2): Room A 10:00-10:30 portal, made a day before, checked in.
Elsewhere (another location, Paris): Room P, D1 09:00-10:00 portal.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from datetime import time as clock
from zoneinfo import ZoneInfo

from reservations import services
from reservations.models import Closure, Location, Reservation, Source, Space, SpaceKind

D1 = date(2026, 2, 10)
D2 = date(2026, 2, 11)
ZONE = ZoneInfo("Europe/Berlin")

# The hand count, per space and day: what the rollup rows must say.
EXPECTED = {
    ("A", D1): dict(
        available_minutes=600, booked_minutes=105, bookings=2, checked_in=1, released=1,
        released_minutes=45, booking_minutes=150, lead_minutes=2 * 1440 + 60,
        check_in_required=True, hours={9: 30, 10: 60, 13: 15},
        sources={"portal": 1, "rest_api": 1},
    ),
    ("B", D1): dict(
        available_minutes=480, booked_minutes=120, bookings=1, checked_in=0, released=0,
        released_minutes=0, booking_minutes=120, lead_minutes=1440, check_in_required=False,
        hours={10: 60, 11: 60}, sources={"exchange": 1},
    ),
    ("C", D1): dict(
        available_minutes=600, booked_minutes=480, bookings=1, checked_in=0, released=0,
        released_minutes=0, booking_minutes=480, lead_minutes=30, check_in_required=False,
        hours={h: 60 for h in range(8, 16)}, sources={"google": 1},
    ),
    ("A", D2): dict(
        available_minutes=600, booked_minutes=30, bookings=1, checked_in=1, released=0,
        released_minutes=0, booking_minutes=30, lead_minutes=1440, check_in_required=True,
        hours={10: 30}, sources={"portal": 1},
    ),
    ("B", D2): dict(
        available_minutes=600, booked_minutes=0, bookings=0, checked_in=0, released=0,
        released_minutes=0, booking_minutes=0, lead_minutes=0, check_in_required=False,
        hours={}, sources={},
    ),
    ("C", D2): dict(
        available_minutes=600, booked_minutes=0, bookings=0, checked_in=0, released=0,
        released_minutes=0, booking_minutes=0, lead_minutes=0, check_in_required=False,
        hours={}, sources={},
    ),
}  # fmt: skip
# HQ over D1..D2: 735 booked of 3480 open minutes (21%); 5 bookings; 2 checked in, 1
# released (67% / 33%); 780 booked minutes in all (156 min = 2.6 h on average); lead 5850
# minutes in all (1170 min = 19.5 h on average); portal 2, Exchange 1, Google 1, REST API 1.


@dataclass
class Office:
    location: Location
    a: Space
    b: Space
    c: Space
    paris: Location
    p: Space

    def by_name(self) -> dict[str, Space]:
        return {"A": self.a, "B": self.b, "C": self.c}


def at(day: date, hour: int, minute: int = 0, zone=ZONE) -> datetime:
    return datetime.combine(day, clock(hour, minute), tzinfo=zone)


def _book(space, person, start, end, source, lead: timedelta, **extra) -> Reservation:
    made = start - lead
    actor = None if source in (Source.EXCHANGE, Source.GOOGLE) else person
    reservation = services.book(
        actor=actor, space=space, start=start, end=end, source=source, now=made,
        requested_for=person, title="Meeting", **extra,
    ).reservations[0]  # fmt: skip
    # The service stamps ``created`` with the wall clock (auto_now_add); these bookings were
    # made in the past, so their lead time is set here, as a fixture.
    Reservation.objects.filter(pk=reservation.pk).update(created=made)
    reservation.refresh_from_db()
    return reservation


def build(make_location, make_space, make_user) -> Office:
    hq = make_location(
        "HQ", time_zone="Europe/Berlin", opens=clock(8), closes=clock(18), weekdays=range(5)
    )
    a = make_space(hq, name="Room A", check_in_required=True)
    b = make_space(hq, name="Room B")
    c = make_space(hq, name="Desk C", kind=SpaceKind.DESK, capacity=1)
    paris = make_location("Paris", time_zone="Europe/Paris", opens=clock(8), closes=clock(18))
    p = make_space(paris, name="Room P")
    alice, bob = make_user("alice", first_name="Alice"), make_user("bob", first_name="Bob")
    Closure.objects.create(
        location=hq, space=b, start_date=D1, end_date=D1, start_time=clock(8),
        end_time=clock(10), reason="Cleaning",
    )  # fmt: skip

    first = _book(a, alice, at(D1, 9, 30), at(D1, 11), Source.PORTAL, timedelta(days=2))
    services.check_in(actor=alice, reservation=first, source=Source.PORTAL, now=at(D1, 9, 35))
    no_show = _book(a, bob, at(D1, 13), at(D1, 14), Source.REST_API, timedelta(hours=1))
    assert services.release_no_show(reservation=no_show, now=at(D1, 13, 15))
    _book(b, alice, at(D1, 10), at(D1, 12), Source.EXCHANGE, timedelta(days=1))
    gone = _book(b, bob, at(D1, 14, 30), at(D1, 15), Source.PORTAL, timedelta(hours=3))
    services.cancel(actor=bob, reservation=gone, now=at(D1, 12))
    _book(c, bob, at(D1, 8), at(D1, 16), Source.GOOGLE, timedelta(minutes=30))
    second = _book(a, alice, at(D2, 10), at(D2, 10, 30), Source.PORTAL, timedelta(days=1))
    services.check_in(actor=alice, reservation=second, source=Source.PORTAL, now=at(D2, 10))
    paris_zone = ZoneInfo("Europe/Paris")
    _book(
        p, bob, at(D1, 9, zone=paris_zone), at(D1, 10, zone=paris_zone), Source.PORTAL,
        timedelta(days=1),
    )  # fmt: skip
    return Office(hq, a, b, c, paris, p)
