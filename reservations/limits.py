"""Limits per person: how much one person may book at a location, and how soon or how far
ahead (``BookingLimit`` rows, set in the admin per location and per group).

``for_person`` reads the rows that apply to a person at a location (one query) and combines
them: a group's row overrides the everyone row field by field where it sets a value; among
several groups, the most generous value wins (more bookings, more hours, a shorter notice, a
longer window, overlaps allowed). With no row at all, nobody may hold two overlapping desk
(or seat) bookings; rooms may overlap.

The booking service (``reservations.services``) asks two questions:

- ``too_soon``: is this slot inside the minimum notice, or beyond the person's booking
  window (which replaces the location's horizon)? Asked for bookings made in Reserva only:
  an event made in Outlook a minute before it starts is normal;
- ``excess``: would these new slots take the person over a count (active bookings, hours
  per week) or overlap another of their bookings of the same kind? Asked for every source,
  remote calendars included, inside the booking transaction after the space lock; the
  person's bookings are aggregated in ONE query (filtered counts and sums), whatever their
  number. Only a refusal reads the bookings it names.

A limit is the person's: booking on someone's behalf counts against them (requested-for),
and managers are held to the limits of the person they book for.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING

from django.db.models import Count, DurationField, ExpressionWrapper, F, Q, Sum

from .models import SLOT_HOLDING_STATUSES, BookingLimit, Location, Reservation, Space, SpaceKind

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

EVERYONE = "Everyone"
DESK_KINDS = (SpaceKind.DESK, SpaceKind.SEAT)
ROOM_KINDS = (SpaceKind.ROOM,)


@dataclass(frozen=True)
class Rule:
    """One effective limit and who it is set for (a group's name, or ``EVERYONE``)."""

    value: int | bool
    who: str = EVERYONE


@dataclass(frozen=True)
class PersonLimits:
    """The limits that hold for one person at one location."""

    location: Location
    max_active: Rule | None = None
    max_hours: Rule | None = None
    min_notice: Rule | None = None
    window: Rule | None = None
    no_overlap_rooms: Rule = Rule(False)
    no_overlap_desks: Rule = Rule(True)

    def overlap_kinds(self, space: Space) -> tuple[str, ...]:
        """The kinds of space a booking of ``space`` may not overlap, for this person."""
        if space.kind in DESK_KINDS and self.no_overlap_desks.value:
            return DESK_KINDS
        if space.kind in ROOM_KINDS and self.no_overlap_rooms.value:
            return ROOM_KINDS
        return ()

    @property
    def counts(self) -> bool:
        return self.max_active is not None or self.max_hours is not None


# field -> how "more generous" is chosen among several groups' values
_GENEROUS = {
    "max_active_bookings": max,
    "max_hours_per_week": max,
    "min_notice_minutes": min,
    "booking_window_days": max,
    "no_overlap_rooms": min,  # False (overlaps allowed) is the generous value
    "no_overlap_desks": min,
}


def for_person(person: AbstractBaseUser | None, location: Location) -> PersonLimits:
    """The combined limits of ``person`` at ``location`` (one query; defaults without one)."""
    if person is None or not getattr(person, "pk", None):
        return PersonLimits(location)
    rows = list(
        BookingLimit.objects.filter(location=location)
        .filter(Q(group__isnull=True) | Q(group__user=person))
        .select_related("group")
        .distinct()
    )
    everyone = next((r for r in rows if r.group_id is None), None)
    groups = [r for r in rows if r.group_id is not None]
    rules: dict[str, Rule | None] = {}
    for name, generous in _GENEROUS.items():
        set_by_groups = [
            (getattr(r, name), r.group.name) for r in groups if getattr(r, name) is not None
        ]
        if set_by_groups:
            value = generous(v for v, _ in set_by_groups)
            who = sorted(w for v, w in set_by_groups if v == value)[0]
            rules[name] = Rule(value, who)
        elif everyone is not None and getattr(everyone, name) is not None:
            rules[name] = Rule(getattr(everyone, name))
        else:
            rules[name] = None
    notice = rules["min_notice_minutes"]
    return PersonLimits(
        location,
        max_active=rules["max_active_bookings"],
        max_hours=rules["max_hours_per_week"],
        min_notice=notice if notice and notice.value else None,
        window=rules["booking_window_days"],
        no_overlap_rooms=rules["no_overlap_rooms"] or Rule(False),
        no_overlap_desks=rules["no_overlap_desks"] or Rule(True),
    )


def too_soon(limits: PersonLimits, start: datetime, *, now: datetime) -> str | None:
    """Why a booking starting at ``start`` is inside the minimum notice or beyond the person's
    booking window, or None. (Without a window of their own, the location's horizon applies,
    checked with the opening hours.)"""
    name = limits.location.name
    notice = limits.min_notice
    if notice is not None and start < now + timedelta(minutes=notice.value):
        return (
            f"{notice.who} must book spaces at {name} at least {notice.value} minutes "
            "before they start."
        )
    window = limits.window
    if window is not None and start > now + timedelta(days=window.value):
        return f"{window.who} may book spaces at {name} at most {window.value} days ahead."
    return None


def excess(
    limits: PersonLimits,
    person: AbstractBaseUser | None,
    space: Space,
    slots: Sequence[tuple[datetime, datetime]],
    *,
    now: datetime,
    replacing: Sequence[Reservation] = (),
) -> str | None:
    """Why booking ``slots`` of ``space`` for ``person`` breaks one of their limits, or None.

    ``replacing``: bookings these slots replace (a move): left out of the person's count, and
    a move that does not add to a count the person is already over is not refused (the limit
    may have been lowered since they booked)."""
    if person is None or not getattr(person, "pk", None) or not slots:
        return None
    kinds = limits.overlap_kinds(space)
    if not limits.counts and not kinds:
        return None
    location, zone = limits.location, limits.location.zone
    weeks = sorted({_monday(start, zone) for start, _ in slots}) if limits.max_hours else []
    here = Q(space__location=location)
    aggregates: dict = {}
    if limits.max_active is not None:
        aggregates["active"] = Count("pk", filter=here & Q(end__gt=now))
    duration = ExpressionWrapper(F("end") - F("start"), output_field=DurationField())
    for index, monday in enumerate(weeks):
        first, after = _week_bounds(monday, zone)
        aggregates[f"week{index}"] = Sum(
            duration, filter=here & Q(start__gte=first, start__lt=after)
        )
    for index, (start, end) in enumerate(slots if kinds else ()):
        aggregates[f"overlap{index}"] = Count(
            "pk", filter=Q(space__kind__in=kinds, start__lt=end, end__gt=start)
        )
    held = (
        Reservation.objects.filter(requested_for=person, status__in=SLOT_HOLDING_STATUSES)
        .exclude(pk__in=[r.pk for r in replacing])
        .aggregate(**aggregates)
    )
    mine = [r for r in replacing if r.space.location_id == location.pk]

    if limits.max_active is not None:
        before = held["active"] + sum(1 for r in mine if r.end > now)
        after = held["active"] + len(slots)
        if after > limits.max_active.value and after > before:
            return _too_many(limits, person, held["active"], len(slots), now=now)
    for index, monday in enumerate(weeks):
        first, after_week = _week_bounds(monday, zone)
        booked = held[f"week{index}"] or timedelta(0)
        adding = sum((e - s for s, e in slots if first <= s < after_week), timedelta(0))
        before = booked + sum((r.end - r.start for r in mine if first <= r.start < after_week),
                              timedelta(0))  # fmt: skip
        total = booked + adding
        if total > timedelta(hours=limits.max_hours.value) and total > before:
            return _too_long(limits, person, booked, adding, monday)
    for index, (start, end) in enumerate(slots if kinds else ()):
        if held[f"overlap{index}"]:
            return _overlapping(limits, person, kinds, start, end, replacing)
    return None


def _monday(start: datetime, zone) -> date:
    day = start.astimezone(zone).date()
    return day - timedelta(days=day.weekday())


def _week_bounds(monday: date, zone) -> tuple[datetime, datetime]:
    return (
        datetime.combine(monday, time(0), tzinfo=zone),
        datetime.combine(monday + timedelta(days=7), time(0), tzinfo=zone),
    )


def display_name(person: AbstractBaseUser) -> str:
    full = getattr(person, "get_full_name", lambda: "")()
    return full or person.get_username()


def _when(start: datetime, zone) -> str:
    local = start.astimezone(zone)
    return f"{local:%a} {local.day} {local:%b %H:%M}"


def _hours(amount: timedelta) -> str:
    minutes = int(amount.total_seconds() // 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}" if minutes else f"{hours}h"


def _too_many(limits: PersonLimits, person, holding: int, adding: int, *, now: datetime) -> str:
    location, rule = limits.location, limits.max_active
    shown = list(
        Reservation.objects.filter(
            requested_for=person,
            status__in=SLOT_HOLDING_STATUSES,
            space__location=location,
            end__gt=now,
        )
        .select_related("space")
        .order_by("start")[:5]
    )
    listed = ", ".join(f"{r.space.name} on {_when(r.start, location.zone)}" for r in shown)
    if holding > len(shown):
        listed += f" and {holding - len(shown)} more"
    plural = "booking" if rule.value == 1 else "bookings"
    message = f"{rule.who} may hold at most {rule.value} active {plural} at {location.name}; "
    who = display_name(person)
    if holding == 0:
        return message + f"this would make {adding}."
    message += f"{who} already holds {holding}: {listed}."
    if holding < rule.value:
        message += f" These {adding} dates would make {holding + adding}."
    return message


def _too_long(limits: PersonLimits, person, booked: timedelta, adding: timedelta, monday) -> str:
    rule, location = limits.max_hours, limits.location
    message = (
        f"{rule.who} may book at most {rule.value} hours a week at {location.name}; "
        f"{display_name(person)} has {_hours(booked)} booked in the week of "
        f"{monday.day} {monday:%B}"
    )
    return message + f" and this would add {_hours(adding)}."


def _overlapping(limits, person, kinds, start, end, replacing) -> str:
    zone = limits.location.zone
    other = (
        Reservation.objects.filter(
            requested_for=person,
            status__in=SLOT_HOLDING_STATUSES,
            space__kind__in=kinds,
            start__lt=end,
            end__gt=start,
        )
        .exclude(pk__in=[r.pk for r in replacing])
        .select_related("space__location")
        .order_by("start")
        .first()
    )
    what = "desk" if kinds == DESK_KINDS else "room"
    if other is None:  # gone since the count (cannot happen under the locks); still refused
        return f"{display_name(person)} already has a {what} booked at that time."
    other_zone = other.space.location.zone
    o_start, o_end = other.start.astimezone(other_zone), other.end.astimezone(other_zone)
    day = "that day" if o_start.date() == start.astimezone(zone).date() else _day(o_start)
    return (
        f"{display_name(person)} already has {other.space.name} booked "
        f"{o_start:%H:%M}-{o_end:%H:%M} {day} (no overlapping {what} bookings)."
    )


def _day(local: datetime) -> str:
    return f"on {local:%a} {local.day} {local:%b}"


def standing(person: AbstractBaseUser | None, location: Location, *, now: datetime) -> str | None:
    """Where a person stands against their active-bookings limit at a location, for the
    booking form ("You hold 2 of your 2 active bookings at London HQ."), or None when no such
    limit applies. Two queries (the rows, one count)."""
    if person is None or not getattr(person, "pk", None):
        return None
    rule = for_person(person, location).max_active
    if rule is None:
        return None
    held = Reservation.objects.filter(
        requested_for=person,
        status__in=SLOT_HOLDING_STATUSES,
        space__location=location,
        end__gt=now,
    ).count()
    plural = "booking" if rule.value == 1 else "bookings"
    text = f"You hold {held} of your {rule.value} active {plural} at {location.name}"
    return text + (
        f" ({rule.who}' limit)." if rule.who.endswith("s") else f" ({rule.who}'s limit)."
    )
