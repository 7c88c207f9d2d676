"""Push notifications: ``events.watch``, ``channels.stop`` and delivery to the channel address.

From Google's push guide (reference §5): a watch body names ``id`` (unique, at most 64
characters), ``type`` (``web_hook``), an https ``address``, an optional ``token`` and
``expiration`` (Unix ms) and ``params.ttl`` (default 604800 s). The response is an
``api#channel`` with ``resourceId``. Right after creation a ``sync`` message is sent, then one
``exists`` message per change; each is a bodiless POST with ``X-Goog-Channel-ID``,
``X-Goog-Message-Number``, ``X-Goog-Resource-ID``, ``X-Goog-Resource-State``,
``X-Goog-Resource-URI`` and, when known, ``X-Goog-Channel-Expiration`` and
``X-Goog-Channel-Token``; user agent ``APIs-Google``. A 5xx answer is retried with backoff.

Delivery runs on the sandbox's background thread, never inside the API request.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import http.client
import ssl
import time
from email.utils import format_datetime
from typing import TYPE_CHECKING
from urllib.parse import quote, urlsplit

from ..core import Response
from .api import Call, endpoint
from .errors import ApiError
from .service import ChangeListener, Channel, GoogleService, random_token
from .store import Calendar, StoredEvent

if TYPE_CHECKING:
    pass

RETRY_DELAYS = (0.2, 0.5)


@endpoint("calendar.events.watch")
def watch(call: Call) -> Response:
    google = call.google
    calendar = google.calendar(call.principal, call.path("calendarId"))
    body = call.body
    channel_id = body.get("id")
    if not channel_id:
        raise ApiError(400, "required", "Required")
    if len(channel_id) > 64:
        raise ApiError(400, "invalid", "Channel id must be at most 64 characters.")
    if body.get("type") not in ("web_hook", "webhook"):
        raise ApiError(400, "invalid", f"Invalid value for type: {body.get('type')}")
    address = body.get("address") or ""
    parts = urlsplit(address)
    loopback_http = (
        parts.scheme == "http"
        and parts.hostname in ("127.0.0.1", "localhost", "::1")
        and google.settings["allow_http_loopback_push"]
    )
    if parts.scheme != "https" and not loopback_http:
        raise ApiError(400, "push.webhookUrlNotHttps", f"WebHook callback must be HTTPS: {address}")
    if body.get("token") and len(body["token"]) > 256:
        raise ApiError(400, "invalid", "Channel token must be at most 256 characters.")
    ttl = (body.get("params") or {}).get("ttl", str(google.settings["channel_default_ttl_seconds"]))
    if not str(ttl).isdigit():
        raise ApiError(400, "invalid", f"Invalid value for params.ttl: {ttl}")
    now = google.now()
    expiration = now + dt.timedelta(seconds=int(ttl))
    if body.get("expiration"):
        asked = dt.datetime.fromtimestamp(int(body["expiration"]) / 1000, dt.UTC)
        expiration = min(expiration, asked)  # "the more restrictive" of the two
    with google.lock:
        existing = google.channels.get(channel_id)
        if existing is not None and not existing.stopped:
            raise ApiError(400, "channelIdNotUnique", f"Channel id {channel_id} not unique")
        channel = Channel(
            id=channel_id,
            resource_id=random_token("", 27),
            calendar_id=calendar.id,
            address=address,
            token=body.get("token"),
            expiration=expiration,
            principal=call.principal,
            client_id=call.token.client_id,
            resource_uri=f"{google.api_root}/calendars/{quote(calendar.id)}/events?alt=json",
        )
        google.channels[channel_id] = channel
    google.sandbox.defer(lambda: deliver(google, channel, "sync"))
    payload = {
        "kind": "api#channel",
        "id": channel.id,
        "resourceId": channel.resource_id,
        "resourceUri": channel.resource_uri,
        "expiration": str(int(expiration.timestamp() * 1000)),
    }
    if channel.token:
        payload["token"] = channel.token
    return Response.json(200, payload)


@endpoint("calendar.channels.stop")
def stop(call: Call) -> Response:
    google = call.google
    body = call.body
    with google.lock:
        channel = google.channels.get(body.get("id") or "")
        if channel is None or channel.stopped or channel.resource_id != body.get("resourceId"):
            raise ApiError(404, "notFound", f"Channel '{body.get('id')}' not found for project")
        # Reference §5: only the creating user (or, for service accounts, the same client)
        # may stop a channel.
        if channel.principal != call.principal and channel.client_id != call.token.client_id:
            raise ApiError(403, "forbidden", "Forbidden")
        channel.stopped = True
    return Response.empty(204)


def on_change(google: GoogleService) -> ChangeListener:
    """A change listener that queues an ``exists`` message for each live channel."""

    def listener(calendar: Calendar, event: StoredEvent) -> None:
        now = google.now()
        for channel in list(google.channels.values()):
            if (
                channel.calendar_id == calendar.id
                and not channel.stopped
                and channel.expiration > now
            ):
                google.sandbox.defer(lambda c=channel: deliver(google, c, "exists"))

    return listener


def _post(address: str, headers: dict[str, str], context: ssl.SSLContext) -> int | str:
    """One bodiless POST; http.client keeps the headers' case as Google writes it."""
    parts = urlsplit(address)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    if parts.scheme == "https":
        connection: http.client.HTTPConnection = http.client.HTTPSConnection(
            parts.hostname or "", parts.port, timeout=5, context=context
        )
    else:
        connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=5)
    try:
        connection.request("POST", path, body=b"", headers=headers)
        return connection.getresponse().status
    except (OSError, http.client.HTTPException) as exc:
        return f"error: {exc}"
    finally:
        connection.close()


def deliver(google: GoogleService, channel: Channel, state: str) -> None:
    """POST one notification, retrying a 5xx answer (or an unreachable address) twice."""
    with google.lock:
        if channel.stopped:
            return
        number = channel.message_number
        channel.message_number += 1
    headers = {
        "X-Goog-Channel-ID": channel.id,
        "X-Goog-Message-Number": str(number),
        "X-Goog-Resource-ID": channel.resource_id,
        "X-Goog-Resource-State": state,
        "X-Goog-Resource-URI": channel.resource_uri,
        "X-Goog-Channel-Expiration": format_datetime(channel.expiration, usegmt=True),
        "User-Agent": "APIs-Google; (+https://developers.google.com/webmasters/APIs-Google.html)",
    }
    if channel.token:
        headers["X-Goog-Channel-Token"] = channel.token
    context = ssl.create_default_context()
    with contextlib.suppress(OSError, ssl.SSLError):
        # Receivers may use a certificate from the sandbox CA, as a company's private CA.
        context.load_verify_locations(str(google.sandbox.ca_file))
    status: int | str = ""
    for attempt in range(len(RETRY_DELAYS) + 1):
        status = _post(channel.address, headers, context)
        if isinstance(status, int) and status < 500:
            break
        if attempt < len(RETRY_DELAYS):
            time.sleep(RETRY_DELAYS[attempt])
    with google.lock:
        channel.deliveries.append({"state": state, "number": number, "status": status})
