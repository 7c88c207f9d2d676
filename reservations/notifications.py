"""Booking emails with an iCalendar (.ics) attachment.

One email per reader per event, covering every occurrence the event touched, on the shared
template (``reservations.emails``): the person the booking is for, who booked it for them ("You
booked Thames for Bob Baker" / "Alice Archer booked Thames for you"), and a group booking's
attendees, who are also ATTENDEEs of the .ics. Times are in the location's zone with the
reader's own beside it; the buttons open, check in to, change and cancel the booking.

The .ics uses METHOD:REQUEST for bookings and changes and METHOD:CANCEL for cancellations, a
stable UID per reservation and SEQUENCE = the reservation's version, so calendar applications
update the entry they already have instead of adding a second one; it carries the VTIMEZONE of
the location's zone.

No .ics when a calendar provider already put the booking in the person's calendar (the event
lives in their own mailbox, or they are invited to it): two entries for one booking would be
worse than none. Whether that is so is the calendars app's knowledge, so it registers a check
here (``register_invitation_check``); this app never imports it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.conf import settings
from django.urls import reverse
from icalendar import Calendar, Event, vCalAddress, vText

from . import approvals, checkin, emails
from .models import ENDED_STATUSES, Approval, Reservation

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

SUBJECTS = {
    "created": "Booked: {space}, {when}",
    "changed": "Changed: {space}, {when}",
    "cancelled": "Cancelled: {space}, {when}",
    "released": "Released: {space}, {when} (nobody checked in)",
    "reminder": "Reminder: {space}, {when}",
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
        for reader in recipients(reservation):
            attendee = vCalAddress(f"mailto:{reader.email}")
            if reader.user is not None:
                attendee.params["cn"] = vText(emails.person_name(reader.user))
            attendee.params["role"] = vText("REQ-PARTICIPANT")
            attendee.params["cutype"] = vText("INDIVIDUAL")
            event.add("attendee", attendee, encode=0)
        if reservation.status in ENDED_STATUSES:
            event.add("status", "CANCELLED")
        elif reservation.approval == Approval.AWAITING:
            event.add("status", "TENTATIVE")
        else:
            event.add("status", "CONFIRMED")
        cal.add_component(event)
    # The zones' rules, so a calendar that does not know a TZID still shows the right time.
    cal.add_missing_timezones()
    return cal.to_ical()


def _when(reservations: Sequence[Reservation]) -> str:
    first = reservations[0]
    text = f"{first.local_start:%a %d %b %Y %H:%M}-{first.local_end:%H:%M}"
    if len(reservations) > 1:
        text += f" (+{len(reservations) - 1} more)"
    return text


class Role:
    """Why a recipient gets the email, which decides its words and its buttons."""

    PERSON = "person"  # the booking is for them (and they made it, unless BOOKER differs)
    BOOKER = "booker"  # they made it for someone else
    ATTENDEE = "attendee"  # invited to a group booking
    ORGANIZER = "organizer"  # made in a room calendar by someone who is not a Reserva user


@dataclass(frozen=True)
class Recipient:
    email: str
    role: str
    user: AbstractBaseUser | None = None


def recipients(reservation: Reservation) -> list[Recipient]:
    """Everyone told about a booking, each once: the person it is for, who booked it for them,
    the group's attendees; failing all of them, a remote organizer."""
    found: dict[str, Recipient] = {}
    person, booker = reservation.requested_for, reservation.booked_by
    if person is not None and person.email:
        found[person.email.lower()] = Recipient(person.email, Role.PERSON, person)
    if booker is not None and booker.email and booker.email.lower() not in found:
        role = Role.PERSON if person is None else Role.BOOKER
        found[booker.email.lower()] = Recipient(booker.email, role, booker)
    for address in reservation.attendees or []:
        if address and address.lower() not in found:
            found[address.lower()] = Recipient(address, Role.ATTENDEE)
    if not found and reservation.organizer_email:
        found[reservation.organizer_email.lower()] = Recipient(
            reservation.organizer_email, Role.ORGANIZER
        )
    return list(found.values())


VERBS = {
    "created": "is booked",
    "changed": "was changed",
    "cancelled": "was cancelled",
    "released": "was released for others because nobody checked in",
    "awaiting": "is held and awaits approval",
    "approved": "was approved",
    "declined": "was declined",
}


def headline(event: str, reservation: Reservation, recipient: Recipient) -> str:
    """ "Alice Archer booked Thames for you" to the person, "You booked Thames for Bob Baker"
    to the booker; the attendees are told who invited them."""
    space = reservation.space.name
    person, booker = reservation.requested_for, reservation.booked_by
    on_behalf = person is not None and booker is not None and person.pk != booker.pk
    if event in ("created", "awaiting") and on_behalf:
        waits = " (awaiting approval)" if event == "awaiting" else ""
        if recipient.role == Role.BOOKER:
            return f"You booked {space} for {emails.person_name(person)}{waits}"
        if recipient.role == Role.PERSON:
            return f"{emails.person_name(booker)} booked {space} for you{waits}"
    if event == "created" and recipient.role == Role.PERSON:
        return f"You booked {space}"
    if recipient.role == Role.ATTENDEE:
        host = person or booker
        if event == "created" and host is not None:
            return f"{emails.person_name(host)} invited you to a meeting in {space}"
        return f"The meeting in {space} you are invited to {VERBS[event]}"
    if recipient.role == Role.BOOKER:
        return f"The booking of {space} you made for {emails.person_name(person)} {VERBS[event]}"
    return f"Your booking of {space} {VERBS[event]}"


def actions(event: str, reservation: Reservation, recipient: Recipient) -> list[emails.Action]:
    """What the reader can do from the email: open the booking, check in (where check-in is
    required), change it, cancel it; only the booking's link once it has ended."""
    if recipient.role == Role.ATTENDEE:
        return []
    if recipient.role == Role.ORGANIZER:
        if (
            reservation.status not in ENDED_STATUSES
            and checkin.policy_for(reservation.space).required
        ):
            return [emails.Action("Check in", checkin.check_in_link(reservation))]
        return []
    found = [emails.Action("View booking", emails.booking_link(reservation))]
    if reservation.status in ENDED_STATUSES or event in ENDED_EVENTS:
        return found
    if checkin.policy_for(reservation.space).required and not reservation.checked_in_at:
        found.append(emails.Action("Check in", checkin.check_in_link(reservation)))
    found.append(
        emails.Action("Change", emails.absolute(reverse("portal:change", args=[reservation.pk])))
    )
    found.append(
        emails.Action("Cancel", emails.absolute(reverse("portal:cancel", args=[reservation.pk])))
    )
    return found


ENDED_EVENTS = ("cancelled", "released", "declined")


def compose(event: str, reservations: Sequence[Reservation], recipient: Recipient) -> emails.Email:
    """The email of one booking event for one reader (``event`` as ``SUBJECTS`` names it)."""
    first = reservations[0]
    subject = SUBJECTS[event].format(space=first.space.name, when=_when(reservations))
    email = emails.Email(
        subject=subject,
        headline=headline(event, first, recipient),
        booking=emails.booking_card(reservations, emails.reader_zone(recipient.user)),
        actions=actions(event, first, recipient),
    )
    if event == "awaiting" or (event == "changed" and first.approval == Approval.AWAITING):
        rule = approvals.rule_for(first.space)
        who = rule.approvers.name if rule else "the approvers"
        email.paragraphs.append(
            f"{who} approve bookings of this space; you will get an email with their decision."
        )
    if event in ENDED_EVENTS and first.cancel_reason:
        email.paragraphs.append(f"Reason: {first.cancel_reason}")
    if recipient.role != Role.ATTENDEE and len(reservations) > 1:
        email.notes.append("Each date is its own booking; its page is on My reservations.")
    return email


def send_reservation_email(event: str, reservation_ids: Sequence[int]) -> int:
    """One email to each person concerned (see ``recipients``), in their own words, with the
    .ics attached unless a calendar provider already invites them. Returns the emails sent."""
    reservations = list(
        Reservation.objects.filter(pk__in=reservation_ids)
        .select_related("space__location", "requested_for", "booked_by")
        .order_by("start")
    )
    if not reservations:
        return 0
    first = reservations[0]
    readers = recipients(first)
    if not readers:
        return 0
    if event == "created" and first.approval == Approval.AWAITING:
        event = "awaiting"
    method = "CANCEL" if event in ENDED_EVENTS else "REQUEST"
    attachments = []
    if not any(provider_invites(r) for r in reservations):
        attachments = [
            ("reservation.ics", build_ics(reservations, method), f"text/calendar; method={method}")
        ]
    sent = 0
    for reader in readers:  # one each: the words differ, and attendees need not see each other
        email = compose(event, reservations, reader)
        sent += email.message([reader.email], attachments).send()
    return sent
