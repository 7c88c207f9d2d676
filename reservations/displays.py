"""Room displays: the wall tablet at a space's door (``Display``, ``/display/<token>/``).

- **Pairing.** An administrator adds a display for a space (``create``): Reserva makes its
  account (``user``: it cannot sign in; the display books and acts as it) and a one-time
  6-digit code, valid ``PAIRING_MINUTES``. The tablet opens ``/display/pair/`` and types it
  (``pair``): the code is used up, a long random token is issued and the tablet is sent to
  ``/display/<token>/``. Only the token's SHA-256 and the code's HMAC are stored (as
  ``feeds`` does with feed keys). Wrong codes are counted per address and overall in the
  cache (``PAIRING_ATTEMPTS``), so nobody can try the million codes. ``revoke`` ends it.
- **State** (``state``): what the page shows, read in one pass: free or busy now, the current
  and next bookings (the public nickname or "Reserved", never a title or a name), which
  *Book now* lengths fit before the next booking and within the opening hours, and whether the
  current booking can be checked in, ended or extended. ``etag`` is the cheap fingerprint the
  page's 5-second poll is answered 304 with while nothing changed.
- **Actions** (``book_now``, ``check_in``, ``end_early``, ``extend``) call
  ``reservations.services`` as the display's account with source *Display*, so closures,
  opening hours, approvals, limits and the sync rules apply as everywhere; a refusal is the
  service's ``BookingError`` with its message for the tablet.
- **Not seen** (``alert_offline``, beat every minute): a paired display not seen for
  ``OFFLINE_AFTER`` while its location is open is reported to the admins by email, once per
  outage.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Count, Max, Q
from django.urls import reverse
from django.utils import timezone
from django.utils.crypto import salted_hmac

from . import approvals, checkin, closures, queries, services
from .models import (
    SLOT_HOLDING_STATUSES,
    Display,
    Reservation,
    ReservationStatus,
    Source,
    Space,
)

PAIRING_MINUTES = 10
# Wrong codes: at most this many per address, and this many from everyone, per window.
PAIRING_ATTEMPTS = 5
PAIRING_ATTEMPTS_ALL = 100
PAIRING_WINDOW_SECONDS = 600
SEEN_RESOLUTION = timedelta(seconds=30)
OFFLINE_AFTER = timedelta(minutes=15)
BOOK_MINUTES = (15, 30, 60)
EXTEND_MINUTES = (15, 30)
RESERVED = "Reserved"
WALK_IN = "Walk-in"
COOKIE = "reserva_display"


class PairingRefused(Exception):
    """A pairing code that is wrong, expired, used, or typed too often; ``message`` says so."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# --- pairing ---------------------------------------------------------------------------------


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _hash_code(code: str) -> str:
    # A keyed hash: six digits would be reversed from a plain SHA-256 in a second.
    return salted_hmac("reservations.display-pairing", code).hexdigest()


def _new_code() -> str:
    return f"{secrets.randbelow(10**6):06d}"


@dataclass(frozen=True)
class Pairing:
    """A display waiting to be paired: the only moment its code is known."""

    display: Display
    code: str


@transaction.atomic
def create(
    *, space: Space, name: str = "", created_by=None, now: datetime | None = None
) -> Pairing:
    """A new display of ``space`` with its account and a pairing code."""
    now = now or timezone.now()
    user = get_user_model().objects.create_user(
        username=f"display-{secrets.token_hex(6)}",
        first_name="Room display",
        last_name=space.name[:150],
    )  # no password and no email: nobody can sign in as it
    display = Display.objects.create(space=space, name=name, user=user, created_by=created_by)
    return Pairing(display, new_code(display, now=now))


def new_code(display: Display, *, now: datetime | None = None) -> str:
    """Give ``display`` a fresh pairing code (the old one stops working); returns the code.
    A paired display that gets a new code keeps working until the code is used."""
    now = now or timezone.now()
    while True:
        code = _new_code()
        taken = Display.objects.filter(
            pairing_code_hash=_hash_code(code), pairing_expires_at__gt=now
        ).exists()
        if not taken:
            break
    display.pairing_code_hash = _hash_code(code)
    display.pairing_expires_at = now + timedelta(minutes=PAIRING_MINUTES)
    display.save(update_fields=["pairing_code_hash", "pairing_expires_at"])
    return code


def _count_attempt(address: str) -> bool:
    """Count a pairing attempt; False when the address (or everyone) has tried too often."""
    keys = ((f"display-pair:{address}", PAIRING_ATTEMPTS), ("display-pair:*", PAIRING_ATTEMPTS_ALL))
    allowed = True
    for key, limit in keys:
        cache.add(key, 0, PAIRING_WINDOW_SECONDS)
        try:
            count = cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.set(key, 1, PAIRING_WINDOW_SECONDS)
            count = 1
        allowed = allowed and count <= limit
    return allowed


def pair(code: str, *, address: str, now: datetime | None = None) -> tuple[Display, str]:
    """Pair the display whose code this is; returns it and its new token (shown once: the
    tablet is redirected to its URL). Raises PairingRefused."""
    now = now or timezone.now()
    code = "".join(ch for ch in code if ch.isdigit())
    if not _count_attempt(address):
        raise PairingRefused(
            "Too many pairing attempts. Wait ten minutes, then try again with a new code."
        )
    if len(code) != 6:
        raise PairingRefused("The pairing code has 6 digits.")
    with transaction.atomic():
        display = (
            Display.objects.select_for_update()
            .select_related("space__location")
            .filter(pairing_code_hash=_hash_code(code), revoked_at__isnull=True)
            .first()
        )
        if display is None:
            raise PairingRefused("That pairing code is not valid. Check it in the admin.")
        if display.pairing_expires_at is None or display.pairing_expires_at <= now:
            raise PairingRefused("That pairing code has expired. Make a new one in the admin.")
        token = secrets.token_urlsafe(32)
        display.token_hash = hash_token(token)
        display.pairing_code_hash, display.pairing_expires_at = "", None
        display.paired_at, display.last_seen_at, display.offline_alerted_at = now, now, None
        display.save()
    # A wrong code made the same address count down; a right one starts it again.
    cache.delete(f"display-pair:{address}")
    return display, token


def set_token(display: Display, token: str, *, now: datetime | None = None) -> None:
    """Pair ``display`` with a chosen token (the demo's documented one, ``seed_demo``)."""
    now = now or timezone.now()
    display.token_hash = hash_token(token)
    display.pairing_code_hash, display.pairing_expires_at = "", None
    display.paired_at = display.paired_at or now
    display.revoked_at = None
    display.save()


def revoke(display: Display, *, now: datetime | None = None) -> bool:
    """End the display's pairing; its URL shows "not paired" from the next poll on."""
    now = now or timezone.now()
    return bool(
        Display.objects.filter(pk=display.pk, revoked_at__isnull=True).update(
            revoked_at=now, pairing_code_hash="", pairing_expires_at=None
        )
    )


def by_token(token: str) -> Display | None:
    """The paired, unrevoked display whose token this is, or None."""
    if not token:
        return None  # an empty hash would match every unpaired display
    return (
        Display.objects.select_related("space__location", "user")
        .filter(token_hash=hash_token(token), revoked_at__isnull=True, paired_at__isnull=False)
        .first()
    )


def record_seen(display: Display, *, now: datetime | None = None) -> None:
    """Note that the display polled: written at most every ``SEEN_RESOLUTION``."""
    now = now or timezone.now()
    if display.last_seen_at is not None and now - display.last_seen_at < SEEN_RESOLUTION:
        return
    Display.objects.filter(pk=display.pk).update(last_seen_at=now, offline_alerted_at=None)
    display.last_seen_at, display.offline_alerted_at = now, None


# --- what the page shows ---------------------------------------------------------------------


@dataclass(frozen=True)
class Shown:
    """A booking as the display shows it: no title, no person."""

    pk: int
    label: str
    start: datetime  # in the location's zone
    end: datetime
    pending: bool
    checked_in: bool
    can_check_in: bool


@dataclass
class State:
    display: Display
    now: datetime  # in the location's zone
    open_now: bool
    closed_reason: str = ""
    current: Shown | None = None
    next: Shown | None = None
    later: list[Shown] = field(default_factory=list)
    needs_approval: str = ""  # why Book now is not offered: the room's bookings need approval
    book: list[tuple[int, datetime]] = field(default_factory=list)  # (minutes, until)
    extend: list[tuple[int, datetime]] = field(default_factory=list)
    opens_next: datetime | None = None

    @property
    def space(self) -> Space:
        return self.display.space

    @property
    def busy(self) -> bool:
        return self.current is not None

    @property
    def free_until(self) -> datetime | None:
        return self.next.start if self.next else None


def _local_day(space: Space, now: datetime) -> tuple[datetime, datetime]:
    zone = space.location.zone
    local = now.astimezone(zone)
    start = local.replace(hour=0, minute=0, second=0, microsecond=0)
    return start, start + timedelta(days=1)


def _today(space: Space, now: datetime):
    _day_start, day_end = _local_day(space, now)
    return (
        Reservation.objects.filter(
            space=space, status__in=SLOT_HOLDING_STATUSES, end__gt=now, start__lt=day_end
        )
        .select_related("space__location")
        .order_by("start", "pk")
    )


def _shown(reservation: Reservation, now: datetime) -> Shown:
    zone = reservation.space.location.zone
    return Shown(
        pk=reservation.pk,
        label=reservation.public_nickname or RESERVED,
        start=reservation.start.astimezone(zone),
        end=reservation.end.astimezone(zone),
        pending=reservation.status == ReservationStatus.PENDING,
        checked_in=reservation.checked_in_at is not None,
        can_check_in=checkin.can_check_in_now(reservation, now),
    )


def _fits(space: Space, start: datetime, end: datetime, now: datetime, exclude=()) -> bool:
    """Whether the service would accept [start, end) (opening hours, maximum length, closures,
    other bookings and buffers); the service checks again when the button is pressed."""
    if services.slot_problem(space, start, end, now=min(now, start)):
        return False
    if services.closure_problem(space, start, end):
        return False
    return not queries.clashes(
        space.pk, start, end, exclude, setup=space.setup, cleanup=space.cleanup
    )


def _open_at(space: Space, now: datetime) -> tuple[bool, str]:
    """Whether the location is open at ``now`` (opening hours, no closure), and the closure's
    reason when one applies."""
    location = space.location
    local = now.astimezone(location.zone)
    hours = next((h for h in location.opening_hours.all() if h.weekday == local.weekday()), None)
    if hours is None or not (hours.opens <= local.time() < hours.closes):
        return False, ""
    period = next(iter(closures.periods_for(space, now, now + timedelta(seconds=1))), None)
    if period is not None:
        return False, closures.notice(period, space)
    return True, ""


def _next_opening(space: Space, now: datetime) -> datetime | None:
    location = space.location
    hours = {h.weekday: h for h in location.opening_hours.all()}
    local = now.astimezone(location.zone)
    for offset in range(8):
        day = local.date() + timedelta(days=offset)
        row = hours.get(day.weekday())
        if row is None:
            continue
        opens = datetime.combine(day, row.opens, tzinfo=location.zone)
        if opens > now:
            return opens
    return None


def state(display: Display, *, now: datetime | None = None) -> State:
    now = now or timezone.now()
    space = display.space
    zone = space.location.zone
    open_now, closed_reason = _open_at(space, now)
    found = State(display, now.astimezone(zone), open_now, closed_reason)
    rows = list(_today(space, now))
    current = next((r for r in rows if r.start <= now < r.end), None)
    upcoming = [r for r in rows if r.start > now]
    if current is not None:
        found.current = _shown(current, now)
    if upcoming:
        found.next = _shown(upcoming[0], now)
        found.later = [_shown(r, now) for r in upcoming[1:4]]
    if not open_now:
        found.opens_next = _next_opening(space, now)
        if found.opens_next is not None:
            found.opens_next = found.opens_next.astimezone(zone)
        return found
    start = now.replace(second=0, microsecond=0)
    rule = approvals.needs_approval(space, display.user) if current is None else None
    if rule is not None:
        found.needs_approval = _approval_refusal(rule)
    elif current is None:
        found.book = [
            (minutes, (start + timedelta(minutes=minutes)).astimezone(zone))
            for minutes in BOOK_MINUTES
            if _fits(space, start, start + timedelta(minutes=minutes), now)
        ]
    else:
        found.extend = [
            (minutes, (current.end + timedelta(minutes=minutes)).astimezone(zone))
            for minutes in EXTEND_MINUTES
            if _fits(
                space, current.start, current.end + timedelta(minutes=minutes), now, [current.pk]
            )
        ]
    return found


def etag(display: Display, *, now: datetime | None = None) -> str:
    """A fingerprint of everything the page shows: the space's bookings of today (count,
    latest change, highest id), the minute (times move on), the display's own state and the
    space's name. One aggregate query; equal tags mean the page would be the same."""
    now = now or timezone.now()
    space = display.space
    day_start, day_end = _local_day(space, now)
    summary = Reservation.objects.filter(
        space=space, end__gt=day_start, start__lt=day_end
    ).aggregate(n=Count("id"), last=Max("updated"), top=Max("id"))
    minute = now.replace(second=0, microsecond=0).isoformat()
    raw = (
        f"{display.pk}|{display.revoked_at}|{space.name}|{summary['n']}|{summary['last']}|"
        f"{summary['top']}|{minute}"
    )
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


# --- actions ---------------------------------------------------------------------------------


def _booking(display: Display, reservation_id) -> Reservation:
    try:
        pk = int(reservation_id)
    except (TypeError, ValueError):
        pk = 0
    row = Reservation.objects.select_related("space__location").filter(pk=pk, space=display.space)
    reservation = row.first()
    if reservation is None:
        raise services.BookingError("That booking is not in this room any more.")
    return reservation


def _minutes(value, allowed: tuple[int, ...]) -> int:
    try:
        minutes = int(value)
    except (TypeError, ValueError):
        minutes = 0
    if minutes not in allowed:
        choices = ", ".join(str(m) for m in allowed)
        raise services.BookingError(f"Choose {choices} minutes.")
    return minutes


def _hhmm(moment: datetime, display: Display) -> str:
    return f"{moment.astimezone(display.space.location.zone):%H:%M}"


def _approval_refusal(rule) -> str:
    return f"{approvals.notice(rule)}: book this room in the portal."


def book_now(display: Display, minutes, *, now: datetime | None = None) -> str:
    """Book the room from now for ``minutes`` (15, 30 or 60) as the display; returns the
    message for the tablet. Raises services.BookingError with the service's reason. Not in a
    room whose bookings need approval: a walk-in starting now would be past its approval
    deadline at once (``approvals.deadline``) and declined within a minute."""
    now = now or timezone.now()
    minutes = _minutes(minutes, BOOK_MINUTES)
    rule = approvals.needs_approval(display.space, display.user)
    if rule is not None:
        raise services.NotAllowed(_approval_refusal(rule))
    start = now.replace(second=0, microsecond=0)
    result = services.book(
        actor=display.user,
        space=display.space,
        start=start,
        end=start + timedelta(minutes=minutes),
        title=f"Booked on the display of {display.space.name}",
        public_nickname=WALK_IN,
        source=Source.DISPLAY,
        now=now,
    )
    booking = result.reservations[0]
    if booking.status == ReservationStatus.PENDING:
        return f"Requested until {_hhmm(booking.end, display)}: it awaits approval."
    return f"Booked until {_hhmm(booking.end, display)}."


def check_in(display: Display, reservation_id, *, now: datetime | None = None) -> str:
    now = now or timezone.now()
    reservation = services.check_in(
        actor=display.user,
        reservation=_booking(display, reservation_id),
        source=Source.DISPLAY,
        now=now,
    )
    return f"Checked in at {_hhmm(reservation.checked_in_at, display)}."


def end_early(display: Display, reservation_id, *, now: datetime | None = None) -> str:
    """End the current booking now (at the start of this minute), so the room is free at
    once; one that started less than a minute ago is cancelled instead (it would last no
    time). A booking that has not started yet is not "ended": it is changed in the portal."""
    now = now or timezone.now()
    reservation = _booking(display, reservation_id)
    if reservation.start > now:
        raise services.BookingError("This booking has not started yet.")
    end = now.replace(second=0, microsecond=0)
    if end >= reservation.end:
        return f"This booking ends at {_hhmm(reservation.end, display)} anyway."
    if end <= reservation.start:
        services.cancel(
            actor=display.user,
            reservation=reservation,
            reason="Ended on the room display",
            source=Source.DISPLAY,
            now=now,
        )
    else:
        services.change(
            actor=display.user, reservation=reservation, end=end, source=Source.DISPLAY, now=now
        )
    return "Ended. The room is free."


def extend(display: Display, reservation_id, minutes, *, now: datetime | None = None) -> str:
    now = now or timezone.now()
    minutes = _minutes(minutes, EXTEND_MINUTES)
    reservation = _booking(display, reservation_id)
    [changed] = services.change(
        actor=display.user,
        reservation=reservation,
        end=reservation.end + timedelta(minutes=minutes),
        source=Source.DISPLAY,
        now=now,
    )
    return f"Extended until {_hhmm(changed.end, display)}."


# --- not seen --------------------------------------------------------------------------------


def _admin_emails() -> list[str]:
    people = get_user_model().objects.filter(is_active=True, is_superuser=True).exclude(email="")
    listed = [email for _, email in (*settings.ADMINS, *settings.MANAGERS)]
    return sorted({p.email for p in people} | set(listed))


def offline(now: datetime) -> list[Display]:
    """Paired displays not seen for ``OFFLINE_AFTER`` whose location is open now, not yet
    reported for this outage."""
    since = now - OFFLINE_AFTER
    candidates = (
        Display.objects.filter(
            paired_at__isnull=False, revoked_at__isnull=True, offline_alerted_at__isnull=True
        )
        .filter(Q(last_seen_at__lt=since) | Q(last_seen_at__isnull=True, paired_at__lt=since))
        .select_related("space__location")
        .prefetch_related("space__location__opening_hours")
    )
    return [d for d in candidates if _open_at(d.space, now)[0]]


def alert_offline(*, now: datetime | None = None) -> int:
    """Email the admins about each display not seen for 15 minutes during opening hours,
    once per outage (a conditional update claims it; seeing the display again clears it).
    Returns how many displays were reported."""
    now = now or timezone.now()
    reported = 0
    for display in offline(now):
        claimed = Display.objects.filter(pk=display.pk, offline_alerted_at__isnull=True).update(
            offline_alerted_at=now
        )
        if not claimed:
            continue
        reported += 1
        recipients = _admin_emails()
        if not recipients:
            continue
        seen = display.last_seen_at or display.paired_at
        zone = display.space.location.zone
        link = settings.PUBLIC_BASE_URL + reverse(
            "admin:reservations_display_change", args=[display.pk]
        )
        send_mail(
            f"[Reserva] Room display offline: {display.space.name}",
            f"The room display of {display.space.name} ({display.space.location.name}) has not "
            f"been seen since {seen.astimezone(zone):%a %d %b %H:%M} "
            f"({display.space.location.time_zone}), during opening hours.\n\n"
            "Check that the tablet is on, charged and on the network, and that its page is "
            f"open. The display in the admin:\n{link}\n\n"
            "You get this email once per outage.",
            None,
            recipients,
            fail_silently=True,
        )
    return reported
