"""Check-in and the release of no-shows.

A location (overridden per space) may require people to check in to their bookings. The
window opens ``check_in_opens_minutes`` before the start and closes ``check_in_closes_minutes``
after it (never after the end). A confirmed booking nobody checked in to by then is a no-show:
the beat task ``reservations.release_no_shows`` hands each one to ``services.release_no_show``
within a minute, which either releases the rest of the slot (status ``released``, the times
kept) or cancels the whole booking (the location's ``no_show_action``); either way a history
entry, an email, the remote event removed by the ordinary push, the slot bookable at once, and
the released minutes added to the day's ``SpaceDayUsage`` row.

This module holds the policy and the reads; the writes are in ``services`` (``check_in``,
``release_no_show``, ``claim_check_in_reminder``). The reminder email carries a signed link
(``make_token``) to ``/check-in/<token>/``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.core import signing
from django.db.models import F
from django.db.models.functions import Coalesce
from django.urls import reverse

from . import emails
from .models import (
    MAX_CHECK_IN_MINUTES,
    Display,
    NoShowAction,
    Reservation,
    ReservationStatus,
    Source,
    Space,
    SpaceDayUsage,
)
from .rules import can_manage_all, is_own

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

TOKEN_SALT = "reservations.check-in"  # noqa: S105 - a signing salt, not a secret
# The longest window there can be, so one query can bound the candidates of every space.
WIDEST = timedelta(minutes=MAX_CHECK_IN_MINUTES)


@dataclass(frozen=True)
class CheckInPolicy:
    """The check-in rule of one space, its overrides resolved against its location."""

    required: bool
    opens_before: timedelta
    closes_after: timedelta
    no_show_action: str


def policy_for(space: Space) -> CheckInPolicy:
    """The space's check-in rule: each setting is the space's own, or its location's."""
    location = space.location

    def pick(own, default):
        return default if own is None or own == "" else own

    return CheckInPolicy(
        required=bool(pick(space.check_in_required, location.check_in_required)),
        opens_before=timedelta(
            minutes=pick(space.check_in_opens_minutes, location.check_in_opens_minutes)
        ),
        closes_after=timedelta(
            minutes=pick(space.check_in_closes_minutes, location.check_in_closes_minutes)
        ),
        no_show_action=pick(space.no_show_action, location.no_show_action),
    )


@dataclass(frozen=True)
class Window:
    opens: datetime
    closes: datetime

    def contains(self, moment: datetime) -> bool:
        return self.opens <= moment < self.closes


def window(reservation: Reservation, policy: CheckInPolicy | None = None) -> Window:
    """When the person may check in: around the start, closing at the latest at the end."""
    policy = policy or policy_for(reservation.space)
    closes = min(reservation.start + policy.closes_after, reservation.end)
    return Window(reservation.start - policy.opens_before, closes)


def describe_window(reservation: Reservation, policy: CheckInPolicy | None = None) -> str:
    """ "from 09:45 to 10:15 (Europe/London)", in the location's zone."""
    location = reservation.space.location
    found = window(reservation, policy)
    opens, closes = found.opens.astimezone(location.zone), found.closes.astimezone(location.zone)
    return f"from {opens:%H:%M} to {closes:%H:%M} ({location.time_zone})"


def no_show_reason(reservation: Reservation, policy: CheckInPolicy) -> str:
    """The history's and the email's words for a no-show."""
    closes = window(reservation, policy).closes.astimezone(reservation.space.location.zone)
    verb = "Released" if policy.no_show_action == NoShowAction.RELEASE else "Cancelled"
    return f"{verb}: nobody checked in by {closes:%H:%M}"


def can_check_in_now(reservation: Reservation, now: datetime) -> bool:
    """Whether to offer a Check in button: required here, confirmed, not checked in, open."""
    if reservation.status != ReservationStatus.CONFIRMED or reservation.checked_in_at:
        return False
    policy = policy_for(reservation.space)
    return policy.required and window(reservation, policy).contains(now)


def may_check_in(user: AbstractBaseUser, reservation: Reservation, *, source: str = "") -> bool:
    """The person it is for, who booked it, its organizer (same email), or a manager; from a
    room display (``source`` display), the display of the booking's own room."""
    if not getattr(user, "is_authenticated", False):
        return False
    if source == Source.DISPLAY:
        return Display.acts_for(user, reservation.space_id)
    if is_own(user, reservation):
        return True
    email = (getattr(user, "email", "") or "").lower()
    organizer = (reservation.organizer_email or "").lower()
    if email and reservation.requested_for_id is None and email == organizer:
        return True
    return can_manage_all(user)


def _candidates(now: datetime):
    """Confirmed, not checked-in bookings of check-in spaces around ``now``: one query (the
    windows differ per space, so the exact test is done on these few rows in Python)."""
    return (
        Reservation.objects.annotate(
            _check_in=Coalesce(
                F("space__check_in_required"), F("space__location__check_in_required")
            )
        )
        .filter(
            _check_in=True,  # the space's override, else its location's setting
            status=ReservationStatus.CONFIRMED,
            checked_in_at__isnull=True,
            released_at__isnull=True,
            start__lte=now + WIDEST,
            start__gte=now - WIDEST,
            end__gt=now,
        )
        .select_related("space__location", "requested_for")
        .order_by("start", "pk")
    )


def due_for_release(now: datetime) -> list[int]:
    """Ids of the no-shows: bookings whose check-in window has closed, not yet over."""
    return [r.pk for r in _candidates(now) if window(r).closes <= now]


def due_for_reminder(now: datetime) -> list[int]:
    """Ids of bookings whose check-in window is open and whose reminder was not sent."""
    return [
        r.pk
        for r in _candidates(now).filter(check_in_reminded_at__isnull=True)
        if window(r).contains(now)
    ]


def released_minutes(reservation: Reservation, released_at: datetime) -> int:
    """Whole minutes given back: from the release (or the start) to the end."""
    freed = reservation.end - max(reservation.start, released_at)
    return max(0, int(freed.total_seconds() // 60))


def record_released_minutes(reservation: Reservation, released_at: datetime) -> None:
    """Add the released minutes to the space's row for the day (in the location's zone): an
    increment in the caller's transaction, so the rollup and the release commit together."""
    minutes = released_minutes(reservation, released_at)
    day = reservation.start.astimezone(reservation.space.location.zone).date()
    row, created = SpaceDayUsage.objects.select_for_update().get_or_create(
        space_id=reservation.space_id, day=day, defaults={"released_minutes": minutes}
    )
    if not created:
        SpaceDayUsage.objects.filter(pk=row.pk).update(
            released_minutes=F("released_minutes") + minutes
        )


# --- the signed link of the reminder ---------------------------------------------------------


class TokenInvalid(Exception):
    """The link was altered or is not a check-in link."""


class TokenExpired(Exception):
    """The link was genuine but its check-in window has closed."""


def make_token(reservation: Reservation) -> str:
    """A signed token naming the booking, valid until its check-in window closes."""
    closes = window(reservation).closes
    return signing.dumps({"r": reservation.pk, "u": int(closes.timestamp())}, salt=TOKEN_SALT)


def read_token(token: str, now: datetime) -> int:
    """The booking id in a token; TokenInvalid when altered, TokenExpired after the window."""
    try:
        data = signing.loads(token, salt=TOKEN_SALT)
    except signing.BadSignature as exc:
        raise TokenInvalid() from exc
    if not isinstance(data, dict) or not isinstance(data.get("r"), int):
        raise TokenInvalid()
    if now.timestamp() >= data.get("u", 0):
        raise TokenExpired()
    return data["r"]


def check_in_link(reservation: Reservation) -> str:
    return settings.PUBLIC_BASE_URL + reverse(
        "portal:check_in_link", args=[make_token(reservation)]
    )


def reminder_recipients(reservation: Reservation) -> list[str]:
    """The person the booking is for; a booking made in Outlook/Google by someone who is not
    a Reserva user: its organizer."""
    person = reservation.requested_for
    if person is not None and person.email:
        return [person.email]
    return [reservation.organizer_email] if reservation.organizer_email else []


def send_reminder(reservation: Reservation) -> int:
    """Email the check-in reminder with its link; returns how many emails were sent."""
    recipients = reminder_recipients(reservation)
    if not recipients:
        return 0
    space, location = reservation.space, reservation.space.location
    start = reservation.start.astimezone(location.zone)
    policy = policy_for(space)
    closes = window(reservation, policy).closes.astimezone(location.zone)
    then = (
        "the rest of the slot will be released for others"
        if policy.no_show_action == NoShowAction.RELEASE
        else "the booking will be cancelled"
    )
    person = reservation.requested_for
    email = emails.Email(
        subject=f"Check in: {space.name}, {start:%a %d %b %H:%M}",
        headline=f"Check in to {space.name}",
        paragraphs=[
            f"Your booking of {space.name} at {location.name} starts at {start:%H:%M} "
            f"on {start:%a %d %b %Y} ({location.time_zone}).",
            f"Please check in by {closes:%H:%M}, or {then}.",
        ],
        booking=emails.booking_card([reservation], emails.reader_zone(person)),
        actions=[emails.Action("Check in", check_in_link(reservation))],
        notes=[f"You can also check in from My reservations: {settings.PUBLIC_BASE_URL}/my/"],
    )
    return email.message(recipients).send()
