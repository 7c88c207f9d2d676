"""The plumbing of the EWS client: exchangelib configured, accounts, and the one call path.

Every request runs through :meth:`EwsConnection._call`, the EWS counterpart of
``HttpClient.request``:

- **retries**: exchangelib is given ``FailFast``, and the retrying is done here. exchangelib's
  ``FaultTolerance`` sleeps inside the call (holding our per-mailbox slot, and hiding the
  wait from every other process), keeps going for up to an hour by default (a Celery worker
  stuck that long), and treats a 401 as "busy" (a wrong password retried for an hour instead
  of reported). Here an ``ErrorServerBusy`` waits its ``BackOffMilliseconds`` outside the
  slot, shares it with every process through the limiter (``hold_off``) and retries up to
  ``RetryPolicy.max_attempts``; a wait longer than ``max_retry_after`` is raised as
  ``Throttled`` with ``retry_after`` for the task to retry later. A timeout or dropped
  connection is retried only for calls that are safe to repeat. Each call is one request
  (or one read and the write that follows it), so a retry never replays more than it must;
- **the per-mailbox limiter** (``integrations/limiter.py``) around every attempt, a batch
  counting each of its items;
- **CA bundle, timeout, request ids, no secrets in logs**: ``transport.py``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

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
    OAuth2Credentials,
)
from exchangelib import errors as ews
from exchangelib.folders import SHALLOW as SHALLOW_FOLDERS
from exchangelib.folders import Calendar, FolderCollection, SingleFolderQuerySet
from exchangelib.items import (
    SAVE_ONLY,
    SEND_TO_ALL_AND_SAVE_COPY,
    SEND_TO_CHANGED_AND_SAVE_COPY,
    SEND_TO_NONE,
)
from exchangelib.protocol import FailFast
from exchangelib.services import UpdateItem
from exchangelib.version import EXCHANGE_2016, EXCHANGE_2019, Version

from ..base import (
    CalendarGone,
    CalendarRef,
    EventData,
    PermanentError,
    ProviderConfig,
    ProviderError,
    Throttled,
    TransientError,
    UserCredentials,
)
from ..http import HttpClient, backoff
from . import mapping, transport
from .errors import (
    MOVE_TO_MICROSOFT_365,
    ews_error,
    is_connection_error,
    is_exchange_online,
)
from .mapping import READ_FIELDS, WRITE_FIELDS

log = logging.getLogger("integrations.ews")
T = TypeVar("T")

VERSIONS = {"2016": EXCHANGE_2016, "2019": EXCHANGE_2019, "se": EXCHANGE_2019}
AUTH_TYPES = {"ntlm": NTLM, "basic": BASIC, "oauth": OAUTH2}
CREATE_LOOK_MARGIN = dt.timedelta(minutes=1)
MAX_VIEW = dt.timedelta(days=700)  # CalendarView spans at most two years


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


def update_items(
    account: Account, items: list[CalendarItem], resolution: str, send: str
) -> list[Any]:
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


def invitations(data: EventData, *, update: bool) -> str:
    if not (data.attendees or data.resources):
        return SEND_TO_NONE
    return SEND_TO_CHANGED_AND_SAVE_COPY if update else SEND_TO_ALL_AND_SAVE_COPY


def raise_returned(result: Any) -> Any:
    """exchangelib returns per-item failures of a multi-item call as exception objects."""
    if isinstance(result, BaseException):
        raise result
    return result


class EwsConnection:
    """exchangelib set up for one connection alias and credential alias."""

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
                if _server_back_off(exc):
                    wait = exc.back_off
                    self.http.hold_off(self._limit_key(mailbox), wait)
                else:
                    wait = backoff(attempt, policy)
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
                if isinstance(exc, ews.ErrorFolderNotFound):
                    self._forget_folders(mailbox)
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
                folder = self._folders[key] = raise_returned(next(iter(resolved)))
            return folder
        if self.config.folder:
            return self._named_folder(account, ref.mailbox, self.config.folder)
        return account.calendar

    def _forget_folders(self, mailbox: str) -> None:
        """Drop the mailbox's resolved folders (one was deleted): a folder of the connection's
        name made again is found afresh by the next call, not read by its old id forever."""
        for key in [k for k in self._folders if k[0] == mailbox.lower()]:
            del self._folders[key]

    def _named_folder(self, account: Account, mailbox: str, name: str) -> Any:
        """The calendar folder called ``name`` (case-insensitive, as Exchange names are)
        directly under the mailbox's calendar: one shallow FindFolder reading each child's
        name and class (``account.calendar / name`` would map the whole mailbox's folder tree
        first: GetFolder of every well-known folder and a Deep FindFolder from its root)."""
        key = (mailbox.lower(), "/" + name.lower())
        folder = self._folders.get(key)
        if folder is not None:
            return folder
        children = (
            SingleFolderQuerySet(account=account, folder=account.calendar)
            .depth(SHALLOW_FOLDERS)
            .only("name", "folder_class")
        )
        for child in children:
            child = raise_returned(child)
            if (child.name or "").lower() != name.lower():
                continue
            if child.folder_class != "IPF.Appointment":
                raise CalendarGone(
                    f"The folder '{child.name}' under the calendar of the mailbox {mailbox} is "
                    "not a calendar folder. Name a calendar in the connection alias's calendar "
                    "folder field.",
                    code="not_a_calendar",
                )
            self._folders[key] = child
            return child
        raise CalendarGone(
            f"The mailbox {mailbox} has no calendar folder named '{name}' under its calendar. "
            "Create it in Outlook (New Calendar), or clear the connection alias's calendar "
            "folder field to use the mailbox's calendar itself.",
            code="ErrorFolderNotFound",
        )

    @staticmethod
    def _ref(ref: CalendarRef | str) -> CalendarRef:
        # The engine passes a CalendarRef; the admin's test path passed a bare mailbox before
        # the Protocol (issue 17) and may still, so both are read.
        return CalendarRef(ref) if isinstance(ref, str) else ref

    def _personal(self, as_user: UserCredentials | None) -> None:
        """Personal mode acts in the person's own mailbox (the call's ``ref.mailbox``, their
        address) by impersonation; delegate (Full Access) credentials reach only the
        mailboxes they were given, so they are refused before anything is sent."""
        if as_user is not None and not self.config.impersonation:
            raise PermanentError(
                "Personal mode on Exchange Server writes each meeting in its organizer's own "
                "mailbox, which needs the ApplicationImpersonation role; this credential alias "
                "uses delegate access. Use impersonation, or normal or strict sync mode.",
                code="no_personal_mode",
            )

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


def _server_back_off(exc: ews.ErrorServerBusy) -> bool:
    """Whether the back-off is the server's (``BackOffMilliseconds`` of an ``ErrorServerBusy``
    fault). exchangelib also raises ``ErrorServerBusy("Reraised from ...")`` for a bare HTTP 503
    (IIS: the application pool is down) or an "EWS Application" error page, with its own
    ``RETRY_WAIT`` (10 s) as back-off: nobody asked for that wait, so it is our policy's
    back-off instead, not shared with other processes."""
    return bool(exc.back_off) and not str(exc).startswith("Reraised from")


def _outcome_unknown(exc: ews.ErrorServerBusy) -> bool:
    """exchangelib turns a timeout or dropped connection into ``ErrorServerBusy("Reraised from
    ErrorTimeoutExpired...")`` once it holds more than one session: the request may have been
    processed, so it is not the server's "busy, nothing done" and a write is not replayed."""
    return "ErrorTimeoutExpired" in str(exc)
