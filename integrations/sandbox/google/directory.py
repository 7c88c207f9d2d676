"""Who exists in the emulated Google Workspace, and the files clients need to reach it.

The ``google`` section of the sandbox configuration names a Workspace domain, its users,
its resource calendars (rooms, with writer and reader lists), service accounts (with or
without domain-wide delegation and the scopes an administrator delegated) and OAuth clients.
Defaults live here because this package owns the ``google`` section; a ``--config`` file
overrides them key by key (lists replace).

At start the sandbox writes, under ``<state_dir>/google/``:

* ``<service account name>.json``: a service-account key file in Google's format, usable as is
  by ``google.oauth2.service_account.Credentials.from_service_account_file``; its
  ``token_uri`` points at the sandbox. The RSA key is kept across restarts.
* ``client_secret_<client id>.json``: a client-secrets file (``{"web": {...}}``) per OAuth client.
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

from ..config import merge

CALENDAR_SCOPE = "https://www.googleapis.com/auth/calendar"
DOMAIN = "northwind.test"
PROJECT = "reserva-sandbox"

DEFAULTS: dict[str, Any] = {
    "domain": DOMAIN,
    "project_id": PROJECT,
    "access_token_lifetime_seconds": 3599,
    "auth_code_lifetime_seconds": 600,
    # Sign in a user named by login_hint without showing the page (tests rely on it).
    "auto_consent": True,
    # Calendar API quota: 600 requests per minute per user (quota guide); the answer to an
    # overrun is 403 rateLimitExceeded or 429 (errors guide), chosen here.
    "requests_per_minute": 600,
    "rate_limit_status": 403,
    # events.watch: params.ttl defaults to 604800 seconds (watch reference).
    "channel_default_ttl_seconds": 604800,
    # Google only pushes to https; a portal on a developer machine serves http on loopback.
    "allow_http_loopback_push": True,
    "users": [
        {"email": f"alice@{DOMAIN}", "name": "Alice Adams"},
        {"email": f"bob@{DOMAIN}", "name": "Bob Brown"},
        {"email": f"reserva-blocker@{DOMAIN}", "name": "Reserva Blocker"},
    ],
    "resources": [
        {
            "email": "c_188a1f0e7d2b4c31@resource.calendar.google.com",
            "name": "Atlas (4th floor)",
            "capacity": 8,
            "building_id": "HQ",
            "floor": "4",
            "writers": [
                f"reserva-sync@{PROJECT}.iam.gserviceaccount.com",
                f"reserva-blocker@{DOMAIN}",
            ],
            "readers": [f"alice@{DOMAIN}", f"bob@{DOMAIN}"],
        },
        {
            "email": "c_188b2e1f8e3c5d42@resource.calendar.google.com",
            "name": "Borealis (4th floor)",
            "capacity": 4,
            "building_id": "HQ",
            "floor": "4",
            "writers": [
                f"reserva-sync@{PROJECT}.iam.gserviceaccount.com",
                f"reserva-blocker@{DOMAIN}",
            ],
            "readers": [f"alice@{DOMAIN}", f"bob@{DOMAIN}"],
        },
        {
            "email": "c_188c3f2a9f4d6e53@resource.calendar.google.com",
            "name": "Cosmos (2nd floor)",
            "capacity": 12,
            "building_id": "HQ",
            "floor": "2",
            "writers": [
                f"reserva-sync@{PROJECT}.iam.gserviceaccount.com",
                f"reserva-blocker@{DOMAIN}",
            ],
            "readers": [],
        },
    ],
    "service_accounts": [
        {
            "name": "reserva-sync",
            "email": f"reserva-sync@{PROJECT}.iam.gserviceaccount.com",
            "client_id": "104857600000000000001",
            "domain_wide_delegation": True,
            "delegated_scopes": [
                CALENDAR_SCOPE,
                f"{CALENDAR_SCOPE}.events",
                f"{CALENDAR_SCOPE}.readonly",
                f"{CALENDAR_SCOPE}.events.readonly",
            ],
        },
        {
            "name": "no-delegation",
            "email": f"no-delegation@{PROJECT}.iam.gserviceaccount.com",
            "client_id": "104857600000000000002",
            "domain_wide_delegation": False,
            "delegated_scopes": [],
        },
    ],
    "oauth_clients": [
        {
            "client_id": "284719300001-reservasandbox.apps.googleusercontent.com",
            "client_secret": "GOCSPX-sandbox-demo-not-a-real-secret",
            "name": "Reserva",
            "redirect_uris": [
                "http://localhost:8000/calendars/oauth/google/callback/",
                "http://127.0.0.1:8000/calendars/oauth/google/callback/",
            ],
        }
    ],
}


@dataclass
class ServiceAccount:
    name: str
    email: str
    client_id: str
    domain_wide_delegation: bool
    delegated_scopes: frozenset[str]
    key_id: str = ""
    private_key: rsa.RSAPrivateKey | None = None
    key_file: Path | None = None

    @property
    def public_key(self) -> rsa.RSAPublicKey:
        assert self.private_key is not None
        return self.private_key.public_key()


@dataclass
class OAuthClient:
    client_id: str
    client_secret: str
    name: str
    redirect_uris: list[str]
    secrets_file: Path | None = None


@dataclass
class Resource:
    email: str
    name: str
    capacity: int | None
    building_id: str
    floor: str
    writers: set[str] = field(default_factory=set)
    readers: set[str] = field(default_factory=set)


class Directory:
    """The configured Workspace: users, resources, service accounts and OAuth clients."""

    def __init__(self, section: dict[str, Any]) -> None:
        self.settings = merge(copy.deepcopy(DEFAULTS), section or {})
        self.domain: str = self.settings["domain"]
        self.users: dict[str, dict[str, Any]] = {
            u["email"].lower(): u for u in self.settings["users"]
        }
        self.resources: dict[str, Resource] = {}
        for item in self.settings["resources"]:
            self.resources[item["email"].lower()] = Resource(
                email=item["email"].lower(),
                name=item["name"],
                capacity=item.get("capacity"),
                building_id=item.get("building_id", ""),
                floor=str(item.get("floor", "")),
                writers={w.lower() for w in item.get("writers", [])},
                readers={r.lower() for r in item.get("readers", [])},
            )
        self.service_accounts: dict[str, ServiceAccount] = {}
        for item in self.settings["service_accounts"]:
            account = ServiceAccount(
                name=item["name"],
                email=item["email"].lower(),
                client_id=str(item["client_id"]),
                domain_wide_delegation=bool(item.get("domain_wide_delegation")),
                delegated_scopes=frozenset(item.get("delegated_scopes", [])),
            )
            self.service_accounts[account.email] = account
        self.clients: dict[str, OAuthClient] = {
            c["client_id"]: OAuthClient(
                c["client_id"], c["client_secret"], c.get("name", ""), list(c["redirect_uris"])
            )
            for c in self.settings["oauth_clients"]
        }

    def is_domain_user(self, email: str) -> bool:
        return email.lower() in self.users

    def write_files(self, folder: Path, base_url: str) -> None:
        """Write the key file of every service account and client-secrets of every client."""
        folder.mkdir(parents=True, exist_ok=True)
        token_uri = f"{base_url}/google/oauth2/token"
        for account in self.service_accounts.values():
            path = folder / f"{account.name}.json"
            account.private_key, account.key_id = _load_or_create_key(path, account.email)
            pem = account.private_key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ).decode()
            info = {
                "type": "service_account",
                "project_id": self.settings["project_id"],
                "private_key_id": account.key_id,
                "private_key": pem,
                "client_email": account.email,
                "client_id": account.client_id,
                "auth_uri": f"{base_url}/google/o/oauth2/auth",
                "token_uri": token_uri,
                "auth_provider_x509_cert_url": f"{base_url}/google/oauth2/v1/certs",
                "client_x509_cert_url": f"{base_url}/google/robot/v1/metadata/x509/"
                + account.email,
                "universe_domain": "googleapis.com",
            }
            _write_private(path, json.dumps(info, indent=2))
            account.key_file = path
        for client in self.clients.values():
            path = folder / f"client_secret_{client.client_id}.json"
            web = {
                "client_id": client.client_id,
                "project_id": self.settings["project_id"],
                "auth_uri": f"{base_url}/google/o/oauth2/v2/auth",
                "token_uri": token_uri,
                "auth_provider_x509_cert_url": f"{base_url}/google/oauth2/v1/certs",
                "client_secret": client.client_secret,
                "redirect_uris": client.redirect_uris,
            }
            _write_private(path, json.dumps({"web": web}, indent=2))
            client.secrets_file = path


def _load_or_create_key(path: Path, email: str) -> tuple[rsa.RSAPrivateKey, str]:
    """Reuse the key of an existing key file for the same account, so clients keep working."""
    if path.exists():
        try:
            info = json.loads(path.read_text(encoding="utf-8"))
            if info.get("client_email", "").lower() == email:
                # The sandbox wrote this key itself; skipping the (slow) RSA consistency check
                # keeps each start, and so each test, fast.
                key = serialization.load_pem_private_key(
                    info["private_key"].encode(), None, unsafe_skip_rsa_key_validation=True
                )
                if isinstance(key, rsa.RSAPrivateKey):
                    return key, info["private_key_id"]
        except (ValueError, KeyError, TypeError):
            pass  # A damaged file is replaced by a fresh key below.
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key, _key_id(key)


def _key_id(key: rsa.RSAPrivateKey) -> str:
    """A 40-hex-digit key id, like Google's ``private_key_id``, derived from the public key."""
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha1(der).hexdigest()  # noqa: S324 - an identifier, not a security hash


def _write_private(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")
    path.chmod(0o600)
