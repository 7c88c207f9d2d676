"""The Exchange Server provider client: EWS through exchangelib, behind ``CalendarClient``.

Every call runs through :meth:`EwsClient._call`, the EWS counterpart of ``HttpClient.request``:

- **retries**: exchangelib is given ``FailFast``, and the retrying is done here. exchangelib's
  ``FaultTolerance`` sleeps inside the call (holding our per-mailbox slot, and hiding the
  wait from every other process), keeps going for up to an hour by default (a Celery worker
  stuck that long), and treats a 401 as "busy" (a wrong password retried for an hour instead
  of reported). Here an ``ErrorServerBusy`` waits its ``BackOffMilliseconds`` outside the
  slot, shares it with every process through the limiter (``hold_off``) and retries up to
  ``RetryPolicy.max_attempts``; a wait longer than ``max_retry_after`` is raised as
  ``Throttled`` with ``retry_after`` for the task to retry later. A timeout or dropped
  connection is retried only for calls that are safe to repeat;
- **the per-mailbox limiter** (``integrations/limiter.py``) around every attempt, a batch
  counting each of its items;
- **CA bundle, timeout, request ids, no secrets in logs**: ``transport.py``.

Contracts:

- ``create_event`` is idempotent by looking first: EWS has no client-chosen item id and no
  transaction id, so a create first reads the calendar view at the event's own time with our
  tag and returns the event already there (a retry after a lost answer finds the first one).
  The item's iCalendar UID is set to ``creation_key`` (a uuid5 of the reservation) so both
  sides can recognise it, but EWS does not refuse a duplicate UID, so the look is the guard.
  Two creates of one reservation at once cannot happen: the push engine holds its link row.
- ``update_event`` sends the ChangeKey it was given as the version with
  ``ConflictResolution=NeverOverwrite``: a stale one is ``ErrorIrresolvableConflict`` ->
  ``VersionConflict``. Without a version it overwrites.
- ``delete_event`` moves the item to Deleted Items; an item already gone is success.
- ``changes`` is ``SyncFolderItems``: no token reads the whole folder (creates, kept when they
  touch [start, end)); the sync state comes back as ``sync_token``. The feed carries our tag
  (asked for as an additional property), so ``reads_tags_by_id`` is False; an invalid state
  raises ``SyncTokenExpired``.
- ``batch`` uses multi-item CreateItem / UpdateItem / DeleteItem (exchangelib's
  ``bulk_create`` / ``bulk_update`` / ``bulk_delete``), one ``BatchResult`` per op.
- ``free_busy`` is ``GetUserAvailability``; mailboxes it could not read are left out.
- There is no personal mode (``as_user``): EWS on-premises has no per-person consent.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from collections.abc import Callable, Iterator
from typing import Any, ClassVar, TypeVar

from exchangelib import (
    BASIC,
    DELEGATE,
    IMPERSONATION,
    NTLM,
    OAUTH2,
    Account,
    CalendarItem,
    Configuration,
    Credentials,
    EWSTimeZone,
    OAuth2Credentials,
)
from exchangelib import errors as ews
from exchangelib.folders import Calendar, FolderCollection
from exchangelib.items import (
    ALL_OCCURRENCES,
    ALWAYS_OVERWRITE,
    MOVE_TO_DELETED_ITEMS,
    NEVER_OVERWRITE,
    SAVE_ONLY,
    SEND_TO_ALL_AND_SAVE_COPY,
    SEND_TO_CHANGED_AND_SAVE_COPY,
    SEND_TO_NONE,
)
from exchangelib.properties import (
    DaylightTime,
    FreeBusyViewOptions,
    MailboxData,
    StandardTime,
    TimeWindow,
    TimeZone,
)
from exchangelib.protocol import FailFast
from exchangelib.services import GetUserAvailability, UpdateItem
from exchangelib.version import EXCHANGE_2016, EXCHANGE_2019, Version

from ..base import (
    BatchOp,
    BatchResult,
    CalendarInfo,
    CalendarRef,
    ChangePage,
    EventData,
    EventGone,
    PermanentError,
    ProviderConfig,
    ProviderError,
    RemoteEvent,
    Throttled,
    TransientError,
    UserCredentials,
)
from ..http import HttpClient, backoff
from . import mapping, transport
from .errors import (
    ITEM_GONE,
    MOVE_TO_MICROSOFT_365,
    ews_error,
    is_connection_error,
    is_exchange_online,
)
from .mapping import READ_FIELDS, TAG_FIELD, WRITE_FIELDS

log = logging.getLogger("integrations.ews")
T = TypeVar("T")

VERSIONS = {"2016": EXCHANGE_2016, "2019": EXCHANGE_2019, "se": EXCHANGE_2019}
AUTH_TYPES = {"ntlm": NTLM, "basic": BASIC, "oauth": OAUTH2}
SYNC_PAGE = 200  # SyncFolderItems MaxChangesReturned (EWS allows 1-512)
BATCH_CHUNK = 50  # items per multi-item request (registry: batch_size)
CREATE_LOOK_MARGIN = dt.timedelta(minutes=1)
MAX_VIEW = dt.timedelta(days=700)  # CalendarView spans at most two years
# GetUserAvailability asks in UTC: no daylight saving, so both transitions are the same. Built
# here rather than read with GetServerTimeZones (what exchangelib's helper does), which would
# cost a request per call.
_NO_SHIFT = {"bias": 0, "time": dt.time(0), "occurrence": 1, "iso_month": 1, "weekday": 1}
UTC_ZONE = TimeZone(
    bias=0, standard_time=StandardTime(**_NO_SHIFT), daylight_time=DaylightTime(**_NO_SHIFT)
)


class HybridOAuthCredentials(OAuth2Credentials):
    """Client credentials for Exchange hybrid modern auth: the token comes from the tenant's
    authority and is for the on-premises server's resource (``{resource}/.default``), not for
    Exchange Online, which exchangelib assumes."""

    def __init__(self, *, authority: str, resource: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.authority = authority.rstrip("/") or "https://login.microsoftonline.com"
        self.resource = resource.rstrip("/")

    @property
    def token_url(self) -> str:
        return f"{self.authority}/{self.tenant_id}/oauth2/v2.0/token"

    @property
    def scope(self) -> list[str]:
        return [f"{self.resource}/.default"]


class _UpdateItem(UpdateItem):
    """UpdateItem that returns a stale ChangeKey per item (exchangelib raises it, which would
    lose the answers of the other items of a multi-item request, applied all the same)."""

    ERRORS_TO_CATCH_IN_RESPONSE = (
        *UpdateItem.ERRORS_TO_CATCH_IN_RESPONSE,
        ews.ErrorIrresolvableConflict,
    )


def _update(account: Account, items: list[CalendarItem], resolution: str, send: str) -> list[Any]:
    """Multi-item UpdateItem of ``WRITE_FIELDS``: ``(id, changekey)`` or an exception each."""
    return list(
        account._consume_item_service(  # the engine of Account.bulk_update, with _UpdateItem
            service_cls=_UpdateItem,
            items=[(item, list(WRITE_FIELDS)) for item in items],
            chunk_size=None,
            kwargs={
                "conflict_resolution": resolution,
                "message_disposition": SAVE_ONLY,
                "send_meeting_invitations_or_cancellations": send,
                "suppress_read_receipts": True,
            },
        )
    )


def _invitations(data: EventData, *, update: bool) -> str:
    if not (data.attendees or data.resources):
        return SEND_TO_NONE
    return SEND_TO_CHANGED_AND_SAVE_COPY if update else SEND_TO_ALL_AND_SAVE_COPY


def _raise_returned(result: Any) -> Any:
    """exchangelib returns per-item failures of a multi-item call as exception objects."""
    if isinstance(result, BaseException):
        raise result
    return result


class EwsClient:
    """EWS calendars for one connection alias and credential alias."""

    kind = "ews"
    reads_tags_by_id: ClassVar[bool] = False
    window_moves_look_removed: ClassVar[bool] = False

    def __init__(self, config: ProviderConfig, http: HttpClient | None = None) -> None:
        self.config = config
        self.http = http or HttpClient(ca_bundle=config.ca_bundle, timeout=config.timeout)
        self.endpoint = config.api_base_url
        transport.install()
        mapping.register()
        transport.configure(self.endpoint, ca_bundle=config.ca_bundle, timeout=config.timeout)
        self._configuration: Configuration | None = None
        self._accounts: dict[str, Account] = {}
        self._folders: dict[tuple[str, str], Any] = {}  # (mailbox, folder id) -> folder

    # -- plumbing ------------------------------------------------------------------------

    def _config(self) -> Configuration:
        if self._configuration is None:
            config = self.config
            auth = AUTH_TYPES.get(config.auth_method or "ntlm")
            if auth is None:
                raise PermanentError(
                    f"Unknown authentication {config.auth_method!r} in the credential alias.",
                    code="bad_config",
                )
            if auth == OAUTH2:
                credentials: Any = HybridOAuthCredentials(
                    authority=config.authority_url,
                    resource=config.resource_url,
                    client_id=config.client_id,
                    client_secret=config.client_secret,
                    tenant_id=config.tenant_id,
                )
            else:
                credentials = Credentials(config.username, config.password)
            build = VERSIONS.get(config.server_version)
            self._configuration = Configuration(
                service_endpoint=self.endpoint,
                credentials=credentials,
                auth_type=auth,
                version=Version(build=build) if build else None,
                retry_policy=FailFast(),
                max_connections=self._limits_in_flight(),
            )
        return self._configuration

    def _limits_in_flight(self) -> int:
        limiter = self.http.limiter
        return limiter.limits.max_in_flight if limiter is not None else 4

    def _account(self, mailbox: str) -> Account:
        if is_exchange_online(self.endpoint):
            # Nothing is sent: EWS is blocked there, and the password has no business there.
            raise PermanentError(MOVE_TO_MICROSOFT_365, code="exchange_online")
        key = mailbox.lower()
        account = self._accounts.get(key)
        if account is None:
            account = Account(
                primary_smtp_address=mailbox,
                config=self._config(),
                autodiscover=False,
                access_type=IMPERSONATION if self.config.impersonation else DELEGATE,
            )
            self._accounts[key] = account
        return account

    def _limit_key(self, mailbox: str) -> str:
        return f"ews:{self.endpoint.lower()}:{mailbox.lower()}"

    @contextlib.contextmanager
    def _slot(self, mailbox: str, items: int) -> Iterator[None]:
        limiter = self.http.limiter
        if limiter is None:
            yield
            return
        with limiter.slot(self._limit_key(mailbox), items):
            yield

    def _call(
        self,
        mailbox: str,
        work: Callable[[Account], T],
        *,
        idempotent: bool = True,
        items: int = 1,
        event: bool = False,
    ) -> T:
        """Run ``work(account)`` with the limiter, retries and error mapping (module doc)."""
        policy = self.http.policy
        for attempt in range(1, policy.max_attempts + 1):
            transport.reset_status()
            try:
                with self._slot(mailbox, items):
                    return work(self._account(mailbox))
            except ProviderError:
                raise
            except ews.ErrorServerBusy as exc:
                if _outcome_unknown(exc):
                    if idempotent and attempt < policy.max_attempts:
                        self.http.sleep(backoff(attempt, policy))
                        continue
                    raise TransientError(
                        f"{transport.describe(self.endpoint)} did not answer ({mailbox}).",
                        code="network",
                    ) from exc
                wait = exc.back_off if exc.back_off else backoff(attempt, policy)
                self.http.hold_off(self._limit_key(mailbox), wait)
                log.warning("EWS busy for %s: back off %.1f s (attempt %d)", mailbox, wait, attempt)
                if attempt < policy.max_attempts and wait <= policy.max_retry_after:
                    self.http.sleep(wait)
                    continue
                raise Throttled(
                    f"Exchange is throttling requests ({mailbox}) after {attempt} attempt(s).",
                    code="ErrorServerBusy",
                    retry_after=wait,
                ) from exc
            except Exception as exc:
                if not isinstance(exc, ews.EWSError | OSError):
                    raise
                if is_connection_error(exc) and idempotent and attempt < policy.max_attempts:
                    log.warning(
                        "EWS call for %s failed (%s), retrying", mailbox, type(exc).__name__
                    )
                    self.http.sleep(backoff(attempt, policy))
                    continue
                raise ews_error(
                    exc,
                    endpoint=self.endpoint,
                    mailbox=mailbox,
                    event=event,
                    status=transport.last_status(),
                ) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def _folder(self, account: Account, ref: CalendarRef) -> Any:
        """The calendar ``ref`` names: its folder id, else the connection's folder name under
        the mailbox's calendar, else the calendar itself."""
        if ref.calendar_id:
            key = (ref.mailbox.lower(), ref.calendar_id)
            folder = self._folders.get(key)
            if folder is None:
                wanted = Calendar(root=account.root, id=ref.calendar_id)
                resolved = FolderCollection(account=account, folders=[wanted]).resolve()
                folder = self._folders[key] = _raise_returned(next(iter(resolved)))
            return folder
        if self.config.folder:
            return account.calendar / self.config.folder
        return account.calendar

    @staticmethod
    def _ref(ref: CalendarRef | str) -> CalendarRef:
        # The engine passes a CalendarRef; the admin's test path passed a bare mailbox before
        # the Protocol (issue 17) and may still, so both are read.
        return CalendarRef(ref) if isinstance(ref, str) else ref

    @staticmethod
    def _personal(as_user: UserCredentials | None) -> None:
        if as_user is not None:
            raise PermanentError(
                "Exchange Server (EWS) has no personal mode: events are written as the sync "
                "user. Use normal or strict sync mode.",
                code="no_personal_mode",
            )

    # -- calendars -------------------------------------------------------------------------

    def test_connection(self, ref: CalendarRef) -> None:
        """Sign in, check the server is Exchange 2016 or newer, open the calendar of
        ``ref.mailbox`` (as impersonation or delegate access would) and read a day of it."""
        ref = self._ref(ref)

        def probe(account: Account) -> None:
            build = account.version.build
            if build is not None and build < EXCHANGE_2016:
                raise PermanentError(
                    f"The server runs Exchange build {build}, older than Exchange 2016. "
                    "Reserva supports Exchange Server 2016, 2019 and Subscription Edition.",
                    code="old_server",
                )
            folder = self._folder(account, ref)
            now = dt.datetime.now(dt.UTC)
            list(
                folder.view(
                    start=mapping.ews_time(now, "UTC"),
                    end=mapping.ews_time(now + dt.timedelta(days=1), "UTC"),
                ).only("id", "changekey")
            )

        self._call(ref.mailbox, probe)

    def list_calendars(
        self, ref: CalendarRef, as_user: UserCredentials | None = None
    ) -> list[CalendarInfo]:
        """The mailbox's calendar (the folder Reserva writes to, named by the connection)."""
        self._personal(as_user)
        ref = self._ref(ref)

        def read(account: Account) -> list[CalendarInfo]:
            folder = self._folder(account, CalendarRef(ref.mailbox))
            return [
                CalendarInfo(
                    id=str(folder.id),
                    name=str(folder.name or "Calendar"),
                    owner_email=ref.mailbox,
                    is_default=not self.config.folder,
                )
            ]

        return self._call(ref.mailbox, read)

    # -- events ----------------------------------------------------------------------------

    def get_event(
        self, ref: CalendarRef, event_id: str, as_user: UserCredentials | None = None
    ) -> RemoteEvent:
        self._personal(as_user)

        def read(account: Account) -> RemoteEvent:
            (item,) = account.fetch(ids=[(event_id, None)], only_fields=list(READ_FIELDS))
            return mapping.parse_item(_raise_returned(item))

        return self._call(ref.mailbox, read, event=True)

    def read_events(
        self, ref: CalendarRef, event_ids: list[str], as_user: UserCredentials | None = None
    ) -> dict[str, RemoteEvent | None]:
        self._personal(as_user)
        if not event_ids:
            return {}

        def read(account: Account) -> dict[str, RemoteEvent | None]:
            found = account.fetch(ids=[(i, None) for i in event_ids], only_fields=list(READ_FIELDS))
            result: dict[str, RemoteEvent | None] = {}
            for event_id, item in zip(event_ids, found, strict=True):
                if isinstance(item, ITEM_GONE):
                    result[event_id] = None
                else:
                    result[event_id] = mapping.parse_item(_raise_returned(item))
            return result

        return self._call(ref.mailbox, read, items=len(event_ids))

    def _tagged_between(
        self, folder: Any, start: dt.datetime, end: dt.datetime, wanted: set[int]
    ) -> dict[int, Any]:
        """Our tagged items in the calendar view [start, end) whose tag is in ``wanted``."""
        view = folder.view(
            start=mapping.ews_time(start - CREATE_LOOK_MARGIN, "UTC"),
            end=mapping.ews_time(end + CREATE_LOOK_MARGIN, "UTC"),
        ).only(*READ_FIELDS)
        found: dict[int, Any] = {}
        for item in view:
            tag = mapping.parse_item(item).reservation_id
            if tag in wanted and tag not in found:
                found[tag] = item
        return found

    def _existing(self, folder: Any, creates: list[EventData]) -> dict[int, Any]:
        if not creates:
            return {}
        wanted = {d.reservation_id for d in creates}
        start, end = min(d.start for d in creates), max(d.end for d in creates)
        if end - start <= MAX_VIEW:
            return self._tagged_between(folder, start, end, wanted)
        found: dict[int, Any] = {}
        for data in creates:
            found.update(self._tagged_between(folder, data.start, data.end, {data.reservation_id}))
        return found

    def _create_items(self, ref: CalendarRef, creates: list[tuple[str, EventData]]) -> dict:
        """``{key: RemoteEvent or exception}``: events already tagged at their time are taken
        as they are, the rest made with one multi-item CreateItem. Each request retries on its
        own (a busy server processed nothing); a CreateItem whose answer was lost is looked for
        again before the rest is created once more."""
        results: dict[str, Any] = {}
        pending = list(creates)
        for round_ in range(2):
            datas = [d for _, d in pending]
            existing = self._call(
                ref.mailbox,
                lambda account, datas=datas: self._existing(self._folder(account, ref), datas),
            )
            rest = []
            for key, data in pending:
                found = existing.get(data.reservation_id)
                if found is not None:
                    log.info("EWS create of reservation %s: made already", data.reservation_id)
                    results[key] = mapping.parse_item(found)
                else:
                    rest.append((key, data))
            if not rest:
                break

            def create(account: Account, rest: list = rest) -> list[Any]:
                folder = self._folder(account, ref)
                items = [
                    CalendarItem(
                        account=account,
                        folder=folder,
                        uid=mapping.creation_key(data.reservation_id),
                        **mapping.item_fields(data),
                    )
                    for _, data in rest
                ]
                send = (
                    _invitations(rest[0][1], update=False)
                    if len(rest) == 1
                    else SEND_TO_ALL_AND_SAVE_COPY
                )
                made = account.bulk_create(
                    folder=folder,
                    items=items,
                    message_disposition=SAVE_ONLY,
                    send_meeting_invitations=send,
                )
                answers: list[Any] = []
                for (_, data), item, result in zip(rest, items, made, strict=True):
                    if isinstance(result, BaseException):
                        answers.append(result)
                        continue
                    item.id, item.changekey = result.id, result.changekey
                    answers.append(mapping.parse_item(item, reservation_id=data.reservation_id))
                return answers

            try:
                made = self._call(ref.mailbox, create, idempotent=False, items=len(rest))
            except TransientError as error:
                if error.code != "network" or round_:
                    raise
                pending = rest  # the outcome is unknown: look again, then create what is missing
                continue
            results.update({key: answer for (key, _), answer in zip(rest, made, strict=True)})
            break
        return results

    def create_event(
        self, ref: CalendarRef, data: EventData, as_user: UserCredentials | None = None
    ) -> RemoteEvent:
        """Create idempotently: look for our tag at the event's time first (module doc)."""
        self._personal(as_user)
        (answer,) = self._create_items(ref, [("create", data)]).values()
        if isinstance(answer, BaseException):
            raise ews_error(answer, endpoint=self.endpoint, mailbox=ref.mailbox)
        return answer

    def _prepared_update(
        self, account: Account, folder: Any, event_id: str, data: EventData, version: str
    ) -> CalendarItem:
        return CalendarItem(
            account=account,
            folder=folder,
            id=event_id,
            changekey=version or None,
            **mapping.item_fields(data),
        )

    def _current_keys(self, account: Account, event_ids: list[str]) -> list[Any]:
        """The current change key of each id (or the exception for a missing item)."""
        found = account.fetch(ids=[(i, None) for i in event_ids], only_fields=["changekey"])
        return [item if isinstance(item, BaseException) else item.changekey for item in found]

    def update_event(
        self,
        ref: CalendarRef,
        event_id: str,
        data: EventData,
        version: str = "",
        as_user: UserCredentials | None = None,
    ) -> RemoteEvent:
        """Replace; a ``version`` (ChangeKey) no longer current raises ``VersionConflict``."""
        self._personal(as_user)

        key = version or self._call(
            ref.mailbox,
            lambda account: _raise_returned(self._current_keys(account, [event_id])[0]),
            event=True,
        )

        def update(account: Account) -> RemoteEvent:
            folder = self._folder(account, ref)
            item = self._prepared_update(account, folder, event_id, data, key)
            (result,) = _update(
                account,
                [item],
                NEVER_OVERWRITE if version else ALWAYS_OVERWRITE,
                _invitations(data, update=True),
            )
            item.id, item.changekey = _raise_returned(result)
            return mapping.parse_item(item, reservation_id=data.reservation_id)

        # A replay with a version after a lost answer would conflict with our own change.
        return self._call(ref.mailbox, update, idempotent=not version, event=True)

    def delete_event(
        self,
        ref: CalendarRef,
        event_id: str,
        version: str = "",
        as_user: UserCredentials | None = None,
    ) -> None:
        """Move to Deleted Items (cancelling it for attendees); an item already gone is
        success."""
        self._personal(as_user)

        def delete(account: Account) -> None:
            (result,) = account.bulk_delete(
                ids=[(event_id, version or None)],
                delete_type=MOVE_TO_DELETED_ITEMS,
                send_meeting_cancellations=SEND_TO_ALL_AND_SAVE_COPY,
                affected_task_occurrences=ALL_OCCURRENCES,
                suppress_read_receipts=True,
            )
            _raise_returned(result)

        try:
            self._call(ref.mailbox, delete, event=True)
        except EventGone:
            return

    @staticmethod
    def creation_key(reservation_id: int) -> str:
        """The create's key: the item's iCalendar UID (a uuid5 of the reservation id)."""
        return mapping.creation_key(reservation_id)

    @staticmethod
    def made_by_create(event_id: str, key: str) -> bool:
        """Never from the id: EWS item ids are the server's (the tag is in the feed)."""
        return False

    def find_by_reservation(
        self, ref: CalendarRef, reservation_id: int, as_user: UserCredentials | None = None
    ) -> RemoteEvent | None:
        """The item tagged ``reservation_id`` (the oldest): FindItem with a restriction on
        our extended property."""
        self._personal(as_user)

        def find(account: Account) -> RemoteEvent | None:
            folder = self._folder(account, ref)
            query = folder.filter(**{TAG_FIELD: str(int(reservation_id))}).only(*READ_FIELDS)
            items = list(query)
            if not items:
                return None
            oldest = min(items, key=lambda i: (i.datetime_created is None, i.datetime_created))
            return mapping.parse_item(oldest)

        return self._call(ref.mailbox, find)

    def tagged_events(
        self,
        ref: CalendarRef,
        start: dt.datetime,
        end: dt.datetime,
        as_user: UserCredentials | None = None,
    ) -> list[RemoteEvent] | None:
        """None: SyncFolderItems carries the tag, so the caller reads the feed."""
        return None

    # -- sync ------------------------------------------------------------------------------

    def changes(
        self,
        ref: CalendarRef,
        token: str | None,
        start: dt.datetime,
        end: dt.datetime,
        as_user: UserCredentials | None = None,
    ) -> ChangePage:
        """SyncFolderItems since ``token`` (all pages), or the whole folder without one."""
        self._personal(as_user)

        def read(account: Account) -> ChangePage:
            folder = self._folder(account, ref)
            folder.item_sync_state = token or None  # the folder object is cached per account
            events: list[RemoteEvent] = []
            for change, item in folder.sync_items(
                sync_state=token or None,
                only_fields=list(READ_FIELDS),
                max_changes_returned=SYNC_PAGE,
            ):
                if change == "delete":
                    events.append(mapping.removed(str(item.id)))
                    continue
                if change not in ("create", "update"):
                    continue  # read-flag changes
                event = mapping.parse_item(item)
                if not token and not _touches(event, start, end):
                    continue
                events.append(event)
            return ChangePage(events=events, sync_token=folder.item_sync_state)

        return self._call(ref.mailbox, read)

    def batch(
        self, ref: CalendarRef, ops: list[BatchOp], as_user: UserCredentials | None = None
    ) -> list[BatchResult]:
        """Multi-item CreateItem, UpdateItem and DeleteItem; one result per op, in order."""
        self._personal(as_user)
        results: dict[str, BatchResult] = {}
        for offset in range(0, len(ops), BATCH_CHUNK):
            chunk = ops[offset : offset + BATCH_CHUNK]
            try:
                results.update(self._batch_chunk(ref, chunk))
            except ProviderError as error:
                for op in chunk:
                    results.setdefault(op.key, BatchResult(op.key, error=error))
        return [results[op.key] for op in ops]

    def _batch_chunk(self, ref: CalendarRef, ops: list[BatchOp]) -> dict[str, BatchResult]:
        """One chunk, in phases (creates, updates, deletes), each request retried on its own."""
        out: dict[str, BatchResult] = {}

        def record(op: BatchOp, answer: Any) -> None:
            if isinstance(answer, BaseException):
                error = ews_error(answer, endpoint=self.endpoint, mailbox=ref.mailbox, event=True)
                if op.action == "delete" and isinstance(error, EventGone):
                    out[op.key] = BatchResult(op.key)
                else:
                    out[op.key] = BatchResult(op.key, error=error)
            else:
                out[op.key] = BatchResult(op.key, event=answer)

        creates = [op for op in ops if op.action == "create" and op.data is not None]
        updates = [op for op in ops if op.action == "update" and op.data is not None]
        deletes = [op for op in ops if op.action == "delete"]
        for op in ops:
            if op not in creates and op not in updates and op not in deletes:
                out[op.key] = BatchResult(
                    op.key, error=PermanentError(f"Unknown batch action {op.action!r}.")
                )
        if creates:
            made = self._create_items(ref, [(op.key, op.data) for op in creates if op.data])
            for op in creates:
                record(op, made[op.key])
        if updates:
            unversioned = [op for op in updates if not op.version]
            keys: dict[str, Any] = {op.key: op.version for op in updates if op.version}
            if unversioned:
                current = self._call(
                    ref.mailbox,
                    lambda account: self._current_keys(
                        account, [op.event_id for op in unversioned]
                    ),
                    items=len(unversioned),
                )
                keys.update(zip([op.key for op in unversioned], current, strict=True))
            for resolution, group in (
                (NEVER_OVERWRITE, [op for op in updates if op.version]),
                (ALWAYS_OVERWRITE, unversioned),
            ):
                ready = []
                for op in group:
                    if isinstance(keys[op.key], BaseException):
                        record(op, keys[op.key])
                    else:
                        ready.append(op)
                if not ready:
                    continue

                def update(account: Account, ready: list = ready, resolution: str = resolution):
                    folder = self._folder(account, ref)
                    prepared = [
                        self._prepared_update(account, folder, op.event_id, op.data, keys[op.key])
                        for op in ready
                    ]
                    answers = _update(account, prepared, resolution, SEND_TO_CHANGED_AND_SAVE_COPY)
                    events: list[Any] = []
                    for op, item, result in zip(ready, prepared, answers, strict=True):
                        if isinstance(result, BaseException):
                            events.append(result)
                            continue
                        item.id, item.changekey = result
                        events.append(
                            mapping.parse_item(item, reservation_id=op.data.reservation_id)
                        )
                    return events

                # A versioned update replayed after a lost answer would meet itself.
                answers = self._call(
                    ref.mailbox,
                    update,
                    idempotent=resolution == ALWAYS_OVERWRITE,
                    items=len(ready),
                )
                for op, answer in zip(ready, answers, strict=True):
                    record(op, answer)
        if deletes:
            answers = self._call(
                ref.mailbox,
                lambda account: account.bulk_delete(
                    ids=[(op.event_id, op.version or None) for op in deletes],
                    delete_type=MOVE_TO_DELETED_ITEMS,
                    send_meeting_cancellations=SEND_TO_ALL_AND_SAVE_COPY,
                    affected_task_occurrences=ALL_OCCURRENCES,
                    suppress_read_receipts=True,
                ),
                items=len(deletes),
            )
            for op, answer in zip(deletes, answers, strict=True):
                record(op, answer if isinstance(answer, BaseException) else None)
        return out

    def free_busy(
        self,
        refs: list[CalendarRef],
        start: dt.datetime,
        end: dt.datetime,
        as_user: UserCredentials | None = None,
    ) -> dict[CalendarRef, list[tuple[dt.datetime, dt.datetime]]]:
        """GetUserAvailability for the refs' mailboxes, asked as the sync user; busy,
        tentative and out-of-office intervals in UTC; mailboxes in error left out."""
        self._personal(as_user)
        if not refs:
            return {}
        caller = self.config.account_email or refs[0].mailbox

        def read(account: Account) -> dict[CalendarRef, list[tuple[dt.datetime, dt.datetime]]]:
            views = GetUserAvailability(account.protocol).call(
                tzinfo=EWSTimeZone("UTC"),
                mailbox_data=[
                    MailboxData(
                        email=ref.mailbox, attendee_type="Required", exclude_conflicts=False
                    )
                    for ref in refs
                ],
                timezone=UTC_ZONE,
                free_busy_view_options=FreeBusyViewOptions(
                    time_window=TimeWindow(
                        start=mapping.ews_time(start, "UTC"), end=mapping.ews_time(end, "UTC")
                    ),
                    merged_free_busy_interval=15,
                    requested_view="FreeBusy",
                ),
            )
            result: dict[CalendarRef, list[tuple[dt.datetime, dt.datetime]]] = {}
            for ref, view in zip(refs, views, strict=True):
                if isinstance(view, BaseException):
                    log.info("EWS free/busy of %s unreadable: %s", ref.mailbox, type(view).__name__)
                    continue
                busy = [
                    (mapping.utc(event.start), mapping.utc(event.end))
                    for event in view.calendar_events or []
                    if str(event.busy_type) not in ("Free", "NoData", "WorkingElsewhere")
                ]
                result[ref] = sorted(busy)
            return result

        return self._call(caller, read, items=len(refs))


def _outcome_unknown(exc: ews.ErrorServerBusy) -> bool:
    """exchangelib turns a timeout or dropped connection into ``ErrorServerBusy("Reraised from
    ErrorTimeoutExpired...")`` once it holds more than one session: the request may have been
    processed, so it is not the server's "busy, nothing done" and a write is not replayed."""
    return "ErrorTimeoutExpired" in str(exc)


def _touches(event: RemoteEvent, start: dt.datetime, end: dt.datetime) -> bool:
    if event.start is None or event.end is None:
        return True
    return event.start < end and event.end > start
