"""A provider's secret cannot be sent somewhere else.

The attack: a staff member who may change connection aliases and providers, but not even see
credential aliases, points a connection alias at a server of theirs, attaches an existing
credential to a new provider and presses Test connection, to receive the client secret in the
token request. Played here against a listener on a loopback port that records every
connection: it must hear nothing. Then the same from rows written around the admin (use-time
refusal), and the allowlist's matching rules.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse

from calendars import remote
from calendars.models import (
    BindingStatus,
    CalendarProvider,
    ConnectionAlias,
    CredentialAlias,
    ProviderKind,
    SpaceCalendar,
)
from calendars.sync import push
from integrations.base import ProviderError

pytestmark = pytest.mark.django_db

SECRET = "production-client-secret-do-not-leak"
PARTIAL_RIGHTS = (
    "calendars.view_connectionalias",
    "calendars.add_connectionalias",
    "calendars.change_connectionalias",
    "calendars.view_calendarprovider",
    "calendars.add_calendarprovider",
    "calendars.change_calendarprovider",
)


class Listener:
    """A plain TCP server on a loopback port that records every connection and its bytes."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.05)
        self.port = self.sock.getsockname()[1]
        self.heard: list[bytes] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="listener", daemon=True)
        self._thread.start()

    @property
    def origin(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(1)
                try:
                    data = conn.recv(65536)
                except OSError:
                    data = b""
                self.heard.append(data)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    server = Listener()
    # The listener does hear a connection, so its silence below means something.
    socket.create_connection(("127.0.0.1", server.port), timeout=5).close()
    deadline = threading.Event()
    for _ in range(100):
        if server.heard:
            break
        deadline.wait(0.05)
    assert server.heard == [b""]
    server.heard.clear()
    yield server
    server.stop()


@pytest.fixture
def production_credential() -> CredentialAlias:
    return CredentialAlias.objects.create(
        name="Production app",
        kind=ProviderKind.MICROSOFT,
        tenant_id="contoso.onmicrosoft.com",
        client_id="prod-client-id",
        client_secret=SECRET,
    )


@pytest.fixture
def google_credential() -> CredentialAlias:
    return CredentialAlias.objects.create(
        name="Google app", kind=ProviderKind.GOOGLE, client_id="g-id", client_secret="g-secret"
    )


@pytest.fixture
def attacker(client, make_user):
    client.force_login(make_user("mallory", is_staff=True, perms=PARTIAL_RIGHTS))
    return client


@pytest.fixture
def superuser_client(make_user):
    client = Client()
    client.force_login(make_user("root", is_staff=True, is_superuser=True))
    return client


def alias_data(name: str, **urls: str) -> dict[str, str]:
    return {
        "name": name,
        "kind": ProviderKind.MICROSOFT,
        "authority_url": "",
        "authorization_url": "",
        "api_base_url": "",
        "batch_url": "",
        "ca_bundle": "",
        "timeout_seconds": "5",
        **urls,
    }


def provider_data(name: str, connection: ConnectionAlias, credential: CredentialAlias) -> dict:
    return {
        "name": name,
        "kind": ProviderKind.MICROSOFT,
        "is_active": "on",
        "connection": connection.pk,
        "credential": credential.pk,
        "delegated_user_email": "someone@contoso.test",
    }


def page_text(response) -> str:
    return response.content.decode()


def test_the_attack_from_a_staff_account_with_partial_rights_sends_nothing(
    attacker, listener, production_credential, google_credential, superuser_client, settings
):
    add_alias = reverse("admin:calendars_connectionalias_add")

    # 1. The URL fields are read-only for this user, and posting them anyway is refused.
    page = page_text(attacker.get(add_alias))
    assert 'name="authority_url"' not in page and 'name="ca_bundle"' not in page
    response = attacker.post(
        add_alias,
        alias_data("Evil", authority_url=listener.origin, api_base_url=f"{listener.origin}/v1.0"),
    )
    assert response.status_code == 200
    assert "Not saved: you may not change authority url, api base url" in page_text(response)
    assert not ConnectionAlias.objects.filter(name="Evil").exists()

    # A superuser cannot point it there either: the host is not in the allowlist.
    response = superuser_client.post(add_alias, alias_data("Evil", authority_url=listener.origin))
    assert response.status_code == 200
    assert "127.0.0.1:" in page_text(response)
    assert "is not in the PROVIDER_ENDPOINT_ALLOWLIST setting" in page_text(response)
    assert not ConnectionAlias.objects.filter(name="Evil").exists()

    # The attacker may still add an alias: it uses the provider's public endpoints.
    response = attacker.post(add_alias, alias_data("Mine"))
    assert response.status_code == 302
    mine = ConnectionAlias.objects.get(name="Mine")
    assert mine.authority_url == mine.api_base_url == ""

    # 2. A credential of another kind is neither listed nor accepted.
    add_provider = reverse("admin:calendars_calendarprovider_add")
    page = page_text(attacker.get(add_provider, {"kind": ProviderKind.MICROSOFT}))
    assert "Production app" in page and "Google app" not in page
    response = attacker.post(add_provider, provider_data("Mixed", mine, google_credential))
    assert response.status_code == 200
    assert "Select a valid choice" in page_text(response)
    assert not CalendarProvider.objects.filter(name="Mixed").exists()

    # The production credential on the public endpoints: allowed, it cannot go anywhere else.
    response = attacker.post(add_provider, provider_data("Leaky", mine, production_credential))
    assert response.status_code == 302
    leaky = CalendarProvider.objects.get(name="Leaky")

    # 3. Test connection takes the right to edit the credential: the page and the action.
    test_page = reverse("calendars:provider_test", args=[leaky.pk])
    assert attacker.get(test_page).status_code == 403
    assert attacker.post(test_page, {"target": "room@contoso.test"}).status_code == 403
    changelist = reverse("admin:calendars_calendarprovider_changelist")
    listed = page_text(attacker.get(changelist))
    assert 'value="test_connection"' not in listed and test_page not in listed
    response = attacker.post(
        changelist, {"action": "test_connection", "_selected_action": [leaky.pk]}, follow=True
    )
    assert "connected" not in page_text(response) and "failed" not in page_text(response)
    assert "Test connection</a>" not in page_text(
        attacker.get(reverse("admin:calendars_calendarprovider_change", args=[leaky.pk]))
    )

    # 4. A row written around the admin (or an allowlist narrowed since): refused at use time.
    ConnectionAlias.objects.filter(pk=mine.pk).update(
        authority_url=listener.origin, api_base_url=f"{listener.origin}/v1.0"
    )
    response = superuser_client.post(test_page, {"target": "room@contoso.test"})
    assert response.status_code == 200
    assert "Nothing was sent" in page_text(response)
    assert "PROVIDER_ENDPOINT_ALLOWLIST" in page_text(response)
    response = superuser_client.post(
        changelist, {"action": "test_connection", "_selected_action": [leaky.pk]}, follow=True
    )
    assert "PROVIDER_ENDPOINT_ALLOWLIST" in page_text(response)

    # 5. Allowed as an https origin, the listener's http twin is still refused.
    settings.PROVIDER_ENDPOINT_ALLOWLIST = [*settings.PROVIDER_ENDPOINT_ALLOWLIST, listener.origin]
    plain = listener.origin.replace("https://", "http://")
    response = superuser_client.post(add_alias, alias_data("Plain", authority_url=plain))
    assert "is not in the PROVIDER_ENDPOINT_ALLOWLIST setting" in page_text(response)
    assert not ConnectionAlias.objects.filter(name="Plain").exists()

    assert listener.heard == []
    assert SECRET not in page_text(response)


def test_a_push_through_a_refused_endpoint_pauses_the_binding_and_sends_nothing(
    listener, production_credential, make_space, make_reservation
):
    connection = ConnectionAlias.objects.create(
        name="Written around the admin",
        kind=ProviderKind.MICROSOFT,
        authority_url=listener.origin,
        api_base_url=f"{listener.origin}/v1.0",
    )
    provider = CalendarProvider.objects.create(
        name="Bypassed",
        kind=ProviderKind.MICROSOFT,
        connection=connection,
        credential=production_credential,
    )
    space = make_space()
    binding = SpaceCalendar.objects.create(
        space=space, provider=provider, resource_email="room@contoso.test"
    )
    reservation = make_reservation(space)

    with pytest.raises(ProviderError, match="PROVIDER_ENDPOINT_ALLOWLIST"):
        remote.client_for(provider)
    push.push_reservation(reservation.pk)

    binding.refresh_from_db()
    assert binding.status == BindingStatus.PAUSED
    assert "PROVIDER_ENDPOINT_ALLOWLIST" in binding.last_error
    assert listener.heard == []


def test_a_credential_of_another_kind_than_its_connection_is_refused_at_use_time(
    google_credential,
):
    provider = CalendarProvider.objects.create(
        name="Mixed",
        kind=ProviderKind.MICROSOFT,
        connection=ConnectionAlias.objects.create(name="graph", kind=ProviderKind.MICROSOFT),
        credential=google_credential,
    )
    with pytest.raises(ProviderError, match="not all of one kind"):
        remote.provider_config(provider)


def test_the_change_page_lists_only_credentials_of_the_providers_kind(
    attacker, production_credential, google_credential
):
    provider = CalendarProvider.objects.create(
        name="M365",
        kind=ProviderKind.MICROSOFT,
        connection=ConnectionAlias.objects.create(name="graph", kind=ProviderKind.MICROSOFT),
        credential=production_credential,
    )
    ConnectionAlias.objects.create(name="gcal", kind=ProviderKind.GOOGLE)
    page = page_text(
        attacker.get(reverse("admin:calendars_calendarprovider_change", args=[provider.pk]))
    )
    assert "Production app" in page and "Google app" not in page
    assert ">graph<" in page and ">gcal<" not in page


def test_a_holder_of_the_permission_may_set_allowed_urls(make_user, client, settings):
    settings.PROVIDER_ENDPOINT_ALLOWLIST = ["login.microsoftonline.us", "graph.microsoft.us"]
    client.force_login(
        make_user(
            is_staff=True,
            perms=(*PARTIAL_RIGHTS, "calendars.manage_provider_endpoints"),
        )
    )
    response = client.post(
        reverse("admin:calendars_connectionalias_add"),
        alias_data(
            "US Government",
            authority_url="https://login.microsoftonline.us",
            api_base_url="https://graph.microsoft.us/v1.0",
        ),
    )
    assert response.status_code == 302
    alias = ConnectionAlias.objects.get(name="US Government")
    assert alias.api_base_url == "https://graph.microsoft.us/v1.0"


def test_an_endpoint_typed_without_a_scheme_is_https(superuser_client, settings):
    """Django 5.2's URL field would make "graph.microsoft.us/v1.0" an http URL (refused by the
    allowlist, so the admin's form error would be a puzzle); an endpoint is https."""
    settings.PROVIDER_ENDPOINT_ALLOWLIST = ["graph.microsoft.us"]
    response = superuser_client.post(
        reverse("admin:calendars_connectionalias_add"),
        alias_data("US Government", api_base_url="graph.microsoft.us/v1.0"),
    )
    assert response.status_code == 302
    alias = ConnectionAlias.objects.get(name="US Government")
    assert alias.api_base_url == "https://graph.microsoft.us/v1.0"


def test_a_user_without_the_permission_keeps_editing_the_rest(attacker):
    alias = ConnectionAlias.objects.create(
        name="graph", kind=ProviderKind.MICROSOFT, api_base_url="https://graph.microsoft.us/v1.0"
    )
    response = attacker.post(
        reverse("admin:calendars_connectionalias_change", args=[alias.pk]),
        {"name": "graph", "kind": ProviderKind.MICROSOFT, "timeout_seconds": "12"},
    )
    assert response.status_code == 302
    alias.refresh_from_db()
    assert alias.timeout_seconds == 12
    assert alias.api_base_url == "https://graph.microsoft.us/v1.0"


def test_a_stored_url_no_longer_allowed_is_named_to_a_user_who_cannot_change_it(attacker):
    alias = ConnectionAlias.objects.create(
        name="graph", kind=ProviderKind.MICROSOFT, api_base_url="https://proxy.corp.test/v1.0"
    )
    response = attacker.post(
        reverse("admin:calendars_connectionalias_change", args=[alias.pk]),
        {"name": "graph", "kind": ProviderKind.MICROSOFT, "timeout_seconds": "12"},
    )
    assert response.status_code == 200
    assert "Api base url: proxy.corp.test is not in the PROVIDER_ENDPOINT_ALLOWLIST" in (
        page_text(response)
    )
    alias.refresh_from_db()
    assert alias.timeout_seconds == 30


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://graph.microsoft.com/v1.0", True),
        ("https://GRAPH.microsoft.com./v1.0", True),
        ("https://graph.microsoft.com:443/v1.0", True),
        ("https://login.chinacloudapi.cn", True),
        ("https://dod-graph.microsoft.us/v1.0", True),
        ("https://graph.microsoft.com.evil.test/v1.0", False),
        ("https://evilgraph.microsoft.com/v1.0", False),
        ("https://graph.microsoft.com@evil.test/v1.0", False),
        ("https://evil.test@graph.microsoft.com/v1.0", False),
        ("https://evil.test\\@graph.microsoft.com/v1.0", False),
        ("https://graph.microsoft.com:8443/v1.0", False),
        ("http://graph.microsoft.com/v1.0", False),
        ("https://127.0.0.1/v1.0", False),
        ("https://[::1]/v1.0", False),
    ],
)
def test_the_allowlist_matches_whole_hosts_schemes_and_ports(url, allowed):
    alias = ConnectionAlias(name="x", kind=ProviderKind.MICROSOFT, api_base_url=url)
    try:
        alias.full_clean()
    except ValidationError as exc:
        assert not allowed, exc.message_dict
        assert "api_base_url" in exc.message_dict
    else:
        assert allowed, f"{url} was accepted"


def test_an_origin_entry_allows_exactly_its_scheme_host_and_port(settings):
    settings.PROVIDER_ENDPOINT_ALLOWLIST = ["https://127.0.0.1:8443", "http://exchange.corp.test"]

    def refused(url: str) -> str:
        try:
            ConnectionAlias(name="x", kind=ProviderKind.MICROSOFT, authority_url=url).full_clean()
        except ValidationError as exc:
            return " ".join(exc.message_dict["authority_url"])
        return ""

    assert refused("https://127.0.0.1:8443") == ""
    assert refused("http://exchange.corp.test/adfs") == ""
    assert "PROVIDER_ENDPOINT_ALLOWLIST" in refused("https://127.0.0.1:8444")
    assert "PROVIDER_ENDPOINT_ALLOWLIST" in refused("http://127.0.0.1:8443")
    assert "PROVIDER_ENDPOINT_ALLOWLIST" in refused("https://exchange.corp.test/adfs")
    assert "PROVIDER_ENDPOINT_ALLOWLIST" in refused("https://login.microsoftonline.com")
