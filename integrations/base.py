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
from typing import ClassVar, Protocol


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

    kind: str  # "microsoft" | "google" | "ews"
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
    # Exchange Server (EWS) only; ``api_base_url`` is the EWS URL (…/EWS/Exchange.asmx).
    auth_method: str = ""  # "ntlm" | "basic" | "oauth" (hybrid modern auth)
    username: str = ""  # NTLM: DOMAIN\\user or user@domain; Basic: the sign-in name
    password: str = field(default="", repr=False)
    resource_url: str = ""  # OAuth: the Exchange server's resource (https://mail.example.com)
    account_email: str = ""  # the sync user's primary SMTP address
    impersonation: bool = True  # ApplicationImpersonation; False: delegate / Full Access
    server_version: str = ""  # "" = detect, "2016", "2019", "se"
    folder: str = ""  # a calendar folder's name under the mailbox's calendar; "" = the calendar


@dataclass(frozen=True)
class CalendarRef:
    """One remote calendar: the mailbox it belongs to and its id there.

    An empty ``calendar_id`` is the mailbox's default calendar. Each client takes from it what
    its API needs to name the calendar (see :class:`CalendarClient`); the id naming a room's
    own calendar when none is bound is the registry's ``ProviderSpec.default_calendar_id``.
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


class CalendarClient(Protocol):
    """What every provider's client offers the sync engine, with the same signatures.

    A client is built from a :class:`ProviderConfig` and an ``integrations.http.HttpClient``
    (``Client(config, http)``). Every call names its calendar with a :class:`CalendarRef`;
    the client takes what its API needs from it (Graph the mailbox and the calendar id, Google
    the calendar id, EWS the mailbox and the folder). ``as_user`` acts as a person (personal
    mode) instead of with the application's credentials. Failures raise the errors above.

    Two class attributes describe the change feed, so that the engine never asks which
    provider it talks to:

    - ``reads_tags_by_id``: the change feed does not carry Reserva's tag, and ``read_events``
      reads it by id (Graph's delta cannot expand extended properties); otherwise
      ``read_events`` is not needed and may raise ``NotImplementedError``;
    - ``window_moves_look_removed``: the feed reports an event moved out of the sync window as
      removed (Graph's calendarView delta), so a removal must be checked before it is believed.
    """

    reads_tags_by_id: ClassVar[bool]
    window_moves_look_removed: ClassVar[bool]

    def test_connection(self, ref: CalendarRef) -> None:
        """Get a token and read (and, where the API tells, check write access to) ``ref``."""
        ...

    def list_calendars(
        self, ref: CalendarRef, as_user: UserCredentials | None = None
    ) -> list[CalendarInfo]:
        """The calendars of ``ref.mailbox`` (``ref.calendar_id`` is ignored)."""
        ...

    def get_event(
        self, ref: CalendarRef, event_id: str, as_user: UserCredentials | None = None
    ) -> RemoteEvent: ...

    def create_event(
        self, ref: CalendarRef, data: EventData, as_user: UserCredentials | None = None
    ) -> RemoteEvent:
        """Create idempotently: a retry after a lost answer must not make a second event."""
        ...

    def update_event(
        self,
        ref: CalendarRef,
        event_id: str,
        data: EventData,
        version: str = "",
        as_user: UserCredentials | None = None,
    ) -> RemoteEvent:
        """Replace; a ``version`` that is no longer current raises ``VersionConflict``."""
        ...

    def delete_event(
        self,
        ref: CalendarRef,
        event_id: str,
        version: str = "",
        as_user: UserCredentials | None = None,
    ) -> None:
        """Delete; an event already gone is success."""
        ...

    def find_by_reservation(
        self, ref: CalendarRef, reservation_id: int, as_user: UserCredentials | None = None
    ) -> RemoteEvent | None:
        """The live event carrying Reserva's tag for ``reservation_id`` (the oldest)."""
        ...

    def tagged_events(
        self,
        ref: CalendarRef,
        start: datetime,
        end: datetime,
        as_user: UserCredentials | None = None,
    ) -> list[RemoteEvent] | None:
        """Every event in [start, end) with the tag read, where the change feed does not carry
        it; None where it does (the caller reads the feed instead)."""
        ...

    def read_events(
        self, ref: CalendarRef, event_ids: list[str], as_user: UserCredentials | None = None
    ) -> dict[str, RemoteEvent | None]:
        """``{id: event}`` with the tag read; None for an event that no longer exists."""
        ...

    def changes(
        self,
        ref: CalendarRef,
        token: str | None,
        start: datetime,
        end: datetime,
        as_user: UserCredentials | None = None,
    ) -> ChangePage:
        """One page: a full read of [start, end) without ``token``, else changes since it."""
        ...

    def batch(
        self, ref: CalendarRef, ops: list[BatchOp], as_user: UserCredentials | None = None
    ) -> list[BatchResult]:
        """Creates, updates and deletes in the provider's batches; one result per op."""
        ...

    def free_busy(
        self,
        refs: list[CalendarRef],
        start: datetime,
        end: datetime,
        as_user: UserCredentials | None = None,
    ) -> dict[CalendarRef, list[tuple[datetime, datetime]]]:
        """Busy intervals per calendar, in UTC; calendars that could not be read left out."""
        ...

    @staticmethod
    def creation_key(reservation_id: int) -> str:
        """The idempotency key a create of this reservation sends."""
        ...

    @staticmethod
    def made_by_create(event_id: str, key: str) -> bool:
        """Whether the event's id shows it was made by the create with ``key``."""
        ...
