"""The admin's reservation and location forms and lists (issue 19, item 2): a refusal shown
beside the input it concerns, never a database's words; local times everywhere; a
confirmation before cancelling; current IANA zones only."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.apps import apps
from django.db import models
from django.urls import reverse

from reservations import zones
from reservations.models import Location, Reservation, ReservationStatus, Source
from tests.conftest import local, next_weekday
from tests.support.admin import reservation_form as _form

pytestmark = pytest.mark.django_db

ADD = "admin:reservations_reservation_add"


@pytest.fixture
def admin_client(client, make_user):
    admin = make_user("boss", is_staff=True, is_superuser=True)
    client.force_login(admin)
    client.admin = admin
    return client


def test_a_clash_keeps_the_input_and_names_the_booking_in_the_way(
    admin_client, make_user, make_space, make_reservation, settings
):
    settings.TIME_ZONE = "Europe/London"
    space, person = make_space(), make_user()
    start = local(space.location, next_weekday(1), 10)
    taken = make_reservation(space, start=start)

    response = admin_client.post(
        reverse(ADD), _form(space, person, start, title="Board meeting", description="Q3")
    )
    assert response.status_code == 200  # the form again, not a redirect to an empty one
    form = response.context["adminform"].form
    assert form.data["title"] == "Board meeting" and form.data["description"] == "Q3"
    (error,) = form.errors["start"]
    assert "is already booked from 10:00 to 11:00" in error
    change = reverse("admin:reservations_reservation_change", args=[taken.pk])
    assert f'<a href="{change}">#{taken.pk} ' in response.content.decode()
    assert Reservation.objects.count() == 1


def test_a_refused_change_keeps_the_input_too(admin_client, make_space, make_reservation):
    space = make_space()
    start = local(space.location, next_weekday(1), 10)
    make_reservation(space, start=start)
    moving = make_reservation(space, start=start + timedelta(hours=2), title="Mine")
    data = _form(space, moving.requested_for, start, title="Moved here")
    response = admin_client.post(
        reverse("admin:reservations_reservation_change", args=[moving.pk]), data
    )
    assert response.status_code == 200
    assert response.context["adminform"].form.data["title"] == "Moved here"
    assert "is already booked" in response.context["adminform"].form.errors["start"][0]
    moving.refresh_from_db()
    assert (moving.title, moving.start) == ("Mine", start + timedelta(hours=2))


def test_an_end_before_the_start_is_an_error_on_the_end(admin_client, make_user, make_space):
    space, person = make_space(), make_user()
    start = local(space.location, next_weekday(1), 10)
    data = _form(space, person, start, end_1="09:00:00")
    response = admin_client.post(reverse(ADD), data)
    assert response.status_code == 200
    form = response.context["adminform"].form
    assert form.errors["end"] == ["The end must be after the start."]
    assert "__all__" not in form.errors
    assert "Constraint" not in response.content.decode()
    assert not Reservation.objects.exists()


def test_every_check_constraint_has_words_for_a_form():
    """Django shows a check constraint's own message in a form; the default one names the
    constraint ("Constraint “x” is violated"), which means nothing to an administrator."""
    missing = [
        f"{model.__name__}.{constraint.name}"
        for model in apps.get_models()
        for constraint in model._meta.constraints
        if isinstance(constraint, models.CheckConstraint)
        and constraint.violation_error_message == constraint.default_violation_error_message
    ]
    assert missing == []


def test_opening_hours_that_close_before_they_open_say_so(admin_client, make_location):
    location = make_location(weekdays=[])
    data = {
        "name": location.name,
        "address": "",
        "time_zone": location.time_zone,
        "booking_horizon_days": 90,
        "max_booking_minutes": 480,
        "event_title": location.event_title,
        "opening_hours-TOTAL_FORMS": 1,
        "opening_hours-INITIAL_FORMS": 0,
        "opening_hours-0-weekday": 0,
        "opening_hours-0-opens": "18:00",
        "opening_hours-0-closes": "09:00",
        "spaces-TOTAL_FORMS": 0,
        "spaces-INITIAL_FORMS": 0,
    }
    form = admin_client.get(reverse("admin:reservations_location_change", args=[location.pk]))
    for field in form.context["adminform"].form.fields:
        data.setdefault(field, form.context["adminform"].form.initial.get(field) or "")
    data = {k: v for k, v in data.items() if v is not False}
    response = admin_client.post(
        reverse("admin:reservations_location_change", args=[location.pk]), data
    )
    page = response.content.decode()
    assert response.status_code == 200
    assert "Closing time must be after the opening time." in page
    assert "is violated" not in page


def test_requested_for_is_optional_for_a_booking_made_in_outlook(
    admin_client, make_space, make_reservation
):
    space = make_space()
    start = local(space.location, next_weekday(1), 10)
    remote = make_reservation(space, start=start, title="From Outlook")
    Reservation.objects.filter(pk=remote.pk).update(
        source=Source.EXCHANGE, requested_for=None, organizer_name="Visitor"
    )
    url = reverse("admin:reservations_reservation_change", args=[remote.pk])
    form = admin_client.get(url).context["adminform"].form
    assert not form.fields["requested_for"].required
    data = _form(space, remote.requested_for or space, start, title="Renamed")
    data["requested_for"] = ""
    response = admin_client.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    remote.refresh_from_db()
    assert (remote.title, remote.requested_for) == ("Renamed", None)

    # A booking made in Reserva still needs its person.
    local_one = make_reservation(space, start=start + timedelta(hours=2))
    url = reverse("admin:reservations_reservation_change", args=[local_one.pk])
    assert admin_client.get(url).context["adminform"].form.fields["requested_for"].required
    new = admin_client.get(reverse(ADD)).context["adminform"].form  # and so does a new one
    assert new.fields["requested_for"].required


def test_names_and_history_are_in_the_location_time(
    admin_client, make_location, make_space, make_reservation
):
    from reservations import services

    new_york = make_location(time_zone="America/New_York")
    reservation = make_reservation(
        make_space(new_york, name="Hudson"), start=local(new_york, next_weekday(1), 10)
    )
    assert re.fullmatch(r"Hudson \d{4}-\d\d-\d\d 10:00 E[SD]T", str(reservation))
    services.change(
        actor=admin_client.admin,
        reservation=reservation,
        title="Renamed",
        description="",
        source="admin",
    )
    page = admin_client.get(
        reverse("admin:reservations_reservation_history", args=[reservation.pk])
    ).content.decode()
    assert ">None<" not in page and "None" not in page.split('id="change-history"')[1]
    assert "change_source" not in page and '<th scope="col">From</th>' in page
    assert "When changed (America/New_York)" in page
    assert "10:00-11:00" in page  # the booked time, on the location's clock


def test_the_list_shows_the_columns_that_matter(admin_client, make_reservation):
    make_reservation(title="Standup")
    page = admin_client.get(reverse("admin:reservations_reservation_changelist"))
    html = page.content.decode()
    for header in ("When (location time)", "Title", "Person", "Status", "Source", "Sync"):
        assert f">{header}</a>" in html or f">{header}</span>" in html, header
    assert "Standup" in html


def test_cancelling_asks_first(admin_client, make_reservation):
    reservation = make_reservation()
    other = make_reservation()
    Reservation.objects.filter(pk=other.pk).update(status=ReservationStatus.CANCELLED)
    url = reverse("admin:reservations_reservation_changelist")
    action = {"action": "cancel_selected", "_selected_action": [reservation.pk, other.pk]}
    page = admin_client.post(url, action)
    assert page.status_code == 200
    html = page.content.decode()
    assert "Yes, cancel them" in html and str(reservation) in html
    assert "not active and are left alone" in html
    reservation.refresh_from_db()
    assert reservation.status == ReservationStatus.CONFIRMED

    admin_client.post(url, {**action, "post": "yes"})
    reservation.refresh_from_db()
    assert reservation.status == ReservationStatus.CANCELLED


def test_time_zones_are_current_iana_names():
    offered = zones.current_zones()
    assert {"UTC", "Europe/London", "America/New_York", "Asia/Kolkata"} <= set(offered)
    for alias in ("US/Eastern", "GB", "Asia/Calcutta", "EST5EDT", "Etc/GMT+5", "Factory"):
        assert alias not in offered, alias
    assert list(offered[1:]) == sorted(offered[1:])


def test_the_location_form_offers_a_searchable_list_and_refuses_an_alias(admin_client):
    url = reverse("admin:reservations_location_add")
    page = admin_client.get(url)
    field = page.context["adminform"].form.fields["time_zone"]
    assert ("Europe/London", "Europe/London") in field.choices
    html = page.content.decode()
    assert "data-searchable" in html and "select2" in html
    response = admin_client.post(
        url,
        {
            "name": "Old name",
            "time_zone": "US/Eastern",
            "booking_horizon_days": 90,
            "max_booking_minutes": 480,
            "event_title": "patron_name",
            "opening_hours-TOTAL_FORMS": 0,
            "opening_hours-INITIAL_FORMS": 0,
            "spaces-TOTAL_FORMS": 0,
            "spaces-INITIAL_FORMS": 0,
        },
    )
    assert response.status_code == 200
    assert "time_zone" in response.context["adminform"].form.errors
    assert not Location.objects.filter(name="Old name").exists()


def test_a_location_keeps_an_old_zone_name_until_changed(admin_client, make_location):
    location = make_location(time_zone="US/Eastern")
    page = admin_client.get(reverse("admin:reservations_location_change", args=[location.pk]))
    choices = dict(page.context["adminform"].form.fields["time_zone"].choices)
    assert "old name" in choices["US/Eastern"]
