"""Sign-in with Microsoft and Google (allauth OpenID Connect) against the provider sandbox.

The Django test client starts the sign-in; the browser's part (the provider's authorize page
and its redirect back) is played with requests over real HTTPS, trusting the sandbox's CA; the
portal's server-side calls (discovery, token) go to the sandbox through the adapter's session.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest
import requests
from allauth.socialaccount.models import SocialAccount, SocialApp
from django.contrib.auth import get_user_model
from django.db import connection

from calendars import signin
from calendars.demo import sandbox_config
from calendars.models import CalendarProvider, ConnectionAlias, CredentialAlias, ProviderKind
from integrations.sandbox.config import (
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    DEMO_TENANT_ID,
    default_config,
    merge,
)
from integrations.sandbox.google.directory import DEFAULTS as GOOGLE_DEFAULTS
from integrations.sandbox.testing import SandboxHandle, start_sandbox
from tests.conftest import endpoints_allowed

PORTAL = "http://testserver"  # the Django test client's host
GOOGLE_CLIENT = GOOGLE_DEFAULTS["oauth_clients"][0]


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxHandle]:
    config = merge(default_config(), sandbox_config([PORTAL]))
    handle = start_sandbox(tmp_path_factory.mktemp("signin-sandbox"), config)
    try:
        with endpoints_allowed(handle.base_url):
            yield handle
    finally:
        handle.stop()


@pytest.fixture
def browser(sandbox: SandboxHandle) -> requests.Session:
    """The person's browser, as far as the sandbox sees it."""
    session = requests.Session()
    session.trust_env = False  # REQUESTS_CA_BUNDLE would override verify
    session.verify = str(sandbox.ca_file)
    return session


def make_provider(sandbox: SandboxHandle, kind: str, **extra) -> CalendarProvider:
    base = sandbox.base_url
    if kind == ProviderKind.MICROSOFT:
        connection_alias = ConnectionAlias.objects.create(
            name="ms",
            kind=kind,
            authority_url=base,
            authorization_url=base,
            api_base_url=f"{base}/v1.0",
            ca_bundle=str(sandbox.ca_file),
        )
        credential = CredentialAlias.objects.create(
            name="ms",
            kind=kind,
            tenant_id=DEMO_TENANT_ID,
            client_id=DEMO_CLIENT_ID,
            client_secret=DEMO_CLIENT_SECRET,
        )
    else:
        connection_alias = ConnectionAlias.objects.create(
            name="google",
            kind=kind,
            authority_url=f"{base}/google/oauth2/token",
            authorization_url=f"{base}/google/o/oauth2/v2/auth",
            api_base_url=f"{base}/google/calendar/v3",
            ca_bundle=str(sandbox.ca_file),
        )
        credential = CredentialAlias.objects.create(
            name="google",
            kind=kind,
            client_id=GOOGLE_CLIENT["client_id"],
            client_secret=GOOGLE_CLIENT["client_secret"],
        )
    return CalendarProvider.objects.create(
        name=f"{kind} provider",
        kind=kind,
        connection=connection_alias,
        credential=credential,
        sign_in_enabled=extra.pop("sign_in_enabled", True),
        **extra,
    )


class _Form(HTMLParser):
    """The sandbox's account page: its hidden fields and the name of the account field."""

    def __init__(self) -> None:
        super().__init__()
        self.fields: dict[str, str] = {}
        self.account_field = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attr = dict(attrs)
        if tag == "input" and attr.get("type") == "hidden":
            self.fields[attr["name"] or ""] = attr.get("value") or ""
        elif tag in ("select", "button") and attr.get("name") and not self.account_field:
            self.account_field = attr["name"] or ""  # the first one; a later one may be "deny"


def sign_in(client, browser: requests.Session, provider_id: str, account: str, *, meanwhile=None):
    """Press "Sign in with ..." and pick ``account`` on the provider's page; the last response.
    ``meanwhile()`` runs after the provider answered, before its answer reaches Reserva."""
    start = client.post(f"/accounts/oidc/{provider_id}/login/")
    assert start.status_code == 302, start.content[:500]
    authorize = start["Location"]
    page = browser.get(authorize, allow_redirects=False)
    assert page.status_code == 200, page.text[:500]  # the sandbox's account page
    form = _Form()
    form.feed(page.text)
    assert form.account_field, page.text[:500]
    answer = browser.post(
        authorize.split("?")[0],
        data=form.fields | {form.account_field: account},
        allow_redirects=False,
    )
    assert answer.status_code == 302, answer.text[:500]
    back = urlsplit(answer.headers["Location"])
    assert f"{back.scheme}://{back.netloc}" == PORTAL
    assert back.path == f"/accounts/oidc/{provider_id}/login/callback/"
    if meanwhile is not None:
        meanwhile()
    return client.get(f"{back.path}?{back.query}", follow=True)


def signed_in_user(client):
    return get_user_model().objects.filter(pk=client.session.get("_auth_user_id")).first()


@pytest.mark.django_db
def test_login_page_shows_no_provider_buttons_when_none_is_configured(client):
    page = client.get("/accounts/login/")
    assert page.status_code == 200
    assert "Sign in with" not in page.content.decode().replace("Sign in to Reserva", "")
    assert client.post("/accounts/oidc/microsoft/login/").status_code == 404


@pytest.mark.django_db
def test_sign_in_with_microsoft_through_the_sandbox(client, sandbox, browser, make_user):
    make_provider(sandbox, ProviderKind.MICROSOFT)
    alice = make_user("alice", email="Alice@Contoso.test")
    page = client.get("/accounts/login/").content.decode()
    assert "Sign in with Microsoft" in page
    assert "Sign in with Google" not in page

    final = sign_in(client, browser, "microsoft", "alice@contoso.test")

    assert final.status_code == 200
    assert signed_in_user(client) == alice
    account = SocialAccount.objects.get(user=alice)
    assert account.provider == "microsoft"
    assert account.extra_data["id_token"]["preferred_username"] == "alice@contoso.test"
    # The second time the link (the token's sub) finds her, whatever her address says now.
    client.logout()
    alice.email = "alice@elsewhere.test"
    alice.save()
    sign_in(client, browser, "microsoft", "alice@contoso.test")
    assert signed_in_user(client) == alice
    assert SocialAccount.objects.count() == 1


@pytest.mark.django_db
def test_sign_in_with_google_matches_a_verified_extra_address(client, sandbox, browser, make_user):
    from allauth.account.models import EmailAddress

    make_provider(sandbox, ProviderKind.GOOGLE)
    bob = make_user("bob", email="bob@contoso.test")
    EmailAddress.objects.create(user=bob, email="bob@northwind.test", verified=True)
    assert "Sign in with Google" in client.get("/accounts/login/").content.decode()

    final = sign_in(client, browser, "google", "bob@northwind.test")

    assert final.status_code == 200
    assert signed_in_user(client) == bob
    assert SocialAccount.objects.get(user=bob).provider == "google"
    assert not SocialApp.objects.exists()  # nothing went into allauth's plaintext table


@pytest.mark.django_db
def test_unknown_email_is_refused_with_a_clear_message(client, sandbox, browser, make_user):
    make_provider(sandbox, ProviderKind.MICROSOFT)
    make_user("someone", email="someone@example.com")

    final = sign_in(client, browser, "microsoft", "bob@contoso.test")

    assert signed_in_user(client) is None
    assert final.request["PATH_INFO"] == "/accounts/login/"
    text = final.content.decode()
    assert "No active Reserva account uses bob@contoso.test" in text
    assert "Ask a Reserva administrator" in text
    assert get_user_model().objects.count() == 1  # no account was created
    assert not SocialAccount.objects.exists()


@pytest.mark.django_db
def test_an_inactive_user_cannot_sign_in(client, sandbox, browser, make_user):
    make_provider(sandbox, ProviderKind.GOOGLE)
    make_user("alice", email="alice@northwind.test", is_active=False)
    final = sign_in(client, browser, "google", "alice@northwind.test")
    assert signed_in_user(client) is None
    assert "No active Reserva account uses alice@northwind.test" in final.content.decode()


@pytest.mark.django_db
def test_accounts_are_created_only_when_the_setting_says_so(client, sandbox, browser, settings):
    settings.SIGNIN_CREATES_ACCOUNTS = True
    make_provider(sandbox, ProviderKind.MICROSOFT)
    final = sign_in(client, browser, "microsoft", "bob@contoso.test")
    user = signed_in_user(client)
    assert user is not None, (final.request["PATH_INFO"], final.content.decode()[-3000:])
    assert user.email == "bob@contoso.test"


@pytest.mark.django_db
def test_environment_settings_win_and_secrets_stay_out_of_the_database(
    client, sandbox, browser, settings, make_user
):
    # A provider whose credential would fail: the environment's app is used instead.
    provider = make_provider(sandbox, ProviderKind.MICROSOFT)
    CredentialAlias.objects.filter(pk=provider.credential_id).update(client_id="wrong")
    settings.MICROSOFT_SIGNIN_CLIENT_ID = DEMO_CLIENT_ID
    settings.MICROSOFT_SIGNIN_CLIENT_SECRET = DEMO_CLIENT_SECRET
    settings.MICROSOFT_SIGNIN_TENANT = DEMO_TENANT_ID
    settings.MICROSOFT_SIGNIN_AUTHORITY = sandbox.base_url
    (app,) = signin.configured_apps()
    assert app.source == "environment"
    assert DEMO_CLIENT_SECRET not in repr(app)
    # The environment's app has no CA bundle of its own; the sandbox's CA is not trusted by
    # default, so the discovery fails over TLS, and the person is told plainly.
    make_user("alice", email="alice@contoso.test")
    answer = client.post("/accounts/oidc/microsoft/login/", follow=True)
    assert answer.status_code == 200
    assert "Sign-in with Microsoft is not available right now" in answer.content.decode()
    # No secret in any table: allauth's SocialApp and SocialToken stay empty, the alias's
    # column holds ciphertext.
    with connection.cursor() as cursor:
        cursor.execute("SELECT client_secret FROM calendars_credentialalias")
        (stored,) = cursor.fetchone()
    assert stored.startswith("fernet:") and DEMO_CLIENT_SECRET not in stored
    assert not SocialApp.objects.exists()


@pytest.mark.django_db
def test_an_unreachable_provider_is_a_message_not_an_error(client, sandbox, make_user, settings):
    settings.PROVIDER_ENDPOINT_ALLOWLIST = [
        *settings.PROVIDER_ENDPOINT_ALLOWLIST,
        "https://127.0.0.1:9",
    ]
    provider = make_provider(sandbox, ProviderKind.GOOGLE)
    ConnectionAlias.objects.filter(pk=provider.connection_id).update(
        authorization_url="https://127.0.0.1:9/google/o/oauth2/v2/auth"
    )
    answer = client.post("/accounts/oidc/google/login/", follow=True)
    assert answer.status_code == 200
    assert "Sign-in with Google is not available right now" in answer.content.decode()
    # A missing CA file is the same kind of failure, not a crash.
    ConnectionAlias.objects.filter(pk=provider.connection_id).update(
        authorization_url=f"{sandbox.base_url}/google/o/oauth2/v2/auth",
        ca_bundle="/nonexistent.pem",
    )
    answer = client.post("/accounts/oidc/google/login/", follow=True)
    assert "Sign-in with Google is not available right now" in answer.content.decode()


@pytest.mark.django_db
def test_a_forged_callback_is_refused_without_an_error(client, sandbox):
    make_provider(sandbox, ProviderKind.MICROSOFT)
    answer = client.get("/accounts/oidc/microsoft/login/callback/?code=forged&state=forged")
    assert answer.status_code == 401  # allauth's "Third-Party Login Failure" page
    assert "Login Failure" in answer.content.decode()
    assert signed_in_user(client) is None
    assert client.get("/accounts/oidc/nobody/login/callback/?code=x").status_code == 404


@pytest.mark.django_db
def test_a_forged_callback_leaves_the_sign_in_in_progress_intact(
    client, sandbox, browser, make_user
):
    """allauth looks the state up by the id the callback carries and removes only that one, so
    a forged answer cannot spoil the real one (calendars/views.py's callback does the same)."""
    make_provider(sandbox, ProviderKind.MICROSOFT)
    alice = make_user("alice", email="alice@contoso.test")
    callback = "/accounts/oidc/microsoft/login/callback/"

    def forge() -> None:
        assert client.get(callback, {"code": "forged", "state": "forged"}).status_code == 401

    final = sign_in(client, browser, "microsoft", "alice@contoso.test", meanwhile=forge)
    assert final.status_code == 200
    assert signed_in_user(client) == alice


def test_ca_bundle_is_passed_per_call_so_requests_ca_bundle_cannot_override_it(
    sandbox, monkeypatch, tmp_path
):
    # An unrelated bundle in the environment, as on this machine: the call still trusts the
    # sandbox's CA because verify is given per call.
    other = tmp_path / "other.pem"
    other.write_text(re.sub(r"[A-Za-z0-9+/=]{64}", "A" * 64, sandbox.ca_file.read_text()))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(other))
    session = signin.ProviderSession({sandbox.base_url: (str(sandbox.ca_file), 5)}, 5)
    assert session.get(f"{sandbox.base_url}/_sandbox/api/state").status_code == 200
    with pytest.raises(requests.exceptions.SSLError):
        signin.ProviderSession({}, 5).get(f"{sandbox.base_url}/_sandbox/api/state")


def test_issuer_urls_from_connection_aliases():
    assert (
        signin.microsoft_server_url("https://login.microsoftonline.com/", "contoso.com")
        == "https://login.microsoftonline.com/contoso.com/v2.0"
    )
    assert (
        signin.google_server_url("https://accounts.google.com/o/oauth2/v2/auth")
        == "https://accounts.google.com"
    )
    assert (
        signin.google_server_url("https://127.0.0.1:8443/google/o/oauth2/v2/auth")
        == "https://127.0.0.1:8443/google"
    )


def test_only_addresses_the_provider_vouches_for_count():
    assert signin.claimed_email("google", {"id_token": {"email": "a@x.test"}}) == ""
    assert (
        signin.claimed_email("google", {"id_token": {"email": "A@x.test", "email_verified": True}})
        == "a@x.test"
    )
    assert (
        signin.claimed_email("microsoft", {"id_token": {"preferred_username": "a@contoso.test"}})
        == "a@contoso.test"
    )
    assert (
        signin.claimed_email("microsoft", {"id_token": {"preferred_username": "+15551234"}}) == ""
    )


@pytest.mark.django_db
def test_the_admin_offers_no_plaintext_secret_table(admin_client):
    index = admin_client.get("/admin/").content.decode()
    assert "Social applications" not in index and "Social application tokens" not in index
    assert admin_client.get("/admin/socialaccount/socialapp/add/").status_code == 404
    # The provider's sign-in switch is on its admin form.
    assert (
        "sign_in_enabled"
        in admin_client.get("/admin/calendars/calendarprovider/add/").content.decode()
    )
