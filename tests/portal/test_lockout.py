"""Sign-in lockout at both doors: ``/admin/login/`` locks an account after 5 failures (and an
address after 10) like the portal, with the same message; failures at either door count
together, and a locked account is refused even the right password."""

from __future__ import annotations

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db

LOCKED = "Too many failed login attempts. Try again later."
ADMIN = "/admin/login/?next=/admin/"


def admin_sign_in(client: Client, username: str, password: str, **extra):
    return client.post(ADMIN, {"username": username, "password": password}, **extra)


def portal_sign_in(client: Client, login: str, password: str, **extra):
    return client.post("/accounts/login/", {"login": login, "password": password}, **extra)


@pytest.fixture
def staff(make_user):
    return make_user("ops", is_staff=True, is_superuser=True)


def test_admin_locks_an_account_after_fifty_wrong_passwords_even_for_the_right_one(client, staff):
    for n in range(50):
        response = admin_sign_in(client, "ops", f"wrong-{n}")
        assert response.status_code == 200  # the form again
    refused = admin_sign_in(client, "ops", "pw")
    assert refused.status_code == 200
    assert LOCKED in refused.content.decode()
    assert "_auth_user_id" not in client.session


def test_the_fifth_failure_locks_and_the_message_is_the_portals(client, staff):
    for n in range(4):
        assert LOCKED not in admin_sign_in(client, "ops", f"wrong-{n}").content.decode()
    fifth = admin_sign_in(client, "ops", "wrong-5")
    assert LOCKED not in fifth.content.decode()  # the fifth is refused as a wrong password
    assert LOCKED in admin_sign_in(client, "ops", "pw").content.decode()
    # The portal says the same for the same account.
    portal = portal_sign_in(Client(), "ops", "pw")
    assert LOCKED in portal.content.decode()


def test_failures_at_the_portal_count_at_the_admin(client, staff):
    for n in range(5):
        portal_sign_in(Client(), "OPS", f"wrong-{n}")  # logins are case-insensitive
    refused = admin_sign_in(client, "ops", "pw")
    assert LOCKED in refused.content.decode()
    assert "_auth_user_id" not in client.session


def test_a_success_between_failures_does_not_wipe_them(client, staff):
    for n in range(4):
        admin_sign_in(Client(), "ops", f"wrong-{n}")
    # Not locked yet, and a success costs nothing ...
    assert admin_sign_in(Client(), "ops", "pw").status_code == 302
    # ... but does not forgive the failures either: one more locks the account.
    admin_sign_in(Client(), "ops", "wrong-again")
    assert LOCKED in admin_sign_in(client, "ops", "pw").content.decode()


def test_an_address_is_locked_after_ten_failures_on_any_accounts(client, staff):
    attacker = {"REMOTE_ADDR": "203.0.113.9"}
    for n in range(10):
        admin_sign_in(Client(), f"guess-{n}", "password", **attacker)
    refused = admin_sign_in(client, "ops", "pw", **attacker)
    assert LOCKED in refused.content.decode()
    assert "_auth_user_id" not in client.session
    # The account itself is not locked: from another address it signs in.
    ok = admin_sign_in(Client(), "ops", "pw", REMOTE_ADDR="198.51.100.4")
    assert ok.status_code == 302
