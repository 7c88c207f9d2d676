"""Helpers shared by the portal views: visibility, defaults, time slots, error mapping."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from django import forms
from django.db.models import Q, QuerySet
from django.http import Http404, HttpRequest
from django.utils import timezone

from .. import queries, rules
from ..models import Location, Profile, Reservation, Space
from ..services import BookingError, Conflict, closure_problem, slot_problem

# Where a service error's ``field`` is shown in the portal's forms.
FIELD_FOR_ERROR = {
    "start": "start",
    "end": "end",
    "space": "space",
    "kind": "attendees",
    "attendees": "attendees",
    "recurrence": "repeat",
}
SLOT_MINUTES = 30


def is_htmx(request: HttpRequest) -> bool:
    return request.headers.get("HX-Request") == "true"


def visible_reservations(user) -> QuerySet[Reservation]:
    """Reservations a user may open: their own (for them or by them), or all for managers."""
    qs = Reservation.objects.select_related("space__location", "requested_for", "booked_by")
    if rules.can_manage_all(user):
        return qs
    return qs.filter(Q(requested_for=user) | Q(booked_by=user))


def get_visible_reservation(user, pk: int) -> Reservation:
    """The reservation, or 404 when it does not exist or is not the user's to see."""
    try:
        return visible_reservations(user).get(pk=pk)
    except Reservation.DoesNotExist as exc:
        raise Http404("No such reservation.") from exc


def default_location(
    user, requested: str | None = None, among: Sequence[Location] | None = None
) -> Location | None:
    """The location asked for (by id), else the user's default, else the first one.
    ``among``: every location, read already by the page (the schedule's picker): taken from
    there instead of read again."""

    def by_pk(pk: int) -> Location | None:
        if among is not None:
            return next((location for location in among if location.pk == pk), None)
        return Location.objects.filter(pk=pk).first()

    if requested and requested.isdigit():
        location = by_pk(int(requested))
        if location:
            return location
    profile = Profile.for_user(user)
    # The page's template shows times in this profile's zone (context_processors.portal):
    # handed over, so that a request reads the profile once.
    user.portal_profile = profile
    if profile.default_location_id:
        return by_pk(profile.default_location_id)
    if among is not None:
        return among[0] if among else None
    return Location.objects.first()


def _floor(now: datetime, zone: ZoneInfo, minutes: int) -> datetime:
    local = now.astimezone(zone)
    return local.replace(minute=local.minute - local.minute % minutes, second=0, microsecond=0)


def next_slot(now: datetime, zone: ZoneInfo, minutes: int = SLOT_MINUTES) -> datetime:
    """The next wall-clock boundary of ``minutes`` in ``zone`` (10:07 -> 10:30)."""
    floor = _floor(now, zone, minutes)
    return floor if floor == now else floor + timedelta(minutes=minutes)


def nearest_five(now: datetime, zone: ZoneInfo) -> datetime:
    """``now`` rounded to the nearest five minutes (10:02 -> 10:00, 10:03 -> 10:05).

    Never more than 2.5 minutes in the past, well inside the service's grace period.
    """
    floor = _floor(now, zone, 5)
    return floor + timedelta(minutes=5) if now - floor >= timedelta(seconds=150) else floor


def location_problem(location: Location, start: datetime, end: datetime) -> str | None:
    """Why nothing at ``location`` can be booked for [start, end) (hours, horizon, past, a
    closure of the whole location)."""
    probe = Space(location=location)
    return slot_problem(probe, start, end, now=timezone.now()) or closure_problem(probe, start, end)


def alternatives(
    space: Space,
    start: datetime,
    end: datetime,
    min_capacity: int | None = None,
    limit: int = 5,
) -> list[Space]:
    """Other free spaces of the same location at the same time that hold ``min_capacity``
    people (None: as many as the space asked for holds, the only size the caller knows the
    person needs): first those of the same kind (smallest first), then the rest."""
    if min_capacity is None:
        min_capacity = space.capacity
    free = list(
        queries.free_spaces(start, end, location_id=space.location_id, min_capacity=min_capacity)
        .exclude(pk=space.pk)
        .prefetch_related("amenities")
    )
    free.sort(key=lambda s: s.kind != space.kind)  # stable: smallest first within each
    return free[:limit]


def apply_booking_error(form: forms.Form, exc: BookingError) -> None:
    """Show the service's message next to the field it concerns (or above the form)."""
    if isinstance(exc, Conflict):
        return  # the conflict panel shows the clashes and what can be done instead
    field = FIELD_FOR_ERROR.get(exc.field or "")
    form.add_error(field if field in form.fields else None, exc.message)


def parse_day(value: str | None, default: date) -> date:
    """An ISO date from a query string; ``default`` when it is missing, malformed or years
    away (a typo, and 9999-12-31 would overflow the next-day link)."""
    try:
        day = date.fromisoformat(value) if value else default
    except ValueError:
        return default
    return day if abs(day.year - default.year) <= 5 else default
