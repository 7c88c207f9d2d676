"""Google OAuth in the sandbox, through the real google-auth: service-account key files with
domain-wide delegation, the JWT-bearer checks, the authorization-code flow with PKCE, refresh,
revoke, ID tokens and userinfo."""

from __future__ import annotations

import json
import time

import google.auth.transport.requests as google_requests
import jwt
import pytest
from google.auth import exceptions as auth_exceptions
from google.oauth2 import credentials as user_credentials
from google.oauth2 import id_token as google_id_token
from google.oauth2 import service_account

from tests.support.google_sandbox import (
    ALICE,
    ATLAS,
    CALENDAR,
    CLIENT_ID,
    CLIENT_SECRET,
    REDIRECT,
    SYNC_SA,
    Api,
    authorize,
    error_of,
    exchange,
    key_file,
    pkce_pair,
    sa_credentials,
)

JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"


def test_generated_key_file_works_as_is_with_google_auth(sandbox, http):
    info = json.loads(key_file(sandbox).read_text())
    assert info["type"] == "service_account"
    assert info["client_email"] == SYNC_SA
    assert info["token_uri"] == f"{sandbox.base_url}/google/oauth2/token"

    creds = sa_credentials(sandbox, http, subject=ALICE)

    assert creds.valid and creds.token.startswith("ya29.")
    listing = Api(sandbox, http, creds.token).get("/users/me/calendarList")
    assert listing.status_code == 200
    primary = [c for c in listing.json()["items"] if c.get("primary")]
    assert primary[0]["id"] == ALICE


def test_key_survives_a_restart(sandbox, http):
    first = json.loads(key_file(sandbox).read_text())
    from integrations.sandbox.testing import start_sandbox

    again = start_sandbox(sandbox.sandbox.state_dir)
    try:
        second = json.loads(key_file(again).read_text())
    finally:
        again.stop()
    assert second["private_key_id"] == first["private_key_id"]
    assert second["token_uri"] != first["token_uri"]  # new port, same key


def _refresh_error(sandbox, http, **kwargs) -> str:
    with pytest.raises(auth_exceptions.RefreshError) as caught:
        sa_credentials(sandbox, http, **kwargs)
    return str(caught.value)


def test_resource_calendar_as_subject_is_refused(sandbox, http):
    assert "invalid_grant: Invalid email or User ID" in _refresh_error(sandbox, http, subject=ATLAS)


def test_subject_outside_the_domain_is_refused(sandbox, http):
    assert "invalid_grant: Invalid email or User ID" in _refresh_error(
        sandbox, http, subject="mallory@elsewhere.test"
    )


def test_subject_without_domain_wide_delegation_is_refused(sandbox, http):
    message = _refresh_error(sandbox, http, subject=ALICE, account="no-delegation")
    assert "unauthorized_client" in message


def test_scope_not_delegated_is_refused(sandbox, http):
    message = _refresh_error(
        sandbox, http, subject=ALICE, scopes=["https://www.googleapis.com/auth/calendar.acls"]
    )
    assert "unauthorized_client" in message


def test_unknown_scope_is_refused(sandbox, http):
    message = _refresh_error(
        sandbox, http, subject=None, scopes=["https://www.googleapis.com/auth/not-a-scope"]
    )
    assert "invalid_scope" in message


def test_service_account_without_subject_acts_as_itself(sandbox, http):
    creds = sa_credentials(sandbox, http, subject=None)
    listing = Api(sandbox, http, creds.token).get("/users/me/calendarList").json()
    ids = {c["id"] for c in listing["items"]}
    assert SYNC_SA in ids and ATLAS in ids and ALICE not in ids


def _assertion(sandbox, **overrides) -> str:
    """A signed JWT-bearer assertion; ``iat_in``/``exp_in`` are seconds from now, computed
    when the test runs (not when pytest collects it)."""
    info = json.loads(key_file(sandbox).read_text())
    now = int(time.time())
    for name in ("iat", "exp"):
        if f"{name}_in" in overrides:
            overrides[name] = now + overrides.pop(f"{name}_in")
    claims = {
        "iss": info["client_email"],
        "sub": ALICE,
        "aud": "https://oauth2.googleapis.com/token",
        "scope": CALENDAR,
        "iat": now,
        "exp": now + 3600,
    } | overrides
    key = overrides.pop("_key", info["private_key"])
    claims.pop("_key", None)
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": info["private_key_id"]})


def _jwt_grant(sandbox, http, assertion: str):
    return http.post(
        f"{sandbox.base_url}/google/oauth2/token",
        data={"grant_type": JWT_GRANT, "assertion": assertion},
    )


@pytest.mark.parametrize(
    ("overrides", "error", "text"),
    [
        ({"exp_in": 3700}, "invalid_grant", "short-lived token (60 minutes)"),
        ({"iat_in": -7300, "exp_in": -3700}, "invalid_grant", "iat"),
        ({"aud": "https://example.test/token"}, "invalid_grant", "audience"),
        ({"iss": "ghost@reserva-sandbox.iam.gserviceaccount.com"}, "invalid_grant", "not found"),
        ({"scope": ""}, "invalid_scope", "Invalid OAuth scope"),
    ],
)
def test_jwt_bearer_claims_are_checked(sandbox, http, overrides, error, text):
    answer = _jwt_grant(sandbox, http, _assertion(sandbox, **overrides))
    assert answer.status_code == 400
    assert answer.json()["error"] == error
    assert text in answer.json()["error_description"]


def test_jwt_signed_with_another_key_is_refused(sandbox, http):
    other = json.loads(key_file(sandbox, "no-delegation").read_text())["private_key"]
    answer = _jwt_grant(sandbox, http, _assertion(sandbox, _key=other))
    assert answer.status_code == 400
    assert answer.json() == {
        "error": "invalid_grant",
        "error_description": "Invalid JWT Signature.",
    }


def test_jwt_grant_gives_no_refresh_token(sandbox, http):
    answer = _jwt_grant(sandbox, http, _assertion(sandbox))
    assert answer.status_code == 200
    body = answer.json()
    assert body["token_type"] == "Bearer" and 0 < body["expires_in"] <= 3600
    assert "refresh_token" not in body


# -- authorization code with PKCE ----------------------------------------------------------------


def test_code_flow_with_pkce_then_google_auth_refresh(sandbox, http):
    verifier, challenge = pkce_pair()
    answer = authorize(
        http, sandbox, access_type="offline", code_challenge=challenge,
        code_challenge_method="S256", nonce="n-0S6",
    )  # fmt: skip
    assert answer["state"] == "xyz"
    tokens = exchange(http, sandbox, answer["code"], code_verifier=verifier).json()
    assert tokens["refresh_token"] and tokens["access_token"]

    # The ID token verifies against the sandbox's published keys, with the nonce.
    certs = f"{sandbox.base_url}/google/oauth2/v3/certs"
    claims = google_id_token.verify_token(
        tokens["id_token"], google_requests.Request(http), audience=CLIENT_ID, certs_url=certs
    )
    assert claims["email"] == ALICE and claims["nonce"] == "n-0S6"

    creds = user_credentials.Credentials(
        token=None,
        refresh_token=tokens["refresh_token"],
        token_uri=f"{sandbox.base_url}/google/oauth2/token",
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
    )
    creds.refresh(google_requests.Request(http))
    assert creds.valid
    assert creds.refresh_token == tokens["refresh_token"]  # refresh sent none; google-auth kept it
    assert Api(sandbox, http, creds.token).get("/calendars/primary/events").status_code == 200

    info = http.get(
        f"{sandbox.base_url}/google/v1/userinfo", headers={"Authorization": f"Bearer {creds.token}"}
    ).json()
    assert info["email"] == ALICE


def test_refresh_response_carries_no_refresh_token(sandbox, http):
    code = authorize(http, sandbox, access_type="offline")["code"]
    refresh = exchange(http, sandbox, code).json()["refresh_token"]
    answer = http.post(
        f"{sandbox.base_url}/google/oauth2/token",
        data={"grant_type": "refresh_token", "refresh_token": refresh,
              "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET},
    ).json()  # fmt: skip
    assert answer["access_token"] and "refresh_token" not in answer


def test_refresh_token_only_on_first_consent_or_prompt_consent(sandbox, http):
    first = exchange(http, sandbox, authorize(http, sandbox, access_type="offline")["code"])
    assert "refresh_token" in first.json()
    second = exchange(http, sandbox, authorize(http, sandbox, access_type="offline")["code"])
    assert "refresh_token" not in second.json()
    forced = authorize(http, sandbox, access_type="offline", prompt="consent")
    assert "refresh_token" in exchange(http, sandbox, forced["code"]).json()


def test_online_access_gets_no_refresh_token(sandbox, http):
    tokens = exchange(http, sandbox, authorize(http, sandbox)["code"]).json()
    assert "refresh_token" not in tokens and tokens["access_token"]


@pytest.mark.parametrize(
    ("extra", "error", "description"),
    [
        ({"code_verifier": "w" * 50}, "invalid_grant", "Invalid code verifier."),
        ({}, "invalid_grant", "Missing code verifier."),
        ({"redirect_uri": "http://localhost:9999/cb"}, "redirect_uri_mismatch", "Bad Request"),
    ],
)
def test_code_exchange_errors(sandbox, http, extra, error, description):
    _, challenge = pkce_pair()
    code = authorize(http, sandbox, code_challenge=challenge, code_challenge_method="S256")["code"]
    answer = exchange(http, sandbox, code, **extra)
    assert answer.status_code == 400
    assert answer.json() == {"error": error, "error_description": description}


def test_code_is_single_use(sandbox, http):
    code = authorize(http, sandbox)["code"]
    assert exchange(http, sandbox, code).status_code == 200
    again = exchange(http, sandbox, code)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"


def test_wrong_client_secret_and_unknown_client(sandbox, http):
    code = authorize(http, sandbox)["code"]
    wrong = exchange(http, sandbox, code, client_secret="nope")
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"
    unknown = exchange(http, sandbox, code, client_id="0-unknown.apps.googleusercontent.com")
    assert unknown.status_code == 401
    assert unknown.json()["error_description"] == "The OAuth client was not found."


def test_authorize_refuses_unregistered_redirect_uri_on_a_page(sandbox, http):
    answer = http.get(
        f"{sandbox.base_url}/google/o/oauth2/v2/auth",
        params={"client_id": CLIENT_ID, "redirect_uri": "https://evil.test/cb",
                "response_type": "code", "scope": CALENDAR},
        allow_redirects=False,
    )  # fmt: skip
    assert answer.status_code == 400
    assert "redirect_uri_mismatch" in answer.text


def test_authorize_without_hint_shows_the_account_page(sandbox, http):
    answer = http.get(
        f"{sandbox.base_url}/google/o/oauth2/v2/auth",
        params={"client_id": CLIENT_ID, "redirect_uri": REDIRECT, "response_type": "code",
                "scope": CALENDAR, "state": "s1"},
        allow_redirects=False,
    )  # fmt: skip
    assert answer.status_code == 200 and ALICE in answer.text
    chosen = http.post(
        f"{sandbox.base_url}/google/o/oauth2/v2/auth",
        data={"client_id": CLIENT_ID, "redirect_uri": REDIRECT, "response_type": "code",
              "scope": CALENDAR, "state": "s1", "user": ALICE},
        allow_redirects=False,
    )  # fmt: skip
    assert chosen.status_code == 302 and "code=" in chosen.headers["Location"]


def test_revoke_kills_refresh_and_access_tokens(sandbox, http):
    tokens = exchange(http, sandbox, authorize(http, sandbox, access_type="offline")["code"]).json()
    revoked = http.post(
        f"{sandbox.base_url}/google/oauth2/revoke", data={"token": tokens["access_token"]}
    )
    assert revoked.status_code == 200

    api = Api(sandbox, http, tokens["access_token"])
    assert error_of(api.get("/calendars/primary/events")) == (401, "authError")
    creds = user_credentials.Credentials(
        None, refresh_token=tokens["refresh_token"], client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET, token_uri=f"{sandbox.base_url}/google/oauth2/token",
    )  # fmt: skip
    with pytest.raises(auth_exceptions.RefreshError, match="invalid_grant"):
        creds.refresh(google_requests.Request(http))
    again = http.post(
        f"{sandbox.base_url}/google/oauth2/revoke", data={"token": tokens["refresh_token"]}
    )
    assert again.status_code == 400 and again.json()["error"] == "invalid_token"


def test_token_endpoint_unknown_grant_type(sandbox, http):
    answer = http.post(f"{sandbox.base_url}/google/oauth2/token", data={"grant_type": "password"})
    assert answer.status_code == 400 and answer.json()["error"] == "unsupported_grant_type"


def test_openid_configuration_points_at_the_sandbox(sandbox, http):
    config = http.get(f"{sandbox.base_url}/google/.well-known/openid-configuration").json()
    assert config["token_endpoint"] == f"{sandbox.base_url}/google/oauth2/token"
    assert config["jwks_uri"].startswith(sandbox.base_url)


def test_delegated_token_comes_from_subject_credentials(sandbox, http):
    # google-auth's with_subject() swaps the user without a new key file.
    creds = service_account.Credentials.from_service_account_file(
        str(key_file(sandbox)), scopes=[CALENDAR]
    ).with_subject("bob@northwind.test")
    creds.refresh(google_requests.Request(http))
    listing = Api(sandbox, http, creds.token).get("/users/me/calendarList").json()
    assert [c["id"] for c in listing["items"] if c.get("primary")] == ["bob@northwind.test"]


def test_refresh_token_unused_for_six_months_expires(sandbox, http):
    tokens = exchange(http, sandbox, authorize(http, sandbox, access_type="offline")["code"]).json()
    form = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"],
            "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}  # fmt: skip
    token_url = f"{sandbox.base_url}/google/oauth2/token"
    sandbox.sandbox.advance_clock(150 * 86400)
    assert http.post(token_url, data=form).status_code == 200  # used: the idle time restarts
    sandbox.sandbox.advance_clock(184 * 86400)
    answer = http.post(token_url, data=form)
    assert answer.status_code == 400
    assert answer.json() == {
        "error": "invalid_grant",
        "error_description": "Token has been expired or revoked.",
    }
