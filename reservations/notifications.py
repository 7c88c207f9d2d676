"""Booking emails with an iCalendar (.ics) attachment.

One email per person per event, covering every occurrence the event touched, with times in
the location's zone. The .ics uses METHOD:REQUEST for bookings and changes and METHOD:CANCEL
for cancellations, a stable UID per reservation and SEQUENCE = the reservation's version, so
calendar applications update the entry they already have instead of adding a second one.

No .ics when a calendar provider already put the booking in the person's calendar (the event
lives in their own mailbox, or they are invited to it): two entries for one booking would be
worse than none. Whether that is so is the calendars app's knowledge, so it registers a check
here (``register_invitation_check``); this app never imports it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from django.conf import settings
from django.core.mail import EmailMessage
from icalendar import Calendar, Event, vCalAddress, vText

from . import approvals
from .models import ENDED_STATUSES, Approval, Reservation

SUBJECTS = {
    "created": "Booked: {space}, {when}",
    "changed": "Changed: {space}, {when}",
    "cancelled": "Cancelled: {space}, {when}",
    "released": "Released: {space}, {when} (nobody checked in)",
    "awaiting": "Awaiting approval: {space}, {when}",
    "approved": "Approved: {space}, {when}",
    "declined": "Declined: {space}, {when}",
}


# Checks "does a calendar provider already invite the people of this reservation?"
_invitation_checks: list[Callable[[Reservation], bool]] = []


def register_invitation_check(check: Callable[[Reservation], bool]) -> None:
    """Add a check (the calendars app's, in its ``ready()``); adding one twice is a no-op."""
    if check not in _invitation_checks:
        _invitation_checks.append(check)


def provider_invites(reservation: Reservation) -> bool:
    return any(check(reservation) for check in _invitation_checks)


def reservation_uid(reservation: Reservation) -> str:
    host = settings.PUBLIC_BASE_URL.split("://", 1)[-1].split("/", 1)[0].split(":", 1)[0]
    return f"reservation-{reservation.pk}@{host}"


def build_ics(reservations: Sequence[Reservation], method: str) -> bytes:
    cal = Calendar()
    cal.add("prodid", "-//Reserva//Reservations//EN")
    cal.add("version", "2.0")
    cal.add("method", method)
    for reservation in reservations:
        location = reservation.space.location
        event = Event()
        event.add("uid", reservation_uid(reservation))
        event.add("sequence", reservation.version)
        event.add("dtstamp", reservation.updated)
        event.add("dtstart", reservation.local_start)
        event.add("dtend", reservation.local_end)
        event.add("summary", reservation.title or f"Reservation: {reservation.space.name}")
        event.add("location", vText(f"{reservation.space.name}, {location.name}"))
        if reservation.description:
            event.add("description", reservation.description)
        organizer = vCalAddress(f"mailto:{settings.DEFAULT_FROM_EMAIL.split('<')[-1].rstrip('>')}")
        organizer.params["cn"] = vText("Reserva")
        event.add("organizer", organizer)
        for person in {reservation.requested_for, reservation.booked_by} - {None}:
            if person.email:
                attendee = vCalAddress(f"mailto:{person.email}")
                attendee.params["cn"] = vText(person.get_full_name() or person.get_username())
                event.add("attendee", attendee, encode=0)
        if reservation.status in ENDED_STATUSES:
            event.add("status", "CANCELLED")
        elif reservation.approval == Approval.AWAITING:
            event.add("status", "TENTATIVE")
        else:
            event.add("status", "CONFIRMED")
        cal.add_component(event)
    return cal.to_ical()


def _when(reservations: Sequence[Reservation]) -> str:
    first = reservations[0]
    text = f"{first.local_start:%a %d %b %Y %H:%M}-{first.local_end:%H:%M}"
    if len(reservations) > 1:
        text += f" (+{len(reservations) - 1} more)"
    return text


def _body(event: str, reservations: Sequence[Reservation]) -> str:
    first = reservations[0]
    location = first.space.location
    verb = {
        "created": "is booked",
        "changed": "was changed",
        "cancelled": "was cancelled",
        "released": "was released for others because nobody checked in",
        "awaiting": "is held for you and awaits approval",
        "approved": "was approved",
        "declined": "was declined",
    }[event]
    lines = [f"Your reservation of {first.space.name} at {location.name} {verb}.", ""]
    for r in reservations:
        lines.append(
            f"- {r.local_start:%a %d %b %Y %H:%M} to {r.local_end:%H:%M} ({location.time_zone})"
        )
    if first.title:
        lines += ["", f"Title: {first.title}"]
    if event == "awaiting" or (event == "changed" and first.approval == Approval.AWAITING):
        rule = approvals.rule_for(first.space)
        who = rule.approvers.name if rule else "the approvers"
        lines += [
            "",
            f"{who} approve bookings of this space; you will get an email with their decision.",
        ]
    if event in ("cancelled", "released", "declined") and first.cancel_reason:
        lines += ["", f"Reason: {first.cancel_reason}"]
    lines += ["", f"Manage your bookings: {settings.PUBLIC_BASE_URL}/"]
    return "\n".join(lines)


def send_reservation_email(event: str, reservation_ids: Sequence[int]) -> int:
    reservations = list(
        Reservation.objects.filter(pk__in=reservation_ids)
        .select_related("space__location", "requested_for", "booked_by")
        .order_by("start")
    )
    if not reservations:
        return 0
    first = reservations[0]
    recipients = sorted(
        {p.email for p in (first.requested_for, first.booked_by) if p is not None and p.email}
    )
    if not recipients and first.organizer_email:
        # A booking that came from a room calendar, made by someone who is not a Reserva user.
        recipients = [first.organizer_email]
    if not recipients:
        return 0
    if event == "created" and first.approval == Approval.AWAITING:
        event = "awaiting"
    method = "CANCEL" if event in ("cancelled", "released", "declined") else "REQUEST"
    subject = SUBJECTS[event].format(space=first.space.name, when=_when(reservations))
    message = EmailMessage(subject=subject, body=_body(event, reservations), to=recipients)
    if not any(provider_invites(r) for r in reservations):
        message.attach(
            "reservation.ics", build_ics(reservations, method), f"text/calendar; method={method}"
        )
    return message.send()
