"""The sync-mode rules as people meet them in the portal: the same reasons the service gives,
as form errors, refused cancellations and greyed-out bookings in the schedule."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse

from calendars.models import (
    SpaceCalendar,
    SyncSettings,
    UserToken,
)
from reservations.models import Reservation, ReservationStatus
from tests.conftest import local
from tests.support.portal import DAY, book_form

pytestmark = pytest.mark.django_db


@pytest.fixture
def synced_office(office, provider):
    for space in (office.small, office.big):
        SpaceCalendar.objects.create(
            space=space, provider=provider, resource_email=f"{space.pk}@example.com"
        )
    return office


def set_mode(mode: str) -> None:
    settings = SyncSettings.load()
    settings.mode = mode
    settings.save()


def text(response) -> str:
    return response.content.decode().replace("&#x27;", "'")


def test_personal_mode_booking_needs_a_connected_calendar(
    alice_client, alice, synced_office, provider
):
    set_mode("personal")
    response = alice_client.post(reverse("portal:book"), book_form(synced_office.small))
    assert response.status_code == 400
    assert "Connect your calendar first" in text(response)
    assert not Reservation.objects.exists()
    # A room that does not sync keeps every option.
    response = alice_client.post(reverse("portal:book"), book_form(synced_office.booth))
    assert response.status_code == 302
    UserToken.objects.create(
        user=alice, provider=provider, account_email=alice.email, token={"k": "v"}
    )
    response = alice_client.post(reverse("portal:book"), book_form(synced_office.small))
    assert response.status_code == 302
    booked = Reservation.objects.get(space=synced_office.small)
    assert booked.sync_mailbox == "user"


def test_personal_mode_refuses_on_behalf_and_group_bookings_of_synced_rooms(
    client, assistant, alice, synced_office, provider
):
    set_mode("personal")
    UserToken.objects.create(
        user=assistant, provider=provider, account_email=assistant.email, token={"k": "v"}
    )
    client.force_login(assistant)
    response = client.post(
        reverse("portal:book"), book_form(synced_office.small, requested_for=alice.pk)
    )
    assert response.status_code == 400
    assert "can only be booked for yourself" in text(response)
    response = client.post(
        reverse("portal:book"),
        book_form(synced_office.big, kind="group", attendees="x@example.com"),
    )
    assert "Group reservations are not available" in text(response)
    assert not Reservation.objects.exists()


def test_strict_mode_greys_out_and_refuses_room_mailbox_bookings(
    alice_client, alice, synced_office, make_reservation
):
    room_booking = make_reservation(
        synced_office.small, user=alice, start=local(synced_office.location, DAY, 9)
    )
    set_mode("strict")
    page = text(
        alice_client.get(
            reverse("portal:schedule"), {"location": synced_office.location.pk, "date": DAY}
        )
    )
    assert f'aria-describedby="why-{room_booking.pk}"' in page
    assert "Your organisation manages this booking in the room's calendar" in page
    response = alice_client.post(
        reverse("portal:cancel", args=[room_booking.pk]),
        {"scope": "this", "expected_version": room_booking.version},
    )
    room_booking.refresh_from_db()
    assert room_booking.status == ReservationStatus.CONFIRMED
    assert response.status_code in (302, 400)


def test_schedule_queries_do_not_grow_with_bookings(
    alice_client, alice, bob, synced_office, make_reservation
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def count() -> int:
        with CaptureQueriesContext(connection) as ctx:
            alice_client.get(
                reverse("portal:schedule"), {"location": synced_office.location.pk, "date": DAY}
            )
        return len(ctx.captured_queries)

    make_reservation(synced_office.small, user=bob, start=local(synced_office.location, DAY, 8))
    make_reservation(synced_office.big, user=bob, start=local(synced_office.location, DAY, 8))
    few = count()
    for hour in (10, 12, 14, 16):
        make_reservation(
            synced_office.small, user=bob, start=local(synced_office.location, DAY, hour)
        )
        make_reservation(
            synced_office.big, user=alice, start=local(synced_office.location, DAY, hour)
        )
    # Bob's bookings cost no look-up (the ownership rule refuses first); Alice's go to the
    # policies' preload: their spaces' bindings in one query and the sync settings once.
    assert count() == few + 2


def test_the_schedule_and_a_spaces_week_read_the_bindings_and_sync_settings_once(
    alice_client, alice, bob, synced_office, make_reservation
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for hour in (8, 10, 12):
        for space in (synced_office.small, synced_office.big):
            make_reservation(space, user=alice, start=local(synced_office.location, DAY, hour))
        make_reservation(
            synced_office.desk, user=bob, start=local(synced_office.location, DAY, hour)
        )
    pages = [
        (reverse("portal:schedule"), {"location": synced_office.location.pk, "date": DAY}),
        (reverse("portal:schedule_space", args=[synced_office.big.pk]), {"date": DAY}),
    ]
    for url, params in pages:
        with CaptureQueriesContext(connection) as ctx:
            assert alice_client.get(url, params).status_code == 200
        sql = [q["sql"] for q in ctx.captured_queries]
        assert sum('FROM "calendars_spacecalendar"' in q for q in sql) == 1, url
        assert sum('FROM "calendars_syncsettings"' in q for q in sql) == 1, url


def test_personal_mode_greys_out_others_and_expired_token_changes(
    alice_client, alice, bob, synced_office, provider
):
    """In personal mode a booking in someone's own calendar can be changed only by them, and
    only while their calendar connection works; the schedule says why."""
    from reservations import services

    set_mode("personal")
    for person in (alice, bob):
        UserToken.objects.create(
            user=person, provider=provider, account_email=person.email, token={"k": "v"}
        )
    start = local(synced_office.location, DAY, 9)
    [bobs] = services.book(
        actor=bob, space=synced_office.small, start=start, end=start + timedelta(hours=1)
    ).reservations
    [mine] = services.book(
        actor=alice,
        space=synced_office.big,
        start=start,
        end=start + timedelta(hours=1),
    ).reservations
    assert (bobs.sync_mailbox, mine.sync_mailbox) == ("user", "user")
    UserToken.objects.filter(user=alice).update(status="expired")

    page = text(
        alice_client.get(
            reverse("portal:schedule"), {"location": synced_office.location.pk, "date": DAY}
        )
    )
    assert "Your calendar connection has expired; reconnect it" in page
    response = alice_client.post(
        reverse("portal:cancel", args=[mine.pk]), {"scope": "this", "expected_version": 1}
    )
    mine.refresh_from_db()
    assert mine.status == ReservationStatus.PENDING  # nothing changed
    assert response.status_code in (302, 400)


def test_personal_mode_admin_cannot_change_a_booking_in_someones_own_calendar(
    client, make_user, alice, synced_office, provider
):
    from reservations import services

    set_mode("personal")
    UserToken.objects.create(
        user=alice, provider=provider, account_email=alice.email, token={"k": "v"}
    )
    start = local(synced_office.location, DAY, 9)
    [hers] = services.book(
        actor=alice, space=synced_office.small, start=start, end=start + timedelta(hours=1)
    ).reservations
    admin = make_user("boss", perms=("reservations.manage_all",))
    client.force_login(admin)
    page = text(
        client.get(reverse("portal:schedule"), {"location": synced_office.location.pk, "date": DAY})
    )
    assert "Only the person this booking is for can change it" in page
    client.post(reverse("portal:cancel", args=[hers.pk]), {"scope": "this", "expected_version": 1})
    hers.refresh_from_db()
    assert hers.status != ReservationStatus.CANCELLED
