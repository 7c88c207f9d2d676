"""The Microsoft side's state: tenants, app registrations, mailboxes, events and grants.

Events are stored as Graph-shaped dicts with a few private fields (prefixed ``_``): the UTC
start and end, the change sequence number delta rounds compare against, a tombstone flag,
the extended properties and the transactionId. Every write goes through
:meth:`MicrosoftState.save_event` / :meth:`delete_event`, which bump the change key and the
sequence number and tell the listeners (subscriptions, room processing).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa


def _signing_key(key_file: Path | None) -> rsa.RSAPrivateKey:
    """The token-signing key, kept in the state directory so restarts reuse it."""
    if key_file is not None and key_file.exists():
        key = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
        if isinstance(key, rsa.RSAPrivateKey):
            return key
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if key_file is not None:
        key_file.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        key_file.chmod(0o600)
    return key


def opaque_id(prefix: str = "AAMkAGI2") -> str:
    """An id shaped like Exchange's: base64 text ending in '=' (URL-safe alphabet)."""
    raw = base64.urlsafe_b64encode(secrets.token_bytes(54)).decode().rstrip("=")
    return f"{prefix}{raw}AAA="


def change_key() -> str:
    return base64.b64encode(secrets.token_bytes(18)).decode()


def ical_uid() -> str:
    return "040000008200E00074C5B7101A82E00800000000" + secrets.token_hex(28).upper()


@dataclass
class App:
    client_id: str
    client_secret: str
    display_name: str
    tenant_id: str
    redirect_uris: list[str]
    application_permissions: list[str]
    delegated_permissions: list[str]
    service_principal_id: str = field(default_factory=lambda: opaque_id("sp-")[:36])


@dataclass
class Calendar:
    id: str
    name: str
    is_default: bool = False
    color: str = "auto"


@dataclass
class Mailbox:
    id: str
    address: str
    display_name: str
    kind: str  # "user" or "room"
    tenant_id: str
    calendars: dict[str, Calendar] = field(default_factory=dict)
    events: dict[str, dict[str, Any]] = field(default_factory=dict)
    transactions: dict[str, str] = field(default_factory=dict)  # transactionId -> event id
    room: dict[str, Any] = field(default_factory=dict)

    @property
    def default_calendar(self) -> Calendar:
        return next(c for c in self.calendars.values() if c.is_default)

    def live_events(self, calendar_id: str | None = None) -> list[dict[str, Any]]:
        return [
            e
            for e in self.events.values()
            if not e["_deleted"] and (calendar_id is None or e["_calendar"] == calendar_id)
        ]

    def timed_events(self, calendar_id: str | None = None) -> list[dict[str, Any]]:
        """What takes time in the calendar: single events, occurrences and exceptions (a
        series master stands for its instances and is never shown in a view itself)."""
        return [e for e in self.live_events(calendar_id) if e.get("_type") != "seriesMaster"]


@dataclass
class Tenant:
    id: str
    domain: str
    display_name: str
    apps: dict[str, App] = field(default_factory=dict)


@dataclass
class RefreshGrant:
    client_id: str
    tenant_id: str
    user_id: str
    scopes: list[str]
    last_used: dt.datetime
    revoked: bool = False
    redeemed: bool = False


ChangeListener = Callable[["Mailbox", dict[str, Any], str], None]


class MicrosoftState:
    """Everything the identity platform and Graph remember, behind one lock."""

    def __init__(
        self,
        config: dict[str, Any],
        now: Callable[[], dt.datetime],
        key_file: Path | None = None,
    ) -> None:
        self.config = config
        self.now = now
        self.lock = threading.RLock()
        self.signing_key = _signing_key(key_file)
        # A stable key id per key, as Entra's kid is, so a restarted sandbox keeps its JWKS.
        der = self.signing_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self.key_id = base64.urlsafe_b64encode(hashlib.sha1(der).digest()).decode().rstrip("=")  # noqa: S324 - a thumbprint, as x5t is
        self.tenants: dict[str, Tenant] = {}
        self.mailboxes: dict[str, Mailbox] = {}  # by id and by lower-cased address
        self.auth_codes: dict[str, dict[str, Any]] = {}
        self.refresh_tokens: dict[str, RefreshGrant] = {}
        # Access tokens are self-contained JWTs; to expire them before their time (control
        # API ``access-tokens/expire``), their ``uti`` claims are remembered.
        self.live_token_ids: set[str] = set()
        self.expired_token_ids: set[str] = set()
        # Claims of tokens whose signature and audience were checked already (a $batch's
        # items share one token): the expiry is still checked on every use.
        self.verified_claims: dict[str, dict[str, Any]] = {}
        self.delta_tokens: dict[str, dict[str, Any]] = {}
        self.subscriptions: dict[str, dict[str, Any]] = {}
        self.sequence = 0
        self.listeners: list[ChangeListener] = []
        for tenant_cfg in config.get("tenants", []):
            self._load_tenant(tenant_cfg)

    def _load_tenant(self, cfg: dict[str, Any]) -> None:
        tenant = Tenant(cfg["id"], cfg["domain"], cfg.get("display_name", cfg["domain"]))
        for app in cfg.get("apps", []):
            tenant.apps[app["client_id"]] = App(
                client_id=app["client_id"],
                client_secret=app["client_secret"],
                display_name=app.get("display_name", app["client_id"]),
                tenant_id=tenant.id,
                redirect_uris=list(app.get("redirect_uris", [])),
                application_permissions=list(app.get("application_permissions", [])),
                delegated_permissions=list(app.get("delegated_permissions", [])),
            )
        self.tenants[tenant.id] = tenant
        for user in cfg.get("users", []):
            self._add_mailbox(user["id"], user["upn"], user["display_name"], "user", tenant.id)
        for room in cfg.get("rooms", []):
            box = self._add_mailbox(
                room["id"], room["email"], room["display_name"], "room", tenant.id
            )
            box.room = dict(room)

    def _add_mailbox(
        self, box_id: str, address: str, name: str, kind: str, tenant_id: str
    ) -> Mailbox:
        box = Mailbox(box_id, address, name, kind, tenant_id)
        cal = Calendar(opaque_id("AAMkAGI2Cal"), "Calendar", is_default=True)
        box.calendars[cal.id] = cal
        self.mailboxes[box_id.lower()] = box
        self.mailboxes[address.lower()] = box
        return box

    # -- lookups ---------------------------------------------------------------------

    def tenant(self, key: str) -> Tenant | None:
        key = key.lower()
        for tenant in self.tenants.values():
            if key in (tenant.id.lower(), tenant.domain.lower()):
                return tenant
        return None

    def app(self, client_id: str) -> App | None:
        for tenant in self.tenants.values():
            if client_id in tenant.apps:
                return tenant.apps[client_id]
        return None

    def mailbox(self, key: str) -> Mailbox | None:
        return self.mailboxes.get(key.lower())

    def all_mailboxes(self) -> list[Mailbox]:
        unique = {id(box): box for box in self.mailboxes.values()}
        return sorted(unique.values(), key=lambda b: (b.kind != "room", b.address))

    def find_event(self, event_id: str) -> tuple[Mailbox, dict[str, Any]] | None:
        for box in self.all_mailboxes():
            event = box.events.get(event_id)
            if event and not event["_deleted"]:
                return box, event
        return None

    # -- writes ----------------------------------------------------------------------

    def next_sequence(self) -> int:
        with self.lock:
            self.sequence += 1
            return self.sequence

    def save_event(self, box: Mailbox, event: dict[str, Any], change: str) -> dict[str, Any]:
        """Store a created or updated event; ``change`` is "created" or "updated"."""
        with self.lock:
            now = self.now()
            stamp = now.strftime("%Y-%m-%dT%H:%M:%S") + f".{now.microsecond:06d}0Z"
            if change == "created":
                event["createdDateTime"] = stamp
            event["lastModifiedDateTime"] = stamp
            event["changeKey"] = change_key()
            event["_seq"] = self.next_sequence()
            event.setdefault("_deleted", False)
            box.events[event["id"]] = event
        self._notify(box, event, change)
        return event

    def delete_event(self, box: Mailbox, event: dict[str, Any]) -> None:
        """Keep a tombstone so delta rounds can report ``@removed``."""
        with self.lock:
            event["_deleted"] = True
            event["_seq"] = self.next_sequence()
        self._notify(box, event, "deleted")

    def _notify(self, box: Mailbox, event: dict[str, Any], change: str) -> None:
        for listener in list(self.listeners):
            listener(box, event, change)
