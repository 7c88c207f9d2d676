"""Change notifications (handshake, clientState, expiry, renewal, lifecycle) and rooms."""

from __future__ import annotations

import datetime as dt
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.support.ms_sandbox import (
    ALICE,
    ROOM,
    ROOM2,
    Graph,
    app_token,
    event_body,
    session_for,
    sign_in,
)


class Receiver:
    """A local webhook endpoint: echoes validation tokens, records notifications."""

    def __init__(self, echo: bool = True) -> None:
        self.echo = echo
        self.received: list[dict] = []
        self.validations = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                query = parse_qs(urlsplit(self.path).query)
                if "validationToken" in query:
                    receiver.validations += 1
                    token = query["validationToken"][0] if receiver.echo else "wrong"
                    data = token.encode()
                    self.send_response(200)
                    self.send_header("Content-Type", "text/plain")
                else:
                    receiver.received.extend(json.loads(body)["value"])
                    data = b""
                    self.send_response(202)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/graph"
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def graph(sandbox):
    return Graph(sandbox, app_token(sandbox))


def _expiry(sandbox, minutes):
    when = sandbox.sandbox.clock.now() + dt.timedelta(minutes=minutes)
    return when.strftime("%Y-%m-%dT%H:%M:%S.0000000Z")


def _subscribe(graph, sandbox, receiver, minutes=4000, **extra):
    body = {
        "changeType": "created,updated,deleted",
        "notificationUrl": receiver.url,
        "resource": f"/users/{ROOM}/events",
        "expirationDateTime": _expiry(sandbox, minutes),
        "clientState": "s3cret-state",
    } | extra
    return graph("POST", "/subscriptions", json=body)


def test_subscription_handshake_then_notifications_with_client_state(graph, sandbox, receiver):
    created = _subscribe(graph, sandbox, receiver, lifecycleNotificationUrl=receiver.url)
    assert created.status_code == 201, created.text
    assert receiver.validations == 2  # notification URL and lifecycle URL
    sub = created.json()
    event = graph("POST", f"/users/{ROOM}/events", json=event_body()).json()
    graph("DELETE", f"/users/{ROOM}/events/{event['id']}")
    assert sandbox.sandbox.wait_idle()
    kinds = [n["changeType"] for n in receiver.received]
    assert kinds == ["created", "deleted"]
    first = receiver.received[0]
    assert first["clientState"] == "s3cret-state" and first["subscriptionId"] == sub["id"]
    assert first["resourceData"]["id"] == event["id"]


def test_handshake_failure_refuses_the_subscription(graph, sandbox):
    bad = Receiver(echo=False)
    try:
        response = _subscribe(graph, sandbox, bad)
    finally:
        bad.close()
    assert response.status_code == 400 and response.json()["error"]["code"] == "ValidationError"


def test_non_https_non_loopback_url_is_refused(graph, sandbox, receiver):
    response = _subscribe(graph, sandbox, receiver, notificationUrl="http://example.test/hook")
    assert response.status_code == 400


def test_maximum_expiry_renewal_and_expiry_on_the_clock(graph, sandbox, receiver):
    too_long = _subscribe(graph, sandbox, receiver, minutes=10081)
    assert too_long.status_code == 400 and "10080 minutes" in too_long.json()["error"]["message"]
    sub = _subscribe(graph, sandbox, receiver, minutes=60).json()
    renewed = graph(
        "PATCH", f"/subscriptions/{sub['id']}", json={"expirationDateTime": _expiry(sandbox, 600)}
    )
    assert renewed.status_code == 200
    sandbox.sandbox.advance_clock(120 * 60)
    graph = Graph(sandbox, app_token(sandbox))  # the old access token expired meanwhile
    assert graph("GET", f"/subscriptions/{sub['id']}").status_code == 200
    sandbox.sandbox.advance_clock(600 * 60)
    graph = Graph(sandbox, app_token(sandbox))
    assert graph("GET", f"/subscriptions/{sub['id']}").status_code == 404


def test_client_state_longer_than_128_is_refused(graph, sandbox, receiver):
    assert _subscribe(graph, sandbox, receiver, clientState="x" * 129).status_code == 400


def test_lifecycle_notifications(graph, sandbox, receiver):
    sub = _subscribe(graph, sandbox, receiver, lifecycleNotificationUrl=receiver.url).json()
    http = session_for(sandbox)
    url = f"{sandbox.base_url}/_sandbox/api/microsoft/subscriptions/{sub['id']}/lifecycle"
    assert http.post(url, json={"event": "reauthorizationRequired"}).status_code == 202
    graph("POST", f"/users/{ROOM}/events", json=event_body())  # paused: not delivered
    assert sandbox.sandbox.wait_idle()
    assert [n.get("lifecycleEvent") for n in receiver.received] == ["reauthorizationRequired"]
    assert graph("POST", f"/subscriptions/{sub['id']}/reauthorize").status_code == 200
    graph("POST", f"/users/{ROOM}/events", json=event_body())
    http.post(url, json={"event": "missed"})
    http.post(url, json={"event": "subscriptionRemoved"})
    assert sandbox.sandbox.wait_idle()
    kinds = [n.get("lifecycleEvent", n.get("changeType")) for n in receiver.received]
    assert kinds == ["reauthorizationRequired", "created", "missed", "subscriptionRemoved"]
    assert all(n["clientState"] == "s3cret-state" for n in receiver.received)
    assert graph("GET", f"/subscriptions/{sub['id']}").status_code == 404


def test_room_accepts_when_free_and_declines_when_busy(sandbox, graph):
    graph(
        "POST",
        f"/users/{ROOM2}/events",
        json=event_body("Busy", "2030-01-07T09:00:00", "2030-01-07T10:00:00"),
    )
    _app, result = sign_in(sandbox, ALICE)
    alice = Graph(sandbox, result["access_token"])
    invite = [
        {"type": "resource", "emailAddress": {"address": ROOM, "name": "Atlas"}},
        {"type": "resource", "emailAddress": {"address": ROOM2, "name": "Borealis"}},
    ]
    event = alice(
        "POST",
        "/me/events",
        json=event_body("Planning", attendees=invite, location={"displayName": "Atlas"}),
    ).json()
    assert sandbox.sandbox.wait_idle()
    mine = alice("GET", f"/me/events/{event['id']}").json()
    answers = {a["emailAddress"]["address"]: a["status"]["response"] for a in mine["attendees"]}
    assert answers == {ROOM: "accepted", ROOM2: "declined"}
    assert mine["changeKey"] != event["changeKey"]
    (copy,) = graph("GET", f"/users/{ROOM}/events").json()["value"]
    assert copy["iCalUId"] == event["iCalUId"] and copy["isOrganizer"] is False
    assert copy["subject"] == "Alice Adams"  # Exchange puts the organizer in the subject
    assert len(graph("GET", f"/users/{ROOM2}/events").json()["value"]) == 1

    alice(
        "PATCH",
        f"/me/events/{event['id']}",
        json=event_body("Planning", "2030-01-07T11:00:00", "2030-01-07T12:00:00"),
    )
    assert sandbox.sandbox.wait_idle()
    moved = alice("GET", f"/me/events/{event['id']}").json()
    answers = {a["emailAddress"]["address"]: a["status"]["response"] for a in moved["attendees"]}
    assert answers == {ROOM: "accepted", ROOM2: "accepted"}
    alice("DELETE", f"/me/events/{event['id']}")
    assert sandbox.sandbox.wait_idle()
    assert graph("GET", f"/users/{ROOM}/events").json()["value"] == []
