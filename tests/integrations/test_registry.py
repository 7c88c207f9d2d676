"""The provider registry: every kind the portal offers has a complete descriptor."""

from __future__ import annotations

import pytest

from calendars.models import ProviderKind
from integrations.base import CalendarRef
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


def test_calendar_reference_names_the_calendar_the_way_each_api_needs():
    ref = CalendarRef("room@example.com", "cal-1")
    assert spec("microsoft").call_args(ref) == ("room@example.com", "cal-1")
    assert spec("google").call_args(ref) == ("cal-1",)
    assert spec("ews").call_args(ref) == ("room@example.com", "cal-1")


def test_public_hosts_cover_both_providers():
    hosts = public_hosts()
    assert "graph.microsoft.com" in hosts and "www.googleapis.com" in hosts
