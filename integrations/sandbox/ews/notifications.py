"""Event notifications: ``Subscribe`` (streaming and pull), ``GetEvents`` and ``Unsubscribe``
(``GetStreamingEvents`` is in ``streaming.py``).

A subscription watches folders of one mailbox (``FolderIds``, or ``SubscribeToAllFolders``)
for the event types it names; every write to an item there queues a ``CreatedEvent``,
``ModifiedEvent`` or ``DeletedEvent`` (with ``TimeStamp``, ``ItemId`` and ``ParentFolderId``
and a ``Watermark``). Only the account that subscribed may read it
(``ErrorSubscriptionAccessDenied`` otherwise).

Streaming (``GetStreamingEvents``): the answer is one HTTP response, chunked, holding one SOAP
``Envelope`` after another: queued and new notifications as they happen, a
``ConnectionStatus`` ``OK`` heartbeat every ``streaming_heartbeat_seconds`` (configuration,
30) and ``Closed`` once ``ConnectionTimeout`` minutes (1-30) have passed on the sandbox clock.
A second connection for a subscription closes the first (``ErrorNewEventStreamConnectionOpened``);
an account (the impersonated one when impersonating) may hold ``hanging_connection_limit``
(3, on-premises' HangingConnectionLimit) open streams, a fourth is ``ErrorExceededConnectionCount``.
A streaming subscription without a connection for 30 minutes expires.

Pull (``GetEvents``): events after a watermark, at most 50 a call (``MoreEvents``), or a
``StatusEvent`` when there are none; the subscription expires after ``Timeout`` minutes
(1-1440) without a ``GetEvents``.

Unknown or expired ids are ``ErrorSubscriptionNotFound``; ids the server could not have
issued ``ErrorInvalidSubscription``; a pull id in ``GetStreamingEvents`` is
``ErrorInvalidSubscription``, a streaming id in ``GetEvents`` ``ErrorInvalidPullSubscriptionId``.
Push subscriptions are not emulated. Folder-level events (the calendar folder itself being
modified) are not sent.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import secrets
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .items import format_datetime
from .operations import Call, _required, _response, operation, resolve_folder
from .soap import ItemError, M, SoapFault, T, local, q, response_message
from .state import CalendarItem, EwsState, Folder

if TYPE_CHECKING:
    from ..server import Sandbox

EVENT_TYPES = (
    "CopiedEvent",
    "CreatedEvent",
    "DeletedEvent",
    "ModifiedEvent",
    "MovedEvent",
    "NewMailEvent",
    "FreeBusyChangedEvent",
)
KIND_TO_EVENT = {"Create": "CreatedEvent", "Update": "ModifiedEvent", "Delete": "DeletedEvent"}
SUBSCRIPTION_PREFIX = b"RSVN"
WATERMARK_PREFIX = b"RSVW"
STREAMING_IDLE_MINUTES = 30
MAX_PULL_EVENTS = 50


@dataclass
class Event:
    seq: int
    kind: str  # CreatedEvent, ModifiedEvent, DeletedEvent
    timestamp: dt.datetime
    item_id: str
    item_change_key: str
    folder_id: str
    folder_change_key: str


@dataclass
class Subscription:
    id: str
    kind: str  # "streaming" or "pull"
    owner: str  # the signed-in account that subscribed
    mailbox: str
    folder_ids: set[str] | None  # None: every folder
    event_types: set[str]
    timeout_minutes: int
    last_used: dt.datetime
    events: list[Event] = field(default_factory=list)
    # Streaming: the connection serving it now (a token), if any.
    stream: object | None = None

    def expired(self, now: dt.datetime) -> bool:
        if self.kind == "streaming" and self.stream is not None:
            return False
        return now - self.last_used > dt.timedelta(minutes=self.timeout_minutes)

    def to_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "kind": self.kind,
            "owner": self.owner,
            "mailbox": self.mailbox,
            "folder_ids": sorted(self.folder_ids) if self.folder_ids is not None else None,
            "event_types": sorted(self.event_types),
            "timeout_minutes": self.timeout_minutes,
            "last_used": self.last_used.isoformat(),
            "queued_events": len(self.events),
            "connected": self.stream is not None,
        }


def watermark(seq: int) -> str:
    return base64.b64encode(WATERMARK_PREFIX + seq.to_bytes(8, "big")).decode()


def _watermark_seq(value: str) -> int:
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if not raw.startswith(WATERMARK_PREFIX) or len(raw) != len(WATERMARK_PREFIX) + 8:
        raise ItemError("ErrorInvalidWatermark", "The watermark used for this request is invalid.")
    return int.from_bytes(raw[len(WATERMARK_PREFIX) :], "big")


def install(state: EwsState, sandbox: Sandbox) -> None:
    """Queue events on the subscriptions of every write; expire idle ones as time moves."""

    def on_change(kind: str, item: CalendarItem, folder: Folder) -> None:
        event_type = KIND_TO_EVENT[kind]
        for sub in state.subscriptions.values():
            if sub.mailbox != folder.mailbox or event_type not in sub.event_types:
                continue
            if sub.folder_ids is not None and folder.id not in sub.folder_ids:
                continue
            sub.events.append(
                Event(
                    state.sequence,
                    event_type,
                    state.now(),
                    item.id,
                    item.change_key,
                    folder.id,
                    folder.change_key,
                )
            )

    def on_clock() -> None:
        with state.lock:
            expire_due(state)
            state.changed.notify_all()  # streams re-check their connection timeout

    state.listeners.append(on_change)
    sandbox.clock_listeners.append(on_clock)


def expire_due(state: EwsState) -> list[str]:
    """Drop the subscriptions unused for too long (sandbox clock); return their ids."""
    now = state.now()
    with state.lock:
        gone = [sid for sid, sub in state.subscriptions.items() if sub.expired(now)]
        for sid in gone:
            del state.subscriptions[sid]
        return gone


def remove(state: EwsState, subscription_id: str) -> bool:
    """Forget a subscription (Unsubscribe, or expired through the control API)."""
    with state.lock:
        found = state.subscriptions.pop(subscription_id, None) is not None
        state.changed.notify_all()
        return found


def _check_id(value: str) -> None:
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if not raw.startswith(SUBSCRIPTION_PREFIX) or len(raw) < len(SUBSCRIPTION_PREFIX) + 16:
        raise ItemError("ErrorInvalidSubscription", "The subscription is invalid.")


def _lookup(call: Call, value: str, kind: str | None = None) -> Subscription:
    _check_id(value)
    expire_due(call.state)
    sub = call.state.subscriptions.get(value)
    if sub is None:
        raise ItemError("ErrorSubscriptionNotFound", "The specified subscription was not found.")
    if sub.owner != call.user.email:
        raise ItemError(
            "ErrorSubscriptionAccessDenied",
            "A subscription can only be used by the account that created it.",
        )
    if kind == "pull" and sub.kind != "pull":
        raise ItemError(
            "ErrorInvalidPullSubscriptionId", "The subscription ID is not a pull subscription."
        )
    if kind == "streaming" and sub.kind != "streaming":
        raise ItemError("ErrorInvalidSubscription", "The subscription is not a streaming one.")
    return sub


def _schema(message: str) -> SoapFault:
    return SoapFault("ErrorSchemaValidation", f"The request failed schema validation: {message}")


@operation("Subscribe")
def subscribe(call: Call) -> ET.Element:
    if len(call.op) != 1:
        raise _schema("Subscribe needs one subscription request.")
    request = call.op[0]
    name = local(request.tag)
    kinds = {"PullSubscriptionRequest": "pull", "StreamingSubscriptionRequest": "streaming"}
    if name == "PushSubscriptionRequest":
        raise SoapFault("ErrorInvalidOperation", "The sandbox does not send push notifications.")
    if name not in kinds:
        raise _schema(f"'{name}' is not a subscription request.")
    everything = request.get("SubscribeToAllFolders", "false") in ("true", "1")
    types_elem = _required(request, "EventTypes", T)
    event_types = {(e.text or "").strip() for e in types_elem}
    if not event_types or not event_types <= set(EVENT_TYPES):
        raise _schema(f"EventTypes must be among {', '.join(EVENT_TYPES)}.")
    timeout = STREAMING_IDLE_MINUTES
    if kinds[name] == "pull":
        text = (request.findtext(q(T, "Timeout")) or "").strip()
        if not text.isdigit() or not 1 <= int(text) <= 1440:
            raise _schema("Timeout must be between 1 and 1440 minutes.")
        timeout = int(text)
    root, messages = _response("Subscribe")
    try:
        folder_refs = request.find(q(T, "FolderIds"))
        if everything == (folder_refs is not None):
            raise ItemError(
                "ErrorInvalidSubscriptionRequest",
                "Give FolderIds or SubscribeToAllFolders, one of them.",
            )
        folder_ids: set[str] | None = None
        mailbox = call.acting.email
        if folder_refs is not None:
            folders = [resolve_folder(call, ref) for ref in folder_refs]
            if not folders or len({f.mailbox for f in folders}) != 1:
                raise ItemError(
                    "ErrorInvalidSubscriptionRequest",
                    "All folders of a subscription must be in one mailbox.",
                )
            folder_ids, mailbox = {f.id for f in folders}, folders[0].mailbox
        given = request.findtext(q(M, "Watermark"))
        start = _watermark_seq(given) if given else call.state.sequence
        sub = Subscription(
            id=base64.b64encode(SUBSCRIPTION_PREFIX + secrets.token_bytes(24)).decode(),
            kind=kinds[name],
            owner=call.user.email,
            mailbox=mailbox,
            folder_ids=folder_ids,
            event_types=event_types,
            timeout_minutes=timeout,
            last_used=call.state.now(),
        )
        with call.state.lock:
            call.state.subscriptions[sub.id] = sub
        message = response_message("Subscribe")
        ET.SubElement(message, q(M, "SubscriptionId")).text = sub.id
        if sub.kind == "pull":
            ET.SubElement(message, q(M, "Watermark")).text = watermark(start)
        messages.append(message)
    except ItemError as error:
        messages.append(response_message("Subscribe", error))
    return root


@operation("Unsubscribe")
def unsubscribe(call: Call) -> ET.Element:
    value = (_required(call.op, "SubscriptionId").text or "").strip()
    root, messages = _response("Unsubscribe")
    try:
        sub = _lookup(call, value)
        remove(call.state, sub.id)
        messages.append(response_message("Unsubscribe"))
    except ItemError as error:
        messages.append(response_message("Unsubscribe", error))
    return root


def _event_xml(parent: ET.Element, event: Event, with_watermark: bool = True) -> None:
    node = ET.SubElement(parent, q(T, event.kind))
    if with_watermark:
        ET.SubElement(node, q(T, "Watermark")).text = watermark(event.seq)
    ET.SubElement(node, q(T, "TimeStamp")).text = format_datetime(event.timestamp)
    ET.SubElement(node, q(T, "ItemId"), {"Id": event.item_id, "ChangeKey": event.item_change_key})
    ET.SubElement(
        node, q(T, "ParentFolderId"), {"Id": event.folder_id, "ChangeKey": event.folder_change_key}
    )


@operation("GetEvents")
def get_events(call: Call) -> ET.Element:
    value = (_required(call.op, "SubscriptionId").text or "").strip()
    mark = (_required(call.op, "Watermark").text or "").strip()
    root, messages = _response("GetEvents")
    try:
        with call.state.lock:
            sub = _lookup(call, value, "pull")
            since = _watermark_seq(mark)
            sub.last_used = call.state.now()
            # Events up to the watermark the client sends back are acknowledged.
            sub.events = [e for e in sub.events if e.seq > since]
            page = sub.events[:MAX_PULL_EVENTS]
            message = response_message("GetEvents")
            note = ET.SubElement(message, q(M, "Notification"))
            ET.SubElement(note, q(T, "SubscriptionId")).text = sub.id
            ET.SubElement(note, q(T, "PreviousWatermark")).text = mark
            more = len(sub.events) > len(page)
            ET.SubElement(note, q(T, "MoreEvents")).text = str(more).lower()
            if page:
                for event in page:
                    _event_xml(note, event)
            else:
                status = ET.SubElement(note, q(T, "StatusEvent"))
                ET.SubElement(status, q(T, "Watermark")).text = watermark(
                    max(since, call.state.sequence)
                )
        messages.append(message)
    except ItemError as error:
        messages.append(response_message("GetEvents", error))
    return root
