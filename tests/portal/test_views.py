"""The portal's pages through Django's test client: every page, and every way to get it wrong
(tampered ids, other people's bookings, impossible dates, a slot taken meanwhile)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core import mail
from django.urls import reverse

from reservations import rules, services
from reservations.models import (
    Profile,
    Reservation,
    ReservationKind,
    ReservationStatus,
    Source,
)
from reservations.recurrence import Recurrence
from tests.conftest import local
from tests.support.portal import DAY, book_form, change_form

pytestmark = pytest.mark.django_db

LONDON = ZoneInfo("Europe/London")


# --- sign-in ----------------------------------------------------------------------------------


def test_pages_need_sign_in(client):
    for name in ("portal:find", "portal:schedule", "portal:mine", "portal:profile"):
        response = client.get(reverse(name))
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("account_login"))


@pytest.mark.parametrize("login", ["alice", "alice@example.com", "ALICE@example.com"])
def test_sign_in_with_username_or_email(client, alice, login):
    page = client.get(reverse("account_login"))
    assert page.status_code == 200 and b"Sign in to Reserva" in page.content
    response = client.post(reverse("account_login"), {"login": login, "password": "pw"})
    assert response.status_code == 302 and response["Location"] == reverse("portal:find")
    assert client.get(reverse("portal:find")).status_code == 200


def test_wrong_password_is_a_message_not_an_error(client, alice):
    response = client.post(reverse("account_login"), {"login": "alice", "password": "nope"})
    assert response.status_code == 200
    assert b"not correct" in response.content


def test_password_reset_by_email(client, alice):
    response = client.post(reverse("account_reset_password"), {"email": "alice@example.com"})
    assert response.status_code == 302
    assert len(mail.outbox) == 1 and "alice@example.com" in mail.outbox[0].to
    assert "/accounts/password/reset/key/" in mail.outbox[0].body


def test_sign_up_is_closed(client):
    response = client.get(reverse("account_signup"))
    assert b"closed" in response.content.lower()


# --- find a space -----------------------------------------------------------------------------


def test_find_page_opens_with_defaults(alice_client, office, frozen_now):
    frozen_now(local(office.location, DAY, 10))  # open: quick reservation is offered
    response = alice_client.get(reverse("portal:find"))
    assert response.status_code == 200
    assert b"Quick reservation" in response.content
    assert b"HQ" in response.content


def test_search_lists_free_spaces_smallest_first_with_capacity_and_amenities(
    alice_client, office, bob, make_reservation
):
    make_reservation(office.small, user=bob, start=local(office.location, DAY, 10))
    response = alice_client.get(
        reverse("portal:find"),
        {"location": office.location.pk, "date": DAY, "start": "10:00", "duration": 60},
    )
    names = [s.name for s in response.context["spaces"]]
    assert names == ["Booth", "Desk 1", "Big room"]  # Small room is taken
    body = response.content.decode()
    assert "10 people" in body and "Video conferencing" in body
    # Each result's own amenities, by name (the filter's checkboxes name them all).
    chips = re.findall(r'<ul class="chips" aria-label="Amenities">(.*?)</ul>', body)
    assert chips == ["<li>Display</li><li>Video conferencing</li>"]  # the big room's only


def test_search_filters_capacity_kind_and_amenities(alice_client, office):
    url = reverse("portal:find")
    base = {"location": office.location.pk, "date": DAY, "start": "10:00", "duration": 60}
    by_capacity = alice_client.get(url, {**base, "capacity": 5}).context["spaces"]
    assert [s.name for s in by_capacity] == ["Big room"]
    by_kind = alice_client.get(url, {**base, "kind": "desk"}).context["spaces"]
    assert [s.name for s in by_kind] == ["Desk 1"]
    by_amenity = alice_client.get(url, {**base, "amenities": [office.display.pk]}).context["spaces"]
    assert [s.name for s in by_amenity] == ["Small room", "Big room"]


def test_search_with_an_end_time(alice_client, office, bob, make_reservation):
    make_reservation(office.booth, user=bob, start=local(office.location, DAY, 12))
    response = alice_client.get(
        reverse("portal:find"),
        {"location": office.location.pk, "date": DAY, "start": "11:00", "end": "12:30"},
    )
    assert "Booth" not in [s.name for s in response.context["spaces"]]


def test_htmx_search_returns_only_the_results(alice_client, office):
    response = alice_client.get(
        reverse("portal:find"),
        {"location": office.location.pk, "date": DAY, "start": "10:00", "duration": 60},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200
    assert b"<html" not in response.content and b"free space" in response.content


@pytest.mark.parametrize(
    "params",
    [
        {"date": "2026-02-30", "start": "10:00"},
        {"date": "yesterday", "start": "25:00"},
        {"date": DAY.isoformat(), "start": "10:00", "end": "09:00"},
        {"date": DAY.isoformat(), "start": "10:00", "capacity": "-3"},
        {"date": DAY.isoformat(), "start": "10:00", "location": "999999"},
        {"date": DAY.isoformat(), "start": "10:00", "amenities": "abc"},
    ],
)
def test_bad_search_input_is_explained_not_a_500(alice_client, office, params):
    response = alice_client.get(reverse("portal:find"), params)
    assert response.status_code == 200
    assert response.context["form"].errors or response.context.get("spaces") is not None


def test_search_outside_opening_hours_says_so(alice_client, office):
    response = alice_client.get(
        reverse("portal:find"),
        {"location": office.location.pk, "date": DAY, "start": "21:00", "duration": 60},
    )
    assert "is open 07:00-20:00" in response.context["problem"]


# --- quick reservation ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "expected"), [((10, 2), ("10:00", "10:30")), ((10, 3), ("10:05", "10:35"))]
)
def test_quick_reservation_books_smallest_free_room_for_30_minutes(
    alice_client, alice, office, frozen_now, now, expected
):
    frozen_now(local(office.location, DAY, *now))
    response = alice_client.post(reverse("portal:quick"))
    reservation = Reservation.objects.get(requested_for=alice)
    assert response.status_code == 302
    assert response["Location"] == reverse("portal:detail", args=[reservation.pk])
    assert reservation.space == office.booth and reservation.source == Source.QUICK
    assert (f"{reservation.local_start:%H:%M}", f"{reservation.local_end:%H:%M}") == expected


def test_quick_reservation_uses_the_default_location_and_group_size(
    alice_client, alice, office, make_location, make_space, frozen_now
):
    elsewhere = make_location("Elsewhere", time_zone="America/New_York")
    room = make_space(elsewhere, name="NY room", capacity=6)
    Profile.objects.create(user=alice, default_location=elsewhere)
    frozen_now(local(elsewhere, DAY, 10))
    alice_client.post(reverse("portal:quick"), {"people": 5})
    assert Reservation.objects.get(requested_for=alice).space == room


def test_quick_reservation_stops_at_closing_time(alice_client, alice, office, frozen_now):
    frozen_now(local(office.location, DAY, 19, 40))
    alice_client.post(reverse("portal:quick"))
    assert Reservation.objects.get(requested_for=alice).local_end.hour == 20


def test_quick_reservation_when_closed_books_nothing(alice_client, alice, office, frozen_now):
    frozen_now(local(office.location, DAY, 6, 0))
    response = alice_client.post(reverse("portal:quick"), follow=True)
    assert "opens at 07:00" in response.content.decode()
    frozen_now(local(office.location, DAY, 19, 50))
    response = alice_client.post(reverse("portal:quick"), follow=True)
    assert "closes at 20:00" in response.content.decode()
    assert not Reservation.objects.exists()


def test_quick_reservation_when_nothing_is_free(
    alice_client, alice, bob, office, frozen_now, make_reservation
):
    frozen_now(local(office.location, DAY, 10))
    for room in (office.booth, office.small, office.big):
        make_reservation(room, user=bob, start=local(office.location, DAY, 10))
    response = alice_client.post(reverse("portal:quick"), follow=True)
    assert "No room for anyone is free at HQ" in response.content.decode()
    assert not Reservation.objects.filter(requested_for=alice).exists()


def test_quick_reservation_needs_post(alice_client, office):
    assert alice_client.get(reverse("portal:quick")).status_code == 405


# --- booking form -----------------------------------------------------------------------------


def test_booking_form_is_prefilled_from_the_search(alice_client, office):
    response = alice_client.get(
        reverse("portal:book"), {"space": office.small.pk, "date": DAY, "start": "10:00"}
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert 'value="10:00"' in body and f'value="{DAY.isoformat()}"' in body
    assert 'name="requested_for"' not in body  # no on-behalf permission
    assert 'name="attendees"' not in body  # the small room allows no groups


def test_book_creates_the_reservation_from_the_portal(alice_client, alice, office):
    response = alice_client.post(
        reverse("portal:book"), book_form(office.small, title="Planning", description="Q3")
    )
    reservation = Reservation.objects.get()
    assert response["Location"] == reverse("portal:detail", args=[reservation.pk])
    assert (reservation.requested_for, reservation.booked_by) == (alice, alice)
    assert reservation.source == Source.PORTAL and reservation.title == "Planning"
    assert reservation.start == local(office.location, DAY, 10)
    assert reservation.end == local(office.location, DAY, 11)


def test_book_with_a_duration_instead_of_an_end(alice_client, office):
    alice_client.post(reverse("portal:book"), book_form(office.small, end="", duration=90))
    assert Reservation.objects.get().end == local(office.location, DAY, 11, 30)


def test_book_from_the_schedule_is_an_event_planner_booking(alice_client, office):
    alice_client.post(reverse("portal:book"), book_form(office.small, via="planner"))
    assert Reservation.objects.get().source == Source.EVENT_PLANNER
    alice_client.post(reverse("portal:book"), book_form(office.big, via="anything-else"))
    assert Reservation.objects.get(space=office.big).source == Source.PORTAL


def test_on_behalf_only_with_the_permission(client, alice, bob, assistant, office):
    client.force_login(alice)
    client.post(reverse("portal:book"), book_form(office.small, requested_for=bob.pk))
    assert Reservation.objects.get().requested_for == alice  # the tampered field is ignored

    client.force_login(assistant)
    page = client.get(reverse("portal:book"), {"space": office.big.pk})
    assert 'name="requested_for"' in page.content.decode()
    client.post(reverse("portal:book"), book_form(office.big, requested_for=bob.pk))
    booked = Reservation.objects.get(space=office.big)
    assert (booked.requested_for, booked.booked_by) == (bob, assistant)


def test_group_attendees_where_the_space_allows_groups(alice_client, office):
    page = alice_client.get(reverse("portal:book"), {"space": office.big.pk})
    assert 'name="attendees"' in page.content.decode()
    alice_client.post(
        reverse("portal:book"), book_form(office.big, attendees="a@example.com, b@example.com")
    )
    reservation = Reservation.objects.get()
    assert reservation.kind == ReservationKind.GROUP
    assert reservation.attendees == ["a@example.com", "b@example.com"]


def test_group_errors_are_next_to_the_attendees_field(alice_client, office):
    response = alice_client.post(
        reverse("portal:book"), book_form(office.big, attendees="a@example.com, not-an-email")
    )
    assert response.status_code == 400
    assert "Not an email address: not-an-email." in response.context["form"].errors["attendees"]
    too_many = ", ".join(f"p{n}@example.com" for n in range(12))
    response = alice_client.post(reverse("portal:book"), book_form(office.big, attendees=too_many))
    assert "holds 10 people" in response.context["form"].errors["attendees"][0]
    assert not Reservation.objects.exists()


@pytest.mark.parametrize(
    ("changes", "field", "text"),
    [
        ({"end": "09:00"}, "end", "The end must be after the start."),
        ({"date": "2026-02-30"}, "date", "Enter a valid date."),
        ({"start": "26:00"}, "start", "Enter a valid time."),
        ({"start": "21:00", "end": "22:00"}, "start", "is open 07:00-20:00"),
        ({"date": (DAY - timedelta(days=14)).isoformat()}, "start", "That time is in the past."),
        ({"date": "2999-01-07"}, "date", "Choose a date within the next few years."),
        ({"date": "0001-01-01"}, "date", "Choose a date within the next few years."),
        ({"date": "9999-12-31"}, "date", "Choose a date within the next few years."),
        ({"repeat": "weekly"}, "until", "Choose an end date or a number of times."),
        ({"repeat": "daily", "count": "999"}, "count", "less than or equal to 366"),
    ],
)
def test_booking_errors_are_next_to_the_field_and_keep_what_was_typed(
    alice_client, office, changes, field, text
):
    data = book_form(office.small, title="Typed title", **changes)
    response = alice_client.post(reverse("portal:book"), data)
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert any(text in message for message in errors[field]), errors
    assert 'value="Typed title"' in response.content.decode()
    assert not Reservation.objects.exists()


def test_a_time_that_does_not_exist_is_a_field_error(alice_client, make_location, make_space):
    location = make_location("DST", time_zone="Europe/London")
    room = make_space(location)
    today = datetime.now(LONDON).date()
    # The last Sunday of March at 01:30 does not exist in London.
    year = today.year + 1
    march_end = datetime(year, 3, 31).date()
    gap_day = march_end - timedelta(days=(march_end.weekday() + 1) % 7)
    response = alice_client.post(
        reverse("portal:book"), book_form(room, day=gap_day, start="01:30", end="02:30")
    )
    assert "does not exist" in str(response.context["form"].errors)


@pytest.mark.parametrize("space", ["999999", "abc", ""])
def test_tampered_space_is_a_404_or_a_message(alice_client, office, space):
    response = alice_client.post(
        reverse("portal:book"), {**book_form(office.small), "space": space}
    )
    assert response.status_code == 404
    response = alice_client.get(reverse("portal:book"), {"space": space})
    assert response.status_code in (302, 404)


def test_a_container_cannot_be_booked(alice_client, office, make_space):
    hall = make_space(office.location, name="Hall", kind="container")
    response = alice_client.get(reverse("portal:book"), {"space": hall.pk})
    assert response.status_code == 200
    response = alice_client.post(reverse("portal:book"), book_form(hall))
    assert response.status_code == 400
    assert not Reservation.objects.exists()


def test_conflict_shows_the_clash_and_offers_free_spaces(
    alice_client, alice, bob, office, make_reservation
):
    make_reservation(office.small, user=bob, start=local(office.location, DAY, 10))
    response = alice_client.post(reverse("portal:book"), book_form(office.small, title="Mine"))
    assert response.status_code == 409
    body = response.content.decode()
    assert "Small room is already booked from 10:00 to 11:00" in body
    # Only spaces that hold as many people as the small room (4): the booth and the desk
    # (1 each) are no alternative (tests/portal/test_next_free_portal.py).
    assert [s.name for s in response.context["options"]] == ["Big room"]
    assert f'name="use_space" value="{office.big.pk}"' in body
    assert 'value="Mine"' in body

    response = alice_client.post(
        reverse("portal:book"),
        {**book_form(office.small, title="Mine"), "use_space": office.big.pk},
    )
    assert response.status_code == 302
    mine = Reservation.objects.get(requested_for=alice)
    assert mine.space == office.big and mine.title == "Mine"


def test_slot_taken_between_viewing_and_booking(alice_client, alice, bob, office):
    page = alice_client.get(reverse("portal:book"), {"space": office.small.pk, "date": DAY})
    assert page.status_code == 200
    services.book(
        actor=bob,
        space=office.small,
        start=local(office.location, DAY, 10, 30),
        end=local(office.location, DAY, 11, 30),
    )
    response = alice_client.post(reverse("portal:book"), book_form(office.small))
    assert response.status_code == 409
    assert "already booked from 10:30 to 11:30" in response.content.decode()
    assert Reservation.objects.count() == 1


def test_series_conflict_lists_dates_and_books_the_free_ones(
    alice_client, alice, bob, office, make_reservation
):
    taken = DAY + timedelta(days=7)
    make_reservation(office.small, user=bob, start=local(office.location, taken, 10))
    data = book_form(office.small, repeat="weekly", count=3, weekdays=[DAY.weekday()])
    response = alice_client.post(reverse("portal:book"), data)
    assert response.status_code == 409
    body = response.content.decode()
    assert "1 of 3 dates cannot be booked" in body
    assert taken.strftime("%a %d %b %Y") in body
    assert "Book the 2 free dates only" in body
    assert not Reservation.objects.filter(requested_for=alice).exists()

    response = alice_client.post(reverse("portal:book"), {**data, "skip_unavailable": "1"})
    assert response.status_code == 302
    mine = Reservation.objects.filter(requested_for=alice).order_by("start")
    assert [r.local_start.date() for r in mine] == [DAY, DAY + timedelta(days=14)]
    assert len({r.series_id for r in mine}) == 1


@pytest.mark.parametrize(
    ("repeat", "extra", "count"),
    [
        ("daily", {"count": 3}, 3),
        ("weekly", {"weekdays": [1, 3], "until": (DAY + timedelta(days=9)).isoformat()}, 4),
        ("monthly_day", {"count": 2}, 2),
        ("monthly_weekday", {"count": 2}, 2),
    ],
)
def test_recurrence_kinds(alice_client, office, repeat, extra, count):
    response = alice_client.post(
        reverse("portal:book"), book_form(office.small, repeat=repeat, **extra)
    )
    assert response.status_code == 302, response.context["form"].errors
    assert Reservation.objects.count() == count


# --- schedule ---------------------------------------------------------------------------------


def test_schedule_shows_bookings_and_greys_out_what_the_viewer_cannot_change(
    alice_client, alice, bob, office, make_reservation
):
    mine = make_reservation(
        office.small, user=alice, start=local(office.location, DAY, 9), title="Standup"
    )
    theirs = make_reservation(
        office.big,
        user=bob,
        start=local(office.location, DAY, 14),
        title="Secret",
        public_nickname="Bobby",
    )
    response = alice_client.get(
        reverse("portal:schedule"), {"location": office.location.pk, "date": DAY}
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert reverse("portal:detail", args=[mine.pk]) in body and "Standup" in body
    assert "Secret" not in body and "Bobby" in body  # only the public nickname
    reason = rules.check(rules.Action.CHANGE, alice, theirs).reason
    assert reason == "This is someone else's reservation."
    assert f'aria-describedby="why-{theirs.pk}"' in body and reason in body.replace("&#x27;", "'")
    # 07:00-20:00 in half hours; the Big room's 14:00-15:00 is not offered.
    assert "via=planner" in body
    assert f"space={office.big.pk}&amp;date={DAY.isoformat()}&amp;start=14:00" not in body
    assert f"space={office.big.pk}&amp;date={DAY.isoformat()}&amp;start=15:00" in body


def test_schedule_slot_suggests_an_hour_but_stops_at_the_next_booking(
    alice_client, bob, office, make_reservation
):
    make_reservation(office.small, user=bob, start=local(office.location, DAY, 10, 30))
    body = alice_client.get(
        reverse("portal:schedule"), {"location": office.location.pk, "date": DAY}
    ).content.decode()
    assert (
        f"space={office.small.pk}&amp;date={DAY.isoformat()}&amp;start=10:00&amp;end=10:30" in body
    )
    assert (
        f"space={office.small.pk}&amp;date={DAY.isoformat()}&amp;start=08:00&amp;end=09:00" in body
    )


def test_schedule_day_navigation_bad_dates_and_closed_days(alice_client, make_location, make_space):
    location = make_location("Weekdays", weekdays=range(5))
    make_space(location)
    url = reverse("portal:schedule")
    saturday = DAY + timedelta(days=4)
    response = alice_client.get(url, {"location": location.pk, "date": saturday})
    assert "closed on Saturdays" in response.content.decode()
    for bad in ("2026-13-45", "soon", ""):
        assert alice_client.get(url, {"location": location.pk, "date": bad}).status_code == 200
    assert alice_client.get(url, {"location": "999999"}).status_code == 200
    partial = alice_client.get(url, {"location": location.pk, "date": DAY}, HTTP_HX_REQUEST="true")
    assert b"<html" not in partial.content and b"Previous day" in partial.content


# --- my reservations, details -----------------------------------------------------------------


def test_my_reservations_upcoming_and_past(alice_client, alice, bob, office, make_reservation):
    upcoming = make_reservation(office.small, user=alice, title="Upcoming one")
    cancelled = make_reservation(
        office.big, user=alice, title="Cancelled one", start=local(office.location, DAY, 15)
    )
    services.cancel(actor=alice, reservation=cancelled)
    make_reservation(office.booth, user=bob, title="Bob's")
    body = alice_client.get(reverse("portal:mine")).content.decode()
    assert "Upcoming one" in body and "Cancelled one" not in body and "Bob&#x27;s" not in body
    assert reverse("portal:change", args=[upcoming.pk]) in body
    past = alice_client.get(reverse("portal:mine"), {"show": "past", "page": "x"}).content.decode()
    assert "Cancelled one" in past and "Upcoming one" not in past


def test_details_show_everything_and_the_history(alice_client, alice, office, make_reservation):
    reservation = make_reservation(
        office.small, user=alice, title="Review", description="Bring notes"
    )
    services.change(
        actor=alice,
        reservation=reservation,
        start=reservation.start + timedelta(hours=1),
        end=reservation.end + timedelta(hours=1),
    )
    response = alice_client.get(reverse("portal:detail", args=[reservation.pk]))
    body = response.content.decode()
    assert "Review" in body and "Bring notes" in body and "Small room" in body
    assert "11:00&ndash;12:00" in body and "Europe/London" in body
    assert [h["what"] for h in response.context["history"]] == ["Changed start, end", "Booked"]
    assert 'id="calendar-sync"' not in body  # no calendars template: the hook renders nothing


def test_details_show_a_change_nobody_made_as_the_system(
    alice_client, alice, office, make_reservation
):
    """A change without a person (a room declining, a background job) renders as "system"."""
    reservation = make_reservation(office.small, user=alice, title="Review")
    reservation = type(reservation).objects.get(pk=reservation.pk)
    reservation.title = "Review (room answered)"
    reservation.save()  # no request, no actor: the history record has no user
    assert reservation.history.first().history_user is None
    response = alice_client.get(reverse("portal:detail", args=[reservation.pk]))
    assert response.status_code == 200
    assert "· system" in response.content.decode()


def test_details_render_the_calendars_hook_when_provided(
    alice_client, alice, office, make_reservation, settings, tmp_path
):
    hook = tmp_path / "calendars" / "portal"
    hook.mkdir(parents=True)
    (hook / "reservation_sync.html").write_text("Sync ID for #{{ reservation.pk }}")
    settings.TEMPLATES = [
        # First: the calendars app now ships the real template, which this one stands in for.
        {**settings.TEMPLATES[0], "DIRS": [tmp_path, *settings.TEMPLATES[0]["DIRS"]]}
    ]
    reservation = make_reservation(office.small, user=alice)
    body = alice_client.get(reverse("portal:detail", args=[reservation.pk])).content.decode()
    assert 'id="calendar-sync"' in body and f"Sync ID for #{reservation.pk}" in body


def test_times_note_the_users_own_zone_when_it_differs(
    alice_client, alice, office, make_reservation
):
    reservation = make_reservation(office.small, user=alice, start=local(office.location, DAY, 10))
    Profile.objects.create(user=alice, time_zone="Asia/Tokyo")
    body = alice_client.get(reverse("portal:detail", args=[reservation.pk])).content.decode()
    assert "your time, Asia/Tokyo" in body
    Profile.objects.filter(user=alice).update(time_zone="Europe/London")
    body = alice_client.get(reverse("portal:detail", args=[reservation.pk])).content.decode()
    assert "your time" not in body


@pytest.mark.parametrize("action", ["portal:detail", "portal:change", "portal:cancel"])
def test_other_peoples_reservations_are_404(alice_client, bob, office, make_reservation, action):
    theirs = make_reservation(office.small, user=bob)
    assert alice_client.get(reverse(action, args=[theirs.pk])).status_code == 404
    assert alice_client.post(reverse(action, args=[theirs.pk]), {}).status_code == 404
    assert alice_client.get(reverse(action, args=[987654])).status_code == 404
    theirs.refresh_from_db()
    assert theirs.status == ReservationStatus.CONFIRMED and theirs.version == 1


def test_managers_see_everyones_reservations(client, make_user, bob, office, make_reservation):
    manager = make_user("manager", perms=("reservations.manage_all",))
    theirs = make_reservation(office.small, user=bob)
    client.force_login(manager)
    assert client.get(reverse("portal:detail", args=[theirs.pk])).status_code == 200


# --- reschedule and cancel --------------------------------------------------------------------


def test_reschedule(alice_client, alice, office, make_reservation):
    reservation = make_reservation(office.small, user=alice, start=local(office.location, DAY, 10))
    page = alice_client.get(reverse("portal:change", args=[reservation.pk]))
    assert page.status_code == 200 and 'value="10:00"' in page.content.decode()
    response = alice_client.post(
        reverse("portal:change", args=[reservation.pk]),
        change_form(reservation, start="14:00", end="15:30", space=office.big.pk, title="Moved"),
    )
    assert response.status_code == 302
    reservation.refresh_from_db()
    assert reservation.start == local(office.location, DAY, 14)
    assert reservation.end == local(office.location, DAY, 15, 30)
    assert (reservation.space, reservation.title, reservation.version) == (office.big, "Moved", 2)
    assert reservation.history.first().change_source == Source.PORTAL


def test_reschedule_by_someone_else_meanwhile_is_stale(
    alice_client, alice, office, make_reservation
):
    reservation = make_reservation(office.small, user=alice)
    data = change_form(reservation, start="15:00", end="16:00")
    services.change(actor=alice, reservation=reservation, title="Changed in another tab")
    response = alice_client.post(reverse("portal:change", args=[reservation.pk]), data)
    assert response.status_code == 400
    assert "changed by someone else since you opened it" in response.content.decode()
    reservation.refresh_from_db()
    assert reservation.local_start.hour == 10


def test_reschedule_into_a_taken_slot_offers_alternatives(
    alice_client, alice, bob, office, make_reservation
):
    reservation = make_reservation(office.small, user=alice, start=local(office.location, DAY, 10))
    make_reservation(office.small, user=bob, start=local(office.location, DAY, 14))
    response = alice_client.post(
        reverse("portal:change", args=[reservation.pk]),
        change_form(reservation, start="14:00", end="15:00"),
    )
    assert response.status_code == 409
    assert "Big room" in [s.name for s in response.context["options"]]
    response = alice_client.post(
        reverse("portal:change", args=[reservation.pk]),
        change_form(reservation, start="14:00", end="15:00", use_space=office.big.pk),
    )
    reservation.refresh_from_db()
    assert reservation.space == office.big and reservation.local_start.hour == 14


def test_reschedule_bad_input(alice_client, alice, office, make_reservation):
    reservation = make_reservation(office.small, user=alice)
    url = reverse("portal:change", args=[reservation.pk])
    for bad in (
        {"date": "2026-02-31"},
        {"end": ""},
        {"space": "999999"},
        {"expected_version": "x"},
        {"start": "21:00", "end": "22:00"},
    ):
        response = alice_client.post(url, change_form(reservation, **bad))
        assert response.status_code == 400, bad
    reservation.refresh_from_db()
    assert reservation.version == 1


def series(alice, office, count=3):
    return services.book(
        actor=alice,
        space=office.small,
        start=local(office.location, DAY, 10),
        end=local(office.location, DAY, 11),
        recurrence=Recurrence(frequency="weekly", count=count),
    ).reservations


def test_reschedule_this_and_following(alice_client, alice, office):
    _first, second, _third = series(alice, office)
    alice_client.post(
        reverse("portal:change", args=[second.pk]),
        change_form(second, start="16:00", end="17:00", scope="following"),
    )
    hours = [r.local_start.hour for r in Reservation.objects.order_by("start")]
    assert hours == [10, 16, 16]


def test_cancel_one_occurrence_or_this_and_following(alice_client, alice, office):
    first, second, third = series(alice, office)
    page = alice_client.get(reverse("portal:cancel", args=[first.pk]))
    assert "This and the following occurrences" in page.content.decode()
    response = alice_client.post(
        reverse("portal:cancel", args=[first.pk]),
        {"scope": "this", "reason": "Away", "expected_version": first.version},
    )
    assert response.status_code == 302 and response["Location"] == reverse("portal:mine")
    statuses = list(Reservation.objects.order_by("start").values_list("status", flat=True))
    assert statuses == ["cancelled", "confirmed", "confirmed"]
    alice_client.post(
        reverse("portal:cancel", args=[second.pk]),
        {"scope": "following", "expected_version": second.version},
    )
    assert not Reservation.objects.filter(status="confirmed").exists()
    # Cancelling again is a message, not an error.
    response = alice_client.post(
        reverse("portal:cancel", args=[third.pk]), {"scope": "this", "expected_version": 2}
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("portal:detail", args=[third.pk])


def test_cancel_stale_or_tampered(alice_client, alice, office, make_reservation):
    reservation = make_reservation(office.small, user=alice)
    url = reverse("portal:cancel", args=[reservation.pk])
    response = alice_client.post(url, {"expected_version": 7})
    assert response.status_code == 400 and "changed by someone else" in response.content.decode()
    assert alice_client.post(url, {"expected_version": "abc"}).status_code == 400
    reservation.refresh_from_db()
    assert reservation.status == ReservationStatus.CONFIRMED


@pytest.fixture
def strict_policy():
    reason = "In strict mode only reservations made in the delegated mailbox can change."

    def policy(action, user, reservation, source):
        if action is not rules.Action.CREATE:
            return rules.Decision(False, reason)
        return None

    rules.register(policy)
    yield reason
    rules.unregister(policy)


def test_what_the_rules_refuse_is_greyed_out_with_the_same_reason(
    alice_client, alice, office, make_reservation, strict_policy
):
    reservation = make_reservation(office.small, user=alice, start=local(office.location, DAY, 9))
    detail = alice_client.get(reverse("portal:detail", args=[reservation.pk])).content.decode()
    assert strict_policy in detail and reverse("portal:change", args=[reservation.pk]) not in detail
    schedule = alice_client.get(
        reverse("portal:schedule"), {"location": office.location.pk, "date": DAY}
    ).content.decode()
    assert f'id="why-{reservation.pk}"' in schedule and strict_policy in schedule
    response = alice_client.post(
        reverse("portal:change", args=[reservation.pk]),
        change_form(reservation, start="12:00", end="13:00"),
        follow=True,
    )
    assert strict_policy in response.content.decode()
    response = alice_client.post(
        reverse("portal:cancel", args=[reservation.pk]), {"expected_version": 1}, follow=True
    )
    assert strict_policy in response.content.decode()
    reservation.refresh_from_db()
    assert reservation.version == 1 and reservation.status == ReservationStatus.CONFIRMED


# --- profile ----------------------------------------------------------------------------------


def test_profile_time_zone_and_default_location(alice_client, alice, office):
    assert alice_client.get(reverse("portal:profile")).status_code == 200
    response = alice_client.post(
        reverse("portal:profile"),
        {"time_zone": "America/New_York", "default_location": office.location.pk},
    )
    assert response.status_code == 302
    profile = Profile.objects.get(user=alice)
    assert (profile.time_zone, profile.default_location) == ("America/New_York", office.location)
    response = alice_client.post(
        reverse("portal:profile"), {"time_zone": "Mars/Olympus", "default_location": "999"}
    )
    assert response.status_code == 400
    assert set(response.context["form"].errors) == {"time_zone", "default_location"}


def test_static_assets_are_local(alice_client, office):
    body = alice_client.get(reverse("portal:find")).content.decode()
    assert "/static/vendor/htmx.min.js" in body
    assert "https://" not in body.replace("https://www.w3.org", "")


def test_find_starts_at_the_next_open_half_hour(alice_client, office, frozen_now):
    frozen_now(local(office.location, DAY, 21, 10))  # after closing: the next morning
    form = alice_client.get(reverse("portal:find")).context["form"]
    assert form.data["date"] == (DAY + timedelta(days=1)).isoformat()
    assert form.data["start"] == "07:00"
    frozen_now(local(office.location, DAY, 9, 10))
    form = alice_client.get(reverse("portal:find")).context["form"]
    assert (form.data["date"], form.data["start"]) == (DAY.isoformat(), "09:30")


BAD_VALUES = ["", "abc", "-1", "0", "999999999999", "9999-12-31", "0001-01-01", "10:00\x00", "ü"]


def test_no_input_makes_a_500(alice_client, alice, office, make_reservation):
    """Every field of every form, and every query parameter, with values a tamperer tries."""
    reservation = make_reservation(office.small, user=alice)
    gets = {
        reverse("portal:find"): [
            "location",
            "date",
            "start",
            "end",
            "duration",
            "capacity",
            "kind",
            "amenities",
        ],
        reverse("portal:schedule"): ["location", "date", "floor", "page"],
        reverse("portal:mine"): ["show", "page"],
        reverse("portal:book"): ["space", "date", "start", "end", "via"],
    }
    for url, names in gets.items():
        for name in names:
            for value in BAD_VALUES:
                params = {"space": office.small.pk, "date": DAY.isoformat(), name: value}
                response = alice_client.get(url, params)
                assert response.status_code < 500, (url, name, value)
    posts = {
        reverse("portal:book"): book_form(office.big, repeat="weekly", count=2),
        reverse("portal:change", args=[reservation.pk]): change_form(reservation),
        reverse("portal:cancel", args=[reservation.pk]): {"expected_version": 1, "scope": "this"},
        reverse("portal:profile"): {"time_zone": "UTC", "default_location": ""},
        reverse("portal:quick"): {"people": 1, "location": office.location.pk},
    }
    for url, valid in posts.items():
        for name in [*valid, "use_space", "skip_unavailable", "requested_for", "attendees"]:
            for value in BAD_VALUES:
                response = alice_client.post(url, {**valid, name: value})
                assert response.status_code < 500, (url, name, value)


def test_my_reservations_loads_the_profile_once_not_per_row(
    alice_client, alice, office, make_reservation
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    Profile.objects.create(user=alice, time_zone="Asia/Tokyo")
    for hour in range(8, 18):
        make_reservation(office.small, user=alice, start=local(office.location, DAY, hour))
    with CaptureQueriesContext(connection) as queries:
        response = alice_client.get(reverse("portal:mine"))
    assert response.content.decode().count("your time, Asia/Tokyo") == 10
    profile_queries = [q for q in queries if "reservations_profile" in q["sql"]]
    assert len(profile_queries) == 1
