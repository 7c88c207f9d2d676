"""``GetStreamingEvents``: one chunked HTTP response of SOAP envelopes (see ``notifications.py``
for subscriptions and their events).

The first answer waits for nothing: queued notifications go out at once. Then notifications as
writes happen, a ``ConnectionStatus`` ``OK`` heartbeat every ``streaming_heartbeat_seconds``,
and ``Closed`` after ``ConnectionTimeout`` minutes on the sandbox clock. An account holds at
most ``hanging_connection_limit`` open streams (``ErrorExceededConnectionCount``); a second
stream for a subscription closes the first (``ErrorNewEventStreamConnectionOpened``).
"""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from ..core import Headers, Response
from .notifications import Event, Subscription, _event_xml, _lookup, _schema
from .operations import Call, _required, _response, operation
from .soap import ItemError, M, T, q, response_message, serialize_envelope
from .state import EwsState

if TYPE_CHECKING:
    from ..server import Sandbox


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
