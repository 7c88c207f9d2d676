"""Room displays (``reservations.displays``, ``/display/``): pairing with the one-time code
(valid once, expiring, wrong codes limited, revoked displays refused), what the page shows
(the public nickname or "Reserved", never a title or a name), its buttons through the booking
service with source *Display* (book now, check in, end early, extend) under the rules (a
closure refuses with its reason), the ETag/304 poll, last seen, the offline alert (once per
outage, only in opening hours) and the admin's pairing page."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from datetime import time as clock
from zoneinfo import ZoneInfo

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from reservations import displays, services, tasks
from reservations.models import (
    Closure,
    Display,
    Reservation,
    ReservationStatus,
    Source,
)
from tests.conftest import midday_zone, next_weekday

pytestmark = pytest.mark.django_db


@pytest.fixture
def location(make_location):
    # Open around the clock in a zone where it is daytime now, so every slot near "now" fits.
    return make_location("HQ", time_zone=midday_zone())


@pytest.fixture
def room(location, make_space):
    return make_space(location, name="Thames", capacity=12)


@pytest.fixture
def alice(make_user):
    return make_user("alice", first_name="Alice", last_name="Archer")


@pytest.fixture
def paired(room, make_user):
    """A paired display of the room: (display, token)."""
    pairing = displays.create(space=room, created_by=make_user("ada", is_superuser=True))
    return displays.pair(pairing.code, address="10.0.0.1")


def book(user, space, *, starts_in: int, minutes: int = 60, **extra) -> Reservation:
    now = timezone.now()
    start = now + timedelta(minutes=starts_in)
    return services.book(
        actor=user, space=space, start=start, end=start + timedelta(minutes=minutes),
        now=now + timedelta(minutes=min(starts_in, 0)) - timedelta(minutes=1), **extra,
    ).reservations[0]  # fmt: skip


def page_url(token: str, name: str = "page") -> str:
    return reverse(f"display:{name}", args=[token])


# --- pairing ---------------------------------------------------------------------------------


def test_a_code_pairs_once_and_the_tablet_lands_on_its_rooms_page(client, room):
    pairing = displays.create(space=room)
    assert re.fullmatch(r"\d{6}", pairing.code)
    response = client.post(reverse("display:pair"), {"code": pairing.code})
    assert response.status_code == 302
    token = response.url.split("/")[2]
    assert response.url == page_url(token)
    assert response.cookies[displays.COOKIE].value == token  # a reload of /display/ works
    assert response.cookies[displays.COOKIE]["httponly"]
    display = Display.objects.get()
    assert display.paired_at is not None and display.token_hash == displays.hash_token(token)
    assert token not in display.token_hash and pairing.code not in display.pairing_code_hash
    page = client.get(page_url(token))
    assert page.status_code == 200 and "Thames" in page.content.decode()
    assert client.get(reverse("display:home")).url == page_url(token)

    again = client.post(reverse("display:pair"), {"code": pairing.code})
    assert again.status_code == 400
    assert "That pairing code is not valid" in again.content.decode()


def test_an_expired_code_is_refused(room):
    pairing = displays.create(space=room, now=timezone.now() - timedelta(minutes=11))
    with pytest.raises(displays.PairingRefused, match="has expired"):
        displays.pair(pairing.code, address="10.0.0.2")
    assert Display.objects.get().paired_at is None


def test_wrong_codes_are_limited_per_address_even_for_the_right_code_afterwards(room):
    pairing = displays.create(space=room)
    wrong = f"{(int(pairing.code) + 1) % 10**6:06d}"
    for _ in range(displays.PAIRING_ATTEMPTS):
        with pytest.raises(displays.PairingRefused, match="not valid"):
            displays.pair(wrong, address="10.0.0.3")
    with pytest.raises(displays.PairingRefused, match="Too many pairing attempts"):
        displays.pair(pairing.code, address="10.0.0.3")
    # Another address is not locked out by this one.
    display, token = displays.pair(pairing.code, address="10.0.0.4")
    assert display.is_active and token


def test_a_revoked_display_is_not_paired_any_more(client, paired):
    display, token = paired
    assert displays.revoke(display)
    page = client.get(page_url(token))
    assert page.status_code == 404
    text = page.content.decode()
    assert "This display is not paired" in text and reverse("display:pair") in text
    assert client.get(page_url(token, "state")).status_code == 404
    assert client.post(page_url(token, "book"), {"minutes": 30}).status_code == 404
    assert not Reservation.objects.exists()
    assert client.get(page_url("made-up-token")).status_code == 404


# --- what the page shows ---------------------------------------------------------------------


def test_the_page_shows_nicknames_or_reserved_never_titles_or_names(client, paired, room, alice):
    _display, token = paired
    book(alice, room, starts_in=-10, title="Secret merger talks")
    book(alice, room, starts_in=120, title="Layoffs planning", public_nickname="Team A")
    text = client.get(page_url(token)).content.decode()
    assert "Busy" in text and "Reserved" in text and "Team A" in text
    for private in ("Secret merger", "Layoffs", "Alice", "Archer", "alice"):
        assert private not in text, private


def test_a_free_room_offers_only_the_lengths_that_fit_before_the_next_booking(
    client, paired, room, alice
):
    _display, token = paired
    book(alice, room, starts_in=40)
    text = client.get(page_url(token)).content.decode()
    assert "Free" in text
    assert re.search(r"Book 15 min", text) and re.search(r"Book 30 min", text)
    assert "Book 60 min" not in text


# --- the buttons -----------------------------------------------------------------------------


def history_sources(reservation: Reservation) -> list[str]:
    return [h.change_source for h in reservation.history.order_by("history_date")]


def test_book_now_books_through_the_service_with_source_display(client, paired, room):
    display, token = paired
    response = client.post(page_url(token, "book"), {"minutes": 30}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    booking = Reservation.objects.get(space=room)
    assert booking.source == Source.DISPLAY and booking.status == ReservationStatus.CONFIRMED
    assert booking.requested_for == display.user and booking.booked_by == display.user
    assert booking.end - booking.start == timedelta(minutes=30)
    assert history_sources(booking) == [Source.DISPLAY]
    until = booking.end.astimezone(room.location.zone)
    text = response.content.decode()
    assert f"Booked until {until:%H:%M}." in text and "Busy" in text and "Walk-in" in text


def test_the_displays_account_cannot_sign_in(paired, client):
    display, _token = paired
    assert not display.user.has_usable_password() and not display.user.email
    assert not client.login(username=display.user.username, password="")


def test_check_in_of_the_rooms_booking_from_the_display(client, paired, room, alice):
    _display, token = paired
    room.check_in_required = True
    room.save()
    booking = book(alice, room, starts_in=5)
    text = client.get(page_url(token)).content.decode()
    assert "Check in" in text
    response = client.post(page_url(token, "check_in"), {"reservation": booking.pk})
    assert response.status_code == 200
    booking.refresh_from_db()
    assert booking.checked_in_at is not None
    assert history_sources(booking)[-1] == Source.DISPLAY


def test_a_display_acts_only_in_its_own_room(client, paired, make_space, location, alice):
    _display, token = paired
    other = make_space(location, name="Severn", check_in_required=True)
    elsewhere = book(alice, other, starts_in=-5)
    for name, data in (
        ("check_in", {"reservation": elsewhere.pk}),
        ("end", {"reservation": elsewhere.pk}),
        ("extend", {"reservation": elsewhere.pk, "minutes": 15}),
    ):
        response = client.post(page_url(token, name), data)
        assert response.status_code == 409
        assert "That booking is not in this room any more." in response.content.decode()
    elsewhere.refresh_from_db()
    assert elsewhere.checked_in_at is None and elsewhere.version == 1


def test_end_early_frees_the_room_from_the_next_minute(client, paired, room, alice):
    _display, token = paired
    booking = book(alice, room, starts_in=-20, minutes=60)
    response = client.post(page_url(token, "end"), {"reservation": booking.pk})
    assert response.status_code == 200 and "Ended. The room is free." in response.content.decode()
    booking.refresh_from_db()
    now = timezone.now()
    assert booking.status == ReservationStatus.CONFIRMED
    assert now - timedelta(minutes=1) < booking.end <= now
    assert booking.end.second == 0 and booking.start < booking.end
    assert history_sources(booking)[-1] == Source.DISPLAY
    assert "Free" in response.content.decode()


def test_extend_while_free_and_not_into_the_next_booking(client, paired, room, alice, make_user):
    _display, token = paired
    booking = book(alice, room, starts_in=-20, minutes=60)
    old_end = booking.end
    response = client.post(page_url(token, "extend"), {"reservation": booking.pk, "minutes": 15})
    assert response.status_code == 200
    booking.refresh_from_db()
    assert booking.end == old_end + timedelta(minutes=15)
    assert history_sources(booking)[-1] == Source.DISPLAY

    services.book(
        actor=make_user(), space=room, start=booking.end + timedelta(minutes=10),
        end=booking.end + timedelta(minutes=70),
    )  # fmt: skip
    text = client.get(page_url(token)).content.decode()
    assert "Extend 15 min" not in text and "Extend 30 min" not in text
    refused = client.post(page_url(token, "extend"), {"reservation": booking.pk, "minutes": 30})
    assert refused.status_code == 409
    assert "is already booked from" in refused.content.decode()
    booking.refresh_from_db()
    assert booking.end == old_end + timedelta(minutes=15)


def test_a_closure_refuses_book_now_with_its_reason(client, paired, room, location):
    _display, token = paired
    today = timezone.now().astimezone(location.zone).date()
    Closure.objects.create(
        location=location, space=room, start_date=today, end_date=today + timedelta(days=1),
        reason="Maintenance: new carpets",
    )  # fmt: skip
    text = client.get(page_url(token)).content.decode()
    assert "Closed" in text and "Maintenance: new carpets" in text and "Book 15 min" not in text
    response = client.post(page_url(token, "book"), {"minutes": 15}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200  # shown on the display, not an error page
    assert "Maintenance: new carpets" in response.content.decode()
    assert not Reservation.objects.exists()


def test_bad_input_is_a_message_not_an_error(client, paired):
    _display, token = paired
    response = client.post(page_url(token, "book"), {"minutes": "lots"})
    assert response.status_code == 409
    assert "Choose 15, 30, 60 minutes." in response.content.decode()
    response = client.post(page_url(token, "end"), {"reservation": "x"})
    assert response.status_code == 409


def test_outside_opening_hours_the_page_is_dimmed_and_offers_nothing(
    client, make_location, make_space, make_user
):
    zone = midday_zone()
    local_now = timezone.now().astimezone(ZoneInfo(zone))
    # Open only on another weekday than today.
    other_day = (local_now.weekday() + 3) % 7
    location = make_location("Annex", time_zone=zone, weekdays=[other_day])
    space = make_space(location, name="Annex room")
    _display, token = displays.pair(displays.create(space=space).code, address="10.0.0.9")
    text = client.get(page_url(token)).content.decode()
    assert 'data-state="closed"' in text and "is-closed" in text
    assert "Book 15 min" not in text and "Opens" in text


# --- the poll: ETag and 304 ------------------------------------------------------------------


def test_the_poll_answers_304_while_nothing_changed(client, paired, room, alice):
    _display, token = paired
    first = client.get(page_url(token, "state"))
    assert first.status_code == 200 and first["ETag"]
    tag = first["ETag"]
    same = client.get(page_url(token, "state"), HTTP_IF_NONE_MATCH=tag)
    if same.status_code == 200:  # the minute turned between the two polls
        tag = same["ETag"]
        same = client.get(page_url(token, "state"), HTTP_IF_NONE_MATCH=tag)
    assert same.status_code == 304 and same.content == b""

    book(alice, room, starts_in=-5, public_nickname="Standup")
    changed = client.get(page_url(token, "state"), HTTP_IF_NONE_MATCH=tag)
    assert changed.status_code == 200 and changed["ETag"] != tag
    assert "Standup" in changed.content.decode()


def test_last_seen_is_written_at_most_every_30_seconds(client, paired):
    display, token = paired
    long_ago = timezone.now() - timedelta(minutes=5)
    Display.objects.filter(pk=display.pk).update(last_seen_at=long_ago)
    client.get(page_url(token, "state"))
    seen = Display.objects.get(pk=display.pk).last_seen_at
    assert seen > long_ago
    client.get(page_url(token, "state"))
    assert Display.objects.get(pk=display.pk).last_seen_at == seen


# --- not seen: the admins' alert -------------------------------------------------------------


@pytest.fixture
def office_hours_display(make_location, make_space, settings):
    settings.ADMINS = [("Ops", "ops@example.com")]
    location = make_location("Office", opens=clock(8), closes=clock(18), weekdays=range(5))
    space = make_space(location, name="Avon")
    display, _token = displays.pair(displays.create(space=space).code, address="10.0.0.5")
    return display


def wednesday(display: Display, hour: int) -> datetime:
    day = next_weekday(2)
    return datetime.combine(day, clock(hour), tzinfo=display.space.location.zone)


def test_an_unseen_display_is_reported_once_per_outage(office_hours_display):
    display = office_hours_display
    noon = wednesday(display, 12)
    Display.objects.filter(pk=display.pk).update(last_seen_at=noon - timedelta(minutes=14))
    assert displays.alert_offline(now=noon) == 0  # 14 minutes: not yet
    Display.objects.filter(pk=display.pk).update(last_seen_at=noon - timedelta(minutes=16))
    mail.outbox.clear()
    assert displays.alert_offline(now=noon) == 1
    [email] = mail.outbox
    assert email.to == ["ops@example.com"] and "Room display offline: Avon" in email.subject
    assert "not been seen since" in email.body
    assert displays.alert_offline(now=noon + timedelta(minutes=5)) == 0  # once per outage
    assert len(mail.outbox) == 1

    # Seen again, then gone again: a new outage, a new email.
    displays.record_seen(Display.objects.get(pk=display.pk), now=noon + timedelta(minutes=10))
    later = noon + timedelta(minutes=30)
    assert displays.alert_offline(now=later) == 1
    assert len(mail.outbox) == 2


def test_no_alert_outside_opening_hours_or_for_revoked_displays(office_hours_display):
    display = office_hours_display
    evening = wednesday(display, 20)
    Display.objects.filter(pk=display.pk).update(last_seen_at=evening - timedelta(hours=2))
    mail.outbox.clear()
    assert displays.alert_offline(now=evening) == 0
    displays.revoke(display)
    assert displays.alert_offline(now=wednesday(display, 12)) == 0
    assert mail.outbox == []


def test_the_beat_schedule_runs_the_alert_every_minute(settings):
    assert tasks.alert_offline_displays.name == "reservations.alert_offline_displays"
    entry = settings.CELERY_BEAT_SCHEDULE["alert-offline-displays"]
    assert entry == {"task": "reservations.alert_offline_displays", "schedule": 60.0}


# --- the admin -------------------------------------------------------------------------------


def test_the_admin_adds_a_display_and_shows_its_code_once(admin_client, room, client):
    response = admin_client.post(
        reverse("admin:reservations_display_add"), {"space": room.pk, "name": "Door tablet"}
    )
    assert response.status_code == 200
    text = response.content.decode()
    code = re.search(r'id="pairing-code">(\d{3}) (\d{3})<', text)
    assert code, text
    assert "/display/pair/" in text
    display = Display.objects.get()
    assert display.space == room and display.paired_at is None
    paired = client.post(reverse("display:pair"), {"code": code.group(1) + code.group(2)})
    assert paired.status_code == 302

    listing = admin_client.get(reverse("admin:reservations_display_changelist")).content.decode()
    assert "Online" in listing and "Last seen" in listing
    admin_client.post(
        reverse("admin:reservations_display_changelist"),
        {"action": "revoke_selected", "_selected_action": [display.pk]},
    )
    assert Display.objects.get().revoked_at is not None
    assert client.get(paired.url).status_code == 404

    again = admin_client.post(reverse("admin:reservations_display_pairing_code", args=[display.pk]))
    assert again.status_code == 200 and 'id="pairing-code"' in again.content.decode()


# --- the rules ---------------------------------------------------------------------------------


def test_a_room_that_needs_approval_offers_no_book_now(client, paired, room, location, make_user):
    from django.contrib.auth.models import Group

    from reservations.models import ApprovalRule

    approvers = Group.objects.create(name="Facilities")
    ApprovalRule.objects.create(location=location, space=room, approvers=approvers)
    _display, token = paired
    text = client.get(page_url(token)).content.decode()
    assert "Needs approval by Facilities: book this room in the portal." in text
    assert "Book 15 min" not in text
    response = client.post(page_url(token, "book"), {"minutes": 15})
    assert response.status_code == 409
    assert "Needs approval by Facilities" in response.content.decode()
    assert not Reservation.objects.exists()


def test_nobody_but_the_rooms_display_acts_with_source_display(paired, room, alice, make_space):
    display, _token = paired
    now = timezone.now()
    with pytest.raises(services.NotAllowed, match="Only a paired display of this room"):
        services.book(
            actor=alice, space=room, start=now, end=now + timedelta(minutes=30),
            source=Source.DISPLAY,
        )  # fmt: skip
    other = make_space(room.location, name="Severn")
    with pytest.raises(services.NotAllowed, match="Only a paired display of this room"):
        services.book(
            actor=display.user, space=other, start=now, end=now + timedelta(minutes=30),
            source=Source.DISPLAY,
        )  # fmt: skip
    # Its account is nobody special elsewhere: someone else's booking is not its to change.
    booking = book(alice, room, starts_in=-5)
    with pytest.raises(services.NotAllowed, match="someone else's"):
        services.change(
            actor=display.user, reservation=booking, end=booking.end + timedelta(minutes=15)
        )


def test_times_are_the_rooms_own_whatever_the_servers_zone(
    client, make_location, make_space, make_user, frozen_now
):
    # The server's TIME_ZONE is UTC; a room in Tokyo shows Tokyo's clock and booking times
    # (they showed UTC before, unnoticed while tests ran in London's winter, which is UTC).
    tokyo = make_location("Tokyo", time_zone="Asia/Tokyo")
    room = make_space(tokyo, name="Fuji")
    start = datetime.combine(next_weekday(2), clock(10), tzinfo=ZoneInfo("Asia/Tokyo"))
    services.book(
        actor=make_user(), space=room, start=start, end=start + timedelta(hours=1),
        now=start - timedelta(days=1),
    )  # fmt: skip
    frozen_now(start + timedelta(minutes=15))
    _display, token = displays.pair(displays.create(space=room).code, address="10.0.0.1")
    text = client.get(page_url(token)).content.decode()
    assert ">10:15</time>" in text
    assert "until 11:00" in text and "10:00\u201311:00" in text
