"""The one shape of every email Reserva sends to people about their bookings.

Booking emails (``notifications``), check-in reminders (``checkin``), approval requests
(``approvals``) and start reminders (``reminders``) all build an ``Email`` and render it with
the same pair of templates, ``emails/base.html`` and ``emails/base.txt``: the organisation's
name (``ORGANISATION_NAME``) at the top, a headline, the booking (space, location, title, its
times in the location's zone with the reader's own zone beside when it differs, and the link to
the booking itself), buttons for what the reader can do, and notes. The plain-text part says
the same as the HTML part, links included, so a text-only mail client loses nothing.

Times are formatted here, not in the templates, because each reader may live in another zone.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse

from .models import Profile, Reservation


@dataclass(frozen=True)
class Action:
    """A button in the HTML part, a labelled link in the text part."""

    label: str
    url: str


@dataclass(frozen=True)
class Booking:
    """The booking an email is about: what the card in the middle of the email shows."""

    space: str
    location: str
    title: str
    link: str
    times: list[str]


@dataclass
class Email:
    subject: str
    headline: str
    paragraphs: list[str] = field(default_factory=list)
    booking: Booking | None = None
    actions: list[Action] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def message(
        self, to: Sequence[str], attachments: Sequence[tuple[str, bytes, str]] = ()
    ) -> EmailMultiAlternatives:
        """The email, text first and HTML as its alternative, ready to ``send()``."""
        context = {"email": self, "organisation": settings.ORGANISATION_NAME}
        text = render_to_string("emails/base.txt", context)
        html = render_to_string("emails/base.html", context)
        message = EmailMultiAlternatives(subject=self.subject, body=text, to=list(to))
        message.attach_alternative(html, "text/html")
        for name, content, mimetype in attachments:
            message.attach(name, content, mimetype)
        return message


def absolute(path: str) -> str:
    return settings.PUBLIC_BASE_URL + path


def booking_link(reservation: Reservation) -> str:
    """The booking's own page (not the site's root)."""
    return absolute(reverse("portal:detail", args=[reservation.pk]))


def reader_zone(user) -> zoneinfo.ZoneInfo | None:
    """The zone a Reserva user chose in their profile (or the site default); None for
    someone who is only an email address."""
    if user is None or user.pk is None:
        return None
    profile = Profile.objects.filter(user=user).first()
    if profile is not None:
        return profile.zone
    return zoneinfo.ZoneInfo(settings.TIME_ZONE)


def span(start: datetime, end: datetime, zone: zoneinfo.ZoneInfo) -> str:
    """ "Mon 07 Dec 2026 10:00-11:00", or with both dates when it ends on another day."""
    start, end = start.astimezone(zone), end.astimezone(zone)
    if start.date() == end.date():
        return f"{start:%a %d %b %Y %H:%M}-{end:%H:%M}"
    return f"{start:%a %d %b %Y %H:%M} - {end:%a %d %b %Y %H:%M}"


def booking_time(reservation: Reservation, reader_zone: zoneinfo.ZoneInfo | None) -> str:
    """The booking's time in its location's zone, named, and the reader's own time beside it
    when their zone differs: "Mon 07 Dec 2026 10:00-11:00 (Europe/London; 05:00-06:00 your
    time, America/New_York)"."""
    location_zone = reservation.space.location.zone
    text = span(reservation.start, reservation.end, location_zone)
    theirs = ""
    if reader_zone is not None and _differs(reservation, location_zone, reader_zone):
        start = reservation.start.astimezone(reader_zone)
        end = reservation.end.astimezone(reader_zone)
        own = (
            f"{start:%H:%M}-{end:%H:%M}"
            if start.date() == reservation.start.astimezone(location_zone).date()
            else span(reservation.start, reservation.end, reader_zone)
        )
        theirs = f"; {own} your time, {reader_zone.key}"
    return f"{text} ({location_zone.key}{theirs})"


def _differs(reservation: Reservation, one: zoneinfo.ZoneInfo, other: zoneinfo.ZoneInfo) -> bool:
    """Whether the reader's clock shows another time than the location's at the start."""
    moment = reservation.start
    return moment.astimezone(one).utcoffset() != moment.astimezone(other).utcoffset()


def booking_card(
    reservations: Sequence[Reservation], reader_zone: zoneinfo.ZoneInfo | None
) -> Booking:
    first = reservations[0]
    return Booking(
        space=first.space.name,
        location=first.space.location.name,
        title=first.title,
        link=booking_link(first),
        times=[booking_time(r, reader_zone) for r in reservations],
    )


def person_name(user) -> str:
    return user.get_full_name() or user.get_username()
