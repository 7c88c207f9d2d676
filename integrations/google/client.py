"""The Google Calendar provider client: Calendar v3 over the one HTTP path.

Every request goes through :class:`integrations.http.HttpClient` (retries on 429/503/504 with
``Retry-After``, client-request-id, the CA bundle, the limiter). Google also answers quota
overruns with **403** ``rateLimitExceeded``/``userRateLimitExceeded``, which HttpClient does
not retry, so this client backs those off itself (Google's advice: truncated exponential
backoff; google-api-python-client retries exactly these reasons). A 401 is retried once with
a fresh token. The limiter key is the acting user (the impersonated user, or the person):
Google's quota is "per minute per user per project", every batch part counting.

Contracts worth knowing:

- ``create_event`` sends a client-chosen id (``mapping.event_id``); Google answers 409 to an id
  already used, so a repeated create (a retried task, a lost response) fetches the existing
  event and returns it when it carries our reservation id. An id held by a deleted event or
  by an event that is not ours moves on to the next generation of the id.
- ``update_event`` replaces the event (``events.update``: one quota unit, where ``patch``
  costs three) with ``If-Match: <etag>`` when ``version`` is given; a 412 raises
  :class:`~integrations.base.VersionConflict` (re-read, then decide). An event deleted
  remotely raises :class:`~integrations.base.EventGone` (Google answers 404, or 403 for a
  deleted one); ``delete_event`` treats 404/410 as done.
- ``changes`` returns one page. Without a token it starts a full sync over [start, end)
  (``timeMin``/``timeMax``, ``singleEvents=true`` so each occurrence of a series is its own
  event, as each is its own reservation); pass ``next_page`` back as ``token`` until a page
  has ``sync_token``, then keep that. Incremental pages (``syncToken``) may not carry
  ``timeMin``/``timeMax`` (Google refuses them together), so they report every change to the
  calendar, including events outside the window: the caller filters. Deleted events come
  back with ``removed=True``. A token Google rejects (410 ``fullSyncRequired``, or 400 for a
  token it does not know) raises :class:`~integrations.base.SyncTokenExpired`.
- ``batch`` (``batch.py``) sends at most 50 calls per batch request and retries parts that
  were throttled after their ``Retry-After`` or a backoff, a bounded number of rounds.
- ``free_busy`` asks for at most 50 calendars per call (Google's limit) and leaves out the
  calendars Google could not read, rather than report them free.
- The change feed carries our tag, so ``reads_tags_by_id`` is False and ``tagged_events``
  answers None; ``read_events`` (one ``events.get`` per id) exists for the interface's sake.
- Every call names its calendar with a ``CalendarRef`` (``integrations.base.CalendarClient``);
  Google needs only ``ref.calendar_id`` (empty: the acting user's ``primary``), and
  ``list_calendars`` lists the acting user's calendars whatever the ref.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

import requests

from ..base import (
    CalendarInfo,
    CalendarRef,
    ChangePage,
    ConsentMissing,
    EventData,
    EventGone,
    PermanentError,
    ProviderConfig,
    RemoteEvent,
    SyncTokenExpired,
    UserCredentials,
)
from ..http import HttpClient, backoff, parse_retry_after
from . import auth, mapping
from .batch import BatchMixin
from .channels import ChannelsMixin
from .errors import RATE_LIMIT_REASONS, api_error, response_reason

DEFAULT_API = "https://www.googleapis.com/calendar/v3"
PAGE_SIZE = 250
FREEBUSY_MAX = 50
CONTINUATION = "page:"  # marks a ChangePage.next_page (our own encoding of the query)


def batch_url(api_base: str) -> str:
    """``.../calendar/v3`` -> ``.../batch/calendar/v3`` (discovery ``batchPath``)."""
    root, _, _ = api_base.rstrip("/").rpartition("/calendar/v3")
    return f"{root}/batch/calendar/v3"


class GoogleClient(BatchMixin, ChannelsMixin):
    """Calendar v3 for one connection and credential alias (see the module docstring)."""

    kind = "google"
    page_size = PAGE_SIZE
    # The change feed carries our tag (a private extended property): nothing to read by id.
    reads_tags_by_id = False
    # An incremental sync reports the whole calendar: a move out of the window is a move.
    window_moves_look_removed = False

    def __init__(self, config: ProviderConfig, http: HttpClient | None = None) -> None:
        self.config = config
        self.http = http or HttpClient(ca_bundle=config.ca_bundle, timeout=config.timeout)
        self.base = (config.api_base_url or DEFAULT_API).rstrip("/")
        self.api_path = urlsplit(self.base).path
        self.batch_url = (config.batch_url or batch_url(self.base)).rstrip("/")

    # -- plumbing ------------------------------------------------------------------------

    def _acting(self, as_user: UserCredentials | None) -> str:
        if as_user is not None:
            return as_user.account_email
        return self.config.delegated_user or auth.service_account_email(self.config)

    def _token(self, as_user: UserCredentials | None, *, fresh: bool = False) -> str:
        if as_user is None:
            return auth.service_account_token(self.config, fresh=fresh)
        return auth.user_token(self.config, as_user, fresh=fresh)

    def _limit_key(self, as_user: UserCredentials | None) -> str:
        return f"google:{self._acting(as_user).lower()}"

    @staticmethod
    def _calendar(calendar_id: str) -> str:
        return f"/calendars/{quote(calendar_id or 'primary', safe='')}"

    def _send(
        self,
        method: str,
        path: str,
        *,
        as_user: UserCredentials | None = None,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> requests.Response:
        url = path if path.startswith("https://") else self.base + path
        policy = self.http.policy
        refreshed = False
        rate_attempts = 0
        while True:
            token = self._token(as_user, fresh=refreshed)
            sent = {"Authorization": f"Bearer {token}", **(headers or {})}
            response = self.http.request(
                method, url, limit_key=self._limit_key(as_user), headers=sent, **kwargs
            )
            if response.status_code == 401 and not refreshed:
                refreshed = True  # once: a revoked or expired access token
                continue
            if response.status_code == 403:
                reason, _ = response_reason(response)
                rate_attempts += 1
                if reason in RATE_LIMIT_REASONS and rate_attempts < policy.max_attempts:
                    hint = parse_retry_after(response.headers.get("Retry-After"))
                    self.http.hold_off(self._limit_key(as_user), hint)
                    if (hint or 0) <= policy.max_retry_after:
                        self.http.sleep(backoff(rate_attempts, policy, hint))
                        continue
            return response

    def _check(
        self,
        response: requests.Response,
        calendar_id: str,
        as_user: UserCredentials | None,
        *,
        event: bool = False,
    ) -> Any:
        if response.status_code >= 400:
            reason, message = response_reason(response)
            raise api_error(
                response.status_code,
                reason,
                message,
                calendar_id=calendar_id,
                acting=self._acting(as_user),
                event=event,
                user=as_user is not None,
                retry_after=parse_retry_after(response.headers.get("Retry-After")),
            )
        if response.status_code == 204 or not response.content:
            return {}
        return response.json()

    def _pages(
        self, path: str, params: dict[str, str], calendar_id: str, as_user: UserCredentials | None
    ) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        query = dict(params)
        while True:
            response = self._send("GET", path, as_user=as_user, params=query)
            payload = self._check(response, calendar_id, as_user)
            items.extend(payload.get("items") or [])
            if not payload.get("nextPageToken"):
                return items
            query["pageToken"] = payload["nextPageToken"]

    # -- calendars -------------------------------------------------------------------------

    def test_connection(self, ref: CalendarRef) -> None:
        """Get a token, read the calendar, and check the delegated user may write to it."""
        calendar_id = ref.calendar_id
        # A new token, not the cached one: the delegation may have changed in the Admin console
        # since it was issued, and the administrator is asking about now.
        self._token(None, fresh=True)
        path = f"{self._calendar(calendar_id)}/events"
        response = self._send("GET", path, params={"maxResults": "1"})
        payload = self._check(response, calendar_id, None)
        if payload.get("accessRole") not in ("writer", "owner"):
            raise ConsentMissing(
                f"The impersonated user {self._acting(None)} can only read the calendar "
                f'({calendar_id}). Share it with "Make changes to events".',
                code="requiredAccessLevel",
            )

    def list_calendars(
        self, ref: CalendarRef, as_user: UserCredentials | None = None
    ) -> list[CalendarInfo]:
        """The calendar list of the acting user: the impersonated user, or the person
        ``as_user``. ``ref`` is not used: Google lists the calendars the acting user sees (a
        room's resource calendar is shared with the delegated user), not another user's."""
        items = self._pages("/users/me/calendarList", {}, "", as_user)
        return [mapping.parse_calendar(item) for item in items]

    # -- events ----------------------------------------------------------------------------

    def get_event(
        self, ref: CalendarRef, event_id: str, as_user: UserCredentials | None = None
    ) -> RemoteEvent:
        """One event by id (a deleted one comes back ``removed``; an unknown id raises
        ``EventGone``)."""
        return self._get(ref.calendar_id, event_id, as_user)

    def read_events(
        self, ref: CalendarRef, event_ids: list[str], as_user: UserCredentials | None = None
    ) -> dict[str, RemoteEvent | None]:
        """``{id: event}``, None for an event that no longer exists (deleted or unknown).

        The engine never needs this (``reads_tags_by_id`` is False: the change feed carries
        our tag); it is here so that the client answers the whole interface correctly, one
        ``events.get`` per id."""
        found: dict[str, RemoteEvent | None] = {}
        for event_id in event_ids:
            try:
                event = self._get(ref.calendar_id, event_id, as_user)
            except EventGone:
                event = None
            found[event_id] = None if event is None or event.removed else event
        return found

    def _get(self, calendar_id: str, event_id: str, as_user: UserCredentials | None) -> RemoteEvent:
        path = f"{self._calendar(calendar_id)}/events/{quote(event_id, safe='')}"
        payload = self._check(self._send("GET", path, as_user=as_user), calendar_id, as_user,
                              event=True)  # fmt: skip
        return mapping.parse_event(payload, calendar_id=calendar_id)

    def create_event(
        self, ref: CalendarRef, data: EventData, as_user: UserCredentials | None = None
    ) -> RemoteEvent:
        return self._create(ref.calendar_id, data, as_user, first_generation=0)

    def _create(
        self,
        calendar_id: str,
        data: EventData,
        as_user: UserCredentials | None,
        *,
        first_generation: int,
    ) -> RemoteEvent:
        for generation in range(first_generation, mapping.MAX_GENERATIONS):
            chosen = mapping.event_id(data.reservation_id, generation)
            response = self._send(
                "POST",
                f"{self._calendar(calendar_id)}/events",
                as_user=as_user,
                json=mapping.event_body(data, event_id_value=chosen),
                idempotent=True,  # a replayed insert answers 409, handled below
            )
            if response.status_code != 409:
                payload = self._check(response, calendar_id, as_user)
                return mapping.parse_event(payload, calendar_id=calendar_id)
            existing = self._ours(calendar_id, chosen, data.reservation_id, as_user)
            if existing is not None:
                return existing  # created before (a retry): done
        raise PermanentError(
            f"Every event id for reservation {data.reservation_id} is taken in the calendar "
            f"({calendar_id}).",
            status=409,
            code="duplicate",
        )

    def _ours(
        self, calendar_id: str, event_id: str, reservation_id: int, as_user: UserCredentials | None
    ) -> RemoteEvent | None:
        """The live event ``event_id`` when it carries our tag for ``reservation_id``."""
        try:
            existing = self._get(calendar_id, event_id, as_user)
        except EventGone:
            return None
        if existing.removed or existing.reservation_id != int(reservation_id):
            return None
        return existing

    def _deleted(self, calendar_id: str, event_id: str, as_user: UserCredentials | None) -> bool:
        try:
            return self._get(calendar_id, event_id, as_user).removed
        except EventGone:
            return True

    def update_event(
        self,
        ref: CalendarRef,
        event_id: str,
        data: EventData,
        version: str = "",
        as_user: UserCredentials | None = None,
    ) -> RemoteEvent:
        """Replace the event; ``version`` (the etag) guards against a remote change (412)."""
        calendar_id = ref.calendar_id
        response = self._send(
            "PUT",
            f"{self._calendar(calendar_id)}/events/{quote(event_id, safe='')}",
            as_user=as_user,
            headers={"If-Match": version} if version else None,
            json=mapping.event_body(data),
            # A replay with If-Match after a lost answer would fail 412 against our own change.
            idempotent=not version,
        )
        forbidden = response.status_code == 403 and response_reason(response)[0] == "forbidden"
        if forbidden and self._deleted(calendar_id, event_id, as_user):
            # Google answers 403 (not 404) to an update of a deleted event: its id stays taken.
            raise EventGone(
                f"The event was deleted in Google Calendar ({calendar_id}).",
                status=403,
                code="deleted",
            )
        payload = self._check(response, calendar_id, as_user, event=True)
        return mapping.parse_event(payload, calendar_id=calendar_id)

    def delete_event(
        self,
        ref: CalendarRef,
        event_id: str,
        version: str = "",
        as_user: UserCredentials | None = None,
    ) -> None:
        """Delete; an event already gone (404, or 410 ``deleted``) is success."""
        calendar_id = ref.calendar_id
        response = self._send(
            "DELETE",
            f"{self._calendar(calendar_id)}/events/{quote(event_id, safe='')}",
            as_user=as_user,
            headers={"If-Match": version} if version else None,
        )
        if response.status_code in (404, 410):
            return
        self._check(response, calendar_id, as_user, event=True)

    @staticmethod
    def creation_key(reservation_id: int) -> str:
        """The idempotency key a create of this reservation sends: its client-chosen id (a
        later generation, after our event was deleted, adds ``g<n>``)."""
        return mapping.event_id(reservation_id)

    @staticmethod
    def made_by_create(event_id: str, key: str) -> bool:
        """Whether the event's id is one a create with ``key`` chooses (any generation); the
        copy of our event in an invited room's calendar keeps the id but not our private
        tag."""
        return bool(key) and (event_id == key or event_id.startswith(f"{key}g"))

    def find_by_reservation(
        self, ref: CalendarRef, reservation_id: int, as_user: UserCredentials | None = None
    ) -> RemoteEvent | None:
        """The live event tagged with ``reservation_id`` (the oldest, should there be several)."""
        calendar_id = ref.calendar_id
        params = {
            "privateExtendedProperty": f"{mapping.RESERVATION_PROPERTY}={int(reservation_id)}",
            "showDeleted": "false",
            "maxResults": str(self.page_size),
        }
        items = self._pages(f"{self._calendar(calendar_id)}/events", params, calendar_id, as_user)
        if not items:
            return None
        oldest = min(items, key=lambda item: str(item.get("created") or ""))
        return mapping.parse_event(oldest, calendar_id=calendar_id)

    def tagged_events(
        self,
        ref: CalendarRef,
        start: datetime,
        end: datetime,
        as_user: UserCredentials | None = None,
    ) -> list[RemoteEvent] | None:
        """None: the change feed carries our tag, so the caller reads the feed instead."""
        return None

    # -- sync ------------------------------------------------------------------------------

    def changes(
        self,
        ref: CalendarRef,
        token: str | None,
        start: datetime,
        end: datetime,
        as_user: UserCredentials | None = None,
    ) -> ChangePage:
        """One page of ``events.list``: full sync over [start, end), or changes since ``token``."""
        calendar_id = ref.calendar_id
        if token and token.startswith(CONTINUATION):
            params = dict(parse_qsl(token[len(CONTINUATION) :]))
        elif token:
            params = {"syncToken": token}
        else:
            params = {"timeMin": mapping.rfc3339(start), "timeMax": mapping.rfc3339(end)}
        # The same query shape on every call: Google wants the parameters of the full sync
        # repeated on its incremental ones, except the window it refuses with a syncToken.
        params |= {"singleEvents": "true", "maxResults": str(self.page_size)}
        response = self._send(
            "GET", f"{self._calendar(calendar_id)}/events", as_user=as_user, params=params
        )
        with_token = "syncToken" in params or "pageToken" in params
        if with_token and response.status_code in (400, 410):
            reason, _ = response_reason(response)
            if response.status_code == 410 or reason == "invalid":
                raise SyncTokenExpired(
                    f"Google no longer accepts this sync token ({calendar_id}); a full sync "
                    "follows.",
                    status=response.status_code,
                    code=reason or "fullSyncRequired",
                )
        payload = self._check(response, calendar_id, as_user)
        zone = str(payload.get("timeZone") or "UTC")
        events = [
            mapping.parse_event(item, calendar_id=calendar_id, calendar_zone=zone)
            for item in payload.get("items") or []
        ]
        next_page = None
        if payload.get("nextPageToken"):
            query = {k: v for k, v in params.items() if k not in ("singleEvents", "maxResults")}
            next_page = CONTINUATION + urlencode(query | {"pageToken": payload["nextPageToken"]})
        return ChangePage(
            events=events, next_page=next_page, sync_token=payload.get("nextSyncToken")
        )

    def free_busy(
        self,
        refs: list[CalendarRef],
        start: datetime,
        end: datetime,
        as_user: UserCredentials | None = None,
    ) -> dict[CalendarRef, list[tuple[datetime, datetime]]]:
        """Busy intervals per calendar (by ``ref.calendar_id``), in UTC; calendars Google
        could not read left out."""
        result: dict[CalendarRef, list[tuple[datetime, datetime]]] = {}
        for offset in range(0, len(refs), FREEBUSY_MAX):
            chunk = list(refs[offset : offset + FREEBUSY_MAX])
            asked: dict[str, list[CalendarRef]] = {}
            for ref in chunk:
                asked.setdefault(ref.calendar_id.lower(), []).append(ref)
            body = {
                "timeMin": mapping.rfc3339(start),
                "timeMax": mapping.rfc3339(end),
                "timeZone": "UTC",
                "items": [{"id": ref.calendar_id} for ref in chunk],
            }
            response = self._send(
                "POST",
                "/freeBusy",
                as_user=as_user,
                json=body,
                idempotent=True,  # a read
            )
            calendars = self._check(response, "", as_user).get("calendars") or {}
            for calendar_id, info in calendars.items():
                if info.get("errors"):
                    continue
                busy = []
                for span in info.get("busy") or []:
                    begins, _ = mapping.parse_time({"dateTime": span.get("start")})
                    ends, _ = mapping.parse_time({"dateTime": span.get("end")})
                    if begins and ends:
                        busy.append((begins, ends))
                for ref in asked.get(calendar_id.lower(), [CalendarRef(calendar_id, calendar_id)]):
                    result[ref] = sorted(busy)
        return result
