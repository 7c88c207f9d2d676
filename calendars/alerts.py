"""Alerts to people and to administrators about calendar sync.

People: ``notify_pull``, the emails about their reservations a pull moved, cancelled,
conflicted with or undid.
"""

from __future__ import annotations

from collections.abc import Sequence

from reservations.models import Reservation

from .models import SpaceCalendar

SUBJECTS = {
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
    from reservations import emails

    binding = SpaceCalendar.objects.select_related("provider").filter(pk=binding_id).first()
    provider = binding.provider.get_kind_display() if binding else "the remote calendar"
    wanted = {notice[1] for notice in notices} | {pk for notice in notices for pk in notice[2]}
    rows = Reservation.objects.select_related("space__location", "requested_for").in_bulk(
        list(wanted)
    )
    sent = 0

    def send(kind: str, row: Reservation, lines: list[str]) -> None:
        nonlocal sent
        person = row.requested_for
        if person is None or not person.email:
            return
        subject = SUBJECTS[kind].format(provider=provider, space=row.space.name, when=_when(row))
        email = emails.Email(
            subject=subject,
            headline=subject.split(":", 1)[0] + f": {row.space.name}",
            paragraphs=[line for line in lines if line],
            booking=emails.booking_card([row], emails.reader_zone(person)),
            actions=[emails.Action("View booking", emails.booking_link(row))],
        )
        sent += email.message([person.email]).send()

    for kind, pk, clash_ids, *detail in notices:
        row = rows.get(pk)
        if row is None:
            continue
        if kind == "restored":
            send(
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
        elif kind == "changed":
            send(kind, row, [f"Your reservation of {row.space.name} was moved in {provider}."])
        elif kind == "cancelled":
            send(kind, row, [f"Your reservation of {row.space.name} was cancelled in {provider}."])
        elif kind == "refused":  # by a rule (a closure, a limit), not by another booking
            send(
                "conflict",
                row,
                [
                    f"Your booking of {row.space.name} made in {provider} cannot be accepted: "
                    f"{detail[0]} It does not hold the room; an administrator will resolve it."
                ],
            )
        else:
            send(
                kind,
                row,
                [
                    f"Your booking of {row.space.name} made in {provider} collides with another "
                    "booking. It does not hold the room; an administrator will resolve it.",
                    *detail,  # why, in the booking rules' words (a buffer, a taken slot)
                ],
            )
            for clash_id in clash_ids:
                clash = rows.get(clash_id)
                if clash is not None:
                    send(
                        kind,
                        clash,
                        [
                            f"A booking made in {provider} collides with your reservation of "
                            f"{clash.space.name}. Your reservation stands; an administrator "
                            "will resolve the other one.",
                            *detail,
                        ],
                    )
    return sent
