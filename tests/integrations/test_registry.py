"""The provider registry: every kind the portal offers has a complete descriptor."""

from __future__ import annotations

import pytest

from calendars.models import ProviderKind
from integrations.registry import PROVIDERS, client_class, public_hosts, spec
from reservations.models import REMOTE_SOURCES, Source


@pytest.mark.parametrize("kind", ProviderKind.values)
def test_every_provider_kind_has_a_descriptor(kind):
    provider = spec(kind)
    assert provider.kind == kind
    assert client_class(kind).__name__.lower().startswith(kind)
    assert hasattr(provider.oauth_module(), "begin_authorization")
    # A pulled booking carries a source the reservation model knows.
    assert Source(provider.reservation_source) in REMOTE_SOURCES
    assert provider.idle_warning < provider.idle_limit


def test_a_kind_without_a_package_is_refused():
    with pytest.raises(KeyError):
        spec("zimbra")
    assert set(PROVIDERS) == set(ProviderKind.values)


def test_a_rooms_own_calendar_is_named_the_way_each_api_needs():
    # Graph: the empty id, the mailbox's default calendar; Google: the resource calendar's
    # id, which is its address.
    assert spec("microsoft").default_calendar_id("room@example.com") == ""
    assert spec("google").default_calendar_id("room@example.com") == "room@example.com"
    # EWS: the empty id, the mailbox's Calendar folder (or the connection's named folder).
    assert spec("ews").default_calendar_id("room@example.com") == ""


def test_public_hosts_cover_both_providers():
    hosts = public_hosts()
    assert "graph.microsoft.com" in hosts and "www.googleapis.com" in hosts
