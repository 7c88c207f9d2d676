"""Provider kind -> client class, imported lazily.

A provider is one package under ``integrations`` and one line here; importing the registry
does not import msal or google-auth, so a deployment that uses one provider never loads the
other's libraries. ``public_hosts()`` is what every provider reaches on the public internet
(the default of the ``PROVIDER_ENDPOINT_ALLOWLIST`` setting).
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

CLIENTS: dict[str, str] = {
    "microsoft": "integrations.microsoft.client.MicrosoftClient",
    "google": "integrations.google.client.GoogleClient",
}

# Each provider's public hosts (light modules: no provider library is imported with them).
PUBLIC_HOSTS: dict[str, str] = {
    "microsoft": "integrations.microsoft.clouds.PUBLIC_HOSTS",
    "google": "integrations.google.hosts.PUBLIC_HOSTS",
}


def client_class(kind: str) -> type[Any]:
    """The client class for ``kind`` ("microsoft" or "google"); KeyError for others."""
    module_name, _, class_name = CLIENTS[kind].rpartition(".")
    return getattr(import_module(module_name), class_name)


def public_hosts() -> list[str]:
    """Every provider's public hosts, sorted (no provider library is imported)."""
    hosts: set[str] = set()
    for path in PUBLIC_HOSTS.values():
        module_name, _, name = path.rpartition(".")
        hosts |= getattr(import_module(module_name), name)
    return sorted(hosts)
