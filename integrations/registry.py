"""Provider kind -> client class, imported lazily.

A provider is one package under ``integrations`` and one line here; importing the registry
does not import msal or google-auth, so a deployment that uses one provider never loads the
other's libraries.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

CLIENTS: dict[str, str] = {
    "microsoft": "integrations.microsoft.client.MicrosoftClient",
    "google": "integrations.google.client.GoogleClient",
}


def client_class(kind: str) -> type[Any]:
    """The client class for ``kind`` ("microsoft" or "google"); KeyError for others."""
    module_name, _, class_name = CLIENTS[kind].rpartition(".")
    return getattr(import_module(module_name), class_name)
