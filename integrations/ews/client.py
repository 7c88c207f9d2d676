"""The Exchange Server provider client: EWS through exchangelib, behind ``CalendarClient``.

The plumbing (exchangelib configured with ``FailFast``, our retries that honour
``ErrorServerBusy``'s ``BackOffMilliseconds``, the per-mailbox limiter, accounts by
impersonation or delegate access) is ``connection.py``; multi-item writes are ``batch.py``;
the CA bundle, timeouts, request ids and log hygiene are ``transport.py``.

Contracts:

- ``create_event`` is idempotent by looking first (``BatchMixin._create_items``): EWS has no
  client-chosen item id and no transaction id, so a create first reads the calendar view at
  the event's own time with our tag and returns the event already there (a retry after a
  lost answer finds the first one).
  The item's iCalendar UID is set to ``creation_key`` (a uuid5 of the reservation) so both
  sides can recognise it, but EWS does not refuse a duplicate UID, so the look is the guard.
  Two creates of one reservation at once cannot happen: the push engine holds its link row.
- ``update_event`` sends the ChangeKey it was given as the version with
  ``ConflictResolution=NeverOverwrite``: a stale one is ``ErrorIrresolvableConflict`` ->
  ``VersionConflict``. Without a version it overwrites.
- ``delete_event`` moves the item to Deleted Items; an item already gone is success.
- ``changes`` is one ``SyncFolderItems`` answer per call (``MaxChangesReturned`` =
  ``SYNC_PAGE``): no token reads the folder from its start (creates, kept when they touch
  [start, end)). While ``IncludesLastItemInRange`` is false the answer's sync state is the
  ``next_page``, and on the last page the ``sync_token``, as Graph's nextLink / deltaLink: the
  pull keeps only the cursor it applied, and a sync state stays valid after a newer one was
  issued, so a pull that dies between pages starts again from the saved one and gets the
  same changes again (none lost, none new twice: the pull matches them by id). A recurring
  master (the folder holds no occurrences) is replaced by its occurrences in [start, end),
  read with one CalendarView a page (each with the master's id as ``series_id``), and the
  series' state (``occurrence_ids``; ``series_as_masters`` is True): a deleted occurrence is
  a change of its master, and the pull learns of it from the list. The view covers the whole
  window (an exception may move before its series' first occurrence); a room with more items
  in it than the server's FindItem limit (``EWSFindCountLimit``, 1000 by default) is not
  handled yet. The feed
  carries our tag (asked for as an additional property), so ``reads_tags_by_id`` is False;
  an invalid state raises ``SyncTokenExpired``.
- ``batch`` uses multi-item CreateItem / UpdateItem / DeleteItem (exchangelib's
  ``bulk_create`` / ``bulk_update`` / ``bulk_delete``), one ``BatchResult`` per op.
- ``free_busy`` is ``GetUserAvailability``; mailboxes it could not read are left out.
- Change notifications are streaming subscriptions (``streaming.py``: ``subscribe_stream``,
  ``listen``, ``unsubscribe``), listened to by ``manage.py ews_listen``.
- Personal mode (``as_user``): EWS on-premises has no per-person consent, so the service
  account acts in the person's own mailbox (``ref.mailbox``, their address) by
  ApplicationImpersonation; the room is a resource attendee and its booking assistant's answer
  comes back as the room's ``ResponseType`` on the person's item (``resource_response``).
  Delegate credentials cannot act as any user: ``as_user`` with them is a ``PermanentError``.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import replace
from datetime import datetime
from typing import Any, ClassVar

from exchangelib import (
    Account,
    EWSTimeZone,
)
from exchangelib.items import (
    ALL_OCCURRENCES,
    ALWAYS_OVERWRITE,
    ID_ONLY,
    MOVE_TO_DELETED_ITEMS,
    NEVER_OVERWRITE,
    SEND_TO_ALL_AND_SAVE_COPY,
)
from exchangelib.items.calendar_item import EXCEPTION, OCCURRENCE, RECURRING_MASTER
from exchangelib.properties import (
    DaylightTime,
    FreeBusyViewOptions,
    MailboxData,
    StandardTime,
    TimeWindow,
    TimeZone,
)
from exchangelib.services import GetUserAvailability, SyncFolderItems
from exchangelib.version import EXCHANGE_2016

from ..base import (
    CalendarInfo,
    CalendarRef,
    ChangePage,
    EventData,
    EventGone,
    PermanentError,
    RemoteEvent,
    UserCredentials,
)
from . import mapping
from .batch import BatchMixin
from .connection import invitations, raise_returned, update_items
from .errors import (
    ITEM_GONE,
    ews_error,
)
from .mapping import READ_FIELDS, TAG_FIELD
from .streaming import StreamingMixin

log = logging.getLogger("integrations.ews")

SYNC_PAGE = 200  # SyncFolderItems MaxChangesReturned (EWS allows 1-512)
# Exchange's default EWSFindCountLimit: a FindItem (a CalendarView too) returns at most this
# many items, so a view that long may be missing some.
VIEW_ITEM_LIMIT = 1000
# A full read's later pages carry this before the sync state, so they keep its window filter.
FULL_READ = "full:"
# GetUserAvailability asks in UTC: no daylight saving, so both transitions are the same. Built
# here rather than read with GetServerTimeZones (what exchangelib's helper does), which would
# cost a request per call.
_NO_SHIFT = {"bias": 0, "time": dt.time(0), "occurrence": 1, "iso_month": 1, "weekday": 1}
UTC_ZONE = TimeZone(
    bias=0, standard_time=StandardTime(**_NO_SHIFT), daylight_time=DaylightTime(**_NO_SHIFT)
)


class EwsClient(StreamingMixin, BatchMixin):
    """EWS calendars for one connection alias and credential alias."""

    kind = "ews"
    reads_tags_by_id: ClassVar[bool] = False
    window_moves_look_removed: ClassVar[bool] = False
    series_as_masters: ClassVar[bool] = True  # SyncFolderItems reports a series' master

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
            return mapping.parse_item(raise_returned(item))

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
                    result[event_id] = mapping.parse_item(raise_returned(item))
            return result

        return self._call(ref.mailbox, read, items=len(event_ids))

    def create_event(
        self, ref: CalendarRef, data: EventData, as_user: UserCredentials | None = None
    ) -> RemoteEvent:
        """Create idempotently: look for our tag at the event's time first (module doc)."""
        self._personal(as_user)
        (answer,) = self._create_items(ref, [("create", data)]).values()
        if isinstance(answer, BaseException):
            raise ews_error(answer, endpoint=self.endpoint, mailbox=ref.mailbox)
        return answer

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
            lambda account: raise_returned(self._current_keys(account, [event_id])[0]),
            event=True,
        )

        def update(account: Account) -> RemoteEvent:
            folder = self._folder(account, ref)
            item = self._prepared_update(account, folder, event_id, data, key)
            (result,) = update_items(
                account,
                [item],
                NEVER_OVERWRITE if version else ALWAYS_OVERWRITE,
                invitations(data, update=True),
            )
            item.id, item.changekey = raise_returned(result)
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
            raise_returned(result)

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
        start: datetime,
        end: datetime,
        as_user: UserCredentials | None = None,
    ) -> list[RemoteEvent] | None:
        """None: SyncFolderItems carries the tag, so the caller reads the feed."""
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
        """One SyncFolderItems answer (at most ``SYNC_PAGE`` changes) since ``token``, or from
        the start of the folder without one: ``next_page`` while Exchange says more follow
        (``IncludesLastItemInRange`` false), ``sync_token`` on the last page. Nothing is
        kept here between pages, so a caller that dies between two holds only the cursor it
        saved last and starts again from it (module doc)."""
        self._personal(as_user)
        full = not token or token.startswith(FULL_READ)
        state = (token or "").removeprefix(FULL_READ) or None

        def read(account: Account) -> ChangePage:
            folder = self._folder(account, ref)
            service = SyncFolderItems(account=account)
            answers = list(
                service.call(
                    folder=folder,
                    shape=ID_ONLY,
                    additional_fields=_sync_fields(folder),
                    sync_state=state,
                    ignore=None,
                    max_changes_returned=SYNC_PAGE,
                    sync_scope=None,
                )
            )
            events, masters = self._page_events(answers, start, end, full=full)
            events = self._with_occurrences(folder, events, masters, start, end)
            # exchangelib's loop stops on an unchanged state too (a server that says "more"
            # without moving on would otherwise be asked forever).
            if service.includes_last_item_in_range or service.sync_state == state:
                return ChangePage(events=events, sync_token=service.sync_state)
            return ChangePage(
                events=events, next_page=(FULL_READ if full else "") + service.sync_state
            )

        return self._call(ref.mailbox, read)

    def _page_events(
        self,
        answers: list[tuple[str, Any]],
        start: datetime,
        end: datetime,
        *,
        full: bool,
    ) -> tuple[list[RemoteEvent], set[str]]:
        """One page's changes as events: deletions as removed, read-flag changes left out,
        creates of a full read kept when they touch [start, end); and which are recurring
        masters."""
        events: list[RemoteEvent] = []
        masters: set[str] = set()
        for change, item in answers:
            if isinstance(item, BaseException):
                raise item
            if change == "delete":
                events.append(mapping.removed(str(item.id)))
                continue
            if change not in ("create", "update"):
                continue  # read-flag changes
            event = mapping.parse_item(item)
            if str(item.type or "") == RECURRING_MASTER:
                masters.add(event.id)  # expanded by _with_occurrences, window or not
            elif full and not _touches(event, start, end):
                continue
            events.append(event)
        return events, masters

    def _with_occurrences(
        self,
        folder: Any,
        events: list[RemoteEvent],
        master_ids: set[str],
        start: datetime,
        end: datetime,
    ) -> list[RemoteEvent]:
        """Each recurring master of the page as its occurrences in [start, end) (a
        CalendarView, which expands series, as Graph's calendarView does; one for the page)
        and its series' state (``occurrence_ids``), in the master's place. The folder holds
        the master only, and a changed or deleted occurrence is a change of the master, so
        the state is how a pull learns that an occurrence it knows is gone."""
        masters = {e.ical_uid: e for e in events if e.id in master_ids}
        if not masters:
            return events
        view = folder.view(
            start=mapping.ews_time(start, "UTC"), end=mapping.ews_time(end, "UTC")
        ).only(*READ_FIELDS)
        found: dict[str, list[RemoteEvent]] = {uid: [] for uid in masters}
        seen = 0
        for item in view:
            seen += 1
            uid = str(item.uid or "")
            if uid in found and str(item.type or "") in (OCCURRENCE, EXCEPTION):
                found[uid].append(replace(mapping.parse_item(item), series_id=masters[uid].id))
        # A view as long as Exchange's find limit may have been cut short: its list of a
        # series' occurrences is then no proof that the others are gone, so no series state
        # is given (nothing is cancelled for missing from it; a deleted master still is).
        complete = seen < VIEW_ITEM_LIMIT
        if not complete:
            log.warning(
                "EWS CalendarView of %s items may be cut short; series states left out", seen
            )
        result: list[RemoteEvent] = []
        for event in events:
            if event.id not in master_ids:
                result.append(event)
                continue
            occurrences = found[event.ical_uid]
            result.extend(occurrences)
            if complete:
                result.append(
                    replace(
                        event,
                        start=None,
                        end=None,
                        series_id=event.id,
                        occurrence_ids=tuple(o.id for o in occurrences),
                    )
                )
        return result

    def free_busy(
        self,
        refs: list[CalendarRef],
        start: datetime,
        end: datetime,
        as_user: UserCredentials | None = None,
    ) -> dict[CalendarRef, list[tuple[datetime, datetime]]]:
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


def _sync_fields(folder: Any) -> set[Any]:
    """What SyncFolderItems returns of each item besides its id and change key (as
    exchangelib's ``sync_items`` builds it from ``only_fields``)."""
    for name in READ_FIELDS:
        folder.validate_item_field(field=name, version=folder.account.version)
    return {
        f for f in folder.normalize_fields(fields=list(READ_FIELDS)) if not f.field.is_attribute
    }


def _touches(event: RemoteEvent, start: dt.datetime, end: dt.datetime) -> bool:
    if event.start is None or event.end is None:
        return True
    return event.start < end and event.end > start
