"""The rules hook: the built-in ownership policy and policies registered by other apps."""

from datetime import timedelta

import pytest

from reservations import rules, services
from tests.conftest import local, next_weekday

pytestmark = pytest.mark.django_db


def test_people_manage_their_own_but_not_others(make_user, make_reservation):
    owner, stranger = make_user(), make_user()
    reservation = make_reservation(user=owner)
    assert rules.check(rules.Action.CHANGE, owner, reservation)
    decision = rules.check(rules.Action.CANCEL, stranger, reservation)
    assert not decision and decision.reason == "This is someone else's reservation."
    with pytest.raises(services.NotAllowed, match="someone else's"):
        services.cancel(actor=stranger, reservation=reservation)


def test_booking_on_behalf_needs_the_permission(make_user, make_space):
    plain, assistant = make_user(), make_user(perms=("reservations.book_on_behalf",))
    colleague, space = make_user(), make_space()
    start = local(space.location, next_weekday(1), 10)
    with pytest.raises(services.NotAllowed, match="only book for yourself"):
        services.book(
            actor=plain,
            space=space,
            start=start,
            end=start + timedelta(hours=1),
            requested_for=colleague,
        )
    [r] = services.book(
        actor=assistant,
        space=space,
        start=start,
        end=start + timedelta(hours=1),
        requested_for=colleague,
    ).reservations
    assert (r.requested_for, r.booked_by) == (colleague, assistant)
    # both the person it is for and the booker may manage it
    assert rules.check(rules.Action.CHANGE, colleague, r)
    assert rules.check(rules.Action.CHANGE, assistant, r)


def test_admin_role_manages_everything(make_user, make_reservation):
    admin = make_user(perms=("reservations.manage_all",))
    reservation = make_reservation()
    services.cancel(actor=admin, reservation=reservation)
    reservation.refresh_from_db()
    assert reservation.status == "cancelled"


def test_a_registered_policy_is_enforced_by_the_service_with_its_reason(make_user, make_space):
    def no_fridays(action, user, reservation, source):
        if reservation.local_start.weekday() == 4:
            return rules.Decision(False, "Fridays are kept free.")
        return None

    rules.register(no_fridays)
    try:
        user, space = make_user(), make_space()
        start = local(space.location, next_weekday(4), 10)
        with pytest.raises(services.NotAllowed, match=r"Fridays are kept free\."):
            services.book(actor=user, space=space, start=start, end=start + timedelta(hours=1))
    finally:
        rules.unregister(no_fridays)
    assert no_fridays not in rules._policies


def test_inactive_user_may_do_nothing(make_user, make_reservation):
    user = make_user()
    reservation = make_reservation(user=user)
    user.is_active = False
    assert rules.check(rules.Action.CHANGE, user, reservation).reason == (
        "Your account is deactivated."
    )


def test_a_registered_placement_decides_the_sync_mailbox(make_user, make_space):
    def personal_from_portal(reservation, source):
        return "user" if source == "portal" else None

    rules.register_placement(personal_from_portal)
    try:
        user, space = make_user(), make_space()
        start = local(space.location, next_weekday(1), 10)
        [mine] = services.book(
            actor=user, space=space, start=start, end=start + timedelta(hours=1)
        ).reservations
        [api] = services.book(
            actor=user,
            space=space,
            start=start + timedelta(hours=2),
            end=start + timedelta(hours=3),
            source="rest_api",
        ).reservations
    finally:
        rules.unregister_placement(personal_from_portal)
    assert (mine.sync_mailbox, api.sync_mailbox) == ("user", "room")


def test_policies_are_told_the_source(make_user, make_reservation):
    seen = []

    def spy(action, user, reservation, source):
        seen.append((action, source))

    rules.register(spy)
    try:
        user = make_user()
        reservation = make_reservation(user=user, source="mobile")
        services.cancel(actor=user, reservation=reservation, source="event_planner")
    finally:
        rules.unregister(spy)
    assert seen == [(rules.Action.CREATE, "mobile"), (rules.Action.CANCEL, "event_planner")]


def test_a_registered_preload_is_given_the_whole_page_before_the_policies(
    client, make_user, make_reservation
):
    user = make_user()
    made = [make_reservation(user=user) for _ in range(3)]  # three rooms
    pages, asked = [], []

    def remember(reservations):
        pages.append(sorted(r.pk for r in reservations))
        for reservation in reservations:
            reservation.space.preloaded = True

    def policy(action, user, reservation, source):
        asked.append(getattr(reservation.space, "preloaded", False))

    rules.register_preload(remember)
    rules.register(policy)
    try:
        client.force_login(user)
        response = client.get("/my/")
    finally:
        rules.unregister_preload(remember)
        rules.unregister(policy)
    assert response.status_code == 200
    assert pages == [sorted(r.pk for r in made)]
    assert asked and all(asked)  # every policy call saw what the preload fetched
