"""Push notifications in the sandbox: events.watch, the sync message, one message per change
with Google's X-Goog-* headers, channels.stop, and the watch body's checks."""

from __future__ import annotations

import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.support.google_sandbox import (
    ALICE,
    BOREALIS,
    alice_fixture,  # noqa: F401 - the "alice" fixture
    control,
    error_of,
    make_event,
    receiver_fixture,  # noqa: F401 - the "receiver" fixture
)

WATCH = "/calendars/primary/events/watch"


def _watch(alice, receiver, channel_id="chan-1", **extra):
    body = {"id": channel_id, "type": "web_hook", "address": receiver.url, "token": "t=42", **extra}
    return alice.post(WATCH, json=body)


def test_watch_sends_sync_then_one_message_per_change(sandbox, http, alice, receiver):
    answer = _watch(alice, receiver)
    assert answer.status_code == 200
    channel = answer.json()
    assert channel["kind"] == "api#channel" and channel["id"] == "chan-1"
    assert channel["resourceId"] and channel["expiration"].isdigit()

    first = receiver.wait_for(1)[0]
    assert first["X-Goog-Resource-State"] == "sync"
    assert first["X-Goog-Message-Number"] == "1"
    assert first["X-Goog-Channel-ID"] == "chan-1"
    assert first["X-Goog-Channel-Token"] == "t=42"
    assert first["X-Goog-Resource-ID"] == channel["resourceId"]
    assert first["X-Goog-Resource-URI"].endswith("/events?alt=json")
    assert first["X-Goog-Channel-Expiration"].endswith("GMT")
    assert first["User-Agent"].startswith("APIs-Google")
    assert first["_body"] == ""

    alice.insert(id="pushed001")
    control(http, sandbox, "POST", f"/calendars/{ALICE}/events", json=make_event(summary="by hand"))
    messages = receiver.wait_for(3)
    assert [m["X-Goog-Resource-State"] for m in messages] == ["sync", "exists", "exists"]
    numbers = [int(m["X-Goog-Message-Number"]) for m in messages]
    assert numbers == sorted(numbers) and len(set(numbers)) == 3


def test_channels_stop_ends_notifications(sandbox, alice, receiver):
    channel = _watch(alice, receiver).json()
    receiver.wait_for(1)
    stop = alice.post(
        "/channels/stop", json={"id": channel["id"], "resourceId": channel["resourceId"]}
    )
    assert stop.status_code == 204 and stop.content == b""
    alice.insert(id="silent001")
    sandbox.sandbox.wait_idle()
    assert len(receiver.received) == 1
    again = alice.post(
        "/channels/stop", json={"id": channel["id"], "resourceId": channel["resourceId"]}
    )
    assert error_of(again) == (404, "notFound")


def test_room_calendar_watch_sees_the_accepted_invitation(sandbox, alice, receiver):
    assert (
        alice.post(
            f"/calendars/{BOREALIS}/events/watch",
            json={"id": "room-chan", "type": "web_hook", "address": receiver.url},
        ).status_code
        == 200
    )
    alice.insert(id="invite001", attendees=[{"email": BOREALIS}])
    sandbox.sandbox.wait_idle()
    states = [m["X-Goog-Resource-State"] for m in receiver.wait_for(2)]
    assert states[0] == "sync" and "exists" in states[1:]


def test_watch_body_is_checked(alice, receiver):
    assert error_of(_watch(alice, receiver, address="http://example.test/hook")) == (
        400,
        "push.webhookUrlNotHttps",
    )
    assert error_of(_watch(alice, receiver, type="email"))[0] == 400
    assert error_of(_watch(alice, receiver, channel_id="x" * 65))[0] == 400
    assert _watch(alice, receiver, channel_id="dup").status_code == 200
    assert error_of(_watch(alice, receiver, channel_id="dup")) == (400, "channelIdNotUnique")


def test_expired_channel_sends_nothing(sandbox, alice, receiver):
    assert _watch(alice, receiver, params={"ttl": "60"}).status_code == 200
    receiver.wait_for(1)
    sandbox.sandbox.advance_clock(61)
    alice.insert(id="late00001")
    sandbox.sandbox.wait_idle()
    assert len(receiver.received) == 1


def test_server_errors_from_the_receiver_are_retried(sandbox, alice, receiver):
    receiver.status = 503
    _watch(alice, receiver)
    sandbox.sandbox.wait_idle(timeout=5)
    assert len(receiver.received) == 3  # the first try and two retries
    assert len({m["X-Goog-Message-Number"] for m in receiver.received}) == 1


def test_https_receiver_with_a_certificate_from_the_sandbox_ca(sandbox, alice, tmp_path):
    """A receiver on https whose certificate comes from a CA the sandbox trusts."""
    from integrations.sandbox import ca

    files = ca.ensure_tls_files(sandbox.sandbox.state_dir)
    received = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.set()
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(files.cert_file, files.key_file)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        body = {"id": "tls-chan", "type": "web_hook",
                "address": f"https://127.0.0.1:{server.server_address[1]}/hook"}  # fmt: skip
        assert alice.post(WATCH, json=body).status_code == 200
        assert received.wait(5)
    finally:
        server.shutdown()
        server.server_close()
