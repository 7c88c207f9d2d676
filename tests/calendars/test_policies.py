"""The sync-mode rules, enforced by the booking service for every entry point."""

import itertools
from datetime import time, timedelta

import pytest

from calendars.models import (
    SpaceCalendar,
    SyncSettings,
    TokenStatus,
    UserToken,
)
from reservations import rules, services
from reservations.models import ReservationKind, Source
from tests.conftest import local, next_weekday

pytestmark = pytest.mark.django_db


@pytest.fixture
def synced(make_space, provider):
    space = make_space(name="Synced", capacity=8, allows_group=True)
    SpaceCalendar.objects.create(space=space, provider=provider, resource_email="r@example.com")
    return space


@pytest.fixture
def unsynced(make_space):
    return make_space(name="Plain", capacity=8, allows_group=True)


def set_mode(mode):
    settings = SyncSettings.load()
    settings.mode = mode
    settings.save()


def connect(user, provider, status=TokenStatus.VALID):
    return UserToken.objects.create(
        user=user, provider=provider, account_email=user.email, token={"k": "v"}, status=status
    )


def book(actor, space, hour=10, **kwargs):
    start = local(space.location, next_weekday(1), hour)
    return services.book(
        actor=actor, space=space, start=start, end=start + timedelta(hours=1), **kwargs
    ).reservations[0]


def test_normal_mode_writes_to_the_room_and_allows_everything(make_user, synced):
    assistant = make_user(perms=("reservations.book_on_behalf",))
    r = book(
        assistant,
        synced,
        requested_for=make_user(),
        kind=ReservationKind.GROUP,
        attendees=["a@example.com"],
    )
    assert r.sync_mailbox == "room"
    services.cancel(actor=assistant, reservation=r)


def test_strict_mode_changes_only_in_the_delegated_calendar(make_user, synced, provider):
    user = make_user()
    room_booking = book(user, synced, hour=9)  # made in normal mode: in the room's calendar
    set_mode("strict")
    delegated = book(user, synced, hour=11)
    assert (room_booking.sync_mailbox, delegated.sync_mailbox) == ("room", "other")
    with pytest.raises(services.NotAllowed, match="cannot be changed here: ask an administrator"):
        services.cancel(actor=user, reservation=room_booking)
    services.cancel(actor=user, reservation=delegated)


def test_personal_mode_books_for_yourself_only_with_a_token(make_user, synced, unsynced, provider):
    set_mode("personal")
    assistant, boss = make_user(perms=("reservations.book_on_behalf",)), make_user()
    with pytest.raises(services.NotAllowed, match="Connect your calendar first"):
        book(assistant, synced)
    connect(assistant, provider)
    with pytest.raises(services.NotAllowed, match="only be booked for yourself"):
        book(assistant, synced, requested_for=boss)
    with pytest.raises(services.NotAllowed, match="Group reservations are not available"):
        book(assistant, synced, kind=ReservationKind.GROUP, attendees=["a@example.com"])
    mine = book(assistant, synced)
    assert mine.sync_mailbox == "user"
    # Spaces that do not sync keep every option.
    other = book(
        assistant,
        unsynced,
        requested_for=boss,
        kind=ReservationKind.GROUP,
        attendees=["a@example.com"],
    )
    assert other.requested_for == boss


def test_personal_mode_changes_need_the_owner_a_token_and_a_portal_source(
    make_user, synced, provider
):
    set_mode("personal")
    owner, admin = make_user(), make_user(perms=("reservations.manage_all",))
    token = connect(owner, provider)
    r = book(owner, synced)
    with pytest.raises(services.NotAllowed, match="Only the person this booking is for"):
        services.cancel(actor=admin, reservation=r)
    with pytest.raises(services.NotAllowed, match="only they can change it, in the portal"):
        services.change(actor=owner, reservation=r, title="x", source=Source.REST_API)
    token.status = TokenStatus.EXPIRED
    token.save()
    decision = rules.check(rules.Action.CHANGE, owner, r, Source.EVENT_PLANNER)
    assert not decision and "reconnect it" in decision.reason
    token.status = TokenStatus.EXPIRING  # still usable
    token.save()
    services.change(actor=owner, reservation=r, title="Moved", source=Source.MOBILE)


def test_the_owner_moving_a_personal_booking_in_their_calendar_is_checked_as_them(
    make_user, synced, provider
):
    """The pull applies a remote move of a Reserva booking as its person: in personal mode a
    booking kept in their own calendar may be moved there by them (even with an expired
    token: the move was made with their account), by nobody else, and the slot rules hold."""
    set_mode("personal")
    owner, other = make_user(), make_user(perms=("reservations.manage_all",))
    token = connect(owner, provider)
    r = book(owner, synced, hour=10)
    token.status = TokenStatus.EXPIRED
    token.save()
    assert rules.check(rules.Action.CHANGE, owner, r, Source.EXCHANGE)
    decision = rules.check(rules.Action.CHANGE, other, r, Source.EXCHANGE)
    assert not decision and "only they can change it" in decision.reason
    later = r.start + timedelta(hours=2)
    services.change(
        actor=owner, reservation=r, start=later, end=later + timedelta(hours=1),
        source=Source.EXCHANGE,
    )  # fmt: skip
    synced.location.opening_hours.update(opens=time(8), closes=time(13))
    with pytest.raises(services.Conflict, match="open 08:00-13:00"):
        services.change(
            actor=owner, reservation=r, start=later + timedelta(hours=1),
            end=later + timedelta(hours=2), source=Source.EXCHANGE,
        )  # fmt: skip


def test_rest_api_and_blockers_use_application_credentials(make_user, synced, provider):
    set_mode("personal")
    admin = make_user(perms=("reservations.manage_all",))
    api = book(admin, synced, hour=9, source=Source.REST_API, requested_for=make_user())
    blocker = book(admin, synced, hour=11, kind=ReservationKind.BLOCKER)
    assert (api.sync_mailbox, blocker.sync_mailbox) == ("room", "other")


def test_remote_bookings_are_read_only_here(make_user, synced):
    remote = services.book(
        actor=None,
        space=synced,
        source=Source.EXCHANGE,
        start=local(synced.location, next_weekday(1), 10),
        end=local(synced.location, next_weekday(1), 11),
    ).reservations[0]
    admin = make_user(perms=("reservations.manage_all",))
    with pytest.raises(services.NotAllowed, match="made in Microsoft 365"):
        services.cancel(actor=admin, reservation=remote)


def test_disabled_binding_means_no_sync_rules(make_user, synced, provider):
    set_mode("personal")
    SpaceCalendar.objects.filter(space=synced).update(enabled=False)
    fresh = type(synced).objects.get(pk=synced.pk)  # as a new request would load it
    user = make_user()
    r = book(user, fresh, requested_for=None)
    assert r.sync_mailbox == "room"


def test_my_reservations_reads_the_bindings_of_a_page_in_one_query(
    client, make_user, make_space, make_reservation, provider
):
    """The sync-mode policy's binding look-up comes from the page's preload, not one query per
    space, and the sync settings once, not twice per booking: three more synced spaces on the
    page cost no more queries than one."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    user = make_user()
    client.force_login(user)

    made = itertools.count()

    def bookings_in(count: int) -> int:
        for _ in range(count):
            n = next(made)
            space = make_space(name=f"Synced {n}")
            SpaceCalendar.objects.create(
                space=space, provider=provider, resource_email=f"r{n}@example.com"
            )
            make_reservation(space=space, user=user)
        with CaptureQueriesContext(connection) as queries:
            assert client.get("/my/").status_code == 200
        binding_reads = [q for q in queries if 'FROM "calendars_spacecalendar"' in q["sql"]]
        assert len(binding_reads) == 1, [q["sql"] for q in binding_reads]
        return len(queries)

    bookings_in(1)  # the first visit with a booking makes the person's profile
    assert bookings_in(1) == bookings_in(3)  # 2, then 5 bookings on the page


def test_a_page_of_bookings_of_spaces_that_do_not_sync_reads_no_sync_settings(
    client, make_user, make_space, make_reservation, provider
):
    """The sync settings matter only to bookings of synced spaces: My reservations and the
    details of a desk booking do not read them; one synced booking on the page reads them
    once."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    user = make_user()
    client.force_login(user)
    desk = make_reservation(space=make_space(name="Desk"), user=user)

    def settings_reads(url: str) -> int:
        with CaptureQueriesContext(connection) as queries:
            assert client.get(url).status_code == 200
        return sum('FROM "calendars_syncsettings"' in q["sql"] for q in queries)

    assert settings_reads("/my/") == 0
    assert settings_reads(f"/reservations/{desk.pk}/") == 0
    synced = make_space(name="Synced")
    SpaceCalendar.objects.create(space=synced, provider=provider, resource_email="s@example.com")
    make_reservation(space=synced, user=user)
    assert settings_reads("/my/") == 1
