"""Room displays not seen: ``alert_offline`` (beat, every minute) emails the admins about
each paired display not seen for ``OFFLINE_AFTER`` while its location is open, once per
outage."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from ..models import Display
from .board import open_at

OFFLINE_AFTER = timedelta(minutes=15)


def _admin_emails() -> list[str]:
    people = get_user_model().objects.filter(is_active=True, is_superuser=True).exclude(email="")
    listed = [email for _, email in (*settings.ADMINS, *settings.MANAGERS)]
    return sorted({p.email for p in people} | set(listed))


def offline_q(now: datetime) -> Q:
    """Paired, unrevoked displays not seen for ``OFFLINE_AFTER``: the admin's "Offline", at
    any hour (``offline`` below alerts only while the location is open)."""
    since = now - OFFLINE_AFTER
    return Q(paired_at__isnull=False, revoked_at__isnull=True) & (
        Q(last_seen_at__lt=since) | Q(last_seen_at__isnull=True, paired_at__lt=since)
    )


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
    return [d for d in candidates if open_at(d.space, now)[0]]


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
