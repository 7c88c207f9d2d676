"""The links a pull writes: ``Links`` records the events of one pull on their reservations'
links, written together; ``owe_push`` puts a link behind its reservation so the push writes
the booking back over a remote edit not taken; ``push_landed`` tells whether an owed push
landed (on another worker) while this pull ran."""

from __future__ import annotations

from django.utils import timezone

from integrations.base import RemoteEvent
from reservations.models import Reservation

from ... import remote
from ...models import LinkState, SpaceCalendar, SyncLink
from .plan import Change


class Links:
    """The links a pull records (``add``), written together (``flush``: one locking read of
    the links, one insert, one update), at the end of the pull's transaction or before
    anything else in it touches a link.

    ``add(reservation, event, before)`` records the remote event on the reservation's link,
    at the reservation's version (so the push its change triggers finds nothing to do).

    ``before``: the reservation's version before this pull changed it (or its version, when
    the pull only records the event's new change key). If the link had not caught up with it,
    a push of a change made in Reserva is still owed (waiting for its retry): the event does
    not show that change, so the pushed version stays where it is and that push still runs,
    writing the reservation as it is now (the remote change included) over the event.

    The rows are locked and read afresh when written: a push of one of these reservations
    finishing on another worker meanwhile (its lock is held from before its write to its
    commit) is seen, never overwritten with what this pull read before (a lost update left
    the link behind with no push to come, or claiming an event state the calendar never
    had)."""

    FIELDS = (
        "external_id", "ical_uid", "series_id", "remote_version", "state", "pushed_version",
        "last_error", "attempts", "updated",
    )  # fmt: skip

    def __init__(self, binding: SpaceCalendar) -> None:
        self.binding = binding
        self.pending: dict[int, list[tuple[Reservation, RemoteEvent, int | None]]] = {}

    def add(
        self, reservation: Reservation, event: RemoteEvent, *, before: int | None = None
    ) -> None:
        self.pending.setdefault(reservation.pk, []).append((reservation, event, before))

    def flush(self) -> None:
        if not self.pending:
            return
        found = {
            link.reservation_id: link
            for link in SyncLink.objects.select_for_update().filter(
                reservation_id__in=list(self.pending)
            )
        }
        made: dict[int, SyncLink] = {}
        changed: dict[int, SyncLink] = {}
        for reservation_id, intents in self.pending.items():
            link = found.get(reservation_id)
            known = link is not None
            for reservation, event, before in intents:
                if link is None:
                    place = remote.locate(reservation, self.binding).place
                    link = made[reservation_id] = SyncLink(
                        reservation=reservation,
                        binding=self.binding,
                        provider_id=place.provider_id,
                        mailbox=place.mailbox,
                        calendar_id=place.calendar_id,
                    )
                if self._record(link, reservation, event, before, known=known):
                    known = True  # (as if saved: the next intent finds it)
                    if link.pk is not None:
                        changed[reservation_id] = link
        self.pending.clear()
        now = timezone.now()
        for link in changed.values():
            link.updated = now  # (auto_now is not applied by bulk_update)
        if made:
            SyncLink.objects.bulk_create([link for link in made.values() if self._in_room(link)])
        if changed:
            SyncLink.objects.bulk_update(list(changed.values()), self.FIELDS)

    def _in_room(self, link: SyncLink) -> bool:
        return link.mailbox.lower() == self.binding.resource_email.lower()

    def _record(
        self,
        link: SyncLink,
        reservation: Reservation,
        event: RemoteEvent,
        before: int | None,
        *,
        known: bool,
    ) -> bool:
        """Bring one link up to this event; False when it is not the pull's to write."""
        if not self._in_room(link):
            # The event lives elsewhere (the person's own calendar in personal mode, the
            # delegated one in strict mode) and the room's copy was matched by iCalUId / id:
            # the push owns the link's event id and change key, which name the other copy; its
            # version stays behind, so the push brings that copy in step with what the room's
            # copy said.
            return False
        owed = before is not None and known and link.pushed_version < before
        if not event.removed:
            link.external_id = event.id or link.external_id
            link.ical_uid = event.ical_uid or link.ical_uid
            link.series_id = event.series_id or link.series_id
            link.remote_version = event.version
        else:
            link.remote_version = ""
        if not owed:  # else the owed push keeps its state, error and attempts
            link.state = LinkState.REMOVED if event.removed else LinkState.SYNCED
            link.pushed_version = max(reservation.version, link.pushed_version)
            link.last_error, link.attempts = "", 0
        return True


def owe_push(writes: Links, reservation: Reservation, event: RemoteEvent) -> None:
    """Record the event (its id and change key, so the push's conditional write meets the
    version read here) and put the link behind the reservation: a push is owed, which writes
    the booking over the event. Owed, not only queued: if that push is lost, "Resume sync"
    and the retries find it, and a pull that sees the event first leaves it to the push."""
    writes.add(reservation, event, before=reservation.version)
    writes.flush()
    SyncLink.objects.filter(
        reservation=reservation, pushed_version__gte=reservation.version
    ).update(pushed_version=reservation.version - 1, state=LinkState.PENDING)


CROSSED = "it crossed a change to the booking that Reserva was writing at the same moment"


def push_landed(row: Reservation, change: Change) -> bool:
    """The push that was owed when this pull read the links has landed since (on another
    worker), and the event read here is not what it wrote: an edit made around that write.
    Left to "the owed push", it would be neither applied nor undone: no push is owed now.
    (Locks the link: a push still writing is waited for.)"""
    link = SyncLink.objects.select_for_update().filter(reservation=row).first()
    return (
        link is not None
        and link.pushed_version >= row.version
        and link.remote_version != change.event.version
    )
