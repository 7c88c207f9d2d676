"""Setup and cleanup buffers in the portal: the schedule draws them as hatched edges (classes,
no style attribute) and offers only the half hours that leave them free; a booking that
would eat into them is refused with the rule's words and other free rooms offered."""

from __future__ import annotations

import pytest
from django.urls import reverse

from reservations import services
from reservations.models import Reservation, Source
from tests.conftest import local
from tests.support.portal import DAY, book_form

pytestmark = pytest.mark.django_db


@pytest.fixture
def buffered(office):
    office.small.setup_minutes = office.small.cleanup_minutes = 15
    office.small.save()
    return office


def _slot(space, start: str, end: str | None = None) -> str:
    link = f"space={space.pk}&amp;date={DAY.isoformat()}&amp;start={start}"
    return f"{link}&amp;end={end}" if end else link


def test_the_schedule_draws_buffers_as_hatched_edges_and_keeps_them_free(
    alice_client, bob, buffered, make_reservation
):
    small = buffered.small
    make_reservation(small, user=bob, start=local(buffered.location, DAY, 10))
    response = alice_client.get(
        reverse("portal:schedule"), {"location": buffered.location.pk, "date": DAY}
    )
    body = response.content.decode()
    # The day runs 07:00-20:00 (780 minutes): setup 09:45 is at 21.2%, 15 minutes are 1.9%;
    # cleanup 11:00 is at 30.8%.
    assert 'class="buffer buffer-setup at-t2 at-u1 at-d2 span-t0 span-u1 span-d9"' in body
    assert 'class="buffer buffer-cleanup at-t3 at-u0 at-d8 span-t0 span-u1 span-d9"' in body
    assert "15 min to set up Small room: kept free" in body
    assert "Setup / cleanup (kept free)" in body
    assert "style=" not in body  # the Content-Security-Policy refuses inline styles
    # Half hours whose booking would reach into the buffers are not offered; the one before
    # suggests ending where the booking's setup (less this one's cleanup) begins.
    assert _slot(small, "09:00", "09:30") in body
    assert _slot(small, "09:30") not in body and _slot(small, "11:00") not in body
    assert _slot(small, "11:30", "12:30") in body
    # Rooms without buffers show none and are offered right after a booking.
    make_reservation(buffered.big, user=bob, start=local(buffered.location, DAY, 10))
    body = alice_client.get(
        reverse("portal:schedule"), {"location": buffered.location.pk, "date": DAY}
    ).content.decode()
    assert body.count("buffer buffer-setup") == 1
    assert _slot(buffered.big, "11:00") in body


def test_a_booking_in_the_buffer_is_refused_with_the_rules_words(
    alice_client, alice, bob, buffered, make_reservation
):
    make_reservation(buffered.small, user=bob, start=local(buffered.location, DAY, 10))
    response = alice_client.post(
        reverse("portal:book"), book_form(buffered.small, start="11:00", end="12:00")
    )
    assert response.status_code == 409
    body = response.content.decode().replace("&#x27;", "'")
    assert (
        "Small room needs 15 minutes to be cleaned up and 15 minutes to be set up after the "
        "previous booking: the previous booking ends at 11:00, so this one can start at 11:30 "
        "at the earliest." in body
    )
    assert buffered.big in response.context["options"]  # free, no buffers: offered instead
    assert not Reservation.objects.filter(requested_for=alice).exists()


def test_the_last_half_hour_is_not_offered_when_its_cleanup_meets_a_later_booking(
    alice_client, alice, office
):
    """A booking made in Outlook after closing (20:10) and a cleanup of 30 minutes: booking
    19:30-20:00 would be refused, so the schedule does not offer it."""
    office.small.cleanup_minutes = 30
    office.small.save()
    services.book(
        actor=None, space=office.small, start=local(office.location, DAY, 20, 10),
        end=local(office.location, DAY, 21), source=Source.EXCHANGE,
    )  # fmt: skip
    body = alice_client.get(
        reverse("portal:schedule"), {"location": office.location.pk, "date": DAY}
    ).content.decode()
    assert _slot(office.small, "19:00", "19:40") in body  # ends where the cleanup fits
    assert _slot(office.small, "19:30") not in body
    assert _slot(office.big, "19:30") in body
    with pytest.raises(services.Conflict, match="this one must end by 19:40"):
        services.book(
            actor=alice, space=office.small, start=local(office.location, DAY, 19, 30),
            end=local(office.location, DAY, 20),
        )  # fmt: skip


def test_find_a_space_leaves_out_a_room_still_being_cleaned(
    alice_client, bob, buffered, make_reservation
):
    make_reservation(buffered.small, user=bob, start=local(buffered.location, DAY, 10))
    search = {"location": buffered.location.pk, "date": DAY, "duration": 60}
    right_after = alice_client.get(reverse("portal:find"), {**search, "start": "11:00"})
    assert [s.name for s in right_after.context["spaces"]] == ["Booth", "Desk 1", "Big room"]
    later = alice_client.get(reverse("portal:find"), {**search, "start": "11:30"})
    assert "Small room" in [s.name for s in later.context["spaces"]]
