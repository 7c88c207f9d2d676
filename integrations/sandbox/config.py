"""The sandbox's default configuration and how a ``--config FILE`` overrides it.

The configuration is a JSON-able dict with one section per provider (``microsoft``,
``google``) and a ``sandbox`` section for what they share (limits, latency, log size). A file
given with ``--config`` is merged over the defaults: dicts merge key by key, anything else
(lists included) replaces the default, so a file that lists its own tenants gets only those.

Every identifier and secret here is a demo value for the local sandbox; none is real.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

DEMO_TENANT_ID = "5f0c2a7e-3d4b-4c1a-9e8f-1a2b3c4d5e6f"
DEMO_CLIENT_ID = "8a1d6f2e-7b3c-4e5d-9f01-23456789abcd"
DEMO_CLIENT_SECRET = "sandbox-demo-secret~not-a-real-one"  # noqa: S105 - sandbox demo value

_DEFAULT: dict[str, Any] = {
    "sandbox": {
        # Per service family: Exchange Online's published per-(app, mailbox) limits, and a
        # per-user quota for Google. Adjustable at run time through the control API.
        "limits": {
            "graph": {"max_in_flight": 4, "max_requests": 10_000, "window_seconds": 600},
            # Exchange's default throttling policy: EWSMaxConcurrency 27 per user; the rate
            # stands in for the EWS budget (recharge per minute), answered ErrorServerBusy.
            "ews": {"max_in_flight": 27, "max_requests": 600, "window_seconds": 60},
        },
        "latency": {"per_request": 0.0, "per_item": 0.0, "services": {}},
        "log_size": 2000,
        "fault_seed": None,
    },
    "microsoft": {
        # When a sign-in names a configured user (login_hint), sign in and consent without
        # showing the page; tests rely on it, people can switch it off.
        "auto_consent": True,
        "access_token_lifetime_seconds": 3900,
        "refresh_token_idle_days": 90,
        "auth_code_lifetime_seconds": 600,
        # Graph allows 10,080 minutes (under 7 days) for Outlook event subscriptions.
        "subscription_max_minutes": 10080,
        # Graph only delivers to https notification URLs; a portal run on a developer's
        # machine serves plain http on loopback, which the sandbox allows when this is on.
        "allow_http_loopback_notifications": True,
        "tenants": [
            {
                "id": DEMO_TENANT_ID,
                "domain": "contoso.test",
                "display_name": "Contoso (sandbox)",
                "apps": [
                    {
                        "client_id": DEMO_CLIENT_ID,
                        "display_name": "Reserva",
                        "client_secret": DEMO_CLIENT_SECRET,
                        "redirect_uris": [
                            "http://localhost:8000/calendars/oauth/microsoft/callback/",
                            "http://127.0.0.1:8000/calendars/oauth/microsoft/callback/",
                        ],
                        "application_permissions": ["Calendars.ReadWrite", "Place.Read.All"],
                        "delegated_permissions": [
                            "Calendars.ReadWrite",
                            "User.Read",
                            "offline_access",
                            "openid",
                            "profile",
                            "email",
                        ],
                    }
                ],
                "users": [
                    {
                        "id": "0b6f2c1e-1111-4a5b-8c9d-000000000001",
                        "upn": "alice@contoso.test",
                        "display_name": "Alice Adams",
                    },
                    {
                        "id": "0b6f2c1e-2222-4a5b-8c9d-000000000002",
                        "upn": "bob@contoso.test",
                        "display_name": "Bob Brown",
                    },
                    {
                        "id": "0b6f2c1e-3333-4a5b-8c9d-000000000003",
                        "upn": "reserva-blocker@contoso.test",
                        "display_name": "Reserva Blocker",
                    },
                ],
                "rooms": [
                    {
                        "id": "7c1e9a40-aaaa-4f3e-b1d2-000000000001",
                        "email": "atlas@contoso.test",
                        "display_name": "Atlas (4th floor)",
                        "capacity": 8,
                        "building": "HQ",
                        "floor": 4,
                    },
                    {
                        "id": "7c1e9a40-bbbb-4f3e-b1d2-000000000002",
                        "email": "borealis@contoso.test",
                        "display_name": "Borealis (4th floor)",
                        "capacity": 4,
                        "building": "HQ",
                        "floor": 4,
                    },
                    {
                        "id": "7c1e9a40-cccc-4f3e-b1d2-000000000003",
                        "email": "cosmos@contoso.test",
                        "display_name": "Cosmos (2nd floor)",
                        "capacity": 12,
                        "building": "HQ",
                        "floor": 2,
                    },
                ],
            }
        ],
    },
    # Owned by the Google part of the sandbox (integrations/sandbox/google/).
    "google": {},
    # Exchange Web Services (integrations/sandbox/ews/): an on-premises Exchange organisation.
    "ews": {
        # Which build ServerVersionInfo reports: 2016-cu23, 2019-cu14, 2019-cu15, se-rtm
        # (or a dotted build number).
        "server_build": "2019-cu15",
        "netbios_domain": "CONTOSO",
        "auth": ["NTLM", "Basic"],
        # ErrorServerBusy asks clients to wait this long (BackOffMilliseconds) at least.
        "min_back_off_ms": 2000,
        "users": [
            {
                "email": "alice@contoso.test",
                "name": "Alice Adams",
                "username": "alice",
                "password": "Alice-sandbox-1",
            },
            {
                "email": "bob@contoso.test",
                "name": "Bob Brown",
                "username": "bob",
                "password": "Bob-sandbox-1",
            },
            {
                # The service account Reserva signs in with; it holds the
                # ApplicationImpersonation role over every mailbox.
                "email": "svc-reserva@contoso.test",
                "name": "Reserva service",
                "username": "svc-reserva",
                "password": "Reserva-sandbox-1",
                "impersonation": True,
            },
        ],
        # Rooms answer meeting requests as Exchange's resource booking assistant does
        # (Set-CalendarProcessing): automate_processing "AutoAccept" (default; a conflicting
        # request is declined unless allow_conflicts), "AutoUpdate" (lands tentative, a
        # delegate answers) or "None"; max_duration_minutes (1440), booking_window_days (180),
        # add_organizer_to_subject / delete_subject (both true, as Exchange's defaults);
        # free_busy_access "AvailabilityOnly" (default), "LimitedDetails" or "Reviewer".
        "rooms": [
            {"email": "atlas@contoso.test", "name": "Atlas (4th floor)", "capacity": 8},
            {"email": "borealis@contoso.test", "name": "Borealis (4th floor)", "capacity": 4},
            {
                "email": "cosmos@contoso.test",
                "name": "Cosmos (2nd floor)",
                "capacity": 12,
                # A room whose delegate answers by hand: invitations stay unanswered.
                "automate_processing": "AutoUpdate",
            },
            {
                # The demo's room at the Berlin location.
                "email": "spree@contoso.test",
                "name": "Spree (Berlin)",
                "capacity": 6,
                "free_busy_access": "LimitedDetails",
            },
        ],
    },
}


def default_config() -> dict[str, Any]:
    """A fresh deep copy of the defaults, safe to modify."""
    return copy.deepcopy(_DEFAULT)


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Merge ``override`` into a copy of ``base``: dicts key by key, other values replace."""
    result = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merge(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


def load_config(path: str | Path | None = None) -> dict[str, Any]:
    """The defaults, with the JSON file at ``path`` (if any) merged over them."""
    if path is None:
        return default_config()
    with open(path, encoding="utf-8") as handle:
        override = json.load(handle)
    if not isinstance(override, dict):
        raise ValueError(f"{path}: the sandbox configuration must be a JSON object")
    return merge(default_config(), override)
