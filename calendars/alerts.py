"""Alerts to people and to administrators about calendar sync: each one is built here and sent
the same way (``_send``: one ``EmailMultiAlternatives``, sent with its own connection).

To administrators (``email_admins``: the active superusers and ``ADMINS``; plain text, the
subject prefixed "[Reserva]"; a failure to send is not raised, the sync goes on):

- ``binding_paused``: a binding's pushes paused on a permanent error (``sync.trouble``);
- ``push_gave_up``: a failed push retried for ``SYNC_PUSH_GIVE_UP_HOURS`` and stopped;
- ``mailbox_missing``: a person's address names no mailbox the sync user can write their
  booking in (Exchange Server, personal mode by impersonation);
- ``webhook_failing``: a webhook subscription's renewal failed (``subscriptions``);
- ``reconcile_repaired``: the daily reconciliation repaired differences (``sync.reconcile``).

To people (a failure to send is raised, and logged by the ``on_commit`` that runs them):

- ``token_unusable``: their own calendar's token expired or was revoked (plain text);
- ``notify_pull``: their reservations a pull moved, cancelled, conflicted with or undid
  (the booking email of ``reservations.emails``, with the booking's card).

The callers decide when (usually after the commit, once per pause); this module only says
what and to whom.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import EmailMultiAlternatives
from django.urls import NoReverseMatch, reverse

from reservations.models import Reservation

from .models import SpaceCalendar, SyncLink, UserToken

if TYPE_CHECKING:
    from .sync.reconcile import ReconcileResult


# -- how alerts are sent ----------------------------------------------------------------------


def _send(message: EmailMultiAlternatives, *, quietly: bool = False) -> int:
    """The one way an alert leaves: how many were sent. ``quietly``: a failure is swallowed."""
    return message.send(fail_silently=quietly)


def _plain(subject: str, body: str, to: Sequence[str]) -> EmailMultiAlternatives:
    """A plain-text alert from the default sender, its subject marked as Reserva's."""
    return EmailMultiAlternatives(subject=f"[Reserva] {subject}", body=body, to=list(to))


def admin_emails() -> list[str]:
    """The active superusers' addresses and ``ADMINS``."""
    people = get_user_model().objects.filter(is_active=True, is_superuser=True).exclude(email="")
    return sorted({p.email for p in people} | {email for _, email in settings.ADMINS})


def email_admins(subject: str, body: str) -> bool:
    """Email the active superusers and ``ADMINS`` (the one way sync alerts reach them);
    False when there is nobody to tell."""
    recipients = admin_emails()
    if recipients:
        _send(_plain(subject, body, recipients), quietly=True)
    return bool(recipients)


def absolute_url(name: str, *args) -> str:
    """The absolute address of a page (the admin's, the portal's), for an email."""
    try:
        return settings.PUBLIC_BASE_URL + reverse(name, args=args)
    except NoReverseMatch:
        return settings.PUBLIC_BASE_URL + "/"


# -- to administrators ------------------------------------------------------------------------


def binding_paused(binding: SpaceCalendar, message: str) -> None:
    link = absolute_url("admin:calendars_spacecalendar_change", binding.pk)
    email_admins(
        f"Calendar sync paused: {binding.space.name}",
        "Reserva stopped writing to the calendar of "
        f"{binding.space.name} ({binding.resource_email}, {binding.provider}).\n\n"
        f"Reason: {message}\n\n"
        "Nothing is lost: the changes wait and are sent once the connection works again. "
        "Fix the connection (re-authorize the space, or correct the credential alias), then "
        f'use "Resume sync" on the space calendar:\n{link}\n',
    )


def push_gave_up(link: SyncLink, message: str) -> None:
    reservation = link.reservation
    hours = settings.SYNC_PUSH_GIVE_UP_HOURS
    admin = absolute_url("admin:calendars_syncjob_changelist")
    email_admins(
        f"Calendar push failing: {reservation.space.name}",
        f"Reserva has tried for {hours:g} hours to write booking #{reservation.pk} "
        f"({reservation.title or 'untitled'}, {reservation.start:%Y-%m-%d %H:%M} UTC) to the "
        f"calendar of {reservation.space.name} and stopped retrying.\n\n"
        f"Last error: {message}\n\n"
        "The booking itself is safe in Reserva. Once the cause is fixed, select its failed "
        f'push in Sync jobs and use "Retry failed pushes":\n{admin}\n',
    )


def mailbox_missing(link: SyncLink, reservation: Reservation, message: str) -> None:
    person = reservation.requested_for
    who = (person.get_full_name() or person.get_username()) if person else "someone"
    users = absolute_url("admin:auth_user_changelist")
    binding = (
        absolute_url("admin:calendars_spacecalendar_change", link.binding_id)
        if link.binding_id
        else absolute_url("admin:calendars_spacecalendar_changelist")
    )
    email_admins(
        f"Calendar sync: no mailbox for {who}",
        f"Reserva could not write {who}'s booking #{reservation.pk} of "
        f"{reservation.space.name} ({_when(reservation)}) to their own calendar on "
        f"{link.provider}.\n\n"
        f"Reason: {message}\n\n"
        f"Nothing is lost: {who}'s bookings of synced rooms wait in Reserva, and the room's "
        "calendar keeps syncing everyone else's. Create their mailbox on the Exchange server, "
        f"or correct their e-mail address in Reserva's users:\n{users}\n\n"
        f'then use "Resume sync" on the space calendar:\n{binding}\n'
        "This is sent once: for the first of their bookings that waits.\n",
    )


def webhook_failing(binding: SpaceCalendar, message: str) -> None:
    link = absolute_url("admin:calendars_spacecalendar_change", binding.pk)
    email_admins(
        f"Calendar webhook failing for {binding.space.name}",
        f"{message}\n\nChanges made in {binding.resource_email} still reach Reserva by the "
        f"scheduled pull, only later. Reserva retries every hour.\n\n{link}\n",
    )


def reconcile_repaired(binding: SpaceCalendar, result: ReconcileResult) -> bool:
    """The differences the daily reconciliation repaired; False when nobody was told."""
    lines = [
        f"- {r.drift}: {r.fix} (reservation {r.reservation_id or '-'}"
        f"{', event ' + r.event.id if r.event else ''}): {r.reason}"
        for r in result.repairs
    ]
    link = absolute_url("admin:calendars_syncjob_changelist")
    return email_admins(
        f"Reconciliation repaired {len(result.repairs)} differences: {binding.space.name}",
        f"The daily comparison of {binding.space.name} ({binding.resource_email}, "
        f"{binding.provider}) with its calendar found {len(result.repairs)} differences that "
        "webhooks and pulls had not caught, and repaired them:\n\n"
        + "\n".join(lines)
        + "\n\nA few now and then is normal; many, or every day, means notifications or pulls "
        f"are failing for this room. The sync jobs (kind Reconciliation):\n{link}\n",
    )


# -- to people --------------------------------------------------------------------------------


def token_unusable(token: UserToken) -> None:
    """The person's own calendar can no longer be written: they are asked to reconnect."""
    if not token.user.email:
        return
    _send(
        _plain(
            f"Reconnect your {token.provider.get_kind_display()} calendar",
            f"Reserva can no longer write to your calendar ({token.account_email}): the "
            "connection has expired or was revoked.\n\n"
            "Your bookings are safe; their calendar entries wait until you reconnect:\n"
            f"{absolute_url('calendars:connect')}\n",
            [token.user.email],
        )
    )


PULL_SUBJECTS = {
    "changed": "Moved in {provider}: {space}, {when}",
    "cancelled": "Cancelled in {provider}: {space}, {when}",
    "conflict": "Booking conflict: {space}, {when}",
    "restored": "Change in {provider} undone: {space}, {when}",
}


def _when(reservation: Reservation) -> str:
    return f"{reservation.local_start:%a %d %b %Y %H:%M}-{reservation.local_end:%H:%M}"


def notify_pull(binding_id: int, notices: Sequence[tuple]) -> int:
    """Email the requested-for users of reservations a remote change moved, cancelled or
    conflicted with (not the organizers of remote events without a Reserva owner: their
    calendar already told them), and of Reserva bookings whose remote move or rename was
    undone ("restored": the notice's fourth item says what was done and why it was not
    taken). A notice is ``(kind, reservation id, clash ids[, detail])``. Returns how many
    emails were sent."""
    binding = SpaceCalendar.objects.select_related("provider").filter(pk=binding_id).first()
    provider = binding.provider.get_kind_display() if binding else "the remote calendar"
    wanted = {notice[1] for notice in notices} | {pk for notice in notices for pk in notice[2]}
    rows = Reservation.objects.select_related("space__location", "requested_for").in_bulk(
        list(wanted)
    )
    sent = 0
    for kind, pk, clash_ids, *detail in notices:
        row = rows.get(pk)
        if row is None:
            continue
        for subject, reader_row, lines in _pull_emails(
            kind, row, clash_ids, detail, rows, provider
        ):
            sent += _tell_about_pull(subject, reader_row, lines, provider)
    return sent


def _pull_emails(
    kind: str,
    row: Reservation,
    clash_ids: Sequence[int],
    detail: list[str],
    rows: dict[int, Reservation],
    provider: str,
) -> list[tuple[str, Reservation, list[str]]]:
    """The emails of one notice: (subject kind, the reservation whose person is told, the
    paragraphs)."""
    if kind == "restored":
        return [
            (
                kind,
                row,
                [
                    *detail,
                    "",
                    f"The event is being put back in {provider} to match your reservation, "
                    "which has not changed (below). To change it, use Reserva, or make a "
                    "change there that its booking rules allow.",
                ],
            )
        ]
    if kind == "changed":
        return [(kind, row, [f"Your reservation of {row.space.name} was moved in {provider}."])]
    if kind == "cancelled":
        return [(kind, row, [f"Your reservation of {row.space.name} was cancelled in {provider}."])]
    if kind == "refused":  # by a rule (a closure, a limit), not by another booking
        return [
            (
                "conflict",
                row,
                [
                    f"Your booking of {row.space.name} made in {provider} cannot be accepted: "
                    f"{detail[0]} It does not hold the room; an administrator will resolve it."
                ],
            )
        ]
    clashes = [clash for clash in (rows.get(pk) for pk in clash_ids) if clash is not None]
    return _conflict_emails(kind, row, clashes, detail, provider)


def _conflict_emails(
    kind: str, row: Reservation, clashes: list[Reservation], detail: list[str], provider: str
) -> list[tuple[str, Reservation, list[str]]]:
    """A conflict: the person of the event kept as conflicted, then those of the bookings it
    collides with."""
    return [
        (
            kind,
            row,
            [
                f"Your booking of {row.space.name} made in {provider} collides with another "
                "booking. It does not hold the room; an administrator will resolve it.",
                *detail,  # why, in the booking rules' words (a buffer, a taken slot)
            ],
        ),
        *(
            (
                kind,
                clash,
                [
                    f"A booking made in {provider} collides with your reservation of "
                    f"{clash.space.name}. Your reservation stands; an administrator "
                    "will resolve the other one.",
                    *detail,
                ],
            )
            for clash in clashes
        ),
    ]


def _tell_about_pull(kind: str, row: Reservation, lines: list[str], provider: str) -> int:
    """One email about a pulled change to the person the reservation is for (none without
    a person or an address)."""
    from reservations import emails

    person = row.requested_for
    if person is None or not person.email:
        return 0
    subject = PULL_SUBJECTS[kind].format(provider=provider, space=row.space.name, when=_when(row))
    email = emails.Email(
        subject=subject,
        headline=subject.split(":", 1)[0] + f": {row.space.name}",
        paragraphs=[line for line in lines if line],
        booking=emails.booking_card([row], emails.reader_zone(person)),
        actions=[emails.Action("View booking", emails.booking_link(row))],
    )
    return _send(email.message([person.email]))
