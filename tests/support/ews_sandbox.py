"""exchangelib against the sandbox: an HTTP adapter that trusts the sandbox CA, accounts.

exchangelib builds its own requests sessions (``BaseProtocol.raw_session``) with the adapter
class in ``BaseProtocol.HTTP_ADAPTER_CLS``; the adapter here verifies TLS against the
sandbox's CA file whatever ``verify`` the session passes (this machine's
``REQUESTS_CA_BUNDLE`` would otherwise win).
"""

from __future__ import annotations

from typing import Any

import requests
from exchangelib import BASIC, DELEGATE, IMPERSONATION, NTLM, Account, Configuration, Credentials

from integrations.sandbox.testing import SandboxHandle

PASSWORDS = {
    "alice@contoso.test": "Alice-sandbox-1",
    "bob@contoso.test": "Bob-sandbox-1",
    "svc-reserva@contoso.test": "Reserva-sandbox-1",
}


def adapter_for(ca_file: str) -> type[requests.adapters.HTTPAdapter]:
    class SandboxCAAdapter(requests.adapters.HTTPAdapter):
        def cert_verify(self, conn: Any, url: str, verify: Any, cert: Any) -> None:
            super().cert_verify(conn, url, ca_file, cert)

        def get_connection_with_tls_context(
            self, request: Any, verify: Any, proxies: Any = None, cert: Any = None
        ) -> Any:
            return super().get_connection_with_tls_context(request, ca_file, proxies, cert)

    return SandboxCAAdapter


def endpoint(handle: SandboxHandle) -> str:
    return f"{handle.base_url}/EWS/Exchange.asmx"


def configuration(
    handle: SandboxHandle,
    user: str,
    password: str | None = None,
    auth: str = NTLM,
    max_connections: int | None = None,
) -> Configuration:
    credentials = Credentials(user, PASSWORDS.get(user, "") if password is None else password)
    return Configuration(
        service_endpoint=endpoint(handle),
        credentials=credentials,
        auth_type=auth,
        max_connections=max_connections,
    )


def account(
    handle: SandboxHandle,
    mailbox: str,
    user: str | None = None,
    *,
    auth: str = NTLM,
    impersonate: bool = False,
    password: str | None = None,
    max_connections: int | None = None,
) -> Account:
    """An exchangelib Account for ``mailbox``, signed in as ``user`` (default: the mailbox).

    exchangelib keeps one HTTP session per server and credentials unless ``max_connections``
    says more (its Protocol, cached until ``close_connections()``): a test that holds a
    streaming connection open while it writes needs two.
    """
    config = configuration(handle, user or mailbox, password, auth, max_connections)
    return Account(
        mailbox,
        config=config,
        autodiscover=False,
        access_type=IMPERSONATION if impersonate else DELEGATE,
    )


__all__ = ["BASIC", "NTLM", "account", "configuration"]
