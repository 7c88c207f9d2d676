"""EwsClient against the EWS sandbox: real exchangelib, real NTLM/Basic, real HTTPS.

Each test gets a fresh sandbox (``conftest.py``). The client trusts the
sandbox only through the connection's CA bundle, so these tests also show that the bundle
reaches exchangelib.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from integrations.base import (
    BatchOp,
    CalendarRef,
    EventGone,
    SyncTokenExpired,
    Throttled,
    VersionConflict,
)
from integrations.ews import client as client_module
from integrations.ews.mapping import creation_key
from integrations.http import RetryPolicy
from integrations.limiter import FileLimiter, Limiter, Limits
from tests.support.ews_client import (
    ROOM,
    START,
    WINDOW,
    data,
    make_client,
    stored,
)


def test_create_writes_the_event_in_the_location_zone_with_our_tag(ews, sandbox):
    event = ews.create_event(CalendarRef(ROOM), data())
    assert event.reservation_id == 7 and event.version
    assert (event.start, event.end) == (START, START + timedelta(hours=1))
    item = stored(sandbox, event.id)
    assert item.mailbox == ROOM  # impersonation: written in the room's mailbox
    assert item.subject == "Board" and item.start == START
    assert "Europe" in str(item.start_tz)  # W. Europe Standard Time, Berlin's Windows zone
    assert item.uid == creation_key(7)
    found = ews.get_event(CalendarRef(ROOM), event.id)
    assert (found.reservation_id, found.version, found.subject) == (7, event.version, "Board")


def test_a_repeated_create_returns_the_first_event(ews, sandbox):
    first = ews.create_event(CalendarRef(ROOM), data())
    again = ews.create_event(CalendarRef(ROOM), data())
    assert again.id == first.id
    mine = [i for i in sandbox.sandbox.services["ews"].items.values() if i.mailbox == ROOM]
    assert len(mine) == 1


def test_update_with_the_current_change_key_then_a_stale_one(ews, sandbox):
    ref = CalendarRef(ROOM)
    event = ews.create_event(ref, data())
    moved = ews.update_event(ref, event.id, data(hour=11, subject="Moved"), event.version)
    assert moved.version != event.version
    assert (moved.start, moved.subject) == (START.replace(hour=11), "Moved")
    assert stored(sandbox, event.id).subject == "Moved"
    with pytest.raises(VersionConflict):
        ews.update_event(ref, event.id, data(subject="Stale"), event.version)
    assert stored(sandbox, event.id).subject == "Moved"
    # Without a version the update overwrites.
    ews.update_event(ref, event.id, data(subject="Forced"))
    assert stored(sandbox, event.id).subject == "Forced"


def test_update_of_a_deleted_event_is_event_gone_and_delete_is_idempotent(ews, sandbox):
    ref = CalendarRef(ROOM)
    event = ews.create_event(ref, data())
    ews.delete_event(ref, event.id)
    ews.delete_event(ref, event.id)  # already gone: success
    with pytest.raises(EventGone):
        ews.update_event(ref, event.id, data())
    with pytest.raises(EventGone):
        ews.get_event(ref, event.id)
    assert ews.read_events(ref, [event.id]) == {event.id: None}


def test_changes_full_read_then_incremental_with_tags_and_removals(ews, sandbox):
    ref = CalendarRef(ROOM)
    one = ews.create_event(ref, data(1, 9))
    outside = ews.create_event(
        ref, data(2, 9, start=START + timedelta(days=90), end=START + timedelta(days=90, hours=1))
    )
    page = ews.changes(ref, None, *WINDOW)
    assert [(e.id, e.reservation_id) for e in page.events] == [(one.id, 1)]
    assert page.sync_token and page.next_page is None
    assert outside.id not in {e.id for e in page.events}
    assert ews.changes(ref, page.sync_token, *WINDOW).events == []
    ews.update_event(ref, one.id, data(1, 10, subject="Later"))
    three = ews.create_event(ref, data(3, 12))
    second = ews.changes(ref, page.sync_token, *WINDOW)
    assert [(e.id, e.reservation_id, e.subject) for e in second.events] == [
        (one.id, 1, "Later"),
        (three.id, 3, "Board"),
    ]
    ews.delete_event(ref, three.id)
    third = ews.changes(ref, second.sync_token, *WINDOW)
    assert [(e.id, e.removed) for e in third.events] == [(three.id, True)]


def test_an_invalid_sync_state_asks_for_a_full_sync(ews):
    with pytest.raises(SyncTokenExpired):
        ews.changes(CalendarRef(ROOM), "H4sIAAAAAAAEAO29B2AcSZYlJi9tynt", *WINDOW)


def read_all(ews, ref, token):
    """Every page from ``token`` on: the pages' events and where each page said to go."""
    pages = []
    while True:
        page = ews.changes(ref, token, *WINDOW)
        pages.append(page)
        if not page.next_page:
            return pages
        token = page.next_page


def test_changes_come_in_pages_of_max_changes_returned(ews, sandbox, monkeypatch):
    monkeypatch.setattr(client_module, "SYNC_PAGE", 2)
    ref = CalendarRef(ROOM)
    made = [ews.create_event(ref, data(n, 8 + n)) for n in range(1, 5)]
    far = START + timedelta(days=90)
    ews.create_event(ref, data(9, 9, start=far, end=far + timedelta(hours=1)))
    pages = read_all(ews, ref, None)
    # Five items, two a page: three answers; the item outside the window is left out of the
    # full read on whichever page it comes.
    assert len(pages) == 3
    assert [bool(p.next_page) for p in pages] == [True, True, False]
    assert pages[-1].sync_token and not any(p.sync_token for p in pages[:-1])
    assert [e.id for p in pages for e in p.events] == [e.id for e in made]

    # Incremental: the changes since the last page, paged the same way.
    cursor = pages[-1].sync_token
    for n, event in enumerate(made[:3], start=1):
        ews.update_event(ref, event.id, data(n, 8 + n, subject=f"Moved {n}"))
    ews.delete_event(ref, made[3].id)
    changed = read_all(ews, ref, cursor)
    assert [len(p.events) for p in changed] == [2, 2]
    assert [(e.id, e.removed, e.subject) for p in changed for e in p.events] == [
        (made[0].id, False, "Moved 1"),
        (made[1].id, False, "Moved 2"),
        (made[2].id, False, "Moved 3"),
        (made[3].id, True, ""),
    ]


def test_a_reader_that_dies_between_pages_gets_the_same_changes_from_its_cursor(
    ews, sandbox, monkeypatch
):
    """The cursor a pull saves is the last page's sync state; a pull that dies after a
    first page saved nothing, and the next one, from the same cursor, reads every change
    again (none lost) and then nothing (none twice)."""
    monkeypatch.setattr(client_module, "SYNC_PAGE", 2)
    ref = CalendarRef(ROOM)
    cursor = ews.changes(ref, None, *WINDOW).sync_token
    made = [ews.create_event(ref, data(n, 8 + n)) for n in range(1, 4)]
    first = ews.changes(ref, cursor, *WINDOW)  # then the worker dies
    assert first.next_page and [e.id for e in first.events] == [e.id for e in made[:2]]
    again = read_all(ews, ref, cursor)
    assert [e.id for p in again for e in p.events] == [e.id for e in made]
    assert ews.changes(ref, again[-1].sync_token, *WINDOW).events == []


def test_batch_creates_updates_and_deletes_with_one_result_per_op(ews, sandbox):
    ref = CalendarRef(ROOM)
    old = ews.create_event(ref, data(10, 8))
    stale = ews.create_event(ref, data(11, 13))
    ews.update_event(ref, stale.id, data(11, 14), stale.version)
    made_before = ews.create_event(ref, data(12, 15))
    ops = [
        BatchOp("a", "create", data(20, 9)),
        BatchOp("b", "create", data(21, 10)),
        BatchOp("c", "create", data(12, 15)),  # made already (a lost answer): not made twice
        BatchOp("d", "update", data(10, 11, subject="Moved"), event_id=old.id, version=old.version),
        BatchOp("e", "update", data(11, 16), event_id=stale.id, version=stale.version),
        BatchOp("f", "delete", event_id=old.id),
        BatchOp("g", "delete", event_id=old.id),
    ]
    results = ews.batch(ref, ops)
    assert [r.key for r in results] == list("abcdefg")
    by_key = {r.key: r for r in results}
    assert by_key["a"].ok and by_key["b"].ok
    assert by_key["c"].event.id == made_before.id
    assert by_key["d"].ok and by_key["d"].event.subject == "Moved"
    assert isinstance(by_key["e"].error, VersionConflict)
    assert by_key["f"].ok and by_key["g"].ok  # the second delete finds it gone: success
    tags = sorted(
        int(next(iter(i.extended.values())))
        for i in sandbox.sandbox.services["ews"].items.values()
        if i.mailbox == ROOM and i.extended
    )
    assert tags == [11, 12, 20, 21]


def test_server_busy_waits_its_back_off_then_succeeds(sandbox, waits):
    client = make_client(sandbox, waits)
    client.http.policy = RetryPolicy(max_attempts=6)
    client.test_connection(CalendarRef(ROOM))  # version detected, sessions open
    sandbox.sandbox.limits.set_rule("ews", max_in_flight=None, max_requests=1, window_seconds=2)
    event = client.create_event(CalendarRef(ROOM), data())
    assert event.id
    assert waits and all(w >= 2 for w in waits)


def test_server_busy_for_longer_than_the_policy_allows_is_throttled(sandbox, waits):
    client = make_client(sandbox, waits)
    client.http.policy = RetryPolicy(max_attempts=3, max_retry_after=1)
    client.test_connection(CalendarRef(ROOM))
    sandbox.sandbox.limits.set_rule("ews", max_in_flight=None, max_requests=1, window_seconds=60)
    with pytest.raises(Throttled) as raised:
        client.create_event(CalendarRef(ROOM), data())
    assert raised.value.retry_after >= 2


def test_a_bare_503_is_retried_after_our_back_off_not_exchangelibs_ten_seconds(sandbox, waits):
    """IIS answers a bare 503 while the EWS application pool is down; exchangelib re-raises it
    as ErrorServerBusy with its own 10 s RETRY_WAIT. The server asked for no wait: the retry
    comes after the policy's short back-off, and the create lands once."""
    client = make_client(sandbox, waits)
    client.http.policy = RetryPolicy(max_attempts=3, backoff_base=0.5, backoff_cap=1)
    client.test_connection(CalendarRef(ROOM))
    sandbox.sandbox.faults.add(kind="503", service="ews", count=1, retry_after=0)
    event = client.create_event(CalendarRef(ROOM), data())
    assert len(waits) == 1 and waits[0] <= 0.5
    assert stored(sandbox, event.id).subject == "Board"


def test_a_create_whose_answer_was_lost_is_not_made_twice(ews, sandbox, monkeypatch):
    """The CreateItem is written, then the connection drops before the answer: the client
    looks again, finds the event by our tag and returns it."""
    ref = CalendarRef(ROOM)
    ews.create_event(ref, data(1, 8))  # account, folder and session ready
    look = ews._existing
    looks: list[int] = []

    def look_then_drop_the_next_answer(folder, creates):
        found = look(folder, creates)
        looks.append(len(found))
        if len(looks) == 1:
            sandbox.sandbox.faults.add(kind="drop", service="ews", after_write=True, count=1)
        return found

    monkeypatch.setattr(ews, "_existing", look_then_drop_the_next_answer)
    event = ews.create_event(ref, data(2, 10))
    assert looks == [0, 1]  # nothing before the create; the lost one found after it
    mine = [i for i in sandbox.sandbox.services["ews"].items.values() if i.mailbox == ROOM]
    assert sorted(i.start for i in mine) == [START.replace(hour=8), START.replace(hour=10)]
    assert event.id in {i.id for i in mine} and event.reservation_id == 2


def test_every_request_holds_a_per_mailbox_slot_a_batch_one_per_item(sandbox, waits, tmp_path):
    backend = FileLimiter(tmp_path / "limits", Limits(max_in_flight=4))
    limiter = Limiter(backend, backend.limits)
    taken: list[tuple[str, int]] = []
    slot = limiter.slot

    def spy(key: str, items: int = 1):
        taken.append((key, items))
        return slot(key, items)

    limiter.slot = spy  # type: ignore[method-assign]
    ews = make_client(sandbox, waits)
    ews.http.limiter = limiter
    ews.create_event(CalendarRef(ROOM), data())
    ews.batch(
        CalendarRef("borealis@contoso.test"),
        [BatchOp(str(n), "create", data(n, 9 + n)) for n in range(3)],
    )
    keys = {key for key, _ in taken}
    assert keys == {
        f"ews:{sandbox.base_url}/ews/exchange.asmx:{ROOM}",
        f"ews:{sandbox.base_url}/ews/exchange.asmx:borealis@contoso.test",
    }
    assert (f"ews:{sandbox.base_url}/ews/exchange.asmx:borealis@contoso.test", 3) in taken


def test_a_calendar_named_by_its_folder_id(ews, sandbox):
    (calendar,) = ews.list_calendars(CalendarRef(ROOM))
    assert calendar.is_default and calendar.id
    event = ews.create_event(CalendarRef(ROOM, calendar.id), data())
    assert stored(sandbox, event.id).folder_id == calendar.id
    page = ews.changes(CalendarRef(ROOM, calendar.id), None, *WINDOW)
    assert [e.id for e in page.events] == [event.id]


def test_batch_updates_without_a_version_overwrite_and_a_gone_item_is_its_own_error(ews, sandbox):
    ref = CalendarRef(ROOM)
    kept = ews.create_event(ref, data(1, 9))
    gone = ews.create_event(ref, data(2, 11))
    ews.update_event(ref, kept.id, data(1, 9, subject="Changed in Outlook"))
    ews.delete_event(ref, gone.id)
    results = ews.batch(
        ref,
        [
            BatchOp("kept", "update", data(1, 10, subject="Ours"), event_id=kept.id),
            BatchOp("gone", "update", data(2, 12), event_id=gone.id),
        ],
    )
    assert results[0].ok and results[0].event.subject == "Ours"
    assert stored(sandbox, kept.id).subject == "Ours"
    assert isinstance(results[1].error, EventGone)


def test_a_recurring_master_comes_as_its_occurrences_and_its_series_state(ews, sandbox):
    from exchangelib import CalendarItem, EWSDateTime
    from exchangelib.items import SEND_TO_NONE
    from exchangelib.recurrence import DailyPattern, Recurrence

    from tests.support.ews_sandbox import account

    ref = CalendarRef(ROOM)
    cursor = ews.changes(ref, None, *WINDOW).sync_token
    room = account(sandbox, ROOM, "svc-reserva@contoso.test", impersonate=True)
    master = CalendarItem(
        account=room,
        folder=room.calendar,
        subject="Weekly",
        start=EWSDateTime.from_datetime(START),
        end=EWSDateTime.from_datetime(START + timedelta(hours=1)),
        recurrence=Recurrence(pattern=DailyPattern(interval=7), start=START.date(), number=8),
    )
    master.save(send_meeting_invitations=SEND_TO_NONE)
    master.refresh()
    page = ews.changes(ref, cursor, *WINDOW)
    *occurrences, state = page.events
    # The window (January 2030) holds four of the eight weeks.
    assert [e.start for e in occurrences] == [START + timedelta(days=7 * n) for n in range(4)]
    assert {(e.series_id, e.ical_uid, e.subject) for e in occurrences} == {
        (master.id, master.uid, "Weekly")
    }
    assert master.id not in {e.id for e in occurrences}
    assert (state.id, state.occurrence_ids) == (master.id, tuple(e.id for e in occurrences))

    # One occurrence deleted in Outlook: the feed reports the master, without it.
    room.calendar.get(id=occurrences[1].id).delete()
    again = ews.changes(ref, page.sync_token, *WINDOW)
    *left, state = again.events
    assert [e.id for e in left] == [occurrences[n].id for n in (0, 2, 3)]
    assert state.occurrence_ids == tuple(e.id for e in left)


def test_a_view_as_long_as_the_find_limit_gives_no_series_state(ews, sandbox, monkeypatch):
    """A CalendarView cut short at Exchange's find limit lists only some occurrences; a
    series state built from it would report the rest gone and cancel their bookings."""
    from exchangelib import CalendarItem, EWSDateTime
    from exchangelib.items import SEND_TO_NONE
    from exchangelib.recurrence import DailyPattern, Recurrence

    from integrations.ews import client as ews_client
    from tests.support.ews_sandbox import account

    ref = CalendarRef(ROOM)
    cursor = ews.changes(ref, None, *WINDOW).sync_token
    room = account(sandbox, ROOM, "svc-reserva@contoso.test", impersonate=True)
    CalendarItem(
        account=room,
        folder=room.calendar,
        subject="Weekly",
        start=EWSDateTime.from_datetime(START),
        end=EWSDateTime.from_datetime(START + timedelta(hours=1)),
        recurrence=Recurrence(pattern=DailyPattern(interval=7), start=START.date(), number=8),
    ).save(send_meeting_invitations=SEND_TO_NONE)
    monkeypatch.setattr(ews_client, "VIEW_ITEM_LIMIT", 4)  # the window's four occurrences
    events = ews.changes(ref, cursor, *WINDOW).events
    assert len(events) == 4 and all(e.start is not None for e in events)
    assert all(e.occurrence_ids is None for e in events)  # no series state
