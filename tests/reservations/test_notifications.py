"""Booking emails with their .ics attachment, sent after commit by the Celery task."""

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core import mail
from django.test import override_settings
from icalendar import Calendar

from reservations import services
from reservations.models import ReservationKind
from tests.conftest import local, next_weekday

pytestmark = pytest.mark.django_db


def test_booking_change_and_cancel_email_both_people_with_ics(
    make_user, make_space, django_capture_on_commit_callbacks
):
    assistant = make_user("assistant", perms=("reservations.book_on_behalf",))
    boss, space = make_user("boss"), make_space(name="Thames")
    start = local(space.location, next_weekday(1), 10)
    with django_capture_on_commit_callbacks(execute=True):
        [r] = services.book(
            actor=assistant,
            space=space,
            start=start,
            end=start + timedelta(hours=1),
            requested_for=boss,
            title="Board",
        ).reservations
    # One email each, in their own words.
    assert sorted(m.to[0] for m in mail.outbox) == ["assistant@example.com", "boss@example.com"]
    message = next(m for m in mail.outbox if m.to == ["boss@example.com"])
    assert message.subject.startswith("Booked: Thames, ")
    name, content, mimetype = message.attachments[0]
    assert name == "reservation.ics" and mimetype.startswith("text/calendar")
    event = Calendar.from_ical(content).walk("VEVENT")[0]
    assert str(event["summary"]) == "Board"
    assert event.decoded("dtstart") == start
    assert str(event["uid"]).startswith(f"reservation-{r.pk}@")

    with django_capture_on_commit_callbacks(execute=True):
        services.change(
            actor=boss,
            reservation=r,
            start=start + timedelta(hours=1),
            end=start + timedelta(hours=2),
        )
        services.cancel(actor=boss, reservation=r, reason="Moved online")
    to_boss = [m for m in mail.outbox if m.to == ["boss@example.com"]]
    assert [m.subject.split(":")[0] for m in to_boss] == ["Booked", "Changed", "Cancelled"]
    cancel_ics = Calendar.from_ical(to_boss[2].attachments[0][1])
    assert str(cancel_ics["method"]) == "CANCEL"
    assert cancel_ics.walk("VEVENT")[0]["sequence"] == 3
    assert "Reason: Moved online" in to_boss[2].body


def test_series_is_one_email_listing_every_occurrence(
    make_user, make_space, django_capture_on_commit_callbacks
):
    from reservations.models import Frequency
    from reservations.recurrence import Recurrence

    user, space = make_user(), make_space()
    start = local(space.location, next_weekday(0), 9)
    with django_capture_on_commit_callbacks(execute=True):
        services.book(
            actor=user,
            space=space,
            start=start,
            end=start + timedelta(hours=1),
            recurrence=Recurrence(Frequency.DAILY, count=3),
        )
    assert len(mail.outbox) == 1
    assert len(Calendar.from_ical(mail.outbox[0].attachments[0][1]).walk("VEVENT")) == 3
    assert "(+2 more)" in mail.outbox[0].subject


# --- what the emails say (HTML and text), on the shared template --------------------------------


def _parts(message) -> tuple[str, str]:
    """The text body and the HTML alternative of an email."""
    [(html, mimetype)] = message.alternatives
    assert mimetype == "text/html"
    return message.body, html


def _book_on_behalf(make_user, make_space, make_location, **extra):
    alice = make_user(
        "alice", first_name="Alice", last_name="Archer", perms=("reservations.book_on_behalf",)
    )
    bob = make_user("bob", first_name="Bob", last_name="Baker")
    london = make_location("London HQ", time_zone="Europe/London")
    space = make_space(london, name="Thames", allows_group=True, capacity=8)
    start = local(london, next_weekday(1), 10)
    [r] = services.book(
        actor=alice,
        space=space,
        start=start,
        end=start + timedelta(hours=1),
        requested_for=bob,
        title="Quarterly planning",
        **extra,
    ).reservations
    return alice, bob, r


@override_settings(ORGANISATION_NAME="Contoso Ltd", PUBLIC_BASE_URL="https://rooms.contoso.test")
def test_on_behalf_booking_emails_say_who_booked_for_whom_with_link_times_and_actions(
    make_user, make_space, make_location, django_capture_on_commit_callbacks
):
    from reservations.models import Profile

    with django_capture_on_commit_callbacks(execute=True):
        _alice, bob, r = _book_on_behalf(make_user, make_space, make_location)
        Profile.objects.create(user=bob, time_zone="America/New_York")
        mail.outbox.clear()
        from reservations.notifications import send_reservation_email

        send_reservation_email("created", [r.pk])
    to_bob = next(m for m in mail.outbox if m.to == ["bob@example.com"])
    to_alice = next(m for m in mail.outbox if m.to == ["alice@example.com"])
    link = f"https://rooms.contoso.test/reservations/{r.pk}/"
    day = r.local_start.strftime("%a %d %b %Y")
    for message, headline in (
        (to_bob, "Alice Archer booked Thames for you"),
        (to_alice, "You booked Thames for Bob Baker"),
    ):
        for part in _parts(message):
            assert "Contoso Ltd" in part
            assert headline in part
            assert link in part  # the booking itself, not the site's root
            assert "Thames" in part and "London HQ" in part and "Quarterly planning" in part
            assert f"{day} 10:00-11:00 (Europe/London" in part
            assert f"{link}change/" in part and f"{link}cancel/" in part
    # Bob lives in New York: his own time beside the location's; Alice has no profile (the
    # site default is UTC, an hour behind London in winter, the same in summer).
    bob_text, bob_html = _parts(to_bob)
    new_york = r.start.astimezone(ZoneInfo("America/New_York"))
    assert (
        f"; {new_york:%H:%M}-{new_york + timedelta(hours=1):%H:%M} your time, America/New_York)"
        in bob_text
    )
    assert "America/New_York" in bob_html
    assert "Alice Archer booked Thames for you" not in _parts(to_alice)[0]
    # The HTML is a real document with buttons, not the text in a <pre>.
    assert bob_html.lstrip().startswith("<!doctype html>")
    assert f'href="{link}change/"' in bob_html and ">Cancel</a>" in bob_html


def test_group_attendees_get_the_invitation_and_are_attendees_of_the_ics(
    make_user, make_space, make_location, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        _alice, _bob, r = _book_on_behalf(
            make_user,
            make_space,
            make_location,
            kind=ReservationKind.GROUP,
            attendees=["dora@partner.test", "eve@partner.test"],
        )
    assert sorted(m.to[0] for m in mail.outbox) == [
        "alice@example.com",
        "bob@example.com",
        "dora@partner.test",
        "eve@partner.test",
    ]
    to_dora = next(m for m in mail.outbox if m.to == ["dora@partner.test"])
    text, html = _parts(to_dora)
    assert "Bob Baker invited you to a meeting in Thames" in text
    assert "Bob Baker invited you to a meeting in Thames" in html
    assert "/change/" not in text  # an attendee cannot change someone else's booking
    name, content, mimetype = to_dora.attachments[0]
    assert name == "reservation.ics" and "method=REQUEST" in mimetype
    calendar = Calendar.from_ical(content)
    # The zone's rules travel with the event: VTIMEZONE for Europe/London, named by DTSTART.
    [zone] = calendar.walk("VTIMEZONE")
    assert str(zone["tzid"]) == "Europe/London"
    [event] = calendar.walk("VEVENT")
    assert event["dtstart"].params["TZID"] == "Europe/London"
    assert event.decoded("dtstart") == r.start
    attendees = event.get("attendee")
    addresses = sorted(str(a).removeprefix("mailto:") for a in attendees)
    assert addresses == [
        "alice@example.com",
        "bob@example.com",
        "dora@partner.test",
        "eve@partner.test",
    ]
    by_address = {str(a).removeprefix("mailto:"): a for a in attendees}
    assert by_address["bob@example.com"].params["CN"] == "Bob Baker"
    assert by_address["eve@partner.test"].params["ROLE"] == "REQ-PARTICIPANT"


def test_cancelled_email_offers_only_the_booking_and_gives_the_reason(
    make_user, make_space, make_location, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        alice, _bob, r = _book_on_behalf(make_user, make_space, make_location)
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        services.cancel(actor=alice, reservation=r, reason="Board moved online")
    to_bob = next(m for m in mail.outbox if m.to == ["bob@example.com"])
    to_alice = next(m for m in mail.outbox if m.to == ["alice@example.com"])
    text, html = _parts(to_bob)
    assert "Your booking of Thames was cancelled" in text and "Reason: Board moved online" in html
    assert f"/reservations/{r.pk}/" in text and "/cancel/" not in text and "/change/" not in html
    assert "The booking of Thames you made for Bob Baker was cancelled" in _parts(to_alice)[0]


def test_a_check_in_room_email_has_the_check_in_button(
    make_user, make_space, make_location, django_capture_on_commit_callbacks
):
    london = make_location("London HQ")
    space = make_space(london, name="Severn", check_in_required=True)
    person = make_user("carol")
    start = local(london, next_weekday(2), 9)
    with django_capture_on_commit_callbacks(execute=True):
        services.book(actor=person, space=space, start=start, end=start + timedelta(hours=1))
    [message] = mail.outbox
    text, html = _parts(message)
    assert "You booked Severn" in text
    assert "Check in: http://" in text and "/check-in/" in text
    assert ">Check in</a>" in html


def test_emails_are_logged_at_info_by_the_development_backend(caplog):
    from django.core.mail import EmailMultiAlternatives

    from reservations.mail import LogEmailBackend

    message = EmailMultiAlternatives(
        "Booked: Thames", "Open http://x/reservations/1/", to=["a@b.c"]
    )
    message.attach_alternative("<p>html</p>", "text/html")
    message.attach("reservation.ics", b"BEGIN:VCALENDAR", "text/calendar")
    with caplog.at_level("INFO", logger="reservations.mail"):
        assert LogEmailBackend().send_messages([message]) == 1
    [record] = caplog.records
    assert record.levelname == "INFO"
    assert "Email to a@b.c: Booked: Thames [text+html, reservation.ics]" in record.getMessage()
    assert "http://x/reservations/1/" in record.getMessage()
    assert "<p>" not in record.getMessage() and "VCALENDAR" not in record.getMessage()


def test_approval_request_email_has_approve_and_decline_buttons_and_the_booking(
    make_user, make_space, make_location, django_capture_on_commit_callbacks
):
    from django.contrib.auth.models import Group

    from reservations import approvals
    from reservations.models import ApprovalRule

    facilities = Group.objects.create(name="Facilities")
    fiona = make_user("fiona", first_name="Fiona", last_name="Field")
    fiona.groups.add(facilities)
    london = make_location("London HQ")
    trent = make_space(london, name="Trent")
    ApprovalRule.objects.create(location=london, space=trent, approvers=facilities)
    alice = make_user("alice", first_name="Alice", last_name="Archer")
    start = local(london, next_weekday(3), 14)
    [r] = services.book(
        actor=alice, space=trent, start=start, end=start + timedelta(hours=2), title="Review"
    ).reservations
    mail.outbox.clear()
    assert approvals.send_request([r.pk]) == 1
    [message] = mail.outbox
    assert message.to == ["fiona@example.com"]
    text, html = _parts(message)
    for part in (text, html):
        assert "Alice Archer booked Trent: approve or decline" in part
        assert "Facilities approves bookings of this space" in part
        assert f"{r.local_start:%a %d %b %Y} 14:00-16:00 (Europe/London" in part
        assert f"/reservations/{r.pk}/" in part
        assert part.count("/approvals/") >= 3  # approve, decline, the queue
    assert ">Approve</a>" in html and ">Decline</a>" in html


def test_check_in_reminder_email_has_the_signed_link(make_user, make_space, make_location):
    from reservations import checkin

    london = make_location("London HQ")
    severn = make_space(london, name="Severn", check_in_required=True)
    bob = make_user("bob", first_name="Bob", last_name="Baker")
    start = local(london, next_weekday(2), 9)
    [r] = services.book(
        actor=bob, space=severn, start=start, end=start + timedelta(hours=1)
    ).reservations
    mail.outbox.clear()
    assert checkin.send_reminder(r) == 1
    [message] = mail.outbox
    text, html = _parts(message)
    link = checkin.check_in_link(r)
    for part in (text, html):
        assert "Check in to Severn" in part
        assert link in part
        assert "starts at 09:00" in part and "(Europe/London)" in part
        assert f"/reservations/{r.pk}/" in part
    assert message.subject == f"Check in: Severn, {r.local_start:%a %d %b %H:%M}"
