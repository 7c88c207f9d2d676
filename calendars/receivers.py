"""Reservation signals -> push tasks; a binding switched back on -> its waiting pushes; a
binding that starts reading a calendar (new, switched on, retargeted) -> one bulk export of
its space's future bookings; a binding or provider switched on, off or retargeted -> its
webhook subscription.

The booking service sends its signals after the transaction commits (``reservations.signals``),
so these receivers see committed rows and may enqueue at once. They enqueue only for
reservations of spaces that sync now, or that were synced before (a move to a space that does
not sync frees the old room; the push decides). A confirmation that *is* the room's own answer
(pending -> confirmed) needs no push: the remote event already says so.

Also here: the check that tells the booking emails to leave out their ``.ics`` when the
provider already puts the booking in the person's calendar (registered with
``reservations.notifications``).
"""

from __future__ import annotations

from django.db import transaction
from django.db.models import Q

from reservations import notifications, signals
from reservations.models import Reservation, ReservationStatus, SyncMailbox

from . import bindings
from .models import BindingStatus, CalendarProvider, SpaceCalendar, SyncLink
from .policies import binding_for

ROOM_ANSWER = {"status": (ReservationStatus.PENDING, ReservationStatus.CONFIRMED)}


def synced_ids(reservation_ids: list[int]) -> list[int]:
    """The reservations among these whose space syncs, or which have a remote event already,
    less those whose room event already shows this very version (one query)."""
    rows = (
        Reservation.objects.filter(pk__in=reservation_ids)
        .filter(
            Q(space__calendar__enabled=True, space__calendar__provider__is_active=True)
            | Q(sync_link__isnull=False)
        )
        .select_related("space__calendar__provider", "sync_link")
    )
    wanted = {row.pk for row in rows if not shown_already(row)}
    return [pk for pk in reservation_ids if pk in wanted]  # keep the service's (start) order


def shown_already(row: Reservation) -> bool:
    """The push would find nothing to do: the link names the event in the room's calendar
    where the booking belongs, at the reservation's version (what the pull's own changes
    leave: ``calendars.sync.pull.links.Links``). Queuing it would cost a task and a dozen queries
    per booking a pull brought in (push plan: "the calendar already shows this version").
    Only for the room's calendar, whose place needs no look-up; the others are queued."""
    from . import remote
    from .sync.plan import Place

    link = getattr(row, "sync_link", None)
    binding = getattr(row.space, "calendar", None)
    if (
        link is None
        or binding is None
        or not binding.enabled
        or not binding.provider.is_active
        or row.sync_mailbox != SyncMailbox.ROOM
        or not link.external_id
        or not link.mailbox
        or link.pushed_version < row.version
    ):
        return False
    target = remote.locate(row, binding).place
    return target.same_as(Place(link.provider_id, link.mailbox, link.calendar_id))


def enqueue_push(sender, reservation_ids: list[int], changes: dict | None = None, **kwargs) -> None:
    if changes is not None and changes == ROOM_ANSWER:
        return
    from .tasks import push_reservation

    for pk in synced_ids(reservation_ids):
        push_reservation.delay(pk)


def provider_invites(reservation: Reservation) -> bool:
    """The provider already puts this booking in the person's calendar: the event lives in
    their own mailbox (``user``) or they are invited from the delegated one (``other``)."""
    if reservation.sync_mailbox not in (SyncMailbox.USER, SyncMailbox.OTHER):
        return False
    return binding_for(reservation) is not None


TARGET = ("provider_id", "resource_email", "calendar_id")  # what a webhook watches
WATCHED = ("enabled", "status", "authorized_at", *TARGET)  # what decides it


def binding_saving(sender, instance: SpaceCalendar, **kwargs) -> None:
    """Remember the row as it was before this save (for ``binding_saved``). A binding pointed
    at another calendar forgets the old calendar's pull cursor (a Graph delta link names the
    old mailbox; a Google sync token belongs to the old calendar): its next pull reads the new
    calendar in full."""
    instance._before = (
        SpaceCalendar.objects.filter(pk=instance.pk).values(*WATCHED).first()
        if instance.pk is not None
        else None
    )
    if bindings.retargeted(instance._before, instance):
        instance.sync_token = ""
        instance.last_pulled_at = None


def binding_saved(sender, instance: SpaceCalendar, created: bool, **kwargs) -> None:
    """Sync switched back on: send what changed meanwhile (links behind their reservation).
    Nothing remote was deleted when it was switched off, so nothing is created twice.

    Sync switched on or off, paused or re-authorized, or pointed at another room or calendar
    (in the admin or the authorization flow): its webhook is created, removed or replaced now,
    not at the next hourly renewal (``calendars/subscriptions.py``)."""
    before = getattr(instance, "_before", None)
    pk = instance.pk
    switched_on = instance.enabled and before is not None and not before["enabled"]
    if switched_on and SyncLink.objects.filter(binding=instance).exists():
        from .tasks import resume_binding

        transaction.on_commit(lambda: resume_binding.delay(pk))
    if instance.enabled and (created or switched_on or bindings.retargeted(before, instance)):
        # It starts reading a calendar: the space's future bookings are sent there (one export,
        # none if one is already on its way).
        actor = instance.authorized_by
        transaction.on_commit(lambda: bindings.queue_export(pk, actor), robust=True)

    from . import subscriptions

    if not subscriptions.enabled():
        return
    retargeted = before is not None and any(before[f] != getattr(instance, f) for f in TARGET)
    paused = BindingStatus.PAUSED
    toggled = before is not None and (
        before["enabled"] != instance.enabled
        or (before["status"] == paused) != (instance.status == paused)
        or before["authorized_at"] != instance.authorized_at  # re-authorized
    )
    if (created and instance.enabled) or toggled or (retargeted and instance.enabled):
        from .tasks import ensure_subscription

        transaction.on_commit(lambda: ensure_subscription.delay(pk, retargeted), robust=True)


def provider_saving(sender, instance: CalendarProvider, **kwargs) -> None:
    instance._was_active = (
        CalendarProvider.objects.filter(pk=instance.pk).values_list("is_active", flat=True).first()
        if instance.pk is not None
        else None
    )


def provider_saved(sender, instance: CalendarProvider, created: bool, **kwargs) -> None:
    """A provider switched on or off: its bindings' webhooks are created or removed now."""
    from . import subscriptions

    was = getattr(instance, "_was_active", None)
    if was is None or was == instance.is_active or not subscriptions.enabled():
        return
    from .tasks import ensure_subscription

    ids = list(
        SpaceCalendar.objects.filter(provider=instance, enabled=True).values_list("pk", flat=True)
    )
    transaction.on_commit(lambda: [ensure_subscription.delay(pk) for pk in ids], robust=True)


def connect() -> None:
    from django.db.models.signals import post_save, pre_save

    for signal in (
        signals.reservation_created,
        signals.reservation_changed,
        signals.reservation_cancelled,
    ):
        signal.connect(enqueue_push, dispatch_uid=f"calendars.push.{id(signal)}")
    pre_save.connect(binding_saving, sender=SpaceCalendar, dispatch_uid="calendars.binding.pre")
    post_save.connect(binding_saved, sender=SpaceCalendar, dispatch_uid="calendars.binding.post")
    pre_save.connect(provider_saving, sender=CalendarProvider, dispatch_uid="calendars.prov.pre")
    post_save.connect(provider_saved, sender=CalendarProvider, dispatch_uid="calendars.prov.post")
    notifications.register_invitation_check(provider_invites)
