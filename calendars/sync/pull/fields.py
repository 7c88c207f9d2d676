"""The fields of a booking made from a remote event: its source (``source_of``), who it is
for (``organizer``), and all of them for a pull or the daily reconciliation
(``booking_fields``), or for the booking service's batch (``new_booking``)."""

from __future__ import annotations

from datetime import datetime

from django.contrib.auth import get_user_model

from integrations.base import RemoteEvent
from integrations.registry import spec
from reservations import batch
from reservations.models import Source

from ...models import SpaceCalendar


def source_of(kind: str) -> Source:
    """The source a booking pulled from this provider carries."""
    return Source(spec(kind).reservation_source)


def booking_fields(
    binding: SpaceCalendar,
    event: RemoteEvent,
    start: datetime,
    end: datetime,
    title: str,
    people: dict,
) -> dict:
    """The fields of a booking made from a remote event nobody in Reserva made (by a pull, or
    by the daily reconciliation): the provider's source, requested for the active user whose
    email is the organizer's, the organizer's details when the location keeps them.
    ``people`` caches the organizer look-ups of one run."""
    details = binding.space.location.pull_organizer_details
    return {
        "space": binding.space, "start": start, "end": end, "title": title[:255],
        "source": source_of(binding.provider.kind),
        "requested_for": organizer(binding, event, people),
        "organizer_name": event.organizer_name[:200] if details else "",
        "organizer_email": event.organizer_email if details else "",
    }  # fmt: skip


def organizer(binding: SpaceCalendar, event: RemoteEvent, cache: dict):
    """The active user whose email is the organizer's, if any (one query per address)."""
    email = (event.organizer_email or "").strip().lower()
    if not email or email == binding.resource_email.lower():
        return None
    if email not in cache:
        cache[email] = (
            get_user_model()
            .objects.filter(email__iexact=email, is_active=True)
            .order_by("pk")
            .first()
        )
    return cache[email]


def new_booking(fields: dict) -> batch.NewBooking:
    """``booking_fields`` of a booking for nobody in Reserva, for the batch."""
    return batch.NewBooking(
        fields["start"], fields["end"], fields["title"],
        fields["organizer_name"], fields["organizer_email"],
    )  # fmt: skip
