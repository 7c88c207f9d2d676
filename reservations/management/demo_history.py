"""Eight weeks of past bookings for the demo, so the Insights page has something to show.

Each booking is made through ``services.book`` as it would have been at the time: ``now`` is
set to when it was made (a few hours to ten days before its start), so every rule of the day
applies (opening hours, closures, limits, no overlap). In the check-in room (Severn) most
people checked in through ``services.check_in`` and the rest were released as no-shows by
``services.release_no_show``, each at the moment it happened. The pattern is a real office's:
busier Tuesday to Thursday and late in the morning, quieter on Fridays and at lunch; sources
mixed (portal, REST API, mobile, and the location's calendar: Exchange in London, Google in
New York). Then the Insights rollup is built for those weeks.

The service stamps ``created`` with the wall clock (``auto_now_add``), which would make every
lead time negative; the loader backdates that one column to the booking's ``now`` (it is not
a change of the booking: no status, time or space is touched, no signal is due).

Made once, when the demo has no history yet: the first ``seed_demo`` runs before the spaces
are bound to the sandbox's calendars, so nothing here is pushed, and past bookings are never
in a binding's export (it sends bookings that have not ended).
"""

from __future__ import annotations

import contextlib
import random
from datetime import datetime, time, timedelta

from django.utils import timezone

from reservations import checkin, services
from reservations.insights import rollup
from reservations.models import Location, Reservation, Source, Space, SpaceKind

WEEKS = 8
MARK = "Demo history"  # the description of every booking made here
# Bookings per weekday (Monday..Friday): London HQ is the busy office, New York a small one.
PER_DAY = {"Europe/London": (9, 13, 14, 13, 6), "America/New_York": (3, 4, 5, 4, 2)}
# The weight of each start hour.
HOURS = {8: 3, 9: 7, 10: 10, 11: 9, 12: 3, 13: 5, 14: 7, 15: 6, 16: 3}
LENGTHS = (60, 60, 90, 120, 120, 180)
TITLES = ("Team sync", "1:1", "Planning", "Interview", "Client call", "Design review")
CHECKED_IN_SHARE = 0.7  # the others in the check-in room are no-shows
REMOTE = {"Europe/London": Source.EXCHANGE, "America/New_York": Source.GOOGLE}


def _source(rng: random.Random, location: Location) -> str:
    remote = REMOTE.get(location.time_zone, Source.EXCHANGE)
    return rng.choices(
        (Source.PORTAL, Source.REST_API, Source.MOBILE, remote), weights=(55, 12, 8, 25)
    )[0]


def add(
    people: list, locations: list[Location], now: datetime | None = None, *, weeks: int = WEEKS
) -> int:
    """Book the last ``weeks`` weeks (up to yesterday) at each location; returns how many
    bookings were made (0 when the demo has its history already, or ``weeks`` is 0)."""
    if weeks <= 0 or Reservation.objects.filter(description=MARK).exists():
        return 0
    now = now or timezone.now()
    rng = random.Random(15)  # the same history every time
    made = 0
    for location in Location.objects.filter(pk__in=[loc.pk for loc in locations]).prefetch_related(
        "opening_hours"
    ):
        spaces = list(
            Space.objects.filter(location=location, is_reservable=True, approval_rules__isnull=True)
            .exclude(kind__in=(SpaceKind.CONTAINER, SpaceKind.SEAT))
            .select_related("location")
            .order_by("name")
        )
        if not spaces:
            continue
        # The big rooms are wanted most, the phone booths and desks less.
        weights = [max(1, min(space.capacity, 8)) for space in spaces]
        per_day = PER_DAY.get(location.time_zone, PER_DAY["America/New_York"])
        today = now.astimezone(location.zone).date()
        first = today - timedelta(weeks=weeks)
        day = first
        while day < today:
            if day.weekday() < 5:
                for _ in range(per_day[day.weekday()]):
                    space = rng.choices(spaces, weights=weights)[0]
                    made += _book_one(rng, location, space, day, rng.choice(people))
            day += timedelta(days=1)
        rollup.rebuild(first, today, [location])
    return made


def _book_one(rng: random.Random, location: Location, space: Space, day, person) -> int:
    hour = rng.choices(list(HOURS), weights=list(HOURS.values()))[0]
    start = datetime.combine(day, time(hour, rng.choice((0, 0, 30))), tzinfo=location.zone)
    minutes = rng.choice((240, 480)) if space.kind == SpaceKind.DESK else rng.choice(LENGTHS)
    if space.kind == SpaceKind.DESK:
        start = datetime.combine(day, time(9), tzinfo=location.zone)
    end = start + timedelta(minutes=minutes)
    lead = timedelta(minutes=rng.choice((20, 90, 240, 1440, 2 * 1440, 5 * 1440, 10 * 1440)))
    booked_at = start - lead
    source = _source(rng, location)
    remote = source in (Source.EXCHANGE, Source.GOOGLE)
    try:
        fields = dict(
            space=space, start=start, end=end, requested_for=person, title=rng.choice(TITLES),
            public_nickname=person.first_name, description=MARK, source=source, now=booked_at,
        )  # fmt: skip
        reservation = (
            services.book_from_calendar(
                **fields, organizer_name=person.get_full_name(), organizer_email=person.email
            )
            if remote
            else services.book(actor=person, **fields)
        ).reservations[0]
    except services.BookingError:
        return 0  # taken, closed or over a limit that day: as it would have been refused
    Reservation.objects.filter(pk=reservation.pk).update(created=booked_at)
    if checkin.policy_for(space).required:
        _check_in_or_release(rng, reservation, person)
    return 1


def _check_in_or_release(rng: random.Random, reservation: Reservation, person) -> None:
    if rng.random() < CHECKED_IN_SHARE:
        arrived = reservation.start + timedelta(minutes=rng.randint(-10, 10))
        with contextlib.suppress(services.BookingError):
            services.check_in(
                actor=person, reservation=reservation, source=Source.PORTAL, now=arrived
            )
        return
    services.release_no_show(reservation=reservation, now=reservation.start + timedelta(minutes=15))
