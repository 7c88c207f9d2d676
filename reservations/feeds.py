"""Live iCalendar feeds: one per person (their bookings) and one per space (busy blocks).

Calendar apps cannot sign in, so the URL carries the credential: a long random key
(``FeedToken``) that the person rotates or revokes on their profile page, and an administrator
for a space. A space's feed shows only the public nickname or "Reserved", never titles or names.

Only the key's SHA-256 is stored. The URL is shown once, in the answer that issues it (like an
API client secret); afterwards the profile page and the admin say only that a feed exists, when
it was created and last used. A request is looked up by the hash of its key: with 256 random
bits, finding a key whose hash matches is as hard as guessing the key itself, so there is no
comparison an attacker could time, and no constant-time compare is needed.

Each event keeps the UID of the booking emails (``notifications.reservation_uid``) and the
reservation's version as SEQUENCE, so an app that got the invitation updates the same entry.
Cancelled bookings stay in the feed for a while as STATUS:CANCELLED, so apps remove them.
The ETag comes from one aggregate query, so a poll that finds nothing new costs one query and
a 304 with no body.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.db.models import Count, Max, QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import condition, require_POST
from icalendar import Calendar, Event

from .models import FeedToken, Reservation, ReservationStatus, Space
from .notifications import reservation_uid
from .views.profile import profile_page

RESERVED = "Reserved"
CANCELLED_FEED_STATES = {
    ReservationStatus.CANCELLED,
    ReservationStatus.CONFLICTED,
    ReservationStatus.RELEASED,  # nobody checked in: the slot was given back
}
# last_used_at is written at most this often per feed: apps poll every few minutes, and a
# write per poll would cost more than the read it records.
LAST_USED_RESOLUTION = timedelta(minutes=10)


@dataclass(frozen=True)
class IssuedFeed:
    """A feed just issued: the only moment its key (and so its URL) is known."""

    token: FeedToken
    key: str

    @property
    def url(self) -> str:
        return feed_url(self.key)

    @property
    def webcal(self) -> str:
        return feed_url(self.key, webcal=True)


def new_key() -> str:
    return secrets.token_urlsafe(32)  # 256 bits: not guessable, not enumerable


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@transaction.atomic
def issue(*, user=None, space: Space | None = None) -> IssuedFeed:
    """Revoke the current key of this feed (if any) and issue a new one (rotation)."""
    revoke(user=user, space=space)
    key = new_key()
    token = FeedToken.objects.create(key_hash=hash_key(key), user=user, space=space)
    return IssuedFeed(token=token, key=key)


def revoke(*, user=None, space: Space | None = None) -> int:
    tokens = FeedToken.objects.filter(revoked_at__isnull=True)
    tokens = tokens.filter(user=user) if user is not None else tokens.filter(space=space)
    return tokens.update(revoked_at=timezone.now())


def active_token(*, user=None, space: Space | None = None) -> FeedToken | None:
    tokens = FeedToken.objects.filter(revoked_at__isnull=True)
    tokens = tokens.filter(user=user) if user is not None else tokens.filter(space=space)
    return tokens.first()


def feed_url(key: str, *, webcal: bool = False) -> str:
    url = f"{settings.PUBLIC_BASE_URL}/feeds/{key}.ics"
    return "webcal://" + url.split("://", 1)[1] if webcal else url


# --- building -------------------------------------------------------------------------------


def _token(key: str) -> FeedToken:
    token = (
        FeedToken.objects.select_related("user", "space__location")
        .filter(key_hash=hash_key(key), revoked_at__isnull=True)
        .first()
    )
    # Deactivating a user revokes their feeds (receivers.revoke_access_of_deactivated_user);
    # this check still covers a deactivation that bypassed save(), e.g. QuerySet.update().
    if token is None or (token.user is not None and not token.user.is_active):
        raise Http404("No such feed.")
    _record_use(token)
    return token


def _record_use(token: FeedToken) -> None:
    now = timezone.now()
    if token.last_used_at is not None and now - token.last_used_at < LAST_USED_RESOLUTION:
        return
    FeedToken.objects.filter(pk=token.pk).update(last_used_at=now)
    token.last_used_at = now


def _reservations(token: FeedToken) -> QuerySet[Reservation]:
    since = timezone.now() - timedelta(days=settings.FEED_PAST_DAYS)
    reservations = Reservation.objects.filter(end__gte=since).select_related("space__location")
    if token.user is not None:
        return reservations.filter(requested_for=token.user)
    return reservations.filter(space=token.space)


def _etag(request: HttpRequest, key: str) -> str:
    token = _token(key)
    summary = _reservations(token).aggregate(n=Count("id"), last=Max("updated"), top=Max("id"))
    # The window's start moves daily, and a space's name can change: both are in the tag.
    day = timezone.now().date().isoformat()
    name = token.space.name if token.space else ""
    raw = f"{token.pk}|{summary['n']}|{summary['last']}|{summary['top']}|{day}|{name}"
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


def build_feed(token: FeedToken) -> bytes:
    personal = token.user is not None
    cal = Calendar()
    cal.add("prodid", "-//Reserva//Feeds//EN")
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", "PUBLISH")
    name = f"Reserva: {token.user.get_username()}" if personal else f"Reserva: {token.space.name}"
    cal.add("x-wr-calname", name)
    cal.add("refresh-interval", timedelta(minutes=15), parameters={"VALUE": "DURATION"})
    for reservation in _reservations(token).order_by("start", "pk"):
        location = reservation.space.location
        event = Event()
        event.add("uid", reservation_uid(reservation))
        event.add("sequence", reservation.version)
        event.add("dtstamp", reservation.updated)
        event.add("last-modified", reservation.updated)
        event.add("dtstart", reservation.start.astimezone(location.zone))
        event.add("dtend", reservation.end.astimezone(location.zone))
        if personal:
            event.add("summary", reservation.title or f"Booking: {reservation.space.name}")
            if reservation.description:
                event.add("description", reservation.description)
        else:
            # Busy blocks only: no title, description, organizer or attendees.
            event.add("summary", reservation.public_nickname or RESERVED)
            event.add("class", "PRIVATE" if not reservation.public_nickname else "PUBLIC")
        event.add("location", f"{reservation.space.name}, {location.name}")
        cancelled = reservation.status in CANCELLED_FEED_STATES
        pending = reservation.status == ReservationStatus.PENDING
        event.add("status", "CANCELLED" if cancelled else "TENTATIVE" if pending else "CONFIRMED")
        event.add("transp", "TRANSPARENT" if cancelled else "OPAQUE")
        cal.add_component(event)
    cal.add_missing_timezones()  # a VTIMEZONE for every TZID used
    return cal.to_ical()


@condition(etag_func=_etag)
def feed(request: HttpRequest, key: str) -> HttpResponse:
    token = _token(key)
    response = HttpResponse(build_feed(token), content_type="text/calendar; charset=utf-8")
    response["Cache-Control"] = "private, max-age=300"
    response["X-Robots-Tag"] = "noindex"
    return response


# --- the person's own feed, from the profile page --------------------------------------------


@login_required
@require_POST
@never_cache
def rotate_mine(request: HttpRequest) -> HttpResponse:
    """Issue a new feed and answer with the profile page showing its URL, this once: the URL
    is rendered into this response only, never stored in the session or a message."""
    return profile_page(request, issued=issue(user=request.user))


@login_required
@require_POST
def revoke_mine(request: HttpRequest) -> HttpResponse:
    revoke(user=request.user)
    return redirect("portal:profile")
