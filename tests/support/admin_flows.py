"""The OAuth connect flow against the sandbox, as an admin and a person go through it:
the sandbox's settings, the portal's host, the person's browser and ``authorize``."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
from django.contrib.messages import get_messages

from calendars.demo import sandbox_config
from calendars.models import (
    CalendarProvider,
    ConnectionAlias,
    CredentialAlias,
    ProviderKind,
)
from integrations.sandbox.config import (
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    DEMO_TENANT_ID,
    default_config,
    merge,
)
from integrations.sandbox.google.directory import DEFAULTS as GOOGLE_DEFAULTS
from integrations.sandbox.testing import SandboxHandle

PORTAL = "http://testserver"  # the Django test client's host


MS_ALICE = "alice@contoso.test"


UNCONSENTED_CLIENT_ID = "9b2e7f3a-8c4d-4f6e-a012-3456789abcde"


UNCONSENTED_SECRET = "sandbox-unconsented-secret"  # a sandbox demo value


def sandbox_settings() -> dict[str, Any]:
    config = merge(default_config(), sandbox_config([PORTAL]))
    tenant = config["microsoft"]["tenants"][0]
    app = copy.deepcopy(tenant["apps"][0])
    app.update(
        client_id=UNCONSENTED_CLIENT_ID,
        client_secret=UNCONSENTED_SECRET,
        display_name="Reserva (no admin consent)",
        application_permissions=[],
    )
    tenant["apps"].append(app)
    return config


def browser_for(sandbox: SandboxHandle) -> requests.Session:
    """The person's browser, as far as the sandbox sees it."""
    session = requests.Session()
    session.trust_env = False  # REQUESTS_CA_BUNDLE would override verify
    session.verify = str(sandbox.ca_file)
    return session


def follow_provider(sandbox: SandboxHandle, start, kind: str) -> str:
    """Play the browser at the provider: the authorize URL redirects straight back (login hint
    + auto-consent); the callback path and query on the portal."""
    assert start.status_code == 302, start.content[:300]
    authorize = start["Location"]
    assert authorize.startswith(sandbox.base_url), authorize
    answer = browser_for(sandbox).get(authorize, allow_redirects=False, timeout=10)
    assert answer.status_code == 302, answer.text[:300]
    back = urlsplit(answer.headers["Location"])
    assert f"{back.scheme}://{back.netloc}{back.path}" == (
        f"{PORTAL}/calendars/oauth/{kind}/callback/"
    )
    return f"{back.path}?{back.query}"


def authorize(client, sandbox, space, provider) -> str:
    start = client.post(f"/calendars/setup/spaces/{space.pk}/authorize/{provider.pk}/")
    return follow_provider(sandbox, start, provider.kind)


GOOGLE_CLIENT = GOOGLE_DEFAULTS["oauth_clients"][0]


G_ALICE = "alice@northwind.test"


G_BLOCKER = "reserva-blocker@northwind.test"


def control(sandbox: SandboxHandle, method: str, path: str, **kwargs: Any) -> Any:
    response = browser_for(sandbox).request(
        method, f"{sandbox.base_url}/_sandbox/api/{path}", timeout=10, **kwargs
    )
    assert response.status_code < 300, response.text[:300]
    return response.json() if response.content else None


def service_account_key(sandbox: SandboxHandle, name: str = "reserva-sync") -> dict[str, Any]:
    return json.loads((Path(sandbox.sandbox.state_dir) / "google" / f"{name}.json").read_text())


def make_microsoft(sandbox: SandboxHandle, **credential: Any) -> CalendarProvider:
    base = sandbox.base_url
    connection = ConnectionAlias.objects.create(
        name="sandbox ms",
        kind=ProviderKind.MICROSOFT,
        authority_url=base,
        authorization_url=base,
        api_base_url=f"{base}/v1.0",
        ca_bundle=str(sandbox.ca_file),
        timeout_seconds=10,
    )
    alias = CredentialAlias.objects.create(
        name="sandbox ms app",
        kind=ProviderKind.MICROSOFT,
        **(
            {
                "tenant_id": DEMO_TENANT_ID,
                "client_id": DEMO_CLIENT_ID,
                "client_secret": DEMO_CLIENT_SECRET,
            }
            | credential
        ),
    )
    return CalendarProvider.objects.create(
        name="Microsoft 365 (sandbox)",
        kind=ProviderKind.MICROSOFT,
        connection=connection,
        credential=alias,
        delegated_user_email="reserva-blocker@contoso.test",
    )


def make_google(sandbox: SandboxHandle, key: str = "reserva-sync") -> CalendarProvider:
    base = sandbox.base_url
    connection = ConnectionAlias.objects.create(
        name="sandbox google",
        kind=ProviderKind.GOOGLE,
        authority_url=f"{base}/google/oauth2/token",
        authorization_url=f"{base}/google/o/oauth2/v2/auth",
        api_base_url=f"{base}/google/calendar/v3",
        ca_bundle=str(sandbox.ca_file),
        timeout_seconds=10,
    )
    alias = CredentialAlias.objects.create(
        name="sandbox google app",
        kind=ProviderKind.GOOGLE,
        client_id=GOOGLE_CLIENT["client_id"],
        client_secret=GOOGLE_CLIENT["client_secret"],
        service_account_key=service_account_key(sandbox, key),
    )
    return CalendarProvider.objects.create(
        name="Google Workspace (sandbox)",
        kind=ProviderKind.GOOGLE,
        connection=connection,
        credential=alias,
        delegated_user_email=G_BLOCKER,
    )


def texts(response) -> list[str]:
    """The messages this request added (not older ones still waiting to be shown)."""
    storage = get_messages(response.wsgi_request)
    return [str(m) for m in storage._queued_messages]
