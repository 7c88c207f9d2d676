"""SyncFolderItems through exchangelib: sync states, creates, updates, deletes, paging."""

from __future__ import annotations

import pytest
from exchangelib import UTC, CalendarItem, EWSDateTime
from exchangelib.errors import ErrorInvalidSyncStateData

from tests.support.ews_sandbox import account


def at(hour: int) -> EWSDateTime:
    return EWSDateTime(2030, 1, 7, hour, tzinfo=UTC)


def changes(folder, **kwargs):
    return [
        (kind, getattr(item, "subject", None) if kind != "delete" else item.id)
        for kind, item in folder.sync_items(**kwargs)
    ]


def test_sync_reports_creates_updates_and_deletes(ews):
    acc = account(ews, "alice@contoso.test")
    cal = acc.calendar
    one = CalendarItem(account=acc, folder=cal, subject="one", start=at(9), end=at(10))
    one.save()
    assert changes(cal) == [("create", "one")]
    first_state = cal.item_sync_state
    assert changes(cal) == []
    one.subject = "one!"
    one.save(update_fields=["subject"])
    two = CalendarItem(account=acc, folder=cal, subject="two", start=at(11), end=at(12))
    two.save()
    gone = CalendarItem(account=acc, folder=cal, subject="gone", start=at(13), end=at(14))
    gone.save()
    gone.delete()  # created and deleted between two syncs: never reported
    one_id = one.id
    assert changes(cal) == [("update", "one!"), ("create", "two")]
    one.delete()
    assert changes(cal) == [("delete", one_id)]
    # An old sync state still works: everything since then, collapsed per item.
    cal.item_sync_state = first_state
    assert changes(cal) == [("create", "two"), ("delete", one_id)]


def test_sync_pages_with_max_changes_returned(ews):
    acc = account(ews, "alice@contoso.test")
    cal = acc.calendar
    for n in range(5):
        CalendarItem(account=acc, folder=cal, subject=f"s{n}", start=at(9), end=at(10)).save()
    seen = changes(cal, max_changes_returned=2)
    assert seen == [("create", f"s{n}") for n in range(5)]


def test_a_sync_state_the_server_did_not_issue_is_refused(ews):
    acc = account(ews, "alice@contoso.test")
    cal = acc.calendar
    cal.item_sync_state = "H4sIAAAAAAAEAO29B2AcSZYlJi9tynt"
    with pytest.raises(ErrorInvalidSyncStateData):
        list(cal.sync_items())
