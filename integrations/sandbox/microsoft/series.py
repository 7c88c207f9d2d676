"""Recurring series in a mailbox: the master, its occurrences and exceptions, kept in step.

A series is stored as its ``seriesMaster`` event (the rule in ``_recurrence``) plus one
stored event per instance, so every instance has its own id, change key and change sequence
number, and delta, notifications and room processing treat it like any event. Instances are
(re)written from the master after every write to it:

- an instance's id is derived from the master's id and the date of its original start (as
  Exchange derives an occurrence's id), so it is stable across reads and across changes to
  the master; its ``iCalUId`` carries that date in the place Exchange's global object id
  does, so it differs per occurrence ("different for each occurrence", event resource);
- an occurrence copies the master; an ``exception`` (an occurrence changed through its own
  id) keeps the properties changed on it and follows the master for the rest;
- a deleted occurrence is a tombstone, remembered on the master, and is not re-created;
- a new rule (``recurrence`` changed on the master) re-expands the series: exceptions and
  deleted occurrences are dropped, as Outlook warns they are;
- deleting the master deletes every instance.

Moving an exception past its neighbour is refused with Exchange's
``ErrorOccurrenceCrossingBoundary``, overlapping one with ``ErrorOccurrenceTimeSpanTooBig``.
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
from typing import Any

from . import recurrence
from .event_model import INSTANCE_TYPES, InvalidEvent, apply_body
from .state import Mailbox, MicrosoftState

# What an instance takes from its master, grouped by the body property that, changed on the
# exception, makes it keep its own value.
INHERITED = {
    "subject": ("subject",),
    "body": ("body",),
    "isAllDay": ("isAllDay",),
    "showAs": ("showAs",),
    "sensitivity": ("sensitivity",),
    "importance": ("importance",),
    "isReminderOn": ("isReminderOn",),
    "reminderMinutesBeforeStart": ("reminderMinutesBeforeStart",),
    "categories": ("categories",),
    "responseRequested": ("responseRequested",),
    "allowNewTimeProposals": ("allowNewTimeProposals",),
    "isOnlineMeeting": ("isOnlineMeeting",),
    "onlineMeetingProvider": ("onlineMeetingProvider",),
    "hideAttendees": ("hideAttendees",),
    "isDraft": ("isDraft",),
    "location": ("location", "locations"),
    "locations": ("location", "locations"),
    "attendees": ("attendees",),
    "organizer": ("organizer",),
    "singleValueExtendedProperties": ("_ext",),
    "start": ("_start", "originalStartTimeZone"),
    "end": ("_end", "originalEndTimeZone"),
}
ALWAYS_INHERITED = ("isOrganizer", "responseStatus", "isCancelled", "_calendar")
COMPARED = (
    *{field for fields in INHERITED.values() for field in fields},
    *ALWAYS_INHERITED,
    "_type",
    "_original_start",
)


def is_instance(event: dict[str, Any]) -> bool:
    return event.get("_type") in INSTANCE_TYPES


def is_master(event: dict[str, Any]) -> bool:
    return event.get("_type") == "seriesMaster"


def occurrence_id(master_id: str, day: dt.date) -> str:
    """The master's id with the occurrence's date appended (URL-safe base64, like the id)."""
    stamp = base64.urlsafe_b64encode(day.strftime("%Y%m%d").encode()).decode().rstrip("=")
    return f"{master_id.removesuffix('AAA=')}ABEgA{stamp}AAA="


def occurrence_uid(master_uid: str, day: dt.date) -> str:
    """Exchange's global object id holds an instance's date (year, month, day) in bytes
    16-19; the master's has zeros there."""
    stamp = f"{day.year:04X}{day.month:02X}{day.day:02X}"
    return master_uid[:32] + stamp + master_uid[40:]


def instances(box: Mailbox, master: dict[str, Any]) -> list[dict[str, Any]]:
    """The live occurrences and exceptions of ``master``, in order."""
    found = [
        e for e in box.events.values() if e.get("_master") == master["id"] and not e["_deleted"]
    ]
    return sorted(found, key=lambda e: e["_original_start"])


def _inherit(master: dict[str, Any], instance: dict[str, Any], start: dt.datetime) -> None:
    kept = instance.get("_overrides", set())
    for prop, fields in INHERITED.items():
        if prop in kept or prop in ("start", "end"):
            continue
        for name in fields:
            instance[name] = copy.deepcopy(master[name])
    for name in ALWAYS_INHERITED:
        instance[name] = copy.deepcopy(master[name])
    instance["_original_start"] = start
    if "start" not in kept and "end" not in kept:
        instance["_start"], instance["_end"] = start, start + (master["_end"] - master["_start"])
        instance["originalStartTimeZone"] = master["originalStartTimeZone"]
        instance["originalEndTimeZone"] = master["originalEndTimeZone"]


def _snapshot(event: dict[str, Any]) -> dict[str, Any]:
    return copy.deepcopy({name: event.get(name) for name in COMPARED})


def expand(state: MicrosoftState, box: Mailbox, master: dict[str, Any], *, reset: bool) -> None:
    """Write the master's instances: new ones created, changed ones updated (each a change
    delta and notifications report), those the rule no longer has deleted. ``reset``: the
    rule changed, so exceptions and deleted occurrences are forgotten."""
    rule = master["_recurrence"]
    if reset:
        master["_cancelled"] = set()
    cancelled = master.setdefault("_cancelled", set())
    wanted = {
        occurrence_id(master["id"], day): (
            day,
            recurrence.occurrence_start(rule, master["_start"], day),
        )
        for day in recurrence.dates(rule)
    }
    for event in instances(box, master):
        if event["id"] not in wanted or event["_original_day"] in cancelled:
            state.delete_event(box, event)
    for event_id, (day, start) in wanted.items():
        if day in cancelled:
            continue
        instance = box.events.get(event_id)
        if instance is None or instance["_deleted"]:
            instance = {
                "id": event_id,
                "iCalUId": occurrence_uid(master["iCalUId"], day),
                "_master": master["id"],
                "_original_day": day,
                "_type": "occurrence",
                "_overrides": set(),
                "_deleted": False,
                "transactionId": None,
            }
            _inherit(master, instance, start)
            state.save_event(box, instance, "created")
            continue
        before = _snapshot(instance)
        if reset:
            instance["_overrides"], instance["_type"] = set(), "occurrence"
        _inherit(master, instance, start)
        if _snapshot(instance) != before:
            state.save_event(box, instance, "updated")


def _check_neighbours(box: Mailbox, instance: dict[str, Any], draft: dict[str, Any]) -> None:
    others = [e for e in instances(box, {"id": instance["_master"]}) if e is not instance]
    before = [e for e in others if e["_original_start"] < instance["_original_start"]]
    after = [e for e in others if e["_original_start"] > instance["_original_start"]]
    previous, following = (before[-1] if before else None), (after[0] if after else None)
    if (previous and draft["_start"] <= previous["_start"]) or (
        following and draft["_start"] >= following["_start"]
    ):
        raise InvalidEvent(
            "ErrorOccurrenceCrossingBoundary",
            "An occurrence cannot be moved to or beyond the previous or next occurrence of "
            "its series.",
        )
    if (previous and draft["_start"] < previous["_end"]) or (
        following and draft["_end"] > following["_start"]
    ):
        raise InvalidEvent(
            "ErrorOccurrenceTimeSpanTooBig",
            "The occurrence would overlap another occurrence of the same series.",
        )


def create(state: MicrosoftState, box: Mailbox, event: dict[str, Any]) -> None:
    """Store a new event (already validated); a series master gets its instances."""
    state.save_event(box, event, "created")
    if is_master(event):
        expand(state, box, event, reset=True)


def update(state: MicrosoftState, box: Mailbox, event: dict[str, Any], body: Any) -> None:
    """Apply a PATCH body to a single event, a series master or one of its instances.
    Raises :class:`InvalidEvent` with nothing changed."""
    draft = dict(event)
    apply_body(draft, body, creating=False)
    if is_instance(event):
        if "start" in body or "end" in body:
            _check_neighbours(box, event, draft)
        draft["_overrides"] = set(event.get("_overrides", set())) | (set(body) & set(INHERITED))
        draft["_type"] = "exception"
    rule_changed = is_master(draft) and draft.get("_recurrence") != event.get("_recurrence")
    event.update(draft)
    state.save_event(box, event, "updated")
    if is_master(event):
        expand(state, box, event, reset=rule_changed)


def delete(state: MicrosoftState, box: Mailbox, event: dict[str, Any]) -> None:
    """Delete an event; an instance is remembered on its master as cancelled, a master takes
    its instances with it."""
    if is_instance(event):
        master = box.events.get(event["_master"])
        if master is not None:
            master.setdefault("_cancelled", set()).add(event["_original_day"])
    if is_master(event):
        for instance in instances(box, event):
            state.delete_event(box, instance)
    state.delete_event(box, event)


def list_instances(
    box: Mailbox, master: dict[str, Any], start: dt.datetime, end: dt.datetime
) -> list[dict[str, Any]]:
    """The occurrences and exceptions of ``master`` within [start, end) (none for an event
    that is not a series master); cancelled ones are left out, as Graph does."""
    if not is_master(master):
        return []
    found = [e for e in instances(box, master) if e["_start"] < end and e["_end"] > start]
    return sorted(found, key=lambda e: (e["_start"], e["id"]))
