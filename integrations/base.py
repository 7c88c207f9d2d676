"""The provider interface: neutral dataclasses and error classes.

Provider clients (``integrations/microsoft``, ``integrations/google``) take plain values and
return these dataclasses; the sync engine in ``calendars`` never sees a provider's JSON.

Errors say whether they are permanent. A permanent error (token revoked or expired, consent
missing, calendar gone) pauses the binding or the user's sync and alerts someone; retrying
cannot help. A transient one (throttled, 5xx, timeout) is retried with backoff, after
``retry_after`` seconds when the provider said so. ``SyncTokenExpired`` is neither: the caller
falls back to one full resync.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


class ProviderError(Exception):
    """Base class. ``message`` is safe to show an administrator: it never holds a secret."""

    permanent: bool = False

    def __init__(self, message: str, *, status: int | None = None, code: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code


class PermanentError(ProviderError):
    permanent = True


class AuthenticationFailed(PermanentError):
    """Wrong client secret, unknown tenant or client, bad service-account key."""


class TokenRevoked(PermanentError):
    """A refresh token or grant expired or was revoked: someone must reconnect."""


class ConsentMissing(PermanentError):
    """The app lacks a permission or admin consent, or an access policy refuses the mailbox."""


class CalendarGone(PermanentError):
    """The mailbox or calendar does not exist (any more)."""


class TlsError(PermanentError):
    """The provider's certificate is not trusted (wrong CA bundle, interception proxy)."""


class EndpointRefused(PermanentError):
    """Reserva refused to contact a configured endpoint (not allowed by the deployment): raised
    before anything, a credential least of all, was sent. An administrator must fix it."""


class TransientError(ProviderError):
    """Worth retrying later; ``retry_after`` is the provider's hint in seconds, if any."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str = "",
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, status=status, code=code)
        self.retry_after = retry_after


class Throttled(TransientError):
    """429 (or Google's 403 rateLimitExceeded), or the local limiter's wait ran out."""


class SyncTokenExpired(ProviderError):
    """The delta link / sync token was rejected; do one full resync."""


class VersionConflict(ProviderError):
    """The event changed remotely since ``version`` was read (HTTP 412 on If-Match).

    Neither permanent nor worth retrying as is: re-read the event, then decide.
    """


class EventGone(ProviderError):
    """The event itself no longer exists (404/410 on an event); the calendar is fine."""


@dataclass(frozen=True)
class EventData:
    """What Reserva writes to a remote calendar for one reservation."""

    reservation_id: int
    subject: str
    start: datetime  # aware
    end: datetime  # aware
    body: str = ""
    location: str = ""
    time_zone: str = "UTC"  # IANA name of the space's location
    attendees: tuple[str, ...] = ()  # emails invited as required attendees
    resources: tuple[str, ...] = ()  # room / resource emails invited as resources
    tentative: bool = False  # held but not settled (awaiting approval): shown as tentative


@dataclass(frozen=True)
class RemoteEvent:
    """An event as a provider returned it, in neutral terms (times aware, in UTC)."""

    id: str
    ical_uid: str = ""
    version: str = ""  # Graph changeKey / Google etag
    subject: str = ""
    start: datetime | None = None
    end: datetime | None = None
    is_all_day: bool = False
    organizer_email: str = ""
    organizer_name: str = ""
    reservation_id: int | None = None  # our tag, when Reserva wrote the event
    status: str = "confirmed"  # confirmed | tentative | cancelled
    removed: bool = False  # deleted remotely (delta @removed, Google status=cancelled)
    resource_response: str = ""  # accepted | declined | tentative | none, for invited rooms
    series_id: str = ""  # the recurring master's id, for occurrences and exceptions


@dataclass
class ChangePage:
    """One page of remote changes and where to continue."""

    events: list[RemoteEvent] = field(default_factory=list)
    next_page: str | None = None  # more pages follow: pass this back
    sync_token: str | None = None  # last page: keep this for the next incremental pull


@dataclass(frozen=True)
class BatchResult:
    """The outcome of one item of a batch, matched by the caller's ``key``."""

    key: str
    event: RemoteEvent | None = None
    error: ProviderError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class ProviderConfig:
    """Plain values from a connection alias and a credential alias (no ORM here)."""

    kind: str  # "microsoft" | "google"
    authority_url: str  # Microsoft: authority host (tenant appended); Google: token URL
    authorization_url: str
    api_base_url: str
    tenant_id: str = ""
    # Google only: the batch endpoint; empty = derived from the API base URL (discovery's
    # ``batchPath``), which a gateway that rewrites paths may not serve.
    batch_url: str = ""
    client_id: str = ""
    client_secret: str = field(default="", repr=False)
    service_account_key: dict | None = field(default=None, repr=False)
    scopes: tuple[str, ...] = ()
    delegated_user: str = ""  # Google: whom the service account impersonates
    ca_bundle: str | None = None
    timeout: float = 30.0


@dataclass(frozen=True)
class CalendarRef:
    """One remote calendar: the mailbox it belongs to and its id there.

    An empty ``calendar_id`` is the mailbox's default calendar. Which of the two a provider's
    API needs to name the calendar is the registry's ``ProviderSpec.call_args``.
    """

    mailbox: str
    calendar_id: str = ""


@dataclass(frozen=True)
class CalendarInfo:
    id: str
    name: str
    owner_email: str = ""
    can_edit: bool = True
    is_default: bool = False


@dataclass(frozen=True)
class BatchOp:
    """One write in a batch: ``action`` is create, update or delete."""

    key: str  # the caller's id for matching results (e.g. the reservation id)
    action: str
    data: EventData | None = None
    event_id: str = ""
    version: str = ""  # If-Match for updates, when known


@dataclass
class TokenGrant:
    """What a completed user authorization gives back, ready to store (encrypted)."""

    account_email: str
    token: dict = field(repr=False)  # msal cache or Google authorized-user info, JSON-able
    expires_at: datetime | None = None
    scopes: tuple[str, ...] = ()


@dataclass
class UserCredentials:
    """A person's stored token, passed to a client to act as that person.

    The client may refresh it; when the token material changes it sets ``changed`` and puts
    the new material in ``token``, and the caller writes it back (encrypted, under a row lock).
    """

    account_email: str
    token: dict = field(repr=False)
    changed: bool = False
