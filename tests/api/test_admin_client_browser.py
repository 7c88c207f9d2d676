"""Registering an API client in one screen, in a real browser: *Integration accounts -> Add*
creates the user, its role and its OAuth client, shows the id and secret once with Copy
buttons, and that secret gets a token (Debian's Chromium, ``tests/browser.py``)."""

from __future__ import annotations

import base64

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from oauth2_provider.models import Application
from playwright.sync_api import expect

from reservations.models import IntegrationAccount, IntegrationRole

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_one_screen_registers_a_client_that_gets_a_token(new_page, live_server, make_user):
    admin = make_user("ada", is_staff=True, is_superuser=True)
    page = new_page(admin, width=1366)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.goto(f"{live_server.url}/admin/reservations/integrationaccount/add/")
    # The toolkit's raw user-id box is not there: a name and an email make the user.
    expect(page.locator("#id_user")).to_have_count(0)
    page.get_by_label("Username").fill("room-signage")
    page.get_by_label("Email").fill("signage@example.com")
    page.get_by_label("Role").select_option(IntegrationRole.BOOK_FOR_ANYONE)
    page.get_by_role("button", name="Save", exact=True).click()

    expect(page.get_by_text("the secret is shown only this once")).to_be_visible()
    client_id = page.locator("#client-id").input_value()
    secret = page.locator("#client-secret").input_value()
    copy = page.locator("button[data-copy='#client-secret']")
    copy.click()
    expect(copy).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == secret

    user = get_user_model().objects.get(username="room-signage")
    assert user.email == "signage@example.com"
    assert not user.has_usable_password()
    assert IntegrationAccount.objects.get(user=user).role == IntegrationRole.BOOK_FOR_ANYONE
    application = Application.objects.get(client_id=client_id)
    assert application.user == user
    assert application.client_secret != secret  # stored hashed: shown this once only

    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    response = Client().post(
        "/o/token/",
        {"grant_type": "client_credentials", "scope": "read"},
        HTTP_AUTHORIZATION=f"Basic {basic}",
    )
    assert response.status_code == 200, response.content
    assert response.json()["access_token"]
