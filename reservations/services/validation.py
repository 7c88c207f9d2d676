"""The checks every write makes before it touches a row: times, the space, opening hours
and closures, clashes (buffered), the rules registry and the person's limits."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.utils import timezone

from .. import buffers, closures, limits, queries, rules, timebounds
from ..models import Reservation, ReservationKind, Space, SpaceKind
from .errors import BookingError, BufferClash, Clash, Closed, Conflict, LimitExceeded, NotAllowed

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

# A booking may start this long before "now" (the form was opened a minute ago).
PAST_GRACE = timedelta(minutes=5)


def _check_space(space: Space, kind: str, attendees: Sequence[str]) -> None:
    if space.kind == SpaceKind.CONTAINER:
        raise BookingError(
            f"{space.name} is a container; book one of its seats instead.", field="space"
        )
    if not space.is_reservable:
        raise BookingError(f"{space.name} cannot be reserved.", field="space")
    if kind == ReservationKind.GROUP:
        if not space.allows_group:
            raise BookingError(f"{space.name} does not allow group reservations.", field="kind")
        if len(attendees) + 1 > space.capacity:
            raise BookingError(
                f"{space.name} holds {space.capacity} people; this group has "
                f"{len(attendees) + 1} (you and {len(attendees)} attendees).",
                field="attendees",
            )
    for email in attendees:
        try:
            validate_email(email)
        except ValidationError as exc:
            raise BookingError(
                f"{email!r} is not a valid email address.", field="attendees"
            ) from exc


def _check_times(start: datetime, end: datetime) -> None:
    """Refuse, as a field error, times nothing after this can compute with (a zone conversion
    near year 1 or 9999 overflows: ``timebounds``) and an end that is not after the start."""
    for name, value in (("start", start), ("end", end)):
        if timezone.is_aware(value) and not timebounds.in_range(value):
            raise BookingError(timebounds.OUT_OF_RANGE, field=name)
    if timezone.is_aware(start) and timezone.is_aware(end) and end <= start:
        raise BookingError("The end must be after the start.", field="end")


def slot_problem(
    space: Space,
    start: datetime,
    end: datetime,
    *,
    now: datetime,
    check_policy: bool = True,
    horizon: bool = True,
) -> str | None:
    """Why [start, end) cannot be booked in this space (ignoring other bookings), or None.
    ``horizon=False``: the person has a booking window of their own (``limits.too_soon``)
    instead of the location's horizon."""
    if timezone.is_naive(start) or timezone.is_naive(end):
        return "Times must include a time zone."
    if end <= start:
        return "The end must be after the start."
    if not check_policy:
        return None
    location = space.location
    zone = location.zone
    local_start, local_end = start.astimezone(zone), end.astimezone(zone)
    if end - start > timedelta(minutes=location.max_booking_minutes):
        hours, minutes = divmod(location.max_booking_minutes, 60)
        return f"Bookings at {location.name} may last at most {hours}h{minutes:02d}."
    if start < now - PAST_GRACE:
        return "That time is in the past."
    if horizon and start > now + timedelta(days=location.booking_horizon_days):
        return (
            f"Bookings at {location.name} may be made at most "
            f"{location.booking_horizon_days} days ahead."
        )
    hours = {h.weekday: h for h in location.opening_hours.all()}
    day_hours = hours.get(local_start.weekday())
    if day_hours is None:
        return f"{location.name} is closed on {local_start:%A}s."
    if (
        local_end.date() != local_start.date()
        or local_start.time() < day_hours.opens
        or local_end.time() > day_hours.closes
    ):
        return (
            f"{location.name} is open {day_hours.opens:%H:%M}-{day_hours.closes:%H:%M} "
            f"on {local_start:%A}s ({location.time_zone})."
        )
    return None


def closure_problem(space: Space, start: datetime, end: datetime) -> str | None:
    """Why [start, end) is closed for this space (its own or its location's closure), or None.
    Applies to every source, remote ones included: a closed room is closed in Outlook too."""
    return _closure_checker(space, [(start, end)])(start, end)


def _closure_checker(
    space: Space, spans: Sequence[tuple[datetime, datetime]]
) -> Callable[[datetime, datetime], str | None]:
    """``closure_problem`` for many slots of one space (a series) with one read of the
    closures, rather than one query per occurrence."""
    if not spans:
        return lambda start, end: None
    found = closures.periods_for(space, min(s for s, _ in spans), max(e for _, e in spans))

    def problem(start: datetime, end: datetime) -> str | None:
        period = next((p for p in found if p.start < end and p.end > start), None)
        return closures.notice(period, space) if period else None

    return problem


def _clashes_for(
    space: Space, start: datetime, end: datetime, exclude_ids: Iterable[int] = ()
) -> list[Clash]:
    """The bookings a booking of [start, end) would collide with, buffers included."""
    found = queries.clashes(
        space.pk, start, end, exclude_ids, setup=space.setup, cleanup=space.cleanup
    )
    return [_clash(space, start, end, r) for r in found]


def _clash(space: Space, start: datetime, end: datetime, other: Reservation) -> Clash:
    zone_name = space.location.time_zone
    reason = buffers.explain(
        space.name,
        ZoneInfo(zone_name),
        start=start,
        end=end,
        setup=space.setup,
        cleanup=space.cleanup,
        other_start=other.start,
        other_end=other.end,
        other_buffered_start=other.buffered_start,
        other_buffered_end=other.buffered_end,
    )
    if reason is None:
        return Clash(other.pk, space.name, other.start, other.end, zone_name)
    return BufferClash(other.pk, space.name, other.start, other.end, zone_name, reason)


def _check_rules(
    action: rules.Action, actor: AbstractBaseUser | None, reservation: Reservation, source: str
):
    if actor is None:  # background sync acts for the provider, not a person
        return
    decision = rules.check(action, actor, reservation, source)
    if not decision:
        raise NotAllowed(decision.reason)


def _check_limits(
    person_limits: limits.PersonLimits,
    person: AbstractBaseUser | None,
    space: Space,
    slots: Sequence[tuple[datetime, datetime]],
    *,
    now: datetime,
    replacing: Sequence[Reservation] = (),
) -> None:
    """Raise LimitExceeded when the slots take the person over a limit. Called after the
    space lock; the person's row is locked too when a limit counts their bookings, so two
    bookings of different spaces for one person cannot both pass (PostgreSQL; SQLite's
    transactions are serialized already). Persons are locked after spaces, always."""
    if person is None or (not person_limits.counts and not person_limits.overlap_kinds(space)):
        return
    get_user_model().objects.select_for_update().filter(pk=person.pk).first()
    over = limits.excess(person_limits, person, space, slots, now=now, replacing=replacing)
    if over:
        raise LimitExceeded(over)


def limit_problem(
    space: Space, start: datetime, end: datetime, person: AbstractBaseUser | None
) -> str | None:
    """Why a booking of [start, end) in this space for ``person`` would break their counts,
    hours or overlap limits, or None (read only: the pull's reason for a conflicted remote
    event moved again)."""
    person_limits = limits.for_person(person, space.location)
    return limits.excess(person_limits, person, space, [(start, end)], now=timezone.now())


def _conflict(clashes, unavailable, bookable, *, series: bool) -> Conflict:
    # "closed" only when a closure is the whole story; a taken slot among them is a conflict.
    error = Closed if unavailable and all(u.closed for u in unavailable) else Conflict
    if not series:
        message = unavailable[0].reason
    else:
        dates = ", ".join(f"{u.day:%a %d %b}" for u in unavailable)
        message = (
            f"{len(unavailable)} of {len(unavailable) + len(bookable)} dates cannot be booked: "
            f"{dates}."
        )
        if bookable:
            message += f" The other {len(bookable)} dates are free."
    return error(message, clashes=clashes, unavailable=unavailable, bookable=bookable)
