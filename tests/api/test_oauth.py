"""OAuth 2 client credentials end to end, scopes, expiry, hashed secrets, web-service-only users."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone
from oauth2_provider.models import AccessToken, Application

from reservations.models import IntegrationRole

pytestmark = pytest.mark.django_db


def test_token_call_revoke_then_refused(api, make_integration, make_space):
    make_space()
    integration = make_integration(IntegrationRole.READ_ONLY)
    response = api.post(
        "/o/token/",
        {"grant_type": "client_credentials", "scope": "read"},
        HTTP_AUTHORIZATION=integration.basic(),
    )
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "Bearer" and body["scope"] == "read"
    assert 0 < body["expires_in"] <= 3600
    token = body["access_token"]

    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert api.get("/api/v1/spaces/").status_code == 200

    api.credentials()
    revoked = api.post("/o/revoke_token/", {"token": token}, HTTP_AUTHORIZATION=integration.basic())
    assert revoked.status_code == 200

    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    refused = api.get("/api/v1/spaces/")
    assert refused.status_code == 401
    error = refused.json()["error"]
    assert error["code"] == "invalid_token" and "revoked" in error["message"]
    assert token not in refused.content.decode()


def test_wrong_secret_gets_no_token(api, make_integration):
    integration = make_integration()
    integration.client_secret = "wrong"
    response = api.post(
        "/o/token/", {"grant_type": "client_credentials"}, HTTP_AUTHORIZATION=integration.basic()
    )
    assert response.status_code == 401


def test_client_secrets_are_stored_hashed(make_integration, settings):
    from django.conf import global_settings

    settings.PASSWORD_HASHERS = global_settings.PASSWORD_HASHERS  # the real ones, not the tests'
    integration = make_integration()
    stored = Application.objects.get(pk=integration.application.pk).client_secret
    assert stored != integration.client_secret
    assert stored.startswith(("pbkdf2_", "argon2", "bcrypt", "scrypt"))


def test_access_tokens_are_not_stored_in_plaintext(make_integration, get_token):
    token = get_token(make_integration())
    stored = AccessToken.objects.get()
    assert token not in {stored.token, getattr(stored, "token_checksum", "")}


def test_expired_token_is_refused(api, as_integration):
    client = as_integration()
    AccessToken.objects.update(expires=timezone.now() - timedelta(seconds=1))
    assert client.get("/api/v1/locations/").status_code == 401


def test_read_scope_cannot_write(as_integration, make_space):
    space = make_space()
    client = as_integration(IntegrationRole.BOOK_FOR_ANYONE, scope="read")
    response = client.post(
        "/api/v1/reservations/",
        {"space": space.pk, "start": "2030-01-01T10:00:00+00:00", "end": "2030-01-01T11:00:00Z"},
        format="json",
    )
    assert response.status_code == 403
    assert "write" in response.json()["error"]["message"]


def test_no_credentials_is_401(api):
    response = api.get("/api/v1/reservations/")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_integration_user_cannot_sign_in_to_portal_or_admin(client, make_integration):
    integration = make_integration()
    user = integration.user
    user.is_staff = True
    user.save()
    portal = client.post(
        "/accounts/login/", {"login": user.username, "password": "pw"}, follow=True
    )
    assert "_auth_user_id" not in client.session
    assert "integration account" in portal.content.decode()

    admin = client.post("/admin/login/?next=/admin/", {"username": user.username, "password": "pw"})
    assert admin.status_code == 200  # the form again, with the error
    assert "integration account" in admin.content.decode()
    assert "_auth_user_id" not in client.session


def test_ordinary_staff_still_sign_in_to_admin(client, make_user):
    user = make_user(is_staff=True, is_superuser=True)
    response = client.post(
        "/admin/login/?next=/admin/", {"username": user.username, "password": "pw"}
    )
    assert response.status_code == 302


def test_rate_limit_per_client_is_429(as_integration, settings):
    settings.API_RATE_LIMIT = "3/minute"
    client = as_integration(IntegrationRole.READ_ONLY)
    other = as_integration(IntegrationRole.READ_ONLY)
    codes = [client.get("/api/v1/locations/").status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    response = client.get("/api/v1/locations/")
    assert response.json()["error"]["code"] == "throttled"
    assert "Retry-After" in response
    assert other.get("/api/v1/locations/").status_code == 200  # its own bucket


def test_admin_pages_for_clients_and_integration_users(admin_client, make_user):
    for url in (
        "/admin/reservations/integrationaccount/add/",
        "/admin/oauth2_provider/application/add/",
        "/admin/reservations/feedtoken/",
    ):
        assert admin_client.get(url).status_code == 200, url
    response = admin_client.post(
        "/admin/reservations/integrationaccount/add/",
        {
            "username": "bot",
            "email": "bot@example.com",
            "role": IntegrationRole.BOOK_FOR_ANYONE,
            "notes": "",
        },
    )
    assert response.status_code == 200  # the new client's id and secret, shown once
    assert response["Cache-Control"].startswith("max-age=0")
    bot = get_user_model().objects.get(username="bot")
    assert bot.has_perm("reservations.book_on_behalf")
    application = Application.objects.get(user=bot)
    assert application.client_id in response.content.decode()
    # Another look at the account never shows a secret again.
    page = admin_client.get(
        f"/admin/reservations/integrationaccount/{bot.integration_account.pk}/change/"
    )
    assert application.client_id not in page.content.decode()


def test_adding_an_integration_with_a_taken_username_is_a_field_error(admin_client, make_user):
    make_user("bot")
    response = admin_client.post(
        "/admin/reservations/integrationaccount/add/",
        {"username": "BOT", "email": "b@example.com", "role": IntegrationRole.READ_ONLY},
    )
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["username"] == [
        "A user named 'BOT' exists already: choose another name."
    ]
    assert not Application.objects.exists()
