"""The reminder email before a booking starts.

``BOOKING_REMINDER_MINUTES`` (default 30; 0 = off) before the start, beat's
``reservations.send_booking_reminders`` (every minute) emails the person a confirmed booking is
for, once: ``services.claim_booking_reminder`` stamps ``reminder_sent_at`` with a
compare-and-set, so two workers, or a tick that runs twice, never send it twice. People who
turned reminders off in their profile (``Profile.email_reminders``) get none.

Not reminded: a booking made after its reminder moment (its booking email has just told them),
one made in Outlook or Google (the calendar reminds its organizer), one already started (a beat
that was down sends no late reminders), and one that is not confirmed.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import F
from django.urls import reverse

from . import checkin, emails
from .models import REMOTE_SOURCES, Reservation, ReservationStatus


def lead() -> timedelta | None:
    """How long before the start the reminder goes; None when reminders are off."""
    minutes = settings.BOOKING_REMINDER_MINUTES
    return timedelta(minutes=minutes) if minutes > 0 else None


def due(now: datetime) -> list[int]:
    """Ids of the bookings whose reminder is due now and not sent (one query)."""
    ahead = lead()
    if ahead is None:
        return []
    return list(
        Reservation.objects.filter(
            status=ReservationStatus.CONFIRMED,
            reminder_sent_at__isnull=True,
            start__gt=now,
            start__lte=now + ahead,
            created__lte=F("start") - ahead,
            requested_for__isnull=False,
            requested_for__is_active=True,
        )
        .exclude(requested_for__email="")
        .exclude(source__in=REMOTE_SOURCES)
        .exclude(requested_for__reservation_profile__email_reminders=False)
        .order_by("start", "pk")
        .values_list("pk", flat=True)
    )


def send(reservation: Reservation) -> int:
    """Email the reminder to the person the booking is for; returns the emails sent."""
    person = reservation.requested_for
    if person is None or not person.email:
        return 0
    space, location = reservation.space, reservation.space.location
    start = reservation.local_start
    actions = [emails.Action("View booking", emails.booking_link(reservation))]
    paragraphs = [f"Your booking of {space.name} at {location.name} starts at {start:%H:%M}."]
    if checkin.policy_for(space).required:
        actions.append(emails.Action("Check in", checkin.check_in_link(reservation)))
        paragraphs.append(
            "This room needs a check-in: "
            f"{checkin.describe_window(reservation)}, or the booking is released."
        )
    cancel = emails.absolute(reverse("portal:cancel", args=[reservation.pk]))
    actions.append(emails.Action("Cancel", cancel))
    email = emails.Email(
        subject=f"Reminder: {space.name}, {start:%a %d %b %H:%M}",
        headline=f"{space.name} starts at {start:%H:%M}",
        paragraphs=paragraphs,
        booking=emails.booking_card([reservation], emails.reader_zone(person)),
        actions=actions,
        notes=[
            "You can turn these reminders off in your profile: "
            + emails.absolute(reverse("portal:profile"))
        ],
    )
    return email.message([person.email]).send()
