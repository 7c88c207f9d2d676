"""Personal mode: the invited room's answer becomes the reservation's status.

A reservation whose event lives in the person's own calendar (sync mailbox ``user``) starts
``pending``; the room mailbox / resource calendar answers the invitation a little later (the
Calendar Attendant, Google's resource handling). ``check_room_response`` reads the organizer's
copy of the event: accepted -> ``confirmed`` (``services.confirm``), declined -> ``cancelled``
with the reason shown to the person, no answer yet -> try again later (``ask_again``: a few
times, a little further apart each time; the pull, later, is the backstop).
"""

from __future__ import annotations

import enum

from integrations.registry import spec
from reservations import services
from reservations.models import Reservation, ReservationStatus, Source, SyncMailbox

from .. import remote
from ..models import SyncLink
from .followups import CheckRoom

DECLINED_REASON = "The room declined: it is busy"
ROOM_CHECKS = 6  # the room answers within seconds; the pull is the backstop after that
ROOM_CHECK_SECONDS = 5


class RoomAnswer(enum.StrEnum):
    """What asking the room gave: its answer, still none (ask again), or why not asked."""

    CONFIRMED = "confirmed"
    DECLINED = "declined"
    WAITING = "waiting"
    NOT_PENDING = "not pending"
    NO_INVITED_ROOM = "no invited room"


def check_room_response(reservation_id: int) -> RoomAnswer:
    """Returns ``confirmed``, ``declined``, ``waiting`` or why nothing was done."""
    reservation = (
        Reservation.objects.select_related("space__location", "requested_for")
        .filter(pk=reservation_id)
        .first()
    )
    if reservation is None or reservation.status != ReservationStatus.PENDING:
        return RoomAnswer.NOT_PENDING
    if reservation.sync_mailbox != SyncMailbox.USER or reservation.requested_for is None:
        return RoomAnswer.NO_INVITED_ROOM
    link = SyncLink.objects.select_related("provider").filter(reservation=reservation).first()
    if link is None or not link.external_id:
        return RoomAnswer.WAITING  # the push has not happened yet
    calendar = remote.user_calendar(link.provider, reservation.requested_for)
    event = calendar.find(reservation.pk)
    calendar.save_token()
    if event is None or event.removed:
        return RoomAnswer.WAITING
    source = Source(spec(link.provider.kind).reservation_source)
    if event.resource_response == "accepted":
        if services.confirm(actor=None, reservation=reservation, source=source):
            # The remote event already shows everything: the status is the room's own answer.
            SyncLink.objects.filter(pk=link.pk, pushed_version=reservation.version).update(
                pushed_version=reservation.version + 1
            )
        return RoomAnswer.CONFIRMED
    if event.resource_response == "declined":
        services.cancel(actor=None, reservation=reservation, reason=DECLINED_REASON, source=source)
        return RoomAnswer.DECLINED
    return RoomAnswer.WAITING


def ask_again(reservation_id: int, answer: RoomAnswer, attempt: int) -> CheckRoom | None:
    """The next check after check number ``attempt`` gave ``answer``, or None: while the room
    has not answered, ``ROOM_CHECKS`` in all, ``ROOM_CHECK_SECONDS`` times the count apart."""
    if answer != RoomAnswer.WAITING or attempt >= ROOM_CHECKS:
        return None
    return CheckRoom(reservation_id, attempt + 1, after_seconds=ROOM_CHECK_SECONDS * attempt)
