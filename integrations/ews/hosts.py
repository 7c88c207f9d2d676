"""Public hosts of the EWS provider: none. An Exchange server is the customer's own host,
allowed one by one in ``PROVIDER_ENDPOINT_ALLOWLIST``."""

from __future__ import annotations

PUBLIC_HOSTS: set[str] = set()
