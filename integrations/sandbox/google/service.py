"""The Google half of the sandbox's state: ``sandbox.services["google"]``.

One :class:`GoogleService` holds the Workspace directory, every calendar and event, the OAuth
grants and tokens, sync and page tokens, and push channels. Every event write (API, room
booking, control API) goes through :meth:`GoogleService.save`, which stamps etag, ``updated``
and the change sequence, then tells the listeners (push channels, resource booking), so a
change made "as a person would" behaves exactly like one made through the API.
"""

from __future__ import annotations

import datetime as dt
import itertools
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .directory import Directory
from .errors import ApiError
from .store import Calendar, StoredEvent, new_etag

if TYPE_CHECKING:
    from ..server import Sandbox

ChangeListener = Callable[[Calendar, StoredEvent], None]


@dataclass
class AccessToken:
    """What a bearer token stands for. ``principal`` is whose calendars it reaches."""

    token: str
    principal: str
    client_id: str
    scopes: frozenset[str]
    expires_at: dt.datetime
    # "user" (OAuth sign-in), "delegated" (service account with a subject) or
    # "service_account" (acting as itself).
    kind: str
    refresh_token: str | None = None


@dataclass
class RefreshGrant:
    token: str
    user: str
    client_id: str
    scopes: frozenset[str]
    # Sandbox clock time of the last use; Google expires refresh tokens unused for 6 months.
    last_used: dt.datetime | None = None
    revoked: bool = False


@dataclass
class AuthCode:
    code: str
    user: str
    client_id: str
    redirect_uri: str
    scopes: frozenset[str]
    expires_at: dt.datetime
    offline: bool
    challenge: str | None
    challenge_method: str
    nonce: str | None
    used: bool = False


@dataclass
class SyncState:
    """What a sync or page token stands for."""

    calendar_id: str
    seq: int  # changes after this sequence number (sync) / snapshot of the listing (page)
    epoch: int
    signature: tuple[Any, ...]
    since: int | None = None  # page tokens of an incremental sync: the sync token's seq
    offset: int = 0


@dataclass
class Channel:
    id: str
    resource_id: str
    calendar_id: str
    address: str
    token: str | None
    expiration: dt.datetime
    principal: str
    client_id: str
    resource_uri: str
    message_number: int = 1
    stopped: bool = False
    deliveries: list[dict[str, Any]] = field(default_factory=list)


class GoogleService:
    """Shared Google state; see the module docstring."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.directory = Directory(sandbox.config.get("google", {}))
        self.settings = self.directory.settings
        self.calendars: dict[str, Calendar] = {}
        for email in self.directory.users:
            self.calendars[email] = Calendar(email, "user", email)
        for resource in self.directory.resources.values():
            self.calendars[resource.email] = Calendar(
                resource.email,
                "resource",
                resource.name,
                writers=set(resource.writers),
                readers=set(resource.readers),
            )
        self.seq = 0
        self._ordinal = itertools.count(1)
        self.access_tokens: dict[str, AccessToken] = {}
        self.refresh_tokens: dict[str, RefreshGrant] = {}
        self.codes: dict[str, AuthCode] = {}
        self.consents: dict[tuple[str, str], set[str]] = {}
        self.sync_tokens: dict[str, SyncState] = {}
        self.page_tokens: dict[str, SyncState] = {}
        self.channels: dict[str, Channel] = {}
        self.listeners: list[ChangeListener] = []

    @property
    def lock(self) -> Any:
        return self.sandbox.lock

    def now(self) -> dt.datetime:
        return self.sandbox.clock.now()

    @property
    def api_root(self) -> str:
        return f"{self.sandbox.base_url}/google/calendar/v3"

    # -- calendars ----------------------------------------------------------------------

    def calendar(self, principal: str, calendar_id: str, need: str = "reader") -> Calendar:
        """The calendar ``calendar_id`` as ``principal`` may use it, or a Google refusal.

        ``need`` is "reader" or "writer". An invisible calendar is a 404, as Google hides
        calendars one cannot see; a visible one without write access is a 403.
        """
        calendar_id = principal if calendar_id == "primary" else calendar_id.lower()
        with self.lock:
            calendar = self.calendars.get(calendar_id)
            if calendar is None and calendar_id == principal:
                # A service account acting as itself has its own (initially empty) calendar.
                calendar = Calendar(principal, "service_account", principal)
                self.calendars[principal] = calendar
        role = calendar.role_of(principal) if calendar else None
        if calendar is None or role is None:
            raise ApiError(404, "notFound", "Not Found")
        if need == "writer" and role == "reader":
            raise ApiError(
                403, "requiredAccessLevel", "You need to have writer access to this calendar."
            )
        return calendar

    # -- writes -------------------------------------------------------------------------

    def save(
        self, calendar: Calendar, event: StoredEvent, *, bump_sequence: bool = False
    ) -> StoredEvent:
        """Stamp a changed event and announce it; call with the lock held."""
        now = self.now()
        self.seq += 1
        event.change_seq = self.seq
        event.updated = now
        event.etag = new_etag(now)
        if bump_sequence:
            event.sequence += 1
        if not event.ordinal:
            event.ordinal = next(self._ordinal)
        calendar.events[event.id] = event
        for listener in list(self.listeners):
            listener(calendar, event)
        return event

    def create(
        self,
        calendar: Calendar,
        event_id: str | None,
        data: dict[str, Any],
        actor: str,
        organizer: str | None = None,
    ) -> StoredEvent:
        """Insert a new event (id already checked); call with the lock held."""
        now = self.now()
        event = StoredEvent(
            id=event_id or new_event_id(),
            calendar_id=calendar.id,
            data=data,
            created=now,
            updated=now,
            etag="",
            change_seq=0,
            status=data.pop("status", "confirmed"),
            sequence=int(data.pop("sequence", 0) or 0),
            creator=actor,
            # An attendee's copy names the organizer's calendar, known before listeners run.
            organizer=organizer or calendar.id,
        )
        return self.save(calendar, event)

    def replace(self, calendar: Calendar, event: StoredEvent, data: dict[str, Any]) -> StoredEvent:
        times_moved = data.get("start") != event.data.get("start") or data.get(
            "end"
        ) != event.data.get("end")
        event.status = data.pop("status", event.status if not event.cancelled else "confirmed")
        data.pop("sequence", None)
        event.data = data
        return self.save(calendar, event, bump_sequence=times_moved)

    def cancel(self, calendar: Calendar, event: StoredEvent) -> StoredEvent:
        """Delete an event (an instance: a cancelled exception); call with the lock held.

        Deleting a series deletes its exceptions with it: each is saved cancelled, so an
        incremental sync reports it (clients are told to keep cancelled exceptions "for the
        lifetime of the parent recurring event", discovery ``Event.status``)."""
        event.status = "cancelled"
        self.save(calendar, event, bump_sequence=True)
        if event.is_series:
            for other in list(calendar.events.values()):
                if other.recurring_event_id == event.id and not other.cancelled:
                    other.status = "cancelled"
                    self.save(calendar, other, bump_sequence=True)
        return event

    def expire_sync_tokens(self, calendar_id: str | None = None) -> int:
        """Make every sync token (of one calendar, or all) answer 410; return how many calendars."""
        with self.lock:
            targets = (
                [self.calendars[calendar_id]] if calendar_id else list(self.calendars.values())
            )
            for calendar in targets:
                calendar.epoch += 1
            return len(targets)


def new_event_id() -> str:
    """A server-chosen id: 26 base32hex characters, like Google's."""
    alphabet = "0123456789abcdefghijklmnopqrstuv"
    return "".join(secrets.choice(alphabet) for _ in range(26))


def random_token(prefix: str, length: int = 48) -> str:
    return prefix + secrets.token_urlsafe(length)[:length]
