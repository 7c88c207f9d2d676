"""Demo wiring: calendar providers pointing at the local provider sandbox.

``manage.py seed_demo`` calls this (through ``seed_demo_calendars``) so that ``make run`` shows
spaces bound to the sandbox's room mailboxes and resource calendars (London with Microsoft 365,
New York with Google, Berlin's Spree with the sandbox's Exchange Server over EWS), and the
sign-in page offers Microsoft and Google (not Exchange Server, which has no per-person
sign-in). Everything here is idempotent and uses the sandbox's published demo identifiers
(``integrations.sandbox.config``, ``integrations.sandbox.google.directory``).

Files go into the sandbox's state directory before the sandbox starts: its CA and server
certificate (``integrations.sandbox.ca``, which the sandbox reuses), so the exports of the demo
week that ``seed_demo`` queues can reach it as soon as it listens, and:

- ``google/reserva-sync.json``, the service-account key, when it is not there yet. The sandbox
  keeps the key of an existing key file for the same account (and rewrites the rest of the
  file), so the key stored here, encrypted, is the one the sandbox trusts;
- ``demo-config.json``, given to ``run_sandbox --config``: the sandbox's default tenants and
  OAuth clients plus redirect URIs for this portal's address (the sign-in callbacks and the
  calendar OAuth callbacks on the port ``make run`` uses).
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from integrations.sandbox.ca import ensure_tls_files
from integrations.sandbox.config import (
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    DEMO_TENANT_ID,
    default_config,
)
from integrations.sandbox.google import directory as google_directory
from reservations.models import REMOTE_SOURCES, Space

from .models import (
    BindingStatus,
    CalendarProvider,
    ConnectionAlias,
    CredentialAlias,
    ExchangeAccess,
    ExchangeAuth,
    LinkState,
    ProviderKind,
    SpaceCalendar,
    SyncLink,
    SyncSettings,
    WebhookSubscription,
)

GOOGLE_CLIENT = google_directory.DEFAULTS["oauth_clients"][0]
GOOGLE_SERVICE_ACCOUNT = google_directory.DEFAULTS["service_accounts"][0]  # reserva-sync
GOOGLE_DOMAIN = google_directory.DOMAIN
MICROSOFT_DOMAIN = default_config()["microsoft"]["tenants"][0]["domain"]

MICROSOFT_CONNECTION = "Sandbox Microsoft 365"
MICROSOFT_CREDENTIAL = "Sandbox Microsoft 365 app"
MICROSOFT_PROVIDER = "Microsoft 365 (sandbox)"
GOOGLE_CONNECTION = "Sandbox Google"
GOOGLE_CREDENTIAL = "Sandbox Google (OAuth client + service account)"
GOOGLE_PROVIDER = "Google Workspace (sandbox)"
EWS_CONNECTION = "Sandbox Exchange Server (EWS)"
EWS_CREDENTIAL = "Sandbox Exchange Server sync user"
EWS_PROVIDER = "Exchange Server (sandbox)"
DEMO_PROVIDERS = (MICROSOFT_PROVIDER, GOOGLE_PROVIDER, EWS_PROVIDER)

# (location, space) -> sandbox room. London syncs with Exchange Online (Graph), New York with
# Google, Berlin with an on-premises Exchange Server (EWS).
MICROSOFT_BINDINGS = [
    ("London HQ", "Thames", "atlas@contoso.test"),
    ("London HQ", "Severn", "borealis@contoso.test"),
    ("London HQ", "Avon", "cosmos@contoso.test"),
]
GOOGLE_BINDINGS = [
    ("New York Office", "Thames", "c_188a1f0e7d2b4c31@resource.calendar.google.com"),
    ("New York Office", "Severn", "c_188b2e1f8e3c5d42@resource.calendar.google.com"),
    ("New York Office", "Avon", "c_188c3f2a9f4d6e53@resource.calendar.google.com"),
]
EWS_BINDINGS = [
    ("Berlin Office", "Spree", "spree@contoso.test"),
]
# The EWS sandbox's service account, which holds the ApplicationImpersonation role; Reserva
# signs in as it by NTLM (DOMAIN\\user) and impersonates each room mailbox.
EWS_SERVICE_ACCOUNT = next(
    user for user in default_config()["ews"]["users"] if user.get("impersonation")
)
EWS_DOMAIN = default_config()["ews"]["netbios_domain"]
# Demo username -> addresses the sandbox knows (Microsoft first: the account's own address).
SANDBOX_ADDRESSES = {
    "alice": [f"alice@{MICROSOFT_DOMAIN}", f"alice@{GOOGLE_DOMAIN}"],
    "bob": [f"bob@{MICROSOFT_DOMAIN}", f"bob@{GOOGLE_DOMAIN}"],
}


@dataclass
class Wiring:
    """What ``wire_sandbox`` made, for the command's summary and for tests."""

    providers: list[CalendarProvider] = field(default_factory=list)
    bindings: list[SpaceCalendar] = field(default_factory=list)
    key_file: Path | None = None
    config_file: Path | None = None


def portal_redirect_uris(portal_urls: list[str], kind: str) -> list[str]:
    """Sign-in and calendar OAuth callbacks of a portal at each of ``portal_urls``."""
    uris = []
    for url in portal_urls:
        url = url.rstrip("/")
        uris += [
            f"{url}/accounts/oidc/{kind}/login/callback/",
            f"{url}/calendars/oauth/{kind}/callback/",
        ]
    return uris


def sandbox_config(portal_urls: list[str]) -> dict[str, Any]:
    """A ``run_sandbox --config`` override registering this portal's redirect URIs.

    Lists replace the defaults in a sandbox config, so the whole default lists are repeated
    with the extra URIs appended.
    """
    tenants = default_config()["microsoft"]["tenants"]
    for tenant in tenants:
        for app in tenant["apps"]:
            if app["client_id"] == DEMO_CLIENT_ID:
                app["redirect_uris"] = _merged(
                    app["redirect_uris"], portal_redirect_uris(portal_urls, "microsoft")
                )
    clients = copy.deepcopy(google_directory.DEFAULTS["oauth_clients"])
    for client in clients:
        if client["client_id"] == GOOGLE_CLIENT["client_id"]:
            client["redirect_uris"] = _merged(
                client["redirect_uris"], portal_redirect_uris(portal_urls, "google")
            )
    return {"microsoft": {"tenants": tenants}, "google": {"oauth_clients": clients}}


def _merged(first: list[str], more: list[str]) -> list[str]:
    return list(dict.fromkeys([*first, *more]))


def service_account_key(state_dir: Path, base_url: str) -> tuple[dict[str, Any], Path]:
    """The sandbox's ``reserva-sync`` key: read from its file, or created there first."""
    path = state_dir / "google" / f"{GOOGLE_SERVICE_ACCOUNT['name']}.json"
    email = GOOGLE_SERVICE_ACCOUNT["email"].lower()
    info: dict[str, Any] | None = None
    if path.exists():
        try:
            info = json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            info = None  # damaged: the sandbox would replace it too
        if not (
            isinstance(info, dict)
            and info.get("client_email", "").lower() == email
            and info.get("private_key")
            and info.get("private_key_id")
        ):
            info = None
    if info is None:
        info = _new_key_info(email, base_url)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(info, indent=2), encoding="utf-8")
        path.chmod(0o600)
    # The stored copy names this run's token endpoint even if the file is from another port.
    info = info | {
        "token_uri": f"{base_url}/google/oauth2/token",
        "auth_uri": f"{base_url}/google/o/oauth2/auth",
    }
    return info, path


def _new_key_info(email: str, base_url: str) -> dict[str, Any]:
    """A key file in Google's format (the fields the sandbox itself writes)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return {
        "type": "service_account",
        "project_id": google_directory.PROJECT,
        "private_key_id": hashlib.sha1(der).hexdigest(),  # noqa: S324 - an identifier
        "private_key": pem,
        "client_email": email,
        "client_id": GOOGLE_SERVICE_ACCOUNT["client_id"],
        "auth_uri": f"{base_url}/google/o/oauth2/auth",
        "token_uri": f"{base_url}/google/oauth2/token",
        "universe_domain": "googleapis.com",
    }


def _alias(model: type, name: str, values: dict[str, Any]) -> Any:
    """Create or reset a demo alias (secrets go through the encrypted fields)."""
    row = model.objects.filter(name=name).first() or model(name=name)
    for key, value in values.items():
        setattr(row, key, value)
    if isinstance(row, ConnectionAlias):
        # Not checked against PROVIDER_ENDPOINT_ALLOWLIST here: the deployer's own command
        # writes the sandbox's address, and nothing is sent there until the allowlist names it
        # (make run sets it; seed_demo_calendars warns when it does not).
        row.clean_fields()
        row.validate_unique()
    else:
        row.full_clean()
    row.save()
    return row


def _provider(
    name: str,
    kind: str,
    connection: ConnectionAlias,
    credential: CredentialAlias,
    delegate: str,
    *,
    sign_in: bool = True,
) -> CalendarProvider:
    provider, created = CalendarProvider.objects.get_or_create(
        name=name,
        defaults={
            "kind": kind,
            "connection": connection,
            "credential": credential,
            "delegated_user_email": delegate,
        },
    )
    if created and sign_in:
        # Sign-in follows this provider unless another one of its kind already offers it.
        others = CalendarProvider.objects.filter(kind=kind, sign_in_enabled=True)
        if not others.exists():
            provider.sign_in_enabled = True
            provider.save(update_fields=["sign_in_enabled"])
    return provider


def _bind(
    provider: CalendarProvider,
    bindings: list[tuple[str, str, str]],
    admin: AbstractBaseUser | None,
    calendar_ids: dict[str, str],
    calendar_names: dict[str, str],
) -> list[SpaceCalendar]:
    done = []
    for location, space_name, resource in bindings:
        space = Space.objects.filter(location__name=location, name=space_name).first()
        if space is None:
            continue  # the demo spaces were renamed; nothing to bind
        binding, _ = SpaceCalendar.objects.get_or_create(
            space=space,
            defaults={
                "provider": provider,
                "resource_email": resource,
                "calendar_id": calendar_ids.get(resource, ""),
                "calendar_name": calendar_names.get(resource, "Calendar"),
                "enabled": True,
                "status": BindingStatus.OK,
                "authorized_by": admin,
                "authorized_at": timezone.now(),
            },
        )
        done.append(binding)
    return done


@transaction.atomic
def wire_sandbox(
    *,
    base_url: str,
    state_dir: Path,
    portal_urls: list[str],
    admin: AbstractBaseUser | None = None,
) -> Wiring:
    """Aliases, providers, sync settings and bindings for the sandbox at ``base_url``."""
    wiring = Wiring()
    state_dir = state_dir.resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    # The sandbox's CA, made now if the sandbox never ran (it reuses it when it starts): the
    # demo week's exports are queued below, and make run's worker may reach for the sandbox
    # before the sandbox has written its CA file.
    ca_file = str(ensure_tls_files(state_dir).ca_file)
    key, wiring.key_file = service_account_key(state_dir, base_url)
    wiring.config_file = state_dir / "demo-config.json"
    wiring.config_file.write_text(json.dumps(sandbox_config(portal_urls), indent=2) + "\n")

    microsoft = _wire_microsoft(base_url, ca_file)
    google = _wire_google(base_url, ca_file, key)
    ews = _wire_ews(base_url, ca_file)
    wiring.providers = [microsoft, google, ews]
    SyncSettings.load()
    wiring.bindings = _bind_demo_spaces(microsoft, google, ews, admin)
    _add_sandbox_addresses()
    return wiring


def _wire_microsoft(base_url: str, ca_file: str) -> CalendarProvider:
    """Microsoft 365 through the sandbox's Graph and identity platform, as the demo app."""
    connection = _alias(
        ConnectionAlias,
        MICROSOFT_CONNECTION,
        {
            "kind": ProviderKind.MICROSOFT,
            "authority_url": base_url,
            "authorization_url": base_url,
            "api_base_url": f"{base_url}/v1.0",
            "ca_bundle": ca_file,
        },
    )
    credential = _alias(
        CredentialAlias,
        MICROSOFT_CREDENTIAL,
        {
            "kind": ProviderKind.MICROSOFT,
            "tenant_id": DEMO_TENANT_ID,
            "client_id": DEMO_CLIENT_ID,
            "client_secret": DEMO_CLIENT_SECRET,
        },
    )
    return _provider(
        MICROSOFT_PROVIDER,
        ProviderKind.MICROSOFT,
        connection,
        credential,
        f"reserva-blocker@{MICROSOFT_DOMAIN}",
    )


def _wire_google(base_url: str, ca_file: str, key: dict[str, Any]) -> CalendarProvider:
    """Google Workspace through the sandbox: its OAuth client plus the service account ``key``."""
    connection = _alias(
        ConnectionAlias,
        GOOGLE_CONNECTION,
        {
            "kind": ProviderKind.GOOGLE,
            "authority_url": f"{base_url}/google/oauth2/token",
            "authorization_url": f"{base_url}/google/o/oauth2/v2/auth",
            "api_base_url": f"{base_url}/google/calendar/v3",
            "ca_bundle": ca_file,
        },
    )
    credential = _alias(
        CredentialAlias,
        GOOGLE_CREDENTIAL,
        {
            "kind": ProviderKind.GOOGLE,
            "client_id": GOOGLE_CLIENT["client_id"],
            "client_secret": GOOGLE_CLIENT["client_secret"],
            "service_account_key": key,
        },
    )
    return _provider(
        GOOGLE_PROVIDER,
        ProviderKind.GOOGLE,
        connection,
        credential,
        f"reserva-blocker@{GOOGLE_DOMAIN}",
    )


def _wire_ews(base_url: str, ca_file: str) -> CalendarProvider:
    """Exchange Server through the sandbox's EWS, as its impersonating service account."""
    connection = _alias(
        ConnectionAlias,
        EWS_CONNECTION,
        {
            "kind": ProviderKind.EWS,
            "api_base_url": f"{base_url}/EWS/Exchange.asmx",
            "ca_bundle": ca_file,
        },
    )
    credential = _alias(
        CredentialAlias,
        EWS_CREDENTIAL,
        {
            "kind": ProviderKind.EWS,
            "auth_method": ExchangeAuth.NTLM,
            "username": f"{EWS_DOMAIN}\\{EWS_SERVICE_ACCOUNT['username']}",
            "password": EWS_SERVICE_ACCOUNT["password"],
            "account_email": EWS_SERVICE_ACCOUNT["email"],
            "access_type": ExchangeAccess.IMPERSONATION,
        },
    )
    # No delegated mailbox (the EWS sandbox has no blocker account: Test connection reads the
    # bound room instead), and no sign-in: Exchange Server offers none to Reserva.
    return _provider(EWS_PROVIDER, ProviderKind.EWS, connection, credential, "", sign_in=False)


def _bind_demo_spaces(
    microsoft: CalendarProvider,
    google: CalendarProvider,
    ews: CalendarProvider,
    admin: AbstractBaseUser | None,
) -> list[SpaceCalendar]:
    """Each provider's demo spaces bound to their sandbox rooms."""
    # Microsoft calendar ids are minted by the sandbox at each start: empty = the room's
    # default calendar. A Google resource calendar's id is its address.
    bindings = _bind(microsoft, MICROSOFT_BINDINGS, admin, {}, {})
    resources = {r["email"]: r["name"] for r in google_directory.DEFAULTS["resources"]}
    bindings += _bind(
        google, GOOGLE_BINDINGS, admin, {email: email for email in resources}, resources
    )
    # Exchange Server: the room mailbox's own calendar (the empty id), as with Graph.
    bindings += _bind(ews, EWS_BINDINGS, admin, {}, {})
    return bindings


def _add_sandbox_addresses() -> None:
    """The demo people sign in with the sandbox's accounts: their addresses, verified."""
    from allauth.account.models import EmailAddress
    from django.contrib.auth import get_user_model

    for user in get_user_model().objects.filter(username__in=SANDBOX_ADDRESSES):
        for position, email in enumerate(SANDBOX_ADDRESSES[user.get_username()]):
            EmailAddress.objects.get_or_create(
                user=user,
                email=email,
                defaults={"verified": True, "primary": position == 0 and user.email == email},
            )


def forget_previous_sandbox() -> int:
    """The sandbox keeps its calendars in memory, so every ``make run`` starts it empty. What
    Reserva recorded about the previous one (event ids, change keys, cursors, webhook
    subscriptions) names nothing now, and a full resync would take the missing events for
    deletions made in the room. So the links of the Reserva-made bookings of the demo bindings
    go back to "not synced" (the export sends the future ones again, beat's lost-push
    recovery the rest; a create looks its event up by tag first, so a sandbox that kept
    running gets nothing twice), the cursors are dropped and the subscriptions forgotten
    (made anew when the portal starts). Bookings made in the old sandbox's calendars are
    gone with it: their links stay, and the first full pull cancels them. Returns how many
    links were reset."""
    ids = list(
        SpaceCalendar.objects.filter(provider__name__in=DEMO_PROVIDERS).values_list("pk", flat=True)
    )
    reset = (
        SyncLink.objects.filter(binding_id__in=ids)
        .exclude(reservation__source__in=REMOTE_SOURCES)
        .update(
            external_id="", ical_uid="", remote_version="", pushed_version=0,
            state=LinkState.PENDING, last_error="", attempts=0, creating_at=None,
            next_attempt_at=None, failing_since=None, updated=timezone.now(),
        )
    )  # fmt: skip
    SpaceCalendar.objects.filter(pk__in=ids).update(sync_token="", next_pull_at=None)
    WebhookSubscription.objects.filter(binding_id__in=ids).delete()
    return reset
