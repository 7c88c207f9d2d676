"""The Microsoft 365 provider client: Graph v1.0 calendars over the one HTTP path.

Every request goes through :class:`integrations.http.HttpClient` (retries, ``Retry-After``,
client-request-id, CA bundle, the per-mailbox limiter keyed by app and mailbox) and carries
``Prefer: IdType="ImmutableId", outlook.timezone="UTC"``: ids that survive a move between
folders, and times Reserva never has to convert. A 401 is retried once with a fresh token.

Contracts worth knowing:

- ``create_event`` sends a ``transactionId`` derived from the reservation id, so a retried
  POST answers with the first event; ``find_by_reservation`` finds an event by our tag when
  the outcome of a create is unknown; ``read_events`` reads events by id with that tag
  expanded (``$batch`` GETs), for a pull that meets an event delta could not attribute.
- ``update_event``/``delete_event`` with ``version`` (the changeKey) send ``If-Match``; a
  412 raises :class:`~integrations.base.VersionConflict`. A missing event raises
  :class:`~integrations.base.EventGone` on update and is success on delete.
- ``changes`` returns one page: pass ``next_page`` (or, on the last page, ``sync_token``)
  back as ``token``. A rejected link raises :class:`~integrations.base.SyncTokenExpired`.
- ``batch`` splits into ``$batch`` requests of 20, retries items answered 429/503/504 after
  their own ``Retry-After`` (a bounded number of rounds) and returns one result per op.
- ``free_busy`` leaves out mailboxes Graph could not find (rather than report them free).
- Every call names its calendar with a ``CalendarRef`` (``integrations.base.CalendarClient``):
  ``ref.mailbox`` and ``ref.calendar_id`` (empty: the mailbox's default calendar).
"""

from __future__ import annotations

from collections.abc import MutableMapping
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import requests

from ..base import (
    CalendarInfo,
    CalendarRef,
    ChangePage,
    EventData,
    EventGone,
    ProviderConfig,
    RemoteEvent,
    SyncTokenExpired,
    UserCredentials,
)
from ..http import HttpClient, parse_retry_after
from . import auth, mapping
from .batch import TAG_QUERY, BatchMixin
from .errors import graph_body, graph_error
from .mapping import PREFER, etag
from .subscriptions import SubscriptionsMixin
from .timezones import graph_time, parse_graph_time, query_time

DELTA_PAGE_SIZE = 50
SCHEDULES_PER_CALL = 20


def _query(params: dict[str, str]) -> str:
    # %20 rather than '+' for spaces: OData parsers read '+' literally in $filter.
    return urlencode(params, quote_via=quote, safe="()'/,:$")


class MicrosoftClient(BatchMixin, SubscriptionsMixin):
    """Graph calendars for one connection and credential alias.

    ``token_cache_store`` is where application msal apps (and so their cached tokens) are
    kept; by default a per-process map shared by every client of the same app registration.
    """

    kind = "microsoft"
    delta_page_size = DELTA_PAGE_SIZE
    # Delta cannot expand extended properties: our tag is read by id (``read_events``) or
    # over a window (``tagged_events``).
    reads_tags_by_id = True
    # calendarView/delta follows a window: an event moved out of it is reported @removed,
    # the same as a deleted one.
    window_moves_look_removed = True

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

    def _calendar(self, ref: CalendarRef) -> str:
        if not ref.calendar_id:
            return f"{self._user(ref.mailbox)}/calendar"
        return f"{self._user(ref.mailbox)}/calendars/{quote(ref.calendar_id, safe='')}"

    # -- calendars -------------------------------------------------------------------------

    def test_connection(self, ref: CalendarRef) -> None:
        """Get a token and read the mailbox's calendars; raises the mapped error."""
        mailbox = ref.mailbox
        url = f"{self.base}{self._user(mailbox)}/calendars?{_query({'$top': '1'})}"
        self._check(self._send("GET", url, mailbox=mailbox), mailbox)

    def list_calendars(
        self, ref: CalendarRef, as_user: UserCredentials | None = None
    ) -> list[CalendarInfo]:
        """The calendars of ``ref.mailbox`` (``ref.calendar_id`` is ignored)."""
        url = f"{self.base}{self._user(ref.mailbox)}/calendars"
        return [mapping.parse_calendar(item) for item in self._pages(url, ref.mailbox, as_user)]

    # -- events ----------------------------------------------------------------------------

    def get_event(
        self, ref: CalendarRef, event_id: str, as_user: UserCredentials | None = None
    ) -> RemoteEvent:
        """One event by id, with our tag expanded; a missing one raises ``EventGone``."""
        url = f"{self._calendar(ref)}/events/{quote(event_id, safe='')}?{TAG_QUERY}"
        response = self._send("GET", url, mailbox=ref.mailbox, as_user=as_user)
        return mapping.parse_event(self._check(response, ref.mailbox, event=True))

    def create_event(
        self, ref: CalendarRef, data: EventData, as_user: UserCredentials | None = None
    ) -> RemoteEvent:
        response = self._send(
            "POST",
            f"{self._calendar(ref)}/events",
            mailbox=ref.mailbox,
            as_user=as_user,
            json=mapping.event_body(data, creating=True),
            idempotent=True,  # the transactionId makes a repeated POST harmless
        )
        payload = self._check(response, ref.mailbox)
        return mapping.parse_event(payload, reservation_id=data.reservation_id)

    def update_event(
        self,
        ref: CalendarRef,
        event_id: str,
        data: EventData,
        version: str = "",
        as_user: UserCredentials | None = None,
    ) -> RemoteEvent:
        headers = {"If-Match": etag(version)} if version else {}
        response = self._send(
            "PATCH",
            f"{self._calendar(ref)}/events/{quote(event_id, safe='')}",
            mailbox=ref.mailbox,
            as_user=as_user,
            headers=headers,
            json=mapping.event_body(data, creating=False),
            # Without If-Match the same PATCH twice gives the same event; with it, a replay
            # after a lost answer would fail 412 against our own change.
            idempotent=not version,
        )
        payload = self._check(response, ref.mailbox, event=True)
        return mapping.parse_event(payload, reservation_id=data.reservation_id)

    def delete_event(
        self,
        ref: CalendarRef,
        event_id: str,
        version: str = "",
        as_user: UserCredentials | None = None,
    ) -> None:
        """Delete; an event already gone (404/410) is success."""
        headers = {"If-Match": etag(version)} if version else {}
        response = self._send(
            "DELETE",
            f"{self._calendar(ref)}/events/{quote(event_id, safe='')}",
            mailbox=ref.mailbox,
            as_user=as_user,
            headers=headers,
        )
        try:
            self._check(response, ref.mailbox, event=True)
        except EventGone:
            return

    @staticmethod
    def creation_key(reservation_id: int) -> str:
        """The idempotency key a create of this reservation sends (its ``transactionId``)."""
        return mapping.transaction_id(reservation_id)

    @staticmethod
    def made_by_create(event_id: str, key: str) -> bool:
        """Whether an event's id shows it was made by the create with ``key``: never for
        Graph, whose ids are the server's (the tag must be read: ``read_events``)."""
        return False

    def find_by_reservation(
        self, ref: CalendarRef, reservation_id: int, as_user: UserCredentials | None = None
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
        url = f"{self.base}{self._calendar(ref)}/events?{query}"
        items = self._pages(url, ref.mailbox, as_user)
        if not items:
            return None
        oldest = min(items, key=lambda item: str(item.get("createdDateTime") or ""))
        return mapping.parse_event(oldest)

    def tagged_events(
        self,
        ref: CalendarRef,
        start: datetime,
        end: datetime,
        as_user: UserCredentials | None = None,
    ) -> list[RemoteEvent] | None:
        """Every occurrence in [start, end) (calendarView) with our reservation tag expanded:
        delta cannot expand extended properties, so this is how a full comparison tells
        Reserva's events from other people's."""
        prop = mapping.RESERVATION_PROPERTY
        query = _query(
            {
                "startDateTime": query_time(start),
                "endDateTime": query_time(end),
                "$expand": f"singleValueExtendedProperties($filter=id eq '{prop}')",
            }
        )
        url = f"{self.base}{self._calendar(ref)}/calendarView?{query}"
        return [mapping.parse_event(item) for item in self._pages(url, ref.mailbox, as_user)]

    # -- sync ------------------------------------------------------------------------------

    def changes(
        self,
        ref: CalendarRef,
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
            view = f"{self.base}{self._calendar(ref)}/calendarView/delta"
            url = f"{view}?{_query(window)}"
        headers = {"Prefer": f"{PREFER}, odata.maxpagesize={self.delta_page_size}"}
        response = self._send("GET", url, mailbox=ref.mailbox, as_user=as_user, headers=headers)
        payload = self._check(response, ref.mailbox)
        return ChangePage(
            events=[mapping.parse_event(item) for item in payload.get("value") or []],
            next_page=payload.get("@odata.nextLink"),
            sync_token=payload.get("@odata.deltaLink"),
        )

    def free_busy(
        self,
        refs: list[CalendarRef],
        start: datetime,
        end: datetime,
        as_user: UserCredentials | None = None,
    ) -> dict[CalendarRef, list[tuple[datetime, datetime]]]:
        """Busy intervals per calendar (getSchedule, which reads each ``ref.mailbox``), in
        UTC; unknown mailboxes left out."""
        result: dict[CalendarRef, list[tuple[datetime, datetime]]] = {}
        for offset in range(0, len(refs), SCHEDULES_PER_CALL):
            chunk = list(refs[offset : offset + SCHEDULES_PER_CALL])
            asked: dict[str, list[CalendarRef]] = {}
            for ref in chunk:
                asked.setdefault(ref.mailbox.lower(), []).append(ref)
            caller = chunk[0].mailbox
            body = {
                "schedules": [ref.mailbox for ref in chunk],
                "startTime": graph_time(start),
                "endTime": graph_time(end),
                "availabilityViewInterval": 15,
            }
            response = self._send(
                "POST",
                f"{self._user(caller)}/calendar/getSchedule",
                mailbox=caller,
                as_user=as_user,
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
                for ref in asked.get(schedule.lower(), [CalendarRef(schedule)]):
                    result[ref] = sorted(busy)
        return result
