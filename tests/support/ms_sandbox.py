"""Helpers for the Microsoft sandbox tests: real msal apps and a Graph session.

msal gets ``instance_discovery=False`` and an ``http_client`` that is a ``requests.Session``
trusting the sandbox CA (``trust_env=False`` so REQUESTS_CA_BUNDLE cannot override it); a
fresh app per test avoids msal's HTTP throttling cache.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import msal
import requests

from integrations.sandbox.config import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_TENANT_ID
from integrations.sandbox.testing import SandboxHandle

GRAPH_DEFAULT = ["https://graph.microsoft.com/.default"]
ROOM = "atlas@contoso.test"
ROOM2 = "borealis@contoso.test"
ALICE = "alice@contoso.test"
BOB = "bob@contoso.test"
REDIRECT = "http://localhost:8000/calendars/oauth/microsoft/callback/"
EXT_ID = "String {66f5a359-4659-4830-9070-00047ec6ac6e} Name ReservationId"


def session_for(handle: SandboxHandle) -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    session.verify = str(handle.ca_file)
    return session


def confidential_app(
    handle: SandboxHandle,
    secret: str = DEMO_CLIENT_SECRET,
    client_id: str = DEMO_CLIENT_ID,
    tenant: str = DEMO_TENANT_ID,
) -> msal.ConfidentialClientApplication:
    return msal.ConfidentialClientApplication(
        client_id,
        client_credential=secret,
        authority=f"{handle.base_url}/{tenant}",
        instance_discovery=False,
        http_client=session_for(handle),
    )


def app_token(handle: SandboxHandle) -> str:
    result = confidential_app(handle).acquire_token_for_client(GRAPH_DEFAULT)
    assert "access_token" in result, result
    return result["access_token"]


class Graph:
    """A requests session with a bearer token, addressing the sandbox's /v1.0."""

    def __init__(self, handle: SandboxHandle, token: str) -> None:
        self.base = f"{handle.base_url}/v1.0"
        self.http = session_for(handle)
        self.http.headers["Authorization"] = f"Bearer {token}"

    def __call__(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        url = path if path.startswith("https://") else f"{self.base}{path}"
        return self.http.request(method, url, timeout=10, **kwargs)


def event_body(
    subject: str = "Stand-up",
    start: str = "2030-01-07T09:00:00",
    end: str = "2030-01-07T09:30:00",
    **extra: Any,
) -> dict[str, Any]:
    body = {
        "subject": subject,
        "start": {"dateTime": start, "timeZone": "UTC"},
        "end": {"dateTime": end, "timeZone": "UTC"},
    }
    body.update(extra)
    return body


def sign_in(
    handle: SandboxHandle, user: str = ALICE, scopes: tuple[str, ...] = ("Calendars.ReadWrite",)
) -> tuple[msal.ConfidentialClientApplication, dict[str, Any]]:
    """The authorization-code flow through msal, with auto-consent via login_hint."""
    app = confidential_app(handle)
    flow = app.initiate_auth_code_flow(
        list(scopes), redirect_uri=REDIRECT, login_hint=user, response_mode="query"
    )
    response = session_for(handle).get(flow["auth_uri"], allow_redirects=False, timeout=10)
    assert response.status_code == 302, response.text
    params = {k: v[0] for k, v in parse_qs(urlsplit(response.headers["Location"]).query).items()}
    result = app.acquire_token_by_auth_code_flow(flow, params)
    return app, result
