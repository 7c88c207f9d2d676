"""Microsoft identity platform through the real msal: both flows and every documented refusal."""

from __future__ import annotations

import base64
import json
from urllib.parse import parse_qs, urlsplit

import jwt
import msal
import pytest

from integrations.sandbox.config import DEMO_CLIENT_ID, DEMO_TENANT_ID
from tests.support.ms_sandbox import (
    ALICE,
    GRAPH_DEFAULT,
    REDIRECT,
    confidential_app,
    session_for,
    sign_in,
)


def _claims(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


def test_discovery_document_and_keys(sandbox):
    http = session_for(sandbox)
    doc = http.get(f"{sandbox.base_url}/contoso.test/v2.0/.well-known/openid-configuration").json()
    assert doc["token_endpoint"] == f"{sandbox.base_url}/{DEMO_TENANT_ID}/oauth2/v2.0/token"
    assert doc["issuer"].endswith(f"/{DEMO_TENANT_ID}/v2.0")
    keys = http.get(doc["jwks_uri"]).json()["keys"]
    assert keys[0]["kty"] == "RSA" and keys[0]["kid"]


def test_client_credentials_token_is_an_app_token_with_roles(sandbox):
    result = confidential_app(sandbox).acquire_token_for_client(GRAPH_DEFAULT)
    claims = _claims(result["access_token"])
    assert result["token_type"] == "Bearer"
    assert claims["roles"] == ["Calendars.ReadWrite", "Place.Read.All"]
    assert claims["aud"] == "https://graph.microsoft.com" and claims["tid"] == DEMO_TENANT_ID


def test_wrong_secret_is_invalid_client_7000215(sandbox):
    result = confidential_app(sandbox, secret="wrong").acquire_token_for_client(GRAPH_DEFAULT)
    assert result["error"] == "invalid_client"
    assert result["error_codes"] == [7000215]
    assert "wrong" not in result["error_description"]


def test_unknown_app_is_700016(sandbox):
    app = confidential_app(sandbox, client_id="00000000-0000-0000-0000-00000000dead")
    result = app.acquire_token_for_client(GRAPH_DEFAULT)
    assert result["error"] == "unauthorized_client" and result["error_codes"] == [700016]


def test_unknown_tenant_is_90002(sandbox):
    with pytest.raises(ValueError, match=r"90002|invalid_tenant|Unable to get authority"):
        confidential_app(sandbox, tenant="fabrikam.test")


def test_client_credentials_needs_dot_default_scope(sandbox):
    result = confidential_app(sandbox).acquire_token_for_client(
        ["https://graph.microsoft.com/Calendars.ReadWrite"]
    )
    assert result["error"] == "invalid_scope" and result["error_codes"] == [1002012]


def test_authorization_code_flow_with_pkce_nonce_and_client_info(sandbox):
    app, result = sign_in(sandbox)
    assert "access_token" in result, result
    assert result["id_token_claims"]["preferred_username"] == ALICE
    claims = _claims(result["access_token"])
    assert "Calendars.ReadWrite" in claims["scp"].split() and claims["upn"] == ALICE
    (account,) = app.get_accounts()
    assert account["username"] == ALICE
    assert account["home_account_id"].endswith(f".{DEMO_TENANT_ID}")


def test_state_is_returned_and_checked_by_msal(sandbox):
    app = confidential_app(sandbox)
    flow = app.initiate_auth_code_flow(
        ["Calendars.ReadWrite"], redirect_uri=REDIRECT, login_hint=ALICE
    )
    location = session_for(sandbox).get(flow["auth_uri"], allow_redirects=False).headers["Location"]
    params = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
    assert params["state"] == flow["state"]
    params["state"] = "forged"
    with pytest.raises(ValueError, match="state"):
        app.acquire_token_by_auth_code_flow(flow, params)


def test_unregistered_redirect_uri_is_refused_at_authorize(sandbox):
    app = confidential_app(sandbox)
    flow = app.initiate_auth_code_flow(
        ["Calendars.ReadWrite"], redirect_uri="https://evil.test/cb", login_hint=ALICE
    )
    response = session_for(sandbox).get(flow["auth_uri"], allow_redirects=False)
    assert response.status_code == 400 and "AADSTS50011" in response.text
    assert "Location" not in response.headers


def _code_and_flow(sandbox):
    app = confidential_app(sandbox)
    flow = app.initiate_auth_code_flow(
        ["Calendars.ReadWrite"], redirect_uri=REDIRECT, login_hint=ALICE
    )
    location = session_for(sandbox).get(flow["auth_uri"], allow_redirects=False).headers["Location"]
    return app, flow, {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def _post_token(sandbox, **form):
    form = {
        "client_id": DEMO_CLIENT_ID,
        "client_secret": "sandbox-demo-secret~not-a-real-one",
    } | form
    url = f"{sandbox.base_url}/{DEMO_TENANT_ID}/oauth2/v2.0/token"
    return session_for(sandbox).post(url, data=form)


def test_pkce_mismatch_is_501481(sandbox):
    _app, _flow, params = _code_and_flow(sandbox)
    response = _post_token(
        sandbox,
        grant_type="authorization_code",
        code=params["code"],
        redirect_uri=REDIRECT,
        code_verifier="not-the-verifier",
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"
    assert response.json()["error_codes"] == [501481]


def test_token_redirect_uri_must_match_the_authorize_one(sandbox):
    _app, flow, params = _code_and_flow(sandbox)
    response = _post_token(
        sandbox,
        grant_type="authorization_code",
        code=params["code"],
        redirect_uri="http://127.0.0.1:8000/calendars/oauth/microsoft/callback/",
        code_verifier=flow["code_verifier"],
    )
    assert response.json()["error_codes"] == [500112]


def test_code_is_single_use_54005(sandbox):
    app, flow, params = _code_and_flow(sandbox)
    first = app.acquire_token_by_auth_code_flow(dict(flow), params)
    assert "access_token" in first
    again = _post_token(
        sandbox,
        grant_type="authorization_code",
        code=params["code"],
        redirect_uri=REDIRECT,
        code_verifier=flow["code_verifier"],
    )
    assert again.json()["error"] == "invalid_grant" and again.json()["error_codes"] == [54005]


def test_id_token_is_rs256_signed_with_the_published_key_and_nonce(sandbox):
    app, flow, params = _code_and_flow(sandbox)
    result = app.acquire_token_by_auth_code_flow(flow, params)
    http = session_for(sandbox)
    jwks = http.get(f"{sandbox.base_url}/{DEMO_TENANT_ID}/discovery/v2.0/keys").json()
    key = jwt.PyJWK(jwks["keys"][0]).key
    claims = jwt.decode(result["id_token"], key, algorithms=["RS256"], audience=DEMO_CLIENT_ID)
    assert claims["nonce"] and claims["tid"] == DEMO_TENANT_ID
    info = json.loads(base64.urlsafe_b64decode(result["client_info"] + "=="))
    assert info["utid"] == DEMO_TENANT_ID


def test_silent_refresh_rotates_the_refresh_token(sandbox):
    app, result = sign_in(sandbox)
    first_rt = result["refresh_token"]
    (account,) = app.get_accounts()
    # msal judges expiry on the wall clock, so ask it to refresh instead of moving the clock.
    refreshed = app.acquire_token_silent_with_error(
        ["Calendars.ReadWrite"], account, force_refresh=True
    )
    assert "access_token" in refreshed, refreshed
    (cached,) = app.token_cache.search(msal.TokenCache.CredentialType.REFRESH_TOKEN)
    assert cached["secret"] != first_rt
    reused = _post_token(sandbox, grant_type="refresh_token", refresh_token=first_rt)
    assert reused.json()["error"] == "invalid_grant"
    assert reused.json()["error_codes"] == [70008]


def test_refresh_token_idle_for_90_days_is_700082(sandbox):
    app, _result = sign_in(sandbox)
    (account,) = app.get_accounts()
    sandbox.sandbox.advance_clock(91 * 86400)
    result = app.acquire_token_silent_with_error(
        ["Calendars.ReadWrite"], account, force_refresh=True
    )
    assert result["error"] == "invalid_grant" and 700082 in result["error_codes"]


def test_revoked_refresh_token_is_50173(sandbox):
    app, _result = sign_in(sandbox)
    (account,) = app.get_accounts()
    http = session_for(sandbox)
    revoked = http.post(
        f"{sandbox.base_url}/_sandbox/api/microsoft/refresh-tokens/revoke", json={"user": ALICE}
    ).json()
    assert revoked == {"revoked": 1}
    result = app.acquire_token_silent_with_error(
        ["Calendars.ReadWrite"], account, force_refresh=True
    )
    assert result["error"] == "invalid_grant" and 50173 in result["error_codes"]


def test_sign_in_page_when_no_login_hint(sandbox):
    app = confidential_app(sandbox)
    flow = app.initiate_auth_code_flow(
        ["Calendars.ReadWrite"], redirect_uri=REDIRECT, response_mode="form_post"
    )
    http = session_for(sandbox)
    page = http.get(flow["auth_uri"], allow_redirects=False)
    assert page.status_code == 200 and ALICE in page.text
    form = {k: v[0] for k, v in parse_qs(urlsplit(flow["auth_uri"]).query).items()}
    posted = http.post(flow["auth_uri"].split("?")[0], data=form | {"login_hint": ALICE})
    assert 'name="code"' in posted.text and f'value="{flow["state"]}"' in posted.text
