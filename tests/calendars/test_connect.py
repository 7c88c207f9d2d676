"""Staff's "Connect my calendar" against the sandbox: connect and disconnect with Microsoft and
Google, the token's status on the page and in the admin, the portal banner, the daily token
check (revoked refresh token, idle token), and tokens removed when a user is deactivated.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from calendars import tasks, tokens, views
from calendars.models import TokenStatus, UserToken
from integrations.base import TokenRevoked, UserCredentials
from integrations.sandbox.testing import SandboxHandle, start_sandbox
from reservations import services
from tests.conftest import endpoints_allowed
from tests.support.admin_flows import (
    G_ALICE,
    MS_ALICE,
    control,
    follow_provider,
    make_google,
    make_microsoft,
    sandbox_settings,
    texts,
)


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxHandle]:
    handle = start_sandbox(tmp_path_factory.mktemp("connect-sandbox"), sandbox_settings())
    try:
        with endpoints_allowed(handle.base_url):
            yield handle
    finally:
        handle.stop()


@pytest.fixture(autouse=True)
def _portal_address(settings) -> None:
    settings.PUBLIC_BASE_URL = "http://testserver"


@pytest.fixture
def resumed(monkeypatch) -> list[tuple]:
    """Calls to the push engine's resume hooks."""
    calls: list[tuple] = []
    monkeypatch.setattr(views, "_resume", lambda name, *args: calls.append((name, *args)))
    return calls


@pytest.fixture
def person(client, make_user):
    user = make_user("alice", email=MS_ALICE)
    client.force_login(user)
    return user


def connect(client, sandbox: SandboxHandle, provider) -> object:
    start = client.post(f"/calendars/connect/{provider.pk}/")
    return client.get(follow_provider(sandbox, start, provider.kind))


@pytest.mark.django_db
def test_connect_microsoft_stores_an_encrypted_token_and_resumes_sync(
    sandbox, client, person, resumed
):
    provider = make_microsoft(sandbox)
    page = client.get("/calendars/connect/")
    assert page.status_code == 200
    assert "Not connected." in page.content.decode()
    assert "Connect my calendar" in client.get("/profile/").content.decode()

    back = connect(client, sandbox, provider)
    assert back.status_code == 302 and back["Location"] == "/calendars/connect/"
    assert texts(back) == [
        f"Your Microsoft 365 (Exchange Online) calendar ({MS_ALICE}) is connected."
    ]
    token = UserToken.objects.get(user=person, provider=provider)
    assert token.account_email == MS_ALICE and token.status == TokenStatus.VALID
    assert {"AccessToken", "RefreshToken", "Account"} <= set(token.token)
    assert token.last_refreshed_at and token.access_token_expires_at
    assert resumed == [("resume_user", person.pk, provider.pk)]
    with connection.cursor() as cursor:
        cursor.execute("SELECT token FROM calendars_usertoken WHERE id = %s", [token.pk])
        raw = cursor.fetchone()[0]
    assert raw.startswith("fernet:") and "RefreshToken" not in raw

    page = client.get("/calendars/connect/").content.decode()
    assert f"Connected as <strong>{MS_ALICE}</strong>" in page
    assert "Valid" in page and "Disconnect" in page
    secret = next(iter(token.token["RefreshToken"].values()))["secret"]
    assert secret not in page


@pytest.mark.django_db
def test_disconnect_microsoft_deletes_the_token_and_says_where_to_remove_consent(
    sandbox, client, person, resumed
):
    provider = make_microsoft(sandbox)
    connect(client, sandbox, provider)
    gone = client.post(f"/calendars/connect/{provider.pk}/disconnect/")
    assert gone["Location"] == "/calendars/connect/"
    assert not UserToken.objects.filter(user=person).exists()
    [message] = texts(gone)
    assert "https://myapps.microsoft.com" in message and "Revoke permissions" in message
    again = client.post(f"/calendars/connect/{provider.pk}/disconnect/")
    assert texts(again) == ["That calendar was not connected."]


@pytest.mark.django_db
def test_connect_and_disconnect_google_revokes_the_grant(sandbox, client, make_user, resumed):
    user = make_user("gina", email=G_ALICE)
    client.force_login(user)
    provider = make_google(sandbox)

    back = connect(client, sandbox, provider)
    assert texts(back) == [f"Your Google Workspace calendar ({G_ALICE}) is connected."]
    token = UserToken.objects.get(user=user, provider=provider)
    assert token.token["refresh_token"] and "client_secret" not in token.token
    material = dict(token.token)

    gone = client.post(f"/calendars/connect/{provider.pk}/disconnect/")
    assert texts(gone) == [
        "Disconnected, and Reserva's access to your Google Calendar was revoked."
    ]
    assert not UserToken.objects.filter(user=user).exists()
    with pytest.raises(TokenRevoked):  # the grant is dead at Google too
        tokens._refresh(provider, UserCredentials(account_email=G_ALICE, token=material))


@pytest.mark.django_db
def test_connect_errors_are_messages(sandbox, client, person):
    provider = make_microsoft(sandbox)
    assert client.post("/calendars/connect/999999/")["Location"] == "/calendars/connect/"
    start = client.post(f"/calendars/connect/{provider.pk}/")
    state = client.session["calendars_oauth"]["state"]
    assert start.status_code == 302
    denied = client.get(
        "/calendars/oauth/microsoft/callback/", {"error": "access_denied", "state": state}
    )
    assert denied["Location"] == "/calendars/connect/"
    assert "cancelled or refused" in texts(denied)[0]
    assert not UserToken.objects.exists()
    assert client.get("/calendars/connect/999999/").status_code == 405  # POST only

    client.logout()
    anonymous = client.get("/calendars/oauth/microsoft/callback/?code=x&state=y")
    assert anonymous.status_code == 302 and "/accounts/login/" in anonymous["Location"]
    assert client.get("/calendars/connect/").status_code == 302


@pytest.mark.django_db
@pytest.mark.parametrize("kind", ["microsoft", "google"])
def test_a_callback_that_is_not_the_flows_leaves_it_pending_and_the_real_one_works_once(
    sandbox, client, make_user, resumed, kind
):
    email = MS_ALICE if kind == "microsoft" else G_ALICE
    client.force_login(make_user("alice", email=email))
    provider = make_microsoft(sandbox) if kind == "microsoft" else make_google(sandbox)
    start = client.post(f"/calendars/connect/{provider.pk}/")
    answer = follow_provider(sandbox, start, provider.kind)  # the provider's real answer
    callback = f"/calendars/oauth/{kind}/callback/"

    # A forged answer (an attacker's code, a guessed state), and one on the other kind's path.
    forged = client.get(callback, {"code": "attackers-code", "state": "guessed"})
    assert "state mismatch" in texts(forged)[0]
    other = "google" if kind == "microsoft" else "microsoft"
    stray = client.get(f"/calendars/oauth/{other}/callback/", {"code": "x", "state": "y"})
    assert "does not belong to a connection started in this browser" in texts(stray)[0]
    assert not UserToken.objects.exists()

    back = client.get(answer)  # still completes the connection
    assert texts(back) == [f"Your {provider.get_kind_display()} calendar ({email}) is connected."]
    assert UserToken.objects.filter(provider=provider, account_email=email).count() == 1

    replay = client.get(answer)  # used once: a replay finds nothing to complete
    assert "it was already used" in texts(replay)[0]
    assert resumed == [("resume_user", back.wsgi_request.user.pk, provider.pk)]


# -- banner, admin column --------------------------------------------------------------------


def stored_token(user, provider, **fields) -> UserToken:
    return UserToken.objects.create(
        user=user, provider=provider, account_email=user.email, token={"x": "y"}, **fields
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("status", "words"),
    [
        (TokenStatus.EXPIRED, "has expired. Reservations are not reaching your calendar"),
        (TokenStatus.REVOKED, "was revoked. Reservations are not reaching your calendar"),
        (TokenStatus.EXPIRING, "will stop working after 90 days unused"),
    ],
)
def test_portal_banner_when_a_token_needs_attention(sandbox, client, person, status, words):
    token = stored_token(person, make_microsoft(sandbox), status=status)
    page = client.get("/").content.decode()
    assert words in page
    assert 'href="/calendars/connect/"' in page

    token.status = TokenStatus.VALID
    token.save()
    assert "token-banner" not in client.get("/").content.decode()


@pytest.mark.django_db
def test_admin_lists_days_idle_and_filters_tokens_needing_attention(
    sandbox, client, make_user, person
):
    provider = make_microsoft(sandbox)
    idle = stored_token(person, provider, status=TokenStatus.EXPIRING)
    UserToken.objects.filter(pk=idle.pk).update(last_used_at=timezone.now() - timedelta(days=83))
    other = make_user("bob", email="bob@contoso.test")
    stored_token(other, provider)
    admin = make_user("root", is_staff=True, is_superuser=True)
    client.force_login(admin)

    listing = client.get("/admin/calendars/usertoken/?attention=yes").content.decode()
    assert '<td class="field-days_idle">83</td>' in listing
    assert MS_ALICE in listing and "bob@contoso.test" not in listing
    valid = client.get("/admin/calendars/usertoken/?attention=no").content.decode()
    assert "bob@contoso.test" in valid and MS_ALICE not in valid


# -- the daily check -------------------------------------------------------------------------


@pytest.mark.django_db
def test_daily_check_marks_revoked_idle_and_valid_tokens(sandbox, client, make_user, resumed):
    provider = make_microsoft(sandbox)
    people = {}
    for name in ("alice", "bob"):
        user = make_user(f"{name}-check", email=f"{name}@contoso.test")
        client.force_login(user)
        connect(client, sandbox, provider)
        people[name] = UserToken.objects.get(user=user)
    # Bob has not used his connection for 85 days (Microsoft: 90 days idle ends it).
    UserToken.objects.filter(pk=people["bob"].pk).update(
        last_used_at=timezone.now() - timedelta(days=85)
    )
    before = dict(people["bob"].token)
    # Alice's refresh token is revoked (a password reset, an admin's revoke-all).
    control(sandbox, "POST", "microsoft/refresh-tokens/revoke", json={"user": "alice@contoso.test"})

    counts = tasks.check_user_tokens.delay().get()

    alice, bob = (UserToken.objects.get(pk=people[n].pk) for n in ("alice", "bob"))
    assert alice.status == TokenStatus.REVOKED
    assert bob.status == TokenStatus.EXPIRING
    assert bob.token != before  # the refresh rotated the refresh token; the new one is kept
    assert bob.last_refreshed_at > people["bob"].last_refreshed_at
    assert counts == {"revoked": 1, "expiring": 1}
    # Running it again changes nothing (a dead grant stays dead until reconnected).
    assert tasks.check_user_tokens() == {"revoked": 1, "expiring": 1}

    # Reconnecting brings Alice back to valid.
    client.force_login(alice.user)
    connect(client, sandbox, provider)
    assert UserToken.objects.get(pk=alice.pk).status == TokenStatus.VALID
    assert tokens.check_token(alice.pk) == TokenStatus.VALID


@pytest.mark.django_db
def test_daily_check_marks_a_revoked_google_grant(sandbox, client, make_user, resumed):
    user = make_user("gina-check", email=G_ALICE)
    client.force_login(user)
    provider = make_google(sandbox)
    connect(client, sandbox, provider)
    token = UserToken.objects.get(user=user)
    assert tokens.check_token(token.pk) == TokenStatus.VALID
    control(sandbox, "POST", "google/tokens/revoke", json={"user": G_ALICE})
    assert tokens.check_token(token.pk) == TokenStatus.REVOKED


@pytest.mark.django_db
def test_the_daily_check_is_scheduled(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["check-user-tokens"]
    assert entry["task"] == "calendars.tasks.check_user_tokens"
    assert entry["schedule"] == 24 * 3600


# -- deactivation ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_deactivating_a_user_removes_their_tokens(sandbox, make_user):
    provider = make_microsoft(sandbox)
    leaver, stayer = make_user("leaver"), make_user("stayer")
    stored_token(leaver, provider)
    stored_token(stayer, provider)

    services.deactivate_user(actor=None, user=leaver)

    assert not UserToken.objects.filter(user=leaver).exists()
    assert UserToken.objects.filter(user=stayer).exists()
    stayer.first_name = "Still here"
    stayer.save()  # saving an active user keeps the token
    assert UserToken.objects.filter(user=stayer).exists()
    stayer.is_active = False
    stayer.save()  # any path that deactivates (the user admin, a shell) is covered
    assert not UserToken.objects.exists()


@pytest.mark.django_db
def test_reconnecting_and_reauthorizing_resume_paused_work(
    sandbox, client, person, monkeypatch, django_capture_on_commit_callbacks
):
    """The push engine's resume tasks run after the commit, with the right ids."""
    from calendars.sync import trouble
    from calendars.sync.followups import PushReservations

    calls: list[tuple] = []
    none = PushReservations(())
    monkeypatch.setattr(trouble, "resume_user", lambda *a: calls.append(("user", *a)) or none)
    monkeypatch.setattr(trouble, "resume_binding", lambda *a: calls.append(("binding", *a)) or none)
    provider = make_microsoft(sandbox)
    with django_capture_on_commit_callbacks(execute=True):
        connect(client, sandbox, provider)
    assert calls == [("user", person.pk, provider.pk)]
