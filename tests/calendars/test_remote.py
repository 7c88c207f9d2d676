"""Where a reservation's event lives and what it says."""

from datetime import timedelta

import pytest

from calendars import remote
from calendars.models import (
    SpaceCalendar,
    SyncSettings,
)
from reservations.models import EventTitle, SyncMailbox

pytestmark = pytest.mark.django_db


@pytest.fixture
def binding(make_space, make_provider):
    provider = make_provider(delegated_user_email="delegate@example.com")
    return SpaceCalendar.objects.create(
        space=make_space(name="Thames"), provider=provider, resource_email="thames@example.com"
    )


@pytest.mark.parametrize(
    ("option", "expected"),
    [
        (EventTitle.PATRON_NAME, "Ada Lovelace"),
        (EventTitle.PATRON_NAME_EMAIL, "Ada Lovelace (ada@example.com)"),
        (EventTitle.PUBLIC_NICKNAME, "Analytical"),
    ],
)
def test_event_title_follows_the_location_option(
    binding, make_user, make_reservation, option, expected
):
    ada = make_user("ada", first_name="Ada", last_name="Lovelace")
    location = binding.space.location
    location.event_title = option
    location.save()
    r = make_reservation(binding.space, user=ada, public_nickname="Analytical")
    assert remote.event_title(r) == expected


def test_event_data_for_room_and_delegated_mailboxes(binding, make_user, make_reservation):
    blocker = make_user("blocker")
    settings = SyncSettings.load()
    settings.blocker_user = blocker
    settings.save()
    r = make_reservation(binding.space, title="Board", minutes=90)
    data = remote.event_data(r, binding)
    assert (data.reservation_id, data.start, data.end) == (
        r.pk,
        r.start,
        r.start + timedelta(minutes=90),
    )
    assert data.resources == () and "Title: Board" in data.body
    assert f"/reservations/{r.pk}/" in data.body and data.time_zone == "Europe/London"

    r.sync_mailbox = SyncMailbox.OTHER
    data = remote.event_data(r, binding)
    assert data.resources == ("thames@example.com",)
    assert data.attendees == (r.requested_for.email, "blocker@example.com")
    target = remote.locate(r, binding).calendar()
    assert (target.ref.mailbox, target.ref.calendar_id, target.as_user) == (
        "delegate@example.com",
        "",
        None,
    )
    r.sync_mailbox = SyncMailbox.ROOM
    assert remote.locate(r, binding).calendar().ref.mailbox == "thames@example.com"


def test_personal_target_needs_a_connected_calendar(binding, make_reservation):
    r = make_reservation(binding.space)
    r.sync_mailbox = SyncMailbox.USER
    with pytest.raises(remote.NotConnected):
        remote.locate(r, binding).calendar()
