"""Check-in in the portal: the button on My reservations and the booking's page, what a
released booking looks like, the reminder email's signed link (valid, altered, expired, an
Outlook organizer's, someone else's), a space's QR code page, the admin's printable QR codes
and the read-only rollup, and a released slot offered again by search."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from reservations import checkin, services
from reservations.models import Reservation, ReservationStatus, Source, SpaceDayUsage
from tests.conftest import local, midday_zone, next_weekday

pytestmark = pytest.mark.django_db

DAY = next_weekday(2)


@pytest.fixture
def room(make_location, make_space):
    location = make_location("HQ", time_zone=midday_zone(), check_in_required=True)
    return make_space(location, name="Severn")


def book_now(user, space, *, starts_in: int = 5, minutes: int = 60) -> Reservation:
    """A booking of ``space`` starting ``starts_in`` minutes from now (may be negative)."""
    now = timezone.now()
    start = now + timedelta(minutes=starts_in)
    return services.book(
        actor=user, space=space, start=start, end=start + timedelta(minutes=minutes),
        now=now - timedelta(hours=2),
    ).reservations[0]  # fmt: skip


def release(reservation: Reservation, now: datetime | None = None) -> None:
    services.release_no_show(reservation=reservation, now=now or timezone.now())


@pytest.fixture
def alice(make_user):
    return make_user("alice", first_name="Alice")


@pytest.fixture
def alice_client(client, alice):
    client.force_login(alice)
    return client


# --- My reservations and the booking's page -------------------------------------------------


def test_my_reservations_offers_check_in_when_the_window_is_open(alice_client, alice, room):
    booking = book_now(alice, room, starts_in=5)
    later = book_now(alice, room, starts_in=120)  # its window opens later
    page = alice_client.get(reverse("portal:mine")).content.decode()
    assert page.count(">Check in</button>") == 1
    assert reverse("portal:check_in", args=[booking.pk]) in page
    assert reverse("portal:check_in", args=[later.pk]) not in page

    response = alice_client.post(
        reverse("portal:check_in", args=[booking.pk]), {"next": reverse("portal:mine")}
    )
    assert response.status_code == 302 and response.url == reverse("portal:mine")
    booking.refresh_from_db()
    local_time = booking.checked_in_at.astimezone(room.location.zone)
    page = alice_client.get(reverse("portal:mine")).content.decode()
    assert f"Checked in at {local_time:%H:%M}" in page
    assert ">Check in</button>" not in page
    detail = alice_client.get(reverse("portal:detail", args=[booking.pk])).content.decode()
    assert f"Checked in at {local_time:%H:%M}" in detail


def test_check_in_outside_the_window_says_when_it_is_open(alice_client, alice, room):
    booking = book_now(alice, room, starts_in=120)
    response = alice_client.post(reverse("portal:check_in", args=[booking.pk]), follow=True)
    assert "Check-in for this booking is open from" in response.content.decode()
    booking.refresh_from_db()
    assert booking.checked_in_at is None


def test_someone_elses_booking_cannot_be_checked_in(client, make_user, alice, room):
    booking = book_now(alice, room)
    client.force_login(make_user("mallory"))
    assert client.post(reverse("portal:check_in", args=[booking.pk])).status_code == 404
    booking.refresh_from_db()
    assert booking.checked_in_at is None


def test_a_released_booking_says_so_on_its_page(alice_client, alice, room):
    booking = book_now(alice, room, starts_in=-20)
    release(booking)
    page = alice_client.get(reverse("portal:mine") + "?show=past").content.decode()
    assert "Released (nobody checked in)" in page
    detail = alice_client.get(reverse("portal:detail", args=[booking.pk])).content.decode()
    assert "Released (nobody checked in)" in detail
    assert "Released: nobody checked in by" in detail  # the reason and the history entry


def test_search_offers_a_released_slot_at_once(alice_client, make_user, room):
    start = local(room.location, DAY, 10)
    booking = services.book(
        actor=make_user(), space=room, start=start, end=start + timedelta(hours=1),
        now=start - timedelta(days=1),
    ).reservations[0]  # fmt: skip

    def free_at_1030() -> bool:
        params = {"location": room.location.pk, "date": DAY.isoformat(), "start": "10:30"}
        found = alice_client.get(reverse("portal:find"), {**params, "duration": 30, "capacity": 1})
        return room in found.context["spaces"]

    assert not free_at_1030()
    release(booking, local(room.location, DAY, 10, 16))
    assert free_at_1030()


# --- the reminder email's link ----------------------------------------------------------------


def test_the_emailed_link_checks_the_person_in(alice_client, alice, room):
    booking = book_now(alice, room)
    url = reverse("portal:check_in_link", args=[checkin.make_token(booking)])
    page = alice_client.get(url)
    assert page.status_code == 200
    assert "Check-in is open from" in page.content.decode()
    booking.refresh_from_db()
    assert booking.checked_in_at is None  # opening the link checks nobody in (mail scanners)
    done = alice_client.post(url)
    assert "Checked in at" in done.content.decode()
    booking.refresh_from_db()
    assert booking.checked_in_at is not None


def test_the_link_asks_to_sign_in_first_and_refuses_someone_else(client, make_user, alice, room):
    booking = book_now(alice, room)
    url = reverse("portal:check_in_link", args=[checkin.make_token(booking)])
    response = client.post(url)
    assert response.status_code == 302 and "login" in response.url
    client.force_login(make_user("mallory"))
    assert client.post(url).status_code == 403
    booking.refresh_from_db()
    assert booking.checked_in_at is None


def test_an_altered_or_expired_link_is_refused(alice_client, alice, room):
    booking = book_now(alice, room)
    token = checkin.make_token(booking)
    altered = token[:-1] + ("A" if token[-1] != "A" else "B")
    response = alice_client.post(reverse("portal:check_in_link", args=[altered]))
    assert response.status_code == 400
    assert "This check-in link is not valid." in response.content.decode()
    old = book_now(alice, room, starts_in=-40, minutes=30)  # its window closed at -25 minutes
    response = alice_client.post(reverse("portal:check_in_link", args=[checkin.make_token(old)]))
    assert response.status_code == 410
    assert "expired" in response.content.decode()
    booking.refresh_from_db()
    old.refresh_from_db()
    assert booking.checked_in_at is None and old.checked_in_at is None


def test_an_outlook_organizer_without_an_account_checks_in_with_the_link(client, room):
    start = timezone.now() + timedelta(minutes=5)
    booking = services.book_from_calendar(
        space=room, start=start, end=start + timedelta(hours=1),
        source=Source.EXCHANGE, organizer_email="visitor@partner.example",
    ).reservations[0]  # fmt: skip
    url = reverse("portal:check_in_link", args=[checkin.make_token(booking)])
    assert client.get(url).status_code == 200
    assert "Checked in at" in client.post(url).content.decode()
    booking.refresh_from_db()
    assert booking.checked_in_at is not None


# --- the space's QR code page ---------------------------------------------------------------


def test_the_space_page_checks_in_the_signed_in_persons_booking(alice_client, alice, room):
    booking = book_now(alice, room)
    url = reverse("portal:space_check_in", args=[room.pk])
    page = alice_client.get(url).content.decode()
    assert "Check in: Severn" in page and 'id="check-in-submit"' in page
    done = alice_client.post(url, {"reservation": booking.pk}).content.decode()
    assert "Checked in at" in done
    booking.refresh_from_db()
    assert booking.checked_in_at is not None


def test_the_space_page_says_when_there_is_nothing_to_check_in(client, make_user, alice, room):
    booking = book_now(alice, room)
    client.force_login(make_user("bob"))
    url = reverse("portal:space_check_in", args=[room.pk])
    page = client.get(url).content.decode()
    assert "You have no booking of Severn to check in to now" in page
    assert client.post(url, {"reservation": booking.pk}).status_code == 403
    booking.refresh_from_db()
    assert booking.checked_in_at is None


def test_the_space_page_needs_a_sign_in(client, room):
    response = client.get(reverse("portal:space_check_in", args=[room.pk]))
    assert response.status_code == 302 and "login" in response.url


# --- the admin --------------------------------------------------------------------------------


@pytest.fixture
def admin_client(client, make_user):
    client.force_login(make_user("boss", is_staff=True, is_superuser=True))
    return client


def test_the_admin_prints_a_spaces_qr_code(admin_client, room, settings):
    settings.PUBLIC_BASE_URL = "https://reserva.example.org"
    change = admin_client.get(reverse("admin:reservations_space_change", args=[room.pk]))
    qr_url = reverse("admin:reservations_space_check_in_qr", args=[room.pk])
    assert qr_url in change.content.decode()
    page = admin_client.get(qr_url).content.decode()
    assert "<svg" in page
    assert f"https://reserva.example.org/spaces/{room.pk}/check-in/" in page
    listed = admin_client.post(
        reverse("admin:reservations_space_changelist"),
        {"action": "print_check_in_qr_codes", "_selected_action": [room.pk]},
    )
    assert listed.status_code == 200 and "<svg" in listed.content.decode()


def test_the_admin_shows_the_check_in_settings_with_help(admin_client, room):
    page = admin_client.get(reverse("admin:reservations_location_change", args=[room.location.pk]))
    body = page.content.decode()
    assert "check_in_required" in body and "no_show_action" in body
    assert "Check-in closes this many minutes after the start" in body


def test_the_rollup_is_read_only_in_the_admin(admin_client, room):
    row = SpaceDayUsage.objects.create(space=room, day=DAY, released_minutes=45)
    listing = admin_client.get(reverse("admin:reservations_spacedayusage_changelist"))
    assert listing.status_code == 200 and "45" in listing.content.decode()
    assert admin_client.get(reverse("admin:reservations_spacedayusage_add")).status_code == 403
    admin_client.post(
        reverse("admin:reservations_spacedayusage_change", args=[row.pk]),
        {"space": room.pk, "day": DAY.isoformat(), "released_minutes": 1},
    )
    row.refresh_from_db()
    assert row.released_minutes == 45


def test_the_admin_shows_a_released_booking_as_released(admin_client, room, alice):
    booking = book_now(alice, room, starts_in=-20)
    release(booking)
    page = admin_client.get(reverse("admin:reservations_reservation_change", args=[booking.pk]))
    assert "Released (nobody checked in)" in page.content.decode()
    assert Reservation.objects.get(pk=booking.pk).status == ReservationStatus.RELEASED
