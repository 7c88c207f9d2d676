"""The Microsoft 365 provider client: Graph v1.0 calendars over the one HTTP path.

Every request goes through :class:`integrations.http.HttpClient` (retries, ``Retry-After``,
client-request-id, CA bundle, the per-mailbox limiter keyed by app and mailbox) and carries
``Prefer: IdType="ImmutableId", outlook.timezone="UTC"``: ids that survive a move between
folders, and times Reserva never has to convert. A 401 is retried once with a fresh token.

Contracts worth knowing:

- ``create_event`` sends a ``transactionId`` derived from the reservation id, so a retried
  POST answers with the first event; ``find_by_reservation`` finds an event by our tag when
  the outcome of a create is unknown.
- ``update_event``/``delete_event`` with ``version`` (the changeKey) send ``If-Match``; a
  412 raises :class:`~integrations.base.VersionConflict`. A missing event raises
  :class:`~integrations.base.EventGone` on update and is success on delete.
- ``changes`` returns one page: pass ``next_page`` (or, on the last page, ``sync_token``)
  back as ``token``. A rejected link raises :class:`~integrations.base.SyncTokenExpired`.
- ``batch`` splits into ``$batch`` requests of 20, retries items answered 429/503/504 after
  their own ``Retry-After`` (a bounded number of rounds) and returns one result per op.
- ``free_busy`` leaves out mailboxes Graph could not find (rather than report them free).
"""

from __future__ import annotations

from collections.abc import MutableMapping
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import requests

from ..base import (
    BatchOp,
    BatchResult,
    CalendarInfo,
    ChangePage,
    EventData,
    EventGone,
    ProviderConfig,
    RemoteEvent,
    SyncTokenExpired,
    TransientError,
    UserCredentials,
)
from ..http import HttpClient, backoff, parse_retry_after
from . import auth, mapping
from .errors import body_code_message, graph_body, graph_error
from .timezones import graph_time, parse_graph_time, query_time

PREFER = 'IdType="ImmutableId", outlook.timezone="UTC"'
BATCH_SIZE = 20  # Graph's limit per $batch
BATCH_ITEM_ROUNDS = 3  # retries of throttled items inside a batch, after the first send
RETRYABLE_ITEM = frozenset({429, 503, 504})
DELTA_PAGE_SIZE = 50
SCHEDULES_PER_CALL = 20


def _etag(version: str) -> str:
    return version if version.startswith(("W/", '"')) else f'W/"{version}"'


def _query(params: dict[str, str]) -> str:
    # %20 rather than '+' for spaces: OData parsers read '+' literally in $filter.
    return urlencode(params, quote_via=quote, safe="()'/,:$")


class MicrosoftClient:
    """Graph calendars for one connection and credential alias.

    ``token_cache_store`` is where application msal apps (and so their cached tokens) are
    kept; by default a per-process map shared by every client of the same app registration.
    """

    kind = "microsoft"
    delta_page_size = DELTA_PAGE_SIZE

    def __init__(
        self,
        config: ProviderConfig,
        http: HttpClient | None = None,
        *,
        token_cache_store: MutableMapping | None = None,
    ) -> None:
        self.config = config
        self.http = http or HttpClient(ca_bundle=config.ca_bundle, timeout=config.timeout)
        self.base = config.api_base_url.rstrip("/")
        self._apps = token_cache_store

    # -- plumbing ------------------------------------------------------------------------

    def _token(self, as_user: UserCredentials | None, *, fresh: bool = False) -> str:
        if as_user is None:
            return auth.application_token(self.config, fresh=fresh, store=self._apps)
        return auth.user_token(self.config, as_user, fresh=fresh)

    def _limit_key(self, mailbox: str) -> str:
        # Exchange counts per app and mailbox; so does the limiter.
        return f"graph:{self.config.client_id}:{mailbox.lower()}"

    def _send(
        self,
        method: str,
        url: str,
        *,
        mailbox: str,
        as_user: UserCredentials | None = None,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> requests.Response:
        if not url.startswith("https://"):
            url = self.base + url
        response: requests.Response | None = None
        for fresh in (False, True):
            token = self._token(as_user, fresh=fresh)
            sent = {"Authorization": f"Bearer {token}", "Prefer": PREFER, **(headers or {})}
            response = self.http.request(
                method, url, limit_key=self._limit_key(mailbox), headers=sent, **kwargs
            )
            if response.status_code != 401:
                break
        assert response is not None
        return response

    def _check(self, response: requests.Response, mailbox: str, *, event: bool = False) -> Any:
        if response.status_code >= 400:
            code, message = graph_body(response)
            raise graph_error(
                response.status_code,
                code,
                message,
                mailbox=mailbox,
                event=event,
                retry_after=parse_retry_after(response.headers.get("Retry-After")),
            )
        return response.json() if response.content else {}

    def _pages(self, url: str, mailbox: str, as_user: UserCredentials | None) -> list[dict]:
        items: list[dict] = []
        next_url: str | None = url
        while next_url:
            self._own_url(next_url)
            payload = self._check(
                self._send("GET", next_url, mailbox=mailbox, as_user=as_user), mailbox
            )
            items.extend(payload.get("value") or [])
            next_url = payload.get("@odata.nextLink")
        return items

    def _own_url(self, url: str) -> None:
        """Links Graph hands back must point at the configured API: tokens go there."""
        if not url.startswith("https://"):
            return
        if urlsplit(url).netloc.lower() != urlsplit(self.base).netloc.lower():
            raise SyncTokenExpired(
                "A stored Graph link points at another host; a full sync follows.",
                code="foreign_link",
            )

    @staticmethod
    def _user(mailbox: str) -> str:
        return f"/users/{quote(mailbox, safe='@')}"

    def _calendar(self, mailbox: str, calendar_id: str) -> str:
        if not calendar_id:
            return f"{self._user(mailbox)}/calendar"
        return f"{self._user(mailbox)}/calendars/{quote(calendar_id, safe='')}"

    # -- calendars -------------------------------------------------------------------------

    def test_connection(self, mailbox: str) -> None:
        """Get a token and read the mailbox's calendars; raises the mapped error."""
        url = f"{self.base}{self._user(mailbox)}/calendars?{_query({'$top': '1'})}"
        self._check(self._send("GET", url, mailbox=mailbox), mailbox)

    def list_calendars(
        self, mailbox: str, as_user: UserCredentials | None = None
    ) -> list[CalendarInfo]:
        url = f"{self.base}{self._user(mailbox)}/calendars"
        return [mapping.parse_calendar(item) for item in self._pages(url, mailbox, as_user)]

    # -- events ----------------------------------------------------------------------------

    def create_event(
        self,
        mailbox: str,
        calendar_id: str,
        data: EventData,
        as_user: UserCredentials | None = None,
    ) -> RemoteEvent:
        response = self._send(
            "POST",
            f"{self._calendar(mailbox, calendar_id)}/events",
            mailbox=mailbox,
            as_user=as_user,
            json=mapping.event_body(data, creating=True),
            idempotent=True,  # the transactionId makes a repeated POST harmless
        )
        payload = self._check(response, mailbox)
        return mapping.parse_event(payload, reservation_id=data.reservation_id)

    def update_event(
        self,
        mailbox: str,
        calendar_id: str,
        event_id: str,
        data: EventData,
        version: str = "",
        as_user: UserCredentials | None = None,
    ) -> RemoteEvent:
        headers = {"If-Match": _etag(version)} if version else {}
        response = self._send(
            "PATCH",
            f"{self._calendar(mailbox, calendar_id)}/events/{quote(event_id, safe='')}",
            mailbox=mailbox,
            as_user=as_user,
            headers=headers,
            json=mapping.event_body(data, creating=False),
            # Without If-Match the same PATCH twice gives the same event; with it, a replay
            # after a lost answer would fail 412 against our own change.
            idempotent=not version,
        )
        payload = self._check(response, mailbox, event=True)
        return mapping.parse_event(payload, reservation_id=data.reservation_id)

    def delete_event(
        self,
        mailbox: str,
        calendar_id: str,
        event_id: str,
        version: str = "",
        as_user: UserCredentials | None = None,
    ) -> None:
        """Delete; an event already gone (404/410) is success."""
        headers = {"If-Match": _etag(version)} if version else {}
        response = self._send(
            "DELETE",
            f"{self._calendar(mailbox, calendar_id)}/events/{quote(event_id, safe='')}",
            mailbox=mailbox,
            as_user=as_user,
            headers=headers,
        )
        try:
            self._check(response, mailbox, event=True)
        except EventGone:
            return

    def find_by_reservation(
        self,
        mailbox: str,
        calendar_id: str,
        reservation_id: int,
        as_user: UserCredentials | None = None,
    ) -> RemoteEvent | None:
        """The event tagged with ``reservation_id`` (the oldest, should there be several)."""
        prop = mapping.RESERVATION_PROPERTY
        query = _query(
            {
                "$filter": f"singleValueExtendedProperties/any(ep: ep/id eq '{prop}' "
                f"and ep/value eq '{int(reservation_id)}')",
                "$expand": f"singleValueExtendedProperties($filter=id eq '{prop}')",
            }
        )
        url = f"{self.base}{self._calendar(mailbox, calendar_id)}/events?{query}"
        items = self._pages(url, mailbox, as_user)
        if not items:
            return None
        oldest = min(items, key=lambda item: str(item.get("createdDateTime") or ""))
        return mapping.parse_event(oldest)

    # -- batches ---------------------------------------------------------------------------

    def batch(self, mailbox: str, calendar_id: str, ops: list[BatchOp]) -> list[BatchResult]:
        """Creates, updates and deletes in ``$batch`` requests of 20; one result per op."""
        results: list[BatchResult] = []
        for start in range(0, len(ops), BATCH_SIZE):
            results.extend(self._batch_chunk(mailbox, calendar_id, ops[start : start + BATCH_SIZE]))
        return results

    def _batch_item(self, item_id: str, op: BatchOp, mailbox: str, calendar_id: str) -> dict:
        events = f"{self._calendar(mailbox, calendar_id)}/events"
        headers = {"Prefer": PREFER}
        if op.version and op.action in ("update", "delete"):
            headers["If-Match"] = _etag(op.version)
        if op.action == "create" and op.data is not None:
            body = mapping.event_body(op.data, creating=True)
            return {"id": item_id, "method": "POST", "url": events, "body": body,
                    "headers": headers | {"Content-Type": "application/json"}}  # fmt: skip
        target = f"{events}/{quote(op.event_id, safe='')}"
        if op.action == "update" and op.data is not None:
            body = mapping.event_body(op.data, creating=False)
            return {"id": item_id, "method": "PATCH", "url": target, "body": body,
                    "headers": headers | {"Content-Type": "application/json"}}  # fmt: skip
        if op.action == "delete":
            return {"id": item_id, "method": "DELETE", "url": target, "headers": headers}
        raise ValueError(f"batch op {op.key!r}: unknown action {op.action!r} or missing data")

    def _batch_chunk(self, mailbox: str, calendar_id: str, chunk: list[BatchOp]) -> list:
        pending = {str(i): op for i, op in enumerate(chunk)}
        done: dict[str, BatchResult] = {}
        refreshed = False
        for round_ in range(BATCH_ITEM_ROUNDS + 1):
            last = round_ == BATCH_ITEM_ROUNDS
            body = {"requests": [self._batch_item(i, op, mailbox, calendar_id)
                                 for i, op in pending.items()]}  # fmt: skip
            response = self._send(
                "POST",
                "/$batch",
                mailbox=mailbox,
                json=body,
                items=len(pending),
                idempotent=True,  # creates carry transactionIds; the rest are idempotent
            )
            payload = self._check(response, mailbox)
            retry: dict[str, BatchOp] = {}
            waits: list[float] = []
            saw_401 = False
            for item in payload.get("responses") or []:
                item_id, status = str(item.get("id")), int(item.get("status") or 0)
                op = pending.get(item_id)
                if op is None:
                    continue
                headers = {str(k).lower(): str(v) for k, v in (item.get("headers") or {}).items()}
                if status in RETRYABLE_ITEM and not last:
                    retry[item_id] = op
                    hint = parse_retry_after(headers.get("retry-after"))
                    waits.append(
                        hint if hint is not None else backoff(round_ + 1, self.http.policy)
                    )
                    continue
                if status == 401 and not refreshed and not last:
                    retry[item_id] = op  # once, with a fresh token
                    saw_401 = True
                    continue
                done[item_id] = self._batch_result(op, status, item.get("body"), headers, mailbox)
            for item_id, op in pending.items():
                if item_id not in done and item_id not in retry:
                    error = TransientError("Graph's $batch answer left this item out.")
                    done[item_id] = BatchResult(op.key, error=error)
            if not retry:
                break
            if saw_401:
                refreshed = True
                self._token(None, fresh=True)
            wait = max(waits, default=0.0)
            if wait > self.http.policy.max_retry_after:
                for item_id, op in retry.items():
                    error = graph_error(
                        429, "TooManyRequests", "", mailbox=mailbox, retry_after=wait
                    )
                    done[item_id] = BatchResult(op.key, error=error)
                break
            if wait:
                self.http.sleep(wait)
            pending = retry
        return [done[str(i)] for i in range(len(chunk))]

    def _batch_result(
        self, op: BatchOp, status: int, body: Any, headers: dict[str, str], mailbox: str
    ) -> BatchResult:
        if 200 <= status < 300:
            if op.action == "delete" or not isinstance(body, dict):
                return BatchResult(op.key)
            reservation_id = op.data.reservation_id if op.data else None
            return BatchResult(
                op.key, event=mapping.parse_event(body, reservation_id=reservation_id)
            )
        if op.action == "delete" and status in (404, 410):
            return BatchResult(op.key)  # already gone
        code, message = body_code_message(body)
        error = graph_error(
            status,
            code,
            message,
            mailbox=mailbox,
            event=op.action != "create",
            retry_after=parse_retry_after(headers.get("retry-after")),
        )
        return BatchResult(op.key, error=error)

    # -- sync ------------------------------------------------------------------------------

    def changes(
        self,
        mailbox: str,
        calendar_id: str,
        token: str | None,
        start: datetime,
        end: datetime,
        as_user: UserCredentials | None = None,
    ) -> ChangePage:
        """One page of calendarView/delta.

        Without ``token`` a round starts over the window [start, end); pass ``next_page``
        back until a page has ``sync_token`` (the deltaLink), and keep that for next time.
        """
        if token:
            self._own_url(token)
            url = token
        else:
            window = {"startDateTime": query_time(start), "endDateTime": query_time(end)}
            view = f"{self.base}{self._calendar(mailbox, calendar_id)}/calendarView/delta"
            url = f"{view}?{_query(window)}"
        headers = {"Prefer": f"{PREFER}, odata.maxpagesize={self.delta_page_size}"}
        response = self._send("GET", url, mailbox=mailbox, as_user=as_user, headers=headers)
        payload = self._check(response, mailbox)
        return ChangePage(
            events=[mapping.parse_event(item) for item in payload.get("value") or []],
            next_page=payload.get("@odata.nextLink"),
            sync_token=payload.get("@odata.deltaLink"),
        )

    def free_busy(
        self, mailboxes: list[str], start: datetime, end: datetime
    ) -> dict[str, list[tuple[datetime, datetime]]]:
        """Busy intervals per mailbox (getSchedule), in UTC; unknown mailboxes left out."""
        result: dict[str, list[tuple[datetime, datetime]]] = {}
        for offset in range(0, len(mailboxes), SCHEDULES_PER_CALL):
            chunk = list(mailboxes[offset : offset + SCHEDULES_PER_CALL])
            asked = {m.lower(): m for m in chunk}
            caller = chunk[0]
            body = {
                "schedules": chunk,
                "startTime": graph_time(start),
                "endTime": graph_time(end),
                "availabilityViewInterval": 15,
            }
            response = self._send(
                "POST",
                f"{self._user(caller)}/calendar/getSchedule",
                mailbox=caller,
                json=body,
                idempotent=True,  # a read, despite the POST
            )
            for info in self._check(response, caller).get("value") or []:
                if info.get("error"):
                    continue
                busy = []
                for item in info.get("scheduleItems") or []:
                    if str(item.get("status", "")).lower() == "free":
                        continue
                    begins, ends = (
                        parse_graph_time(item.get("start")),
                        parse_graph_time(item.get("end")),
                    )
                    if begins and ends:
                        busy.append((begins, ends))
                schedule = str(info.get("scheduleId") or "")
                result[asked.get(schedule.lower(), schedule)] = sorted(busy)
        return result
