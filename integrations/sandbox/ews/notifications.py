"""Event notifications: ``Subscribe`` (streaming and pull), ``GetStreamingEvents``,
``GetEvents`` and ``Unsubscribe``.

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
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..core import Headers, Response
from .items import format_datetime
from .operations import Call, _required, _response, operation, resolve_folder
from .soap import ItemError, M, SoapFault, T, local, q, response_message, serialize_envelope
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


def _stream_message(
    notifications: list[tuple[Subscription, list[Event]]] | None = None,
    status: str | None = None,
    error: ItemError | None = None,
    bad_ids: list[str] | None = None,
) -> ET.Element:
    root, messages = _response("GetStreamingEvents")
    message = response_message("GetStreamingEvents", error)
    if notifications:
        container = ET.SubElement(message, q(M, "Notifications"))
        for sub, events in notifications:
            note = ET.SubElement(container, q(M, "Notification"))
            ET.SubElement(note, q(T, "SubscriptionId")).text = sub.id
            for event in events:
                _event_xml(note, event)
    if bad_ids:
        ids = ET.SubElement(message, q(M, "ErrorSubscriptionIds"))
        for value in bad_ids:
            ET.SubElement(ids, q(M, "SubscriptionId")).text = value
    if status:
        ET.SubElement(message, q(M, "ConnectionStatus")).text = status
    messages.append(message)
    return root


@operation("GetStreamingEvents")
def get_streaming_events(call: Call) -> ET.Element | Response:
    ids_elem = _required(call.op, "SubscriptionIds")
    values = [(e.text or "").strip() for e in ids_elem]
    if not values:
        raise _schema("SubscriptionIds needs at least one SubscriptionId.")
    text = (_required(call.op, "ConnectionTimeout").text or "").strip()
    if not text.isdigit() or not 1 <= int(text) <= 30:
        raise _schema("ConnectionTimeout must be between 1 and 30 minutes.")
    subs: list[Subscription] = []
    with call.state.lock:
        for value in values:
            try:
                subs.append(_lookup(call, value, "streaming"))
            except ItemError as error:
                return _stream_message(error=error, bad_ids=[value])
        # HangingConnectionLimit (web.config; 3 on premises): open streams per account, the
        # impersonated one when impersonating. A stream this one takes over does not count.
        account = call.acting.email if call.impersonating else call.user.email
        wanted = frozenset(s.id for s in subs)
        others = [
            ids
            for owner, ids in call.state.streams.values()
            if owner == account and not ids <= wanted
        ]
        limit = int(call.state.config.get("hanging_connection_limit", 3))
        if len(others) >= limit:
            error = ItemError(
                "ErrorExceededConnectionCount",
                "You have exceeded the available concurrent connections for your account. Try "
                "again once your other requests have completed.",
            )
            return _stream_message(error=error)
        token = object()
        call.state.streams[token] = (account, wanted)
        for sub in subs:
            sub.stream = token
        # Every other connection serving one of these ends now.
        call.state.changed.notify_all()
    sandbox = call.sandbox
    heartbeat = float(call.state.config.get("streaming_heartbeat_seconds", 30))
    deadline = sandbox.clock.timestamp() + 60 * int(text)
    gone = call.connection.get("client_gone") or (lambda: False)
    body = _stream(call.state, sandbox, subs, token, deadline, heartbeat, gone)
    response = Response(200, b"", Headers({"Content-Type": "text/xml; charset=utf-8"}))
    response.stream = body
    return response


def _stream(
    state: EwsState,
    sandbox: Sandbox,
    subs: list[Subscription],
    token: object,
    deadline: float,
    heartbeat: float,
    client_gone: Callable[[], bool],
) -> Iterator[bytes]:
    """The streamed documents: notifications as they come, heartbeats, then Closed.

    A client that hangs up ends the stream before it takes events off the queue; events a
    failed write could not deliver go back to the front of their queue."""
    build = state.build
    last_sent = time.monotonic()
    ready: list[tuple[Subscription, list[Event]]] = []
    try:
        while True:
            taken_over = finished = False
            ready = []
            if client_gone():
                return
            with state.lock:
                live = [s for s in subs if state.subscriptions.get(s.id) is s]
                if any(s.stream is not token for s in live):
                    taken_over = True  # another GetStreamingEvents took a subscription over
                elif not live or sandbox.stopping.is_set():
                    finished = True
                else:
                    ready = [(s, s.events) for s in live if s.events]
                    for sub in live:
                        sub.events = []
                    if not ready:
                        if sandbox.clock.timestamp() >= deadline:
                            finished = True
                        else:
                            state.changed.wait(timeout=0.25)
            if taken_over:
                error = ItemError(
                    "ErrorNewEventStreamConnectionOpened",
                    "A new streaming connection was opened for the subscription.",
                )
                yield serialize_envelope(_stream_message(status="Closed", error=error), build)
                return
            if finished:
                break
            if ready:
                yield serialize_envelope(_stream_message(ready, status="OK"), build)
                ready = []
                last_sent = time.monotonic()
            elif time.monotonic() - last_sent >= heartbeat:
                yield serialize_envelope(_stream_message(status="OK"), build)
                last_sent = time.monotonic()
        yield serialize_envelope(_stream_message(status="Closed"), build)
    finally:
        with state.lock:
            state.streams.pop(token, None)
            for sub, events in ready:  # the write of these failed
                sub.events[:0] = events
            now = state.now()
            for sub in subs:
                if sub.stream is token:
                    sub.stream = None
                    sub.last_used = now
