"""A person's Google calendar: the OAuth web-server flow through the sandbox's authorize page
and token endpoint, then GoogleClient acting as that person, refresh and revoke.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from integrations.base import (
    AuthenticationFailed,
    PermanentError,
    TokenGrant,
    TokenRevoked,
    UserCredentials,
)
from integrations.google import oauth
from integrations.sandbox.testing import SandboxHandle
from tests.support.google_client import (
    ALICE,
    ALICE_CAL,
    ATLAS,
    BOB,
    CALENDAR,
    CLIENT_ID,
    REDIRECT,
    booking,
    control,
    control_session,
    make_client,
    make_config,
    running_sandbox,
    stored_events,
)


@pytest.fixture
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxHandle]:
    yield from running_sandbox(tmp_path_factory)


def _callback(answer: requests.Response) -> dict[str, str]:
    assert answer.status_code == 302, answer.text
    location = urlsplit(answer.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT
    return {k: v[0] for k, v in parse_qs(location.query).items()}


def sign_in(handle: SandboxHandle, login_hint: str | None = ALICE) -> TokenGrant:
    """The browser's part with a login hint (the sandbox signs a known user in at once)."""
    config = make_config(handle)
    url, verifier = oauth.begin_authorization(config, REDIRECT, [CALENDAR], "st-1", login_hint)
    params = _callback(control_session(handle).get(url, allow_redirects=False, timeout=10))
    assert params["state"] == "st-1"
    return oauth.complete_authorization(config, REDIRECT, params["code"], verifier)


class _Form(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hidden: dict[str, str] = {}
        self.accounts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "input" and values.get("type") == "hidden":
            self.hidden[str(values["name"])] = str(values.get("value") or "")
        if tag == "button" and values.get("name") == "user":
            self.accounts.append(str(values["value"]))


def test_authorization_url_asks_for_offline_access_with_pkce(sandbox):
    url, verifier = oauth.begin_authorization(
        make_config(sandbox), REDIRECT, [CALENDAR], "st-1", ALICE
    )

    query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    assert url.startswith(f"{sandbox.base_url}/google/o/oauth2/v2/auth?")
    assert query["client_id"] == CLIENT_ID and query["redirect_uri"] == REDIRECT
    assert query["response_type"] == "code" and query["state"] == "st-1"
    assert query["access_type"] == "offline" and query["prompt"] == "consent"
    assert query["include_granted_scopes"] == "true"
    assert query["scope"].split() == ["openid", "email", CALENDAR]
    assert query["code_challenge_method"] == "S256" and query["code_challenge"] != verifier
    assert query["login_hint"] == ALICE
    assert 43 <= len(verifier) <= 128
    assert "client_secret" not in query


def test_sign_in_then_act_as_the_person(sandbox):
    grant = sign_in(sandbox)

    assert grant.account_email == ALICE
    assert grant.token["refresh_token"] and grant.token["token"]
    assert grant.token["client_id"] == CLIENT_ID
    assert "client_secret" not in grant.token
    assert CALENDAR in grant.scopes
    assert grant.expires_at > datetime.now(UTC)
    person = UserCredentials(ALICE, dict(grant.token))
    client = make_client(sandbox)

    event = client.create_event(ALICE_CAL, booking(41, resources=(ATLAS,)), as_user=person)
    sandbox.sandbox.wait_idle()

    assert event.organizer_email == ALICE and event.reservation_id == 41
    assert client.get_event(ALICE_CAL, event.id, as_user=person).resource_response == "accepted"
    assert client.find_by_reservation(ALICE_CAL, 41, as_user=person).id == event.id
    calendars = {c.id: c for c in client.list_calendars(ALICE_CAL, as_user=person)}
    assert calendars[ALICE].is_default
    assert not person.changed  # the access token was still good


def test_choosing_an_account_on_the_authorize_page(sandbox):
    config = make_config(sandbox)
    url, verifier = oauth.begin_authorization(config, REDIRECT, [CALENDAR], "st-2")
    browser = control_session(sandbox)
    page = browser.get(url, timeout=10)
    form = _Form()
    form.feed(page.text)
    assert BOB in form.accounts

    answer = browser.post(
        url.split("?")[0], data=form.hidden | {"user": BOB}, allow_redirects=False, timeout=10
    )

    params = _callback(answer)
    grant = oauth.complete_authorization(config, REDIRECT, params["code"], verifier)
    assert grant.account_email == BOB and params["state"] == "st-2"


def test_an_expired_access_token_is_refreshed_and_handed_back(sandbox):
    grant = sign_in(sandbox)
    stale = dict(grant.token, expiry=(datetime.now(UTC) - timedelta(minutes=5)).isoformat())
    person = UserCredentials(ALICE, stale)

    make_client(sandbox).list_calendars(ALICE_CAL, as_user=person)

    assert person.changed
    assert person.token["token"] != grant.token["token"]
    assert person.token["refresh_token"] == grant.token["refresh_token"]
    assert datetime.fromisoformat(person.token["expiry"]) > datetime.now(UTC)
    assert "client_secret" not in person.token


def test_a_401_forces_one_refresh(sandbox):
    grant = sign_in(sandbox)
    person = UserCredentials(ALICE, dict(grant.token))
    # The sandbox's clock runs ahead: Google says the token expired, google-auth does not know.
    sandbox.sandbox.advance_clock(2 * 3600)

    make_client(sandbox).create_event(ALICE_CAL, booking(41), as_user=person)

    assert person.changed and person.token["token"] != grant.token["token"]
    assert len(stored_events(sandbox, ALICE)) == 1


def test_revoke_ends_the_grant_and_is_safe_to_repeat(sandbox):
    grant = sign_in(sandbox)
    config = make_config(sandbox)

    oauth.revoke(config, grant.token)
    oauth.revoke(config, grant.token)  # revoked already: nothing to do

    person = UserCredentials(ALICE, dict(grant.token))
    with pytest.raises(TokenRevoked) as caught:
        make_client(sandbox).list_calendars(ALICE_CAL, as_user=person)
    assert "Connect the calendar again" in caught.value.message
    assert grant.token["refresh_token"] not in str(caught.value)


def test_access_revoked_in_the_google_account_is_token_revoked(sandbox):
    grant = sign_in(sandbox)
    control(sandbox, "POST", "/tokens/revoke", json={"user": ALICE})

    with pytest.raises(TokenRevoked):
        make_client(sandbox).list_calendars(
            ALICE_CAL, as_user=UserCredentials(ALICE, dict(grant.token))
        )


def test_refresh_token_unused_for_six_months_is_token_revoked(sandbox):
    grant = sign_in(sandbox)
    sandbox.sandbox.advance_clock(184 * 24 * 3600)
    stale = dict(grant.token, expiry=(datetime.now(UTC) - timedelta(minutes=5)).isoformat())

    with pytest.raises(TokenRevoked):
        make_client(sandbox).list_calendars(ALICE_CAL, as_user=UserCredentials(ALICE, stale))


def test_no_refresh_token_stored_is_token_revoked(sandbox):
    grant = sign_in(sandbox)
    token = {k: v for k, v in grant.token.items() if k != "refresh_token"}

    with pytest.raises(TokenRevoked):
        make_client(sandbox).list_calendars(ALICE_CAL, as_user=UserCredentials(ALICE, token))


def test_wrong_verifier_and_wrong_secret_are_refused(sandbox):
    config = make_config(sandbox)
    browser = control_session(sandbox)
    url, verifier = oauth.begin_authorization(config, REDIRECT, [CALENDAR], "s", ALICE)
    code = _callback(browser.get(url, allow_redirects=False, timeout=10))["code"]

    with pytest.raises(PermanentError) as wrong_verifier:
        oauth.complete_authorization(config, REDIRECT, code, "x" * 64)
    url, verifier = oauth.begin_authorization(config, REDIRECT, [CALENDAR], "s", ALICE)
    code = _callback(browser.get(url, allow_redirects=False, timeout=10))["code"]
    bad_secret = make_config(sandbox, client_secret="GOCSPX-wrong")
    with pytest.raises(AuthenticationFailed) as wrong_secret:
        oauth.complete_authorization(bad_secret, REDIRECT, code, verifier)

    assert wrong_verifier.value.code == "invalid_grant"
    assert "Start the connection again" in wrong_verifier.value.message
    assert wrong_secret.value.code == "invalid_client"
    assert "GOCSPX" not in str(wrong_secret.value)


def test_wrong_client_secret_on_refresh_is_authentication_failed(sandbox):
    grant = sign_in(sandbox)
    stale = dict(grant.token, expiry=(datetime.now(UTC) - timedelta(minutes=5)).isoformat())
    client = make_client(sandbox, client_secret="GOCSPX-wrong")

    with pytest.raises(AuthenticationFailed):
        client.list_calendars(ALICE_CAL, as_user=UserCredentials(ALICE, stale))
