"""Providers outside the public clouds: what a connection alias's URL fields become.

- Microsoft: the app token's scope follows the host of the alias's Graph URL (national clouds:
  US Government L4 and L5, 21Vianet, the former Cloud Deutschland), and the token is asked of
  the alias's authority host with the tenant appended. Checked on the token request msal
  really sends (``responses`` plays the national cloud's identity platform: no test reaches
  the internet).
- Google: the batch URL of the alias is where batches go; empty, it is derived from the API
  base path (the sandbox serves only that one, so a configured wrong one fails there).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs

import pytest
import responses
from django.core.exceptions import ValidationError

from calendars import remote
from calendars.models import (
    CalendarProvider,
    ConnectionAlias,
    CredentialAlias,
    ProviderKind,
)
from integrations.base import BatchOp, CalendarRef, EventData, ProviderError
from integrations.microsoft import auth as microsoft_auth
from tests.calendars.conftest import GOOGLE_ROOM, control

TENANT = "11111111-2222-3333-4444-555555555555"

CLOUDS = [
    # (Graph service root, authority host) from Microsoft's "national cloud deployments".
    ("https://graph.microsoft.com/v1.0", "https://login.microsoftonline.com"),
    ("https://graph.microsoft.us/v1.0", "https://login.microsoftonline.us"),
    ("https://dod-graph.microsoft.us/v1.0", "https://login.microsoftonline.us"),
    ("https://microsoftgraph.chinacloudapi.cn/v1.0", "https://login.chinacloudapi.cn"),
    ("https://graph.microsoft.de/v1.0", "https://login.microsoftonline.de"),
]


def microsoft_provider(api_base_url: str, authority_url: str) -> CalendarProvider:
    connection = ConnectionAlias.objects.create(
        name=f"Cloud {api_base_url}",
        kind=ProviderKind.MICROSOFT,
        authority_url=authority_url,
        api_base_url=api_base_url,
    )
    credential = CredentialAlias.objects.create(
        name=f"App {api_base_url}",
        kind=ProviderKind.MICROSOFT,
        tenant_id=TENANT,
        client_id="app-id",
        client_secret="s3cret-not-real",
    )
    return CalendarProvider.objects.create(
        name=f"Provider {api_base_url}",
        kind=ProviderKind.MICROSOFT,
        connection=connection,
        credential=credential,
    )


def identity_platform(rsps: responses.RequestsMock, authority: str) -> None:
    """The OpenID configuration and token endpoint of one cloud's identity platform."""
    base = f"{authority}/{TENANT}"
    rsps.get(
        f"{base}/v2.0/.well-known/openid-configuration",
        json={
            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
            "token_endpoint": f"{base}/oauth2/v2.0/token",
            "issuer": f"{base}/v2.0",
        },
    )
    rsps.post(
        f"{base}/oauth2/v2.0/token",
        json={"token_type": "Bearer", "expires_in": 3599, "access_token": "eyJ0eXAi.cloud"},
    )


@pytest.fixture(autouse=True)
def fresh_apps():
    microsoft_auth.clear_application_tokens()
    remote._clients.clear()
    yield
    microsoft_auth.clear_application_tokens()
    remote._clients.clear()


@pytest.mark.parametrize(("graph", "authority"), CLOUDS)
def test_the_app_token_is_scoped_to_the_graph_host_of_the_alias(db, graph, authority):
    provider = microsoft_provider(graph, authority)
    config = remote.provider_config(provider)
    with responses.RequestsMock() as rsps:
        identity_platform(rsps, authority)
        assert microsoft_auth.application_token(config) == "eyJ0eXAi.cloud"
        (token_call,) = [c for c in rsps.calls if c.request.url.endswith("/token")]
    sent = parse_qs(token_call.request.body)
    host = graph.split("/")[2]
    assert sent["scope"] == [f"https://{host}/.default"]
    assert token_call.request.url == f"{authority}/{TENANT}/oauth2/v2.0/token"


def test_a_proxy_or_the_sandbox_asks_for_the_public_graph_resource(db, settings):
    # A proxy the deployer allowed (README: Provider endpoints).
    settings.PROVIDER_ENDPOINT_ALLOWLIST = [
        *settings.PROVIDER_ENDPOINT_ALLOWLIST,
        "graph-proxy.example.test",
        "id.example.test",
    ]
    provider = microsoft_provider(
        "https://graph-proxy.example.test/v1.0", "https://id.example.test"
    )
    config = remote.provider_config(provider)
    assert microsoft_auth.app_scopes(config) == ["https://graph.microsoft.com/.default"]


def booking(reservation_id: int, hour: int) -> EventData:
    start = datetime.combine(
        datetime.now(UTC).date() + timedelta(days=3), datetime.min.time(), tzinfo=UTC
    ).replace(hour=hour)
    return EventData(
        reservation_id=reservation_id,
        subject=f"Booking {reservation_id}",
        start=start,
        end=start + timedelta(hours=1),
        time_zone="UTC",
    )


def test_google_batches_go_to_the_alias_batch_url(google_provider, sandbox):
    connection = google_provider.connection
    assert connection.batch_url == ""
    derived = remote.client_for(google_provider)
    assert derived.batch_url == f"{sandbox.base_url}/google/batch/calendar/v3"

    # A gateway whose batch endpoint is elsewhere: the configured URL is the one used (here
    # a path the sandbox does not serve, so the batch fails: it really went there).
    connection.batch_url = f"{sandbox.base_url}/gateway/batch"
    connection.save()
    google_provider.refresh_from_db()
    remote._clients.clear()
    moved = remote.client_for(google_provider)
    assert moved.batch_url == f"{sandbox.base_url}/gateway/batch"
    with pytest.raises(ProviderError) as failed:
        moved.batch(
            CalendarRef(GOOGLE_ROOM, GOOGLE_ROOM), [BatchOp("a", "create", booking(901, 9))]
        )
    assert failed.value.status == 404

    # Set to the sandbox's batch endpoint, batches land.
    connection.batch_url = f"{sandbox.base_url}/google/batch/calendar/v3/"
    connection.save()
    google_provider.refresh_from_db()
    remote._clients.clear()
    (result,) = remote.client_for(google_provider).batch(
        CalendarRef(GOOGLE_ROOM, GOOGLE_ROOM), [BatchOp("b", "create", booking(902, 11))]
    )
    assert result.ok and result.event.reservation_id == 902
    stored = control(sandbox, "GET", f"google/calendars/{GOOGLE_ROOM}/events")["value"]
    assert [e["summary"] for e in stored if e.get("status") != "cancelled"] == ["Booking 902"]


def test_only_google_aliases_take_a_batch_url(db, settings):
    settings.PROVIDER_ENDPOINT_ALLOWLIST = ["graph.microsoft.us", "gw.example.test"]
    alias = ConnectionAlias(
        name="MS", kind=ProviderKind.MICROSOFT, batch_url="https://graph.microsoft.us/v1.0/$batch"
    )
    with pytest.raises(ValidationError) as refused:
        alias.full_clean()
    assert "batch_url" in refused.value.message_dict
    ConnectionAlias(
        name="G", kind=ProviderKind.GOOGLE, batch_url="https://gw.example.test/batch"
    ).full_clean()
