"""Booking emails with their .ics attachment, sent after commit by the Celery task."""

from datetime import timedelta

import pytest
from django.core import mail
from icalendar import Calendar

from reservations import services
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
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert sorted(message.to) == ["assistant@example.com", "boss@example.com"]
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
    assert [m.subject.split(":")[0] for m in mail.outbox] == ["Booked", "Changed", "Cancelled"]
    cancel_ics = Calendar.from_ical(mail.outbox[2].attachments[0][1])
    assert str(cancel_ics["method"]) == "CANCEL"
    assert cancel_ics.walk("VEVENT")[0]["sequence"] == 3
    assert "Reason: Moved online" in mail.outbox[2].body


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
