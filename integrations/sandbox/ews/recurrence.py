"""Recurring calendar items, as Exchange keeps them: one ``RecurringMaster`` item in the folder,
its occurrences computed from its ``t:Recurrence``, its exceptions and deleted occurrences
kept on the master.

- The folder (``FindItem`` without a view, ``SyncFolderItems``) holds the master only, with
  ``CalendarItemType`` ``RecurringMaster`` and ``IsRecurring`` false; its Start and End are
  the first occurrence's.
- ``FindItem`` with a ``CalendarView`` expands each master into its occurrences in the view
  (``Occurrence``, or ``Exception`` for one changed on its own; ``IsRecurring`` true;
  ``OriginalStart`` the time the pattern gave it), and leaves the master out.
- An occurrence's ``ItemId`` names the master and the occurrence's original start, so it is
  the same in every view, before and after the occurrence becomes an exception (exchangelib's
  tests: ``first_occurrence.id`` is the first unfolded item's id, a modified occurrence keeps
  its id). ``OccurrenceItemId`` (master + 1-based ``InstanceIndex``) and
  ``RecurringMasterItemId`` (an occurrence's id) name them too.
- ``UpdateItem`` of an occurrence makes (or changes) an exception; ``DeleteItem`` of one adds
  it to the master's ``DeletedOccurrences``. Either is a write of the master: a new change key
  and an ``Update`` of the master in ``SyncFolderItems``, which never reports occurrences.

Patterns: ``DailyRecurrence`` and ``WeeklyRecurrence`` (``Interval``, ``DaysOfWeek``) with
``NumberedRecurrence``, ``EndDateRecurrence`` or ``NoEndRecurrence``; the monthly and yearly
patterns are refused (``ErrorCalendarInvalidRecurrence``: the sandbox does not expand them).
Occurrences keep the master's time of day in UTC (the sandbox ignores time zone rules, as it
does for single items).
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import itertools
import struct
import xml.etree.ElementTree as ET
from dataclasses import dataclass, replace

from .soap import ItemError, SoapFault, T, local, q
from .state import ITEM_PREFIX, CalendarItem, EwsState, check_id

OCCURRENCE_PREFIX = b"RSVO"
DAYS = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")
MAX_OCCURRENCES = 999  # Exchange's limit on a numbered series
# Fields an occurrence may have of its own (an exception); the rest follow the master.
OWN_FIELDS = ("subject", "body", "start", "end", "location", "free_busy")


@dataclass(frozen=True)
class Pattern:
    kind: str  # "daily" | "weekly"
    interval: int
    days: tuple[int, ...]  # weekly: 0 = Sunday
    first: dt.date
    count: int | None  # NumberedRecurrence
    last: dt.date | None  # EndDateRecurrence (inclusive)


def _invalid(message: str) -> ItemError:
    return ItemError("ErrorCalendarInvalidRecurrence", message)


def _date(elem: ET.Element, name: str) -> dt.date:
    text = (elem.findtext(q(T, name)) or "").strip()
    try:
        return dt.date.fromisoformat(text[:10])  # "2030-01-07", "2030-01-07Z", "...+01:00"
    except ValueError:
        raise SoapFault(
            "ErrorSchemaValidation", f"The request failed schema validation: bad {name} '{text}'."
        ) from None


def _positive(elem: ET.Element, name: str) -> int:
    text = (elem.findtext(q(T, name)) or "").strip()
    if not text.isdigit() or int(text) < 1:
        raise SoapFault(
            "ErrorSchemaValidation", f"The request failed schema validation: bad {name} '{text}'."
        )
    return int(text)


def parse(elem: ET.Element) -> Pattern:
    """A ``t:Recurrence`` element as a ``Pattern``."""
    if len(elem) != 2:
        raise SoapFault(
            "ErrorSchemaValidation",
            "The request failed schema validation: Recurrence needs a pattern and a range.",
        )
    pattern, span = elem
    kind = local(pattern.tag)
    if kind not in ("DailyRecurrence", "WeeklyRecurrence"):
        raise _invalid(f"The sandbox expands daily and weekly patterns only, not {kind}.")
    interval = _positive(pattern, "Interval")
    days: tuple[int, ...] = ()
    if kind == "WeeklyRecurrence":
        names = (pattern.findtext(q(T, "DaysOfWeek")) or "").split()
        if not names or any(name not in DAYS for name in names):
            raise _invalid("A weekly pattern needs days of the week.")
        days = tuple(sorted(DAYS.index(name) for name in names))
    first = _date(span, "StartDate")
    count = last = None
    if local(span.tag) == "NumberedRecurrence":
        count = _positive(span, "NumberOfOccurrences")
        if count > MAX_OCCURRENCES:
            raise _invalid(f"A series has at most {MAX_OCCURRENCES} occurrences.")
    elif local(span.tag) == "EndDateRecurrence":
        last = _date(span, "EndDate")
        if last < first:
            raise ItemError("ErrorRecurrenceHasNoOccurrence", "The recurrence has no occurrences.")
    elif local(span.tag) != "NoEndRecurrence":
        raise SoapFault(
            "ErrorSchemaValidation",
            f"The request failed schema validation: '{local(span.tag)}' is not a range.",
        )
    return Pattern(
        "daily" if kind == "DailyRecurrence" else "weekly", interval, days, first, count, last
    )


def _dates(pattern: Pattern, until: dt.date):
    """The pattern's dates in order, up to ``until`` (and its own end)."""
    made = 0
    day = pattern.first
    week_start = pattern.first - dt.timedelta(days=(pattern.first.weekday() + 1) % 7)
    while day <= until and (pattern.last is None or day <= pattern.last):
        if pattern.count is not None and made >= pattern.count:
            return
        if pattern.kind == "daily":
            yield day
            made += 1
            day += dt.timedelta(days=pattern.interval)
            continue
        weeks = (day - week_start).days // 7
        if weeks % pattern.interval == 0 and (day.weekday() + 1) % 7 in pattern.days:
            yield day
            made += 1
        day += dt.timedelta(days=1)


def original_starts(master: CalendarItem, until: dt.datetime) -> list[dt.datetime]:
    """Every occurrence's original start up to ``until``, deleted ones included."""
    assert master.recurrence is not None and master.start is not None
    at = master.start.astimezone(dt.UTC).timetz()
    return [
        dt.datetime.combine(day, at)
        for day in _dates(master.recurrence, until.astimezone(dt.UTC).date())
    ]


def occurrence_id(master: CalendarItem, original: dt.datetime) -> str:
    raw = base64.b64decode(master.id)
    stamp = struct.pack(">q", int(original.timestamp()))
    return base64.b64encode(OCCURRENCE_PREFIX + stamp + raw).decode()


def split_id(value: str) -> tuple[str, dt.datetime] | None:
    """(master id, original start) of an occurrence id; None for another kind of id."""
    try:
        raw = base64.b64decode(value, validate=True)
    except ValueError:
        return None
    if not raw.startswith(OCCURRENCE_PREFIX) or len(raw) < len(OCCURRENCE_PREFIX) + 8 + 20:
        return None
    (stamp,) = struct.unpack(">q", raw[4:12])
    return base64.b64encode(raw[12:]).decode(), dt.datetime.fromtimestamp(stamp, dt.UTC)


def occurrence(master: CalendarItem, original: dt.datetime) -> CalendarItem:
    """The occurrence of ``master`` that the pattern put at ``original`` (an exception if it
    was changed on its own), as an item of its own."""
    assert master.start is not None and master.end is not None
    own = master.exceptions.get(original, {})
    values = {
        "start": original,
        "end": original + (master.end - master.start),
        **own,
    }
    return replace(
        master,
        id=occurrence_id(master, original),
        item_type="Exception" if own else "Occurrence",
        original_start=original,
        master_id=master.id,
        recurrence=None,
        recurrence_xml=None,
        exceptions={},
        deleted=set(),
        **values,
    )


def occurrences(master: CalendarItem, start: dt.datetime, end: dt.datetime) -> list[CalendarItem]:
    """The master's live occurrences that overlap [start, end)."""
    assert master.start is not None and master.end is not None
    span = max([master.end - master.start, *_exception_spans(master)])
    found = []
    for original in original_starts(master, end + span):
        if original in master.deleted:
            continue
        item = occurrence(master, original)
        assert item.start is not None and item.end is not None
        if item.start < end and item.end > start:
            found.append(item)
    return found


def _exception_spans(master: CalendarItem) -> list[dt.timedelta]:
    # An exception moved later than its original time may still reach into the view.
    spans = []
    for original, own in master.exceptions.items():
        if "end" in own:
            spans.append(own["end"] - original)
    return spans


def expand(items: list[CalendarItem], start: dt.datetime, end: dt.datetime) -> list[CalendarItem]:
    """A calendar view of ``items``: single items that overlap it and the occurrences of the
    recurring masters, sorted by start."""
    found: list[CalendarItem] = []
    for item in items:
        if item.recurrence is not None:
            found.extend(occurrences(item, start, end))
        elif item.start and item.end and item.start < end and item.end > start:
            found.append(item)
    return sorted(found, key=lambda i: (i.start, i.id))


def resolve(state: EwsState, ref: ET.Element) -> CalendarItem:
    """The item an ``ItemId``, ``OccurrenceItemId`` or ``RecurringMasterItemId`` names: a
    master, a single item or an occurrence (as an item of its own)."""
    kind = local(ref.tag)
    if kind == "OccurrenceItemId":
        master = _master(state, ref.get("RecurringMasterId", ""))
        index = ref.get("InstanceIndex", "")
        if not index.isdigit() or int(index) < 1:
            raise _out_of_range()
        assert master.recurrence is not None and master.start is not None
        dates = _dates(master.recurrence, dt.date.max)
        day = next(itertools.islice(dates, int(index) - 1, None), None)
        if day is None:
            raise _out_of_range()
        return _live(master, dt.datetime.combine(day, master.start.astimezone(dt.UTC).timetz()))
    if kind == "RecurringMasterItemId":
        parts = split_id(ref.get("OccurrenceId", ""))
        if parts is None:
            raise ItemError("ErrorInvalidIdMalformed", "Id is malformed.")
        return _master(state, parts[0])
    item_id = ref.get("Id", "")
    parts = split_id(item_id)
    if parts is None:
        return state.item(item_id)
    master = _master(state, parts[0])
    if parts[1] not in original_starts(master, parts[1]):
        raise ItemError("ErrorItemNotFound", "The specified object was not found in the store.")
    return _live(master, parts[1])


def _out_of_range() -> ItemError:
    return ItemError(
        "ErrorCalendarOccurrenceIndexIsOutOfRecurrenceRange",
        "Occurrence index is out of recurrence range.",
    )


def _master(state: EwsState, master_id: str) -> CalendarItem:
    check_id(master_id, ITEM_PREFIX)
    master = state.item(master_id)
    if master.recurrence is None:
        raise ItemError(
            "ErrorCalendarOccurrenceIndexIsOutOfRecurrenceRange",
            "The item is not a recurring master.",
        )
    return master


def _live(master: CalendarItem, original: dt.datetime) -> CalendarItem:
    if original in master.deleted:
        raise ItemError(
            "ErrorCalendarOccurrenceIsDeletedFromRecurrence",
            "Occurrence was deleted from the recurrence.",
        )
    return occurrence(master, original)


def change_occurrence(state: EwsState, item: CalendarItem, fields: set[str]) -> CalendarItem:
    """Keep the changed occurrence ``item`` as an exception on its master (a write of the
    master); returns the master."""
    assert item.master_id and item.original_start is not None
    master = state.items[item.master_id]
    base = occurrence(replace(master, exceptions={}), item.original_start)
    own = {
        name: getattr(item, name)
        for name in OWN_FIELDS
        if getattr(item, name) != getattr(base, name)
    }
    master.exceptions[item.original_start] = own
    state.touched(master, fields | {"calendar:ModifiedOccurrences"})
    return master


def delete_occurrence(state: EwsState, item: CalendarItem) -> CalendarItem:
    """Add the occurrence to its master's deleted occurrences (a write of the master)."""
    assert item.master_id and item.original_start is not None
    master = state.items[item.master_id]
    master.deleted.add(item.original_start)
    master.exceptions.pop(item.original_start, None)
    state.touched(master, {"calendar:DeletedOccurrences"})
    return master


def write_recurrence(node: ET.Element, item: CalendarItem) -> None:
    if item.recurrence_xml is not None:
        node.append(copy.deepcopy(item.recurrence_xml))


def write_modified(node: ET.Element, item: CalendarItem, format_datetime) -> None:
    if item.recurrence is None or not item.exceptions:
        return
    container = ET.SubElement(node, q(T, "ModifiedOccurrences"))
    for original in sorted(item.exceptions):
        one = occurrence(item, original)
        entry = ET.SubElement(container, q(T, "Occurrence"))
        ET.SubElement(entry, q(T, "ItemId"), {"Id": one.id, "ChangeKey": item.change_key})
        ET.SubElement(entry, q(T, "Start")).text = format_datetime(one.start)
        ET.SubElement(entry, q(T, "End")).text = format_datetime(one.end)
        ET.SubElement(entry, q(T, "OriginalStart")).text = format_datetime(original)


def write_deleted(node: ET.Element, item: CalendarItem, format_datetime) -> None:
    if item.recurrence is None or not item.deleted:
        return
    container = ET.SubElement(node, q(T, "DeletedOccurrences"))
    for original in sorted(item.deleted):
        entry = ET.SubElement(container, q(T, "DeletedOccurrence"))
        ET.SubElement(entry, q(T, "Start")).text = format_datetime(original)
