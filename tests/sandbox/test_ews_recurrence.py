"""Recurring calendar items in the EWS sandbox, driven by exchangelib over HTTPS, with the
checks of exchangelib's own tests against Exchange (tests/test_items/test_calendaritems.py:
test_recurring_item, test_change_occurrence, test_delete_occurrence, ..._via_index)."""

from __future__ import annotations

import pytest
from exchangelib import UTC, CalendarItem, EWSDateTime
from exchangelib.errors import (
    ErrorCalendarInvalidRecurrence,
    ErrorCalendarOccurrenceIsDeletedFromRecurrence,
)
from exchangelib.items import SEND_TO_NONE
from exchangelib.items.calendar_item import EXCEPTION, OCCURRENCE, RECURRING_MASTER
from exchangelib.recurrence import (
    AbsoluteMonthlyPattern,
    DailyPattern,
    DeletedOccurrence,
    Occurrence,
    Recurrence,
    WeeklyPattern,
)

from tests.support.ews_sandbox import account

ALICE = "alice@contoso.test"
START = EWSDateTime(2030, 1, 7, 8, tzinfo=UTC)  # a Monday
END = EWSDateTime(2030, 1, 7, 10, tzinfo=UTC)
DAY = START - START.replace(day=6)


def series(acc, **recurrence) -> CalendarItem:
    item = CalendarItem(
        account=acc,
        folder=acc.calendar,
        subject="Daily",
        start=START,
        end=END,
        recurrence=Recurrence(start=START.date(), **recurrence),
    )
    item.save(send_meeting_invitations=SEND_TO_NONE)
    item.refresh()
    return item


def unfolded(acc, days: int = 4) -> list[CalendarItem]:
    return list(acc.calendar.view(start=START, end=END + DAY * days))


def test_a_master_unfolds_into_its_occurrences(ews):
    acc = account(ews, ALICE)
    master = series(acc, pattern=DailyPattern(interval=1), number=4)
    assert (master.type, master.is_recurring) == (RECURRING_MASTER, False)
    assert master.modified_occurrences is None and master.deleted_occurrences is None
    found = unfolded(acc)
    assert [(i.type, i.is_recurring) for i in found] == [(OCCURRENCE, True)] * 4
    assert [i.start for i in found] == [START + DAY * n for n in range(4)]
    assert {i.uid for i in found} == {master.uid}
    assert len({i.id for i in found}) == 4 and master.id not in {i.id for i in found}
    assert [i.id for i in unfolded(acc)] == [i.id for i in found]  # the same ids every time
    # The folder itself holds the master only.
    assert [i.id for i in acc.calendar.all()] == [master.id]


def test_a_changed_occurrence_becomes_an_exception_of_the_master(ews):
    acc = account(ews, ALICE)
    master = series(acc, pattern=DailyPattern(interval=1), number=4)
    key = master.changekey
    second = unfolded(acc)[1]
    second.start += DAY / 24
    second.end += DAY / 24
    second.save(update_fields=["start", "end"])
    master.refresh()
    assert master.changekey != key  # a write of the master
    (modified,) = master.modified_occurrences
    assert isinstance(modified, Occurrence)
    assert (modified.id, modified.start, modified.original_start) == (
        second.id,
        second.start,
        START + DAY,
    )
    after = unfolded(acc)
    assert [i.type for i in after] == [OCCURRENCE, EXCEPTION, OCCURRENCE, OCCURRENCE]
    assert (after[1].id, after[1].start) == (second.id, START + DAY + DAY / 24)


def test_a_deleted_occurrence_leaves_the_view_and_is_listed_on_the_master(ews):
    acc = account(ews, ALICE)
    master = series(acc, pattern=DailyPattern(interval=1), number=4)
    third = unfolded(acc)[2]
    third.delete()
    master.refresh()
    (deleted,) = master.deleted_occurrences
    assert isinstance(deleted, DeletedOccurrence) and deleted.start == third.start
    assert [i.start for i in unfolded(acc)] == [START, START + DAY, START + DAY * 3]
    with pytest.raises(ErrorCalendarOccurrenceIsDeletedFromRecurrence):
        master.occurrence(index=3).refresh()


def test_occurrences_by_index_and_a_weekly_pattern(ews):
    acc = account(ews, ALICE)
    master = series(acc, pattern=WeeklyPattern(interval=1, weekdays=[1, 3]), number=4)
    assert [i.start for i in unfolded(acc, days=14)] == [
        START, START + DAY * 2, START + DAY * 7, START + DAY * 9
    ]  # fmt: skip
    second = master.occurrence(index=2)
    second.refresh()
    assert (second.subject, second.start) == ("Daily", START + DAY * 2)


def test_patterns_the_sandbox_does_not_expand_are_refused(ews):
    acc = account(ews, ALICE)
    with pytest.raises(ErrorCalendarInvalidRecurrence):
        series(acc, pattern=AbsoluteMonthlyPattern(interval=1, day_of_month=7), number=3)
