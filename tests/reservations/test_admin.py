"""The admin: every page renders, bookings and cancellations go through the service."""

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from reservations.models import Location, Reservation, Space, UserDeactivation
from tests.conftest import local, next_weekday
from tests.support.admin import reservation_form

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, make_user):
    admin = make_user("boss", is_staff=True, is_superuser=True)
    client.force_login(admin)
    client.admin = admin
    return client


def test_changelists_and_forms_render(admin_client, make_reservation):
    reservation = make_reservation()
    urls = [
        reverse(f"admin:reservations_{name}_changelist")
        for name in ("location", "space", "reservation", "amenity", "series", "userdeactivation")
    ]
    urls += [
        reverse("admin:reservations_reservation_add"),
        reverse("admin:reservations_reservation_change", args=[reservation.pk]),
        reverse("admin:reservations_reservation_history", args=[reservation.pk]),
        reverse("admin:reservations_location_change", args=[reservation.space.location_id]),
        reverse("admin:reservations_space_change", args=[reservation.space_id]),
        reverse("admin:auth_user_changelist"),
        reverse("admin:auth_user_change", args=[reservation.requested_for_id]),
    ]
    for url in urls:
        response = admin_client.get(url)
        assert response.status_code == 200, url


def test_booking_through_the_admin_uses_the_service(admin_client, make_user, make_space, settings):
    settings.TIME_ZONE = "Europe/London"
    space, person = make_space(), make_user()
    start = local(space.location, next_weekday(1), 10)
    response = admin_client.post(
        reverse("admin:reservations_reservation_add"), reservation_form(space, person, start)
    )
    assert response.status_code == 302
    reservation = Reservation.objects.get()
    assert reservation.source == "admin" and reservation.booked_by == admin_client.admin
    assert reservation.history.first().change_source == "admin"

    # The same slot again: refused with the service's message, nothing written.
    response = admin_client.post(
        reverse("admin:reservations_reservation_add"),
        reservation_form(space, person, start),
        follow=True,
    )
    assert "is already booked from 10:00 to 11:00" in response.content.decode()
    assert Reservation.objects.count() == 1


def test_cancel_action_goes_through_the_service(admin_client, make_reservation):
    reservation = make_reservation()
    response = admin_client.post(
        reverse("admin:reservations_reservation_changelist"),
        {"action": "cancel_selected", "_selected_action": [reservation.pk], "post": "yes"},
        follow=True,
    )
    assert "Cancelled 1 reservation(s)." in response.content.decode()
    reservation.refresh_from_db()
    assert reservation.status == "cancelled"
    assert reservation.history.first().history_user == admin_client.admin


def test_reservations_cannot_be_deleted_in_the_admin(admin_client, make_reservation):
    reservation = make_reservation()
    response = admin_client.get(
        reverse("admin:reservations_reservation_delete", args=[reservation.pk])
    )
    assert response.status_code == 403


def test_unticking_active_deactivates_and_cancels(admin_client, make_reservation, make_user):
    leaver = make_user("leaver")
    make_reservation(user=leaver)
    response = admin_client.post(
        reverse("admin:auth_user_changelist"),
        {"action": "deactivate", "_selected_action": [leaver.pk]},
        follow=True,
    )
    assert "1 future reservation(s) cancelled" in response.content.decode()
    assert not get_user_model().objects.get(pk=leaver.pk).is_active
    assert UserDeactivation.objects.get(user=leaver).cancelled_reservations == 1


def test_space_admin_refuses_a_seat_without_a_container(admin_client, make_location):
    location = make_location()
    response = admin_client.post(
        reverse("admin:reservations_space_add"),
        {
            "location": location.pk,
            "name": "Loose seat",
            "kind": "seat",
            "capacity": 1,
            "floor": "",
            "description": "",
            "is_reservable": "on",
        },
    )
    assert response.status_code == 200
    assert "A seat must belong to a container space." in response.content.decode()
    assert not Space.objects.filter(name="Loose seat").exists()
    assert Location.objects.count() == 1


def test_admin_times_are_wall_clock_in_the_location_zone(
    admin_client, make_user, make_space, make_location
):
    location = make_location(time_zone="America/New_York")
    space, person = make_space(location), make_user()
    start = local(location, next_weekday(1), 10)
    admin_client.post(
        reverse("admin:reservations_reservation_add"), reservation_form(space, person, start)
    )
    reservation = Reservation.objects.get()
    assert reservation.start == start  # 10:00 in New York, not 10:00 UTC
    page = admin_client.get(
        reverse("admin:reservations_reservation_change", args=[reservation.pk])
    ).content.decode()
    assert 'value="10:00:00"' in page


def test_history_page_shows_who_changed_what_and_from_where(admin_client, make_reservation):
    from reservations import services

    reservation = make_reservation(title="Old title")
    services.change(
        actor=admin_client.admin, reservation=reservation, title="New title", source="admin"
    )
    page = admin_client.get(
        reverse("admin:reservations_reservation_history", args=[reservation.pk])
    ).content.decode()
    assert "Old title" in page and "New title" in page
    assert "boss" in page
    record = reservation.history.first()
    assert (record.change_source, record.history_user) == ("admin", admin_client.admin)


def test_user_admin_edits_portal_preferences(admin_client, make_user, make_location):
    user = make_user("pref")
    make_location(name="Paris office")  # offered as a default location
    page = admin_client.get(reverse("admin:auth_user_change", args=[user.pk])).content.decode()
    assert "Portal preferences" in page and "Paris office" in page


@pytest.mark.parametrize(("day", "hour"), [("0001-01-01", "00:00:00"), ("9999-12-31", "22:00:00")])
def test_far_off_dates_are_form_errors_not_a_server_error(
    admin_client, make_user, make_location, make_space, make_reservation, day, hour
):
    """Year 1 or 9999, read in a zone west of UTC, overflowed (a 500) on add and change."""
    space = make_space(make_location(time_zone="America/New_York"))
    person = make_user()
    far = {"start_0": day, "start_1": hour, "end_0": day, "end_1": "23:00:00"}
    added = admin_client.post(
        reverse("admin:reservations_reservation_add"),
        reservation_form(space, person, local(space.location, next_weekday(1), 10), **far),
    )
    assert added.status_code == 200
    assert "Choose a time between the years 1900 and 2999." in added.content.decode()
    assert not Reservation.objects.exists()

    booked = make_reservation(space)
    changed = admin_client.post(
        reverse("admin:reservations_reservation_change", args=[booked.pk]),
        reservation_form(space, booked.requested_for, booked.start, **far),
    )
    assert changed.status_code == 200
    assert "Choose a time between the years 1900 and 2999." in changed.content.decode()
    assert Reservation.objects.get(pk=booked.pk).start == booked.start


def test_changing_requested_for_hands_the_booking_over_through_the_service(
    admin_client, make_user, make_reservation, mailoutbox, django_capture_on_commit_callbacks
):
    alice, bob = make_user("alice"), make_user("bob")
    booked = make_reservation(user=alice, title="Planning")
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            reverse("admin:reservations_reservation_change", args=[booked.pk]),
            reservation_form(booked.space, bob, booked.local_start, title="Planning"),
            follow=True,
        )
    assert "was changed successfully" in response.content.decode()
    booked.refresh_from_db()
    assert booked.requested_for == bob and booked.version == 2
    record = booked.history.first()
    assert (record.requested_for_id, record.history_user, record.change_source) == (
        bob.pk,
        admin_client.admin,
        "admin",
    )
    assert record.prev_record.requested_for_id == alice.pk
    # The new owner hears about it (the change email goes to the person it is for).
    assert any(bob.email in message.to for message in mailoutbox)


def test_a_handover_the_rules_refuse_is_an_error_not_a_dropped_change(
    client, make_user, make_reservation
):
    """A staff member who may edit bookings but not book for others: the change is refused
    with the rules' reason, nothing is written, and no "changed successfully"."""
    clerk = make_user(
        "clerk",
        is_staff=True,
        perms=("reservations.change_reservation", "reservations.view_reservation"),
    )
    colleague = make_user("colleague")
    booked = make_reservation(user=clerk)
    client.force_login(clerk)
    response = client.post(
        reverse("admin:reservations_reservation_change", args=[booked.pk]),
        reservation_form(booked.space, colleague, booked.local_start),
        follow=True,
    )
    page = response.content.decode()
    assert "You may only book for yourself." in page
    assert "was changed successfully" not in page
    booked.refresh_from_db()
    assert booked.requested_for == clerk and booked.version == 1
