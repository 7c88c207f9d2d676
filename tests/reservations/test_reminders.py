"""The reminder email before a booking starts (reservations/reminders.py, beat task
reservations.send_booking_reminders): once, on time, respecting the profile and the setting."""

from datetime import timedelta

import pytest
from django.core import mail
from django.test import override_settings
from django.utils import timezone

from reservations import reminders, services, tasks
from reservations.models import Profile, Reservation, Source
from tests.conftest import midday_zone

pytestmark = pytest.mark.django_db


@pytest.fixture
def room(make_location, make_space):
    # Open all day every day (make_location's default) where it is about midday now: the
    # tests book at the real time, whatever day and hour the suite runs.
    location = make_location("London HQ", time_zone=midday_zone())
    return make_space(location, name="Thames")


def booked(room, person, start, *, made=timedelta(days=1), **extra) -> Reservation:
    """A 30-minute booking of ``room`` at ``start``, made ``made`` before its start."""
    [r] = services.book(
        actor=person, space=room, start=start, end=start + timedelta(minutes=30),
        now=start - made, **extra,
    ).reservations  # fmt: skip
    Reservation.objects.filter(pk=r.pk).update(created=start - made)
    return r


def test_the_task_sends_the_reminder_once_with_the_booking_link(room, make_user):
    now = timezone.now()
    alice = make_user("alice", first_name="Alice")
    r = booked(room, alice, now + timedelta(minutes=20))
    later = booked(room, make_user(), now + timedelta(minutes=50))  # not due yet
    mail.outbox.clear()
    assert tasks.send_booking_reminders() == 1
    assert tasks.send_booking_reminders() == 0  # claimed: never twice
    [message] = mail.outbox
    assert message.to == [alice.email]
    assert message.subject.startswith("Reminder: Thames, ")
    start = r.local_start
    for part in (message.body, message.alternatives[0][0]):
        assert f"Thames starts at {start:%H:%M}" in part
        assert f"/reservations/{r.pk}/" in part and "/profile/" in part
    assert Reservation.objects.get(pk=r.pk).reminder_sent_at is not None
    assert Reservation.objects.get(pk=later.pk).reminder_sent_at is None


def test_a_second_worker_loses_the_claim(room, make_user):
    now = timezone.now()
    r = booked(room, make_user(), now + timedelta(minutes=20))
    assert reminders.due(now) == [r.pk]
    assert services.claim_booking_reminder(reservation_id=r.pk, now=now) is True
    assert services.claim_booking_reminder(reservation_id=r.pk, now=now) is False
    assert reminders.due(now) == []


def test_people_who_turned_reminders_off_get_none(room, make_user, client):
    now = timezone.now()
    alice, bob = make_user("alice"), make_user("bob")
    booked(room, alice, now + timedelta(minutes=10))
    kept = booked(room, bob, now + timedelta(minutes=45), made=timedelta(days=2))
    # Alice turns them off in her profile page.
    client.force_login(alice)
    response = client.post("/profile/", {"time_zone": "", "default_location": ""})
    assert response.status_code in (200, 302)
    assert Profile.objects.get(user=alice).email_reminders is False
    assert reminders.due(now) == []
    assert reminders.due(now + timedelta(minutes=20)) == [kept.pk]  # Bob kept his


def test_the_setting_moves_or_turns_off_the_reminder(room, make_user):
    now = timezone.now()
    r = booked(room, make_user(), now + timedelta(minutes=50))
    assert reminders.due(now) == []  # default 30 minutes: not yet
    with override_settings(BOOKING_REMINDER_MINUTES=60):
        assert reminders.due(now) == [r.pk]
    with override_settings(BOOKING_REMINDER_MINUTES=0):
        assert reminders.due(now + timedelta(minutes=30)) == []
        assert tasks.send_booking_reminders() == 0


def test_no_reminder_for_a_booking_made_inside_the_window_nor_from_outlook(
    room, make_user, make_space
):
    now = timezone.now()
    person, other_room = make_user(), make_space(room.location, name="Severn")
    booked(room, person, now + timedelta(minutes=20), made=timedelta(minutes=5))
    booked(
        other_room, person, now + timedelta(minutes=25), made=timedelta(days=1),
        source=Source.EXCHANGE,
    )  # fmt: skip
    assert reminders.due(now) == []
