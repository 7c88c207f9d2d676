"""Personal mode: the invited room's answer becomes the reservation's status.

A reservation whose event lives in the person's own calendar (sync mailbox ``user``) starts
``pending``; the room mailbox / resource calendar answers the invitation a little later (the
Calendar Attendant, Google's resource handling). ``check_room_response`` reads the organizer's
copy of the event: accepted -> ``confirmed`` (``services.confirm``), declined -> ``cancelled``
with the reason shown to the person, no answer yet -> try again later (the task re-queues
itself a few times with a short countdown; the pull, later, is the backstop).
"""

from __future__ import annotations

from integrations.registry import spec
from reservations import services
from reservations.models import Reservation, ReservationStatus, Source, SyncMailbox

from .. import remote
from ..models import SyncLink

DECLINED_REASON = "The room declined: it is busy"


def check_room_response(reservation_id: int) -> str:
    """Returns ``confirmed``, ``declined``, ``waiting`` or why nothing was done."""
    reservation = (
        Reservation.objects.select_related("space__location", "requested_for")
        .filter(pk=reservation_id)
        .first()
    )
    if reservation is None or reservation.status != ReservationStatus.PENDING:
        return "not pending"
    if reservation.sync_mailbox != SyncMailbox.USER or reservation.requested_for is None:
        return "no invited room"
    link = SyncLink.objects.select_related("provider").filter(reservation=reservation).first()
    if link is None or not link.external_id:
        return "waiting"  # the push has not happened yet
    calendar = remote.user_calendar(link.provider, reservation.requested_for)
    event = calendar.find(reservation.pk)
    calendar.save_token()
    if event is None or event.removed:
        return "waiting"
    source = Source(spec(link.provider.kind).reservation_source)
    if event.resource_response == "accepted":
        if services.confirm(actor=None, reservation=reservation, source=source):
            # The remote event already shows everything: the status is the room's own answer.
            SyncLink.objects.filter(pk=link.pk, pushed_version=reservation.version).update(
                pushed_version=reservation.version + 1
            )
        return "confirmed"
    if event.resource_response == "declined":
        services.cancel(actor=None, reservation=reservation, reason=DECLINED_REASON, source=source)
        return "declined"
    return "waiting"
