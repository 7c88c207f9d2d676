"""Limits (concurrency, requests per window), latency, injected faults, log and counters."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.support.ms_sandbox import ROOM, ROOM2, Graph, app_token, event_body, session_for


@pytest.fixture
def graph(sandbox):
    return Graph(sandbox, app_token(sandbox))


@pytest.fixture
def control(sandbox):
    http = session_for(sandbox)

    def call(method, path, **kwargs):
        response = http.request(method, f"{sandbox.base_url}/_sandbox/api/{path}", **kwargs)
        assert response.status_code < 400, response.text
        return response.json() if response.content else None

    return call


def test_more_than_four_in_flight_per_mailbox_is_429_mailbox_concurrency(graph, control):
    control("PUT", "latency", json={"services": {"graph": 0.4}})
    with ThreadPoolExecutor(max_workers=6) as pool:
        # Separate sessions: one connection each, like parallel workers.
        results = list(
            pool.map(
                lambda _: Graph.__call__(_fresh(graph), "GET", f"/users/{ROOM}/events"), range(6)
            )
        )
    statuses = sorted(r.status_code for r in results)
    assert statuses == [200] * 4 + [429] * 2
    refused = next(r for r in results if r.status_code == 429)
    assert refused.json()["error"]["code"] == "ApplicationThrottled"
    assert "MailboxConcurrency" in refused.json()["error"]["message"]
    assert int(refused.headers["Retry-After"]) >= 1


def _fresh(graph):
    clone = Graph.__new__(Graph)
    clone.base = graph.base
    clone.http = requests.Session()
    clone.http.trust_env = False
    clone.http.verify = graph.http.verify
    clone.http.headers.update(graph.http.headers)
    return clone


def test_concurrency_limit_is_adjustable(graph, control):
    control("PUT", "limits", json={"graph": {"max_in_flight": 1}})
    control("PUT", "latency", json={"services": {"graph": 0.3}})
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(
            pool.map(
                lambda _: Graph.__call__(_fresh(graph), "GET", f"/users/{ROOM}/events"), range(2)
            )
        )
    assert sorted(r.status_code for r in results) == [200, 429]


def test_request_window_then_reset_by_the_clock(graph, control, sandbox):
    control("PUT", "limits", json={"graph": {"max_requests": 3, "window_seconds": 600}})
    for _ in range(3):
        assert graph("GET", f"/users/{ROOM}/events").status_code == 200
    over = graph("GET", f"/users/{ROOM}/events")
    assert over.status_code == 429 and 590 <= int(over.headers["Retry-After"]) <= 600
    assert graph("GET", f"/users/{ROOM2}/events").status_code == 200
    control("POST", "clock/advance", json={"minutes": 10})
    assert graph("GET", f"/users/{ROOM}/events").status_code == 200


def test_a_request_before_the_retry_after_is_up_is_counted_early(graph, control, sandbox):
    control("PUT", "limits", json={"graph": {"max_requests": 1, "window_seconds": 600}})
    assert graph("GET", f"/users/{ROOM}/events").status_code == 200
    refused = graph("GET", f"/users/{ROOM}/events")
    assert refused.status_code == 429 and sum(sandbox.sandbox.limits.early.values()) == 0
    assert graph("GET", f"/users/{ROOM}/events").status_code == 429  # did not wait
    assert sum(sandbox.sandbox.limits.early.values()) == 1
    control("POST", "clock/advance", json={"minutes": 10})  # waited as told
    assert graph("GET", f"/users/{ROOM}/events").status_code == 200
    assert sum(sandbox.sandbox.limits.early.values()) == 1
    state = control("GET", "limits")
    assert [b["early"] for b in state["buckets"] if b["key"][-1] == ROOM.lower()] == [1]


def test_injected_500_for_the_next_request_only(graph, control):
    control("POST", "faults", json={"kind": "500", "service": "graph", "count": 1})
    first = graph("GET", f"/users/{ROOM}/events")
    assert first.status_code == 500 and first.json()["error"]["code"] == "InternalServerError"
    assert graph("GET", f"/users/{ROOM}/events").status_code == 200


def test_injected_503_carries_retry_after(graph, control):
    control(
        "POST",
        "faults",
        json={"kind": "503", "method": "POST", "path": "/events$", "count": 2, "retry_after": 7},
    )
    assert graph("GET", f"/users/{ROOM}/events").status_code == 200  # not matching
    for _ in range(2):
        response = graph("POST", f"/users/{ROOM}/events", json=event_body())
        assert response.status_code == 503 and response.headers["Retry-After"] == "7"
    assert graph("POST", f"/users/{ROOM}/events", json=event_body()).status_code == 201


def test_fault_at_a_rate(graph, control):
    control("POST", "faults", json={"kind": "500", "rate": 1.0, "count": None})
    assert graph("GET", f"/users/{ROOM}/events").status_code == 500
    control("DELETE", "faults")
    assert graph("GET", f"/users/{ROOM}/events").status_code == 200


def test_slow_response_lands_the_write_but_times_the_client_out(graph, control):
    control("POST", "faults", json={"kind": "slow", "method": "POST", "delay_seconds": 2})
    with pytest.raises(requests.exceptions.ReadTimeout):
        graph.http.post(
            f"{graph.base}/users/{ROOM}/events", json=event_body(transactionId="t1"), timeout=0.5
        )
    events = control("GET", f"microsoft/mailboxes/{ROOM}/events")["value"]
    assert [e["transactionId"] for e in events] == ["t1"]


def test_dropped_connection(graph, control):
    control("POST", "faults", json={"kind": "drop", "path": "/events$"})
    with pytest.raises(requests.exceptions.ConnectionError):
        graph("GET", f"/users/{ROOM}/events")
    assert graph("GET", f"/users/{ROOM}/events").status_code == 200


def test_dropped_connection_after_the_write(graph, control):
    control("POST", "faults", json={"kind": "drop", "method": "POST", "after_write": True})
    with pytest.raises(requests.exceptions.ConnectionError):
        graph("POST", f"/users/{ROOM}/events", json=event_body())
    assert len(control("GET", f"microsoft/mailboxes/{ROOM}/events")["value"]) == 1


def test_fault_on_the_token_endpoint_has_the_identity_shape(sandbox, control):
    from integrations.sandbox.config import DEMO_TENANT_ID

    control(
        "POST",
        "faults",
        json={"kind": "503", "service": "microsoft-identity", "path": "/token$", "retry_after": 3},
    )
    url = f"{sandbox.base_url}/{DEMO_TENANT_ID}/oauth2/v2.0/token"
    response = session_for(sandbox).post(url, data={"grant_type": "client_credentials"})
    assert response.status_code == 503 and response.headers["Retry-After"] == "3"
    assert response.json()["error"] == "temporarily_unavailable"


def test_log_has_no_secrets_and_counters_count(sandbox, graph, control):
    from tests.support.ms_sandbox import sign_in

    _app, result = sign_in(sandbox)
    graph("GET", f"/users/{ROOM}/events")
    log = control("GET", "log")["value"]
    text = str(log)
    assert result["access_token"] not in text and result["refresh_token"] not in text
    assert "sandbox-demo-secret" not in text and "Bearer" not in text
    authorize = next(e for e in log if e["endpoint"] == "identity authorize")
    assert authorize["query"]["client_id"]
    counters = control("GET", "counters")
    assert counters["endpoint"]["graph events list"] == 1
    assert counters["endpoint"]["identity token"] >= 2
    assert counters["mailbox"][ROOM] == 1 and counters["status"]["200"] >= 1


def test_control_page_and_day_view(sandbox, graph, control):
    graph(
        "POST",
        f"/users/{ROOM}/events",
        json=event_body("Board", "2030-01-07T09:00:00", "2030-01-07T10:00:00"),
    )
    day = control("GET", "day", params={"date": "2030-01-07"})
    room = next(c for c in day["calendars"] if c["mailbox"] == ROOM)
    assert room["provider"] == "microsoft" and room["events"][0]["subject"] == "Board"
    page = session_for(sandbox).get(f"{sandbox.base_url}/_sandbox/")
    assert page.status_code == 200 and "setInterval(refresh" in page.text
