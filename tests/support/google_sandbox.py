"""Helpers for the Google sandbox tests: real google-auth credentials, a small Calendar v3
client on requests, the OAuth code flow, and a local receiver for push notifications.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import google.auth.transport.requests as google_requests
import pytest
import requests
from google.oauth2 import service_account

from integrations.sandbox.testing import SandboxHandle

DOMAIN = "northwind.test"
ALICE = f"alice@{DOMAIN}"
BOB = f"bob@{DOMAIN}"
BLOCKER = f"reserva-blocker@{DOMAIN}"
ATLAS = "c_188a1f0e7d2b4c31@resource.calendar.google.com"
BOREALIS = "c_188b2e1f8e3c5d42@resource.calendar.google.com"
COSMOS = "c_188c3f2a9f4d6e53@resource.calendar.google.com"
SYNC_SA = "reserva-sync@reserva-sandbox.iam.gserviceaccount.com"
CALENDAR = "https://www.googleapis.com/auth/calendar"
READONLY = "https://www.googleapis.com/auth/calendar.readonly"
CLIENT_ID = "284719300001-reservasandbox.apps.googleusercontent.com"
CLIENT_SECRET = "GOCSPX-sandbox-demo-not-a-real-secret"
REDIRECT = "http://localhost:8000/calendars/oauth/google/callback/"


def key_file(handle: SandboxHandle, name: str = "reserva-sync") -> Path:
    return Path(handle.sandbox.state_dir) / "google" / f"{name}.json"


def sa_credentials(
    handle: SandboxHandle,
    http: requests.Session,
    subject: str | None = ALICE,
    scopes: list[str] | None = None,
    account: str = "reserva-sync",
) -> service_account.Credentials:
    """Service-account credentials from the generated key file, refreshed through google-auth."""
    creds = service_account.Credentials.from_service_account_file(
        str(key_file(handle, account)), scopes=scopes or [CALENDAR], subject=subject
    )
    creds.refresh(google_requests.Request(http))
    return creds


class Api:
    """A thin Calendar v3 client: paths relative to ``/calendar/v3``, JSON in and out."""

    def __init__(self, handle: SandboxHandle, http: requests.Session, token: str) -> None:
        self.handle, self.http, self.token = handle, http, token
        self.root = f"{handle.base_url}/google/calendar/v3"

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.token}", **kwargs.pop("headers", {})}
        return self.http.request(method, self.root + path, headers=headers, timeout=10, **kwargs)

    def get(self, path: str, **kw: Any) -> requests.Response:
        return self.call("GET", path, **kw)

    def post(self, path: str, **kw: Any) -> requests.Response:
        return self.call("POST", path, **kw)

    def put(self, path: str, **kw: Any) -> requests.Response:
        return self.call("PUT", path, **kw)

    def patch(self, path: str, **kw: Any) -> requests.Response:
        return self.call("PATCH", path, **kw)

    def delete(self, path: str, **kw: Any) -> requests.Response:
        return self.call("DELETE", path, **kw)

    def insert(self, calendar: str = "primary", **event: Any) -> requests.Response:
        return self.post(f"/calendars/{calendar}/events", json=make_event(**event))


def make_event(
    summary: str = "Meeting",
    start: str | dict[str, str] = "2030-01-07T09:00:00Z",
    end: str | dict[str, str] = "2030-01-07T10:00:00Z",
    **extra: Any,
) -> dict[str, Any]:
    """An Event body; ``start``/``end`` are a UTC dateTime string or an EventDateTime."""
    start = start if isinstance(start, dict) else {"dateTime": start}
    end = end if isinstance(end, dict) else {"dateTime": end}
    return {"summary": summary, "start": start, "end": end, **extra}


def error_of(response: requests.Response) -> tuple[int, str]:
    """(HTTP status, Google reason) of a Calendar v3 error, checking the documented shape."""
    body = response.json()["error"]
    assert set(body) >= {"code", "message", "errors", "status"}
    assert body["code"] == response.status_code
    assert set(body["errors"][0]) >= {"domain", "reason", "message"}
    return response.status_code, body["errors"][0]["reason"]


def control(http: requests.Session, handle: SandboxHandle, method: str, path: str, **kw: Any):
    return http.request(method, f"{handle.base_url}/_sandbox/api/google{path}", timeout=10, **kw)


@pytest.fixture(name="alice")
def alice_fixture(sandbox: SandboxHandle, http: requests.Session) -> Api:
    """Alice's calendar through the service account with domain-wide delegation."""
    return Api(sandbox, http, sa_credentials(sandbox, http).token)


# -- OAuth code flow -----------------------------------------------------------------------------


def pkce_pair(verifier: str = "v" * 50) -> tuple[str, str]:
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).decode().rstrip("=")


def authorize(http: requests.Session, handle: SandboxHandle, **params: str) -> dict[str, str]:
    """Run the authorize endpoint and return the redirect's query parameters."""
    query = {
        "client_id": CLIENT_ID,
        "redirect_uri": REDIRECT,
        "response_type": "code",
        "scope": f"openid email {CALENDAR}",
        "login_hint": ALICE,
        "state": "xyz",
    } | params
    answer = http.get(
        f"{handle.base_url}/google/o/oauth2/v2/auth", params=query, allow_redirects=False
    )
    assert answer.status_code == 302, answer.text
    location = urlsplit(answer.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT
    return {k: v[0] for k, v in parse_qs(location.query).items()}


def exchange(http: requests.Session, handle: SandboxHandle, code: str, **extra: str):
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "redirect_uri": REDIRECT,
    } | extra
    return http.post(f"{handle.base_url}/google/oauth2/token", data=form, timeout=10)


# -- push receiver ---------------------------------------------------------------------------------


class Receiver:
    """An HTTP server on 127.0.0.1 that records the notifications POSTed to it."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.received: list[dict[str, str]] = []
        self.arrived = threading.Condition()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with outer.arrived:
                    outer.received.append(dict(self.headers.items()) | {"_body": body.decode()})
                    outer.arrived.notify_all()
                self.send_response(outer.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/google"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def wait_for(self, count: int, timeout: float = 5.0) -> list[dict[str, str]]:
        with self.arrived:
            self.arrived.wait_for(lambda: len(self.received) >= count, timeout)
        return list(self.received)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(name="receiver")
def receiver_fixture() -> Iterator[Receiver]:
    hook = Receiver()
    yield hook
    hook.close()


def dump(response: requests.Response) -> str:
    return json.dumps(response.json(), indent=1)[:2000]
