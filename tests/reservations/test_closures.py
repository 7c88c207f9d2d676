"""Closures in the booking service and the reads: a booking that runs into a closure of its
space or of the whole location is refused with the closure's reason (code ``closed``) from
every entry point, remote calendars included; search leaves closed spaces out; the admin lists
the bookings a new closure falls on and cancels them only when asked, with a notice."""

from __future__ import annotations

from datetime import date, timedelta
from datetime import time as clock

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.urls import reverse

from reservations import closures, queries, services
from reservations.models import Closure, Reservation, ReservationStatus, Source
from reservations.recurrence import Recurrence
from tests.conftest import local, next_weekday
from tests.support.admin import reservation_form

pytestmark = pytest.mark.django_db

DAY = next_weekday(1)  # a Tuesday next week


@pytest.fixture
def room(make_location, make_space):
    location = make_location("HQ", opens=clock(7), closes=clock(20))
    return make_space(location, name="Board room")


def close(where, first: date, last: date | None = None, reason="Maintenance", **extra) -> Closure:
    """A closure of a space, or of a location when given one."""
    space = where if hasattr(where, "location") else None
    location = where.location if space else where
    return Closure.objects.create(
        location=location,
        space=space,
        start_date=first,
        end_date=last or first,
        reason=reason,
        **extra,
    )


def book(user, space, start, minutes=60, **extra):
    return services.book(
        actor=user, space=space, start=start, end=start + timedelta(minutes=minutes), **extra
    )


def test_a_booking_in_a_closed_space_is_refused_with_the_reason(room, make_user):
    close(room, DAY, reason="New carpets")
    with pytest.raises(services.Closed) as refused:
        book(make_user(), room, local(room.location, DAY, 10))
    assert refused.value.code == "closed"
    assert refused.value.message == (f"Board room is closed on {DAY:%a %d %b %Y}: New carpets.")
    assert not Reservation.objects.exists()


def test_a_closure_of_the_location_closes_every_space(room, make_space, make_user):
    other = make_space(room.location, name="Focus booth")
    close(room.location, DAY - timedelta(days=1), DAY + timedelta(days=1), reason="Office move")
    for space in (room, other):
        with pytest.raises(services.Closed, match=r"HQ is closed from .*: Office move\."):
            book(make_user(), space, local(room.location, DAY, 10))
    # The day after the last closed day is open again.
    book(make_user(), room, local(room.location, DAY + timedelta(days=2), 10))


def test_a_closure_of_some_hours_leaves_the_rest_of_the_day_bookable(room, make_user):
    close(room, DAY, start_time=clock(12), end_time=clock(14), reason="Fire drill")
    user = make_user()
    with pytest.raises(services.Closed, match=r"from 12:00 to 14:00 .*: Fire drill"):
        book(user, room, local(room.location, DAY, 13, 30))
    book(user, room, local(room.location, DAY, 11))  # ends as the closure begins
    book(user, room, local(room.location, DAY, 14))  # starts as it ends


def test_a_yearly_closure_repeats_every_year(room, make_user):
    room.location.booking_horizon_days = 800
    room.location.save()
    last_year = date(DAY.year - 1, DAY.month, DAY.day)
    close(room.location, last_year, yearly=True, reason="Founders' day")
    with pytest.raises(services.Closed, match="Founders' day"):
        book(make_user(), room, local(room.location, DAY, 10))
    next_year = date(DAY.year + 1, DAY.month, DAY.day)
    with pytest.raises(services.Closed):
        book(make_user(), room, local(room.location, next_year, 10))
    book(make_user(), room, local(room.location, DAY + timedelta(days=1), 10))


def test_a_series_lists_the_closed_dates_and_books_the_others(room, make_user):
    close(room, DAY + timedelta(days=7), reason="Painting")
    user = make_user()
    rule = Recurrence(frequency="weekly", weekdays=(DAY.weekday(),), count=3)
    with pytest.raises(services.Closed) as refused:
        book(user, room, local(room.location, DAY, 10), recurrence=rule)
    (closed,) = refused.value.unavailable
    assert closed.day == DAY + timedelta(days=7) and "Painting" in closed.reason
    result = book(user, room, local(room.location, DAY, 10), recurrence=rule, skip_unavailable=True)
    assert [r.start.date() for r in result.reservations] == [DAY, DAY + timedelta(days=14)]


def test_moving_a_booking_into_a_closure_is_refused_but_editing_it_in_place_is_not(room, make_user):
    user = make_user()
    booked = book(user, room, local(room.location, DAY, 10)).reservations[0]
    close(room, DAY + timedelta(days=1), reason="Deep clean")
    with pytest.raises(services.Closed, match="Deep clean"):
        services.change(
            actor=user,
            reservation=booked,
            start=local(room.location, DAY + timedelta(days=1), 10),
            end=local(room.location, DAY + timedelta(days=1), 11),
        )
    # A closure made after the booking does not stop its owner fixing the title.
    close(room, DAY, reason="Audit")
    (changed,) = services.change(actor=user, reservation=booked, title="Renamed")
    assert changed.title == "Renamed"


def test_a_booking_from_a_remote_calendar_is_refused_too(room):
    close(room, DAY, reason="Maintenance")
    with pytest.raises(services.Closed):
        services.book(
            actor=None,
            space=room,
            start=local(room.location, DAY, 10),
            end=local(room.location, DAY, 11),
            source=Source.EXCHANGE,
        )


def test_a_conflict_in_a_closure_keeps_its_reason_and_is_not_retried_into_the_slot(room):
    close(room, DAY, reason="Boiler repair")
    start = local(room.location, DAY, 10)
    conflict = services.record_conflict(
        space=room,
        start=start,
        end=start + timedelta(hours=1),
        source=Source.EXCHANGE,
        reason="Board room is closed: Boiler repair.",
    )
    assert conflict.cancel_reason == "Board room is closed: Boiler repair."
    assert conflict.history.first().history_change_reason == "Board room is closed: Boiler repair."
    assert not services.retry_conflict(reservation=conflict)
    conflict.refresh_from_db()
    assert conflict.status == ReservationStatus.CONFLICTED


def test_free_spaces_leave_out_closed_spaces_and_locations(room, make_space, make_location):
    other = make_space(room.location, name="Focus booth")
    elsewhere = make_space(make_location("Annex"), name="Annex room")
    close(room, DAY, start_time=clock(9), end_time=clock(10))
    start, end = local(room.location, DAY, 9, 30), local(room.location, DAY, 10, 30)
    assert set(queries.free_spaces(start, end)) == {other, elsewhere}
    close(room.location, DAY)
    assert list(queries.free_spaces(start, end)) == [elsewhere]
    # Outside the closures every space is free.
    later = DAY + timedelta(days=1)
    start, end = local(room.location, later, 9), local(room.location, later, 10)
    assert set(queries.free_spaces(start, end)) == {room, other, elsewhere}


def test_a_closure_is_checked_when_saved(room, make_space, make_location):
    elsewhere = make_space(make_location("Annex"))
    wrong = Closure(
        location=room.location, space=elsewhere, start_date=DAY, end_date=DAY, reason="x"
    )
    with pytest.raises(ValidationError, match="another location"):
        wrong.full_clean()
    backwards = Closure(
        location=room.location, start_date=DAY, end_date=DAY - timedelta(days=1), reason="x"
    )
    with pytest.raises(ValidationError, match="before the first day"):
        backwards.full_clean()
    hours = Closure(
        location=room.location,
        start_date=DAY,
        end_date=DAY,
        start_time=clock(14),
        end_time=clock(12),
        reason="x",
    )
    with pytest.raises(ValidationError, match="end must be after"):
        hours.full_clean()


def test_closure_periods_follow_the_locations_clock(make_location, make_space):
    tokyo = make_space(make_location("Tokyo", time_zone="Asia/Tokyo"))
    closure = close(tokyo, DAY)
    start, end = local(tokyo.location, DAY, 0), local(tokyo.location, DAY + timedelta(days=1), 0)
    (period,) = closures.periods(closure, start - timedelta(days=2), end, tokyo.location.zone)
    assert (period.start, period.end) == (start, end)


# --- admin -------------------------------------------------------------------------------------


@pytest.fixture
def admin_client(client, make_user):
    admin = make_user("boss", is_staff=True, is_superuser=True)
    client.force_login(admin)
    return client


def closure_form(room, **extra) -> dict:
    data = {
        "location": room.location.pk,
        "space": room.pk,
        "start_date": DAY.isoformat(),
        "end_date": DAY.isoformat(),
        "start_time": "",
        "end_time": "",
        "reason": "Water leak",
    }
    data.update(extra)
    return data


def test_a_new_closure_over_bookings_lists_them_and_cancels_nothing_by_itself(
    admin_client, room, make_user, django_capture_on_commit_callbacks
):
    alice = make_user("alice", email="alice@example.com")
    booked = book(alice, room, local(room.location, DAY, 10), title="Planning").reservations[0]
    untouched = book(alice, room, local(room.location, DAY + timedelta(days=1), 10))
    response = admin_client.post(reverse("admin:reservations_closure_add"), closure_form(room))
    closure = Closure.objects.get()
    bookings_url = reverse("admin:reservations_closure_bookings", args=[closure.pk])
    assert response.status_code == 302 and response["Location"] == bookings_url
    booked.refresh_from_db()
    assert booked.status == ReservationStatus.CONFIRMED  # never silently

    page = admin_client.get(bookings_url).content.decode()
    assert f"#{booked.pk} Planning" in page and "Water leak" in page
    assert "Cancel these bookings" in page
    assert f"#{untouched.reservations[0].pk}" not in page

    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(bookings_url, {"reservation": [booked.pk]}, follow=True)
    assert "Cancelled 1 booking(s)" in response.content.decode()
    booked.refresh_from_db()
    assert booked.status == ReservationStatus.CANCELLED
    assert booked.cancel_reason == f"Board room is closed on {DAY:%a %d %b %Y}: Water leak."
    assert booked.history.first().history_user.username == "boss"
    (email,) = [m for m in mail.outbox if m.to == ["alice@example.com"]]
    assert "Water leak" in email.body
    assert untouched.reservations[0].status == ReservationStatus.CONFIRMED
    assert "No booking holds a slot" in admin_client.get(bookings_url).content.decode()


def test_unticked_bookings_are_kept(admin_client, room, make_user):
    booked = book(make_user(), room, local(room.location, DAY, 10)).reservations[0]
    admin_client.post(reverse("admin:reservations_closure_add"), closure_form(room))
    bookings_url = reverse("admin:reservations_closure_bookings", args=[Closure.objects.get().pk])
    response = admin_client.post(bookings_url, {}, follow=True)
    assert "No booking was selected." in response.content.decode()
    booked.refresh_from_db()
    assert booked.status == ReservationStatus.CONFIRMED


def test_the_closure_list_counts_the_bookings_to_review(admin_client, room, make_user):
    book(make_user(), room, local(room.location, DAY, 10))
    closure = close(room, DAY)
    page = admin_client.get(reverse("admin:reservations_closure_changelist")).content.decode()
    assert "1 to review" in page
    assert reverse("admin:reservations_closure_bookings", args=[closure.pk]) in page


def test_a_closure_without_bookings_is_just_saved(admin_client, room):
    response = admin_client.post(reverse("admin:reservations_closure_add"), closure_form(room))
    assert response["Location"] == reverse("admin:reservations_closure_changelist")


def test_the_bookings_page_needs_staff(client, room, make_user):
    closure = close(room, DAY)
    client.force_login(make_user())
    url = reverse("admin:reservations_closure_bookings", args=[closure.pk])
    assert client.get(url).status_code == 302  # to the admin's sign-in


def test_a_reservation_added_in_the_admin_during_a_closure_is_refused_with_the_reason(
    admin_client, room, make_user, settings
):
    settings.TIME_ZONE = "Europe/London"  # the admin's form times are in the site zone
    close(room, DAY, reason="Asbestos survey")
    start = local(room.location, DAY, 10)
    response = admin_client.post(
        reverse("admin:reservations_reservation_add"),
        reservation_form(room, make_user(), start),
        follow=True,
    )
    assert "Asbestos survey" in response.content.decode()
    assert not Reservation.objects.exists()
    assert admin_client.get(reverse("admin:reservations_closure_add")).status_code == 200
