"""The Calendar batch endpoint in the sandbox, through google-api-python-client's own
BatchHttpRequest and through hand-built multipart bodies."""

from __future__ import annotations

import json

import google_auth_httplib2
import httplib2
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError
from googleapiclient.http import BatchHttpRequest

from tests.support.google_sandbox import (
    alice_fixture,  # noqa: F401 - the "alice" fixture
    control,
    make_event,
    sa_credentials,
)

BOUNDARY = "batch_sandbox_test"


def _multipart(parts: list[tuple[str, str, dict | None, dict[str, str]]]) -> bytes:
    """parts: (content id, "METHOD /path", JSON body or None, extra part headers)."""
    chunks = []
    for content_id, line, body, headers in parts:
        inner = [f"{line} HTTP/1.1"]
        inner += [f"{k}: {v}" for k, v in headers.items()]
        payload = ""
        if body is not None:
            inner.append("Content-Type: application/json")
            payload = json.dumps(body)
        chunks.append(
            f"--{BOUNDARY}\r\nContent-Type: application/http\r\nContent-ID: <{content_id}>\r\n\r\n"
            + "\r\n".join(inner) + "\r\n\r\n" + payload + "\r\n"
        )  # fmt: skip
    return ("".join(chunks) + f"--{BOUNDARY}--\r\n").encode()


def _send(alice, parts, **headers):
    return alice.http.post(
        f"{alice.handle.base_url}/google/batch/calendar/v3",
        data=_multipart(parts),
        headers={
            "Authorization": f"Bearer {alice.token}",
            "Content-Type": f"multipart/mixed; boundary={BOUNDARY}",
            **headers,
        },
    )


def _answers(response) -> list[tuple[str, int, dict]]:
    """(Content-ID, status, JSON body) of each part of a batch answer, in order."""
    boundary = response.headers["Content-Type"].split("boundary=")[1]
    out = []
    for chunk in response.content.decode().split(f"--{boundary}")[1:-1]:
        head, _, http_part = chunk.strip("\r\n").partition("\r\n\r\n")
        content_id = next(
            line.split(":", 1)[1].strip()
            for line in head.split("\r\n")
            if line.startswith("Content-ID")
        )
        status_line, _, rest = http_part.partition("\r\n")
        _, _, body = rest.partition("\r\n\r\n")
        out.append(
            (content_id, int(status_line.split()[1]), json.loads(body) if body.strip() else {})
        )
    return out


def test_batch_answers_in_order_with_response_content_ids(alice):
    parts = [
        ("item1", "POST /calendar/v3/calendars/primary/events", make_event(id="batch0001"), {}),
        ("item2", "POST /calendar/v3/calendars/primary/events", make_event(id="batch0001"), {}),
        ("item3", "GET /calendar/v3/calendars/primary/events/batch0001", None, {}),
        ("item4", "DELETE /calendar/v3/calendars/primary/events/nosuch001", None, {}),
    ]
    answer = _send(alice, parts)
    assert answer.status_code == 200
    assert answer.headers["Content-Type"].startswith("multipart/mixed; boundary=")
    got = _answers(answer)
    assert [(cid, status) for cid, status, _ in got] == [
        ("<response-item1>", 200),
        ("<response-item2>", 409),
        ("<response-item3>", 200),
        ("<response-item4>", 404),
    ]
    assert got[1][2]["error"]["errors"][0]["reason"] == "duplicate"
    assert got[2][2]["id"] == "batch0001"


def test_part_headers_override_outer_headers(sandbox, alice):
    bob_token = sa_credentials(sandbox, alice.http, subject="bob@northwind.test").token
    parts = [
        ("a", "GET /calendar/v3/calendars/primary", None, {}),
        ("b", "GET /calendar/v3/calendars/primary", None, {"Authorization": f"Bearer {bob_token}"}),
        ("c", "GET /calendar/v3/calendars/primary", None, {"Authorization": "Bearer ya29.bad"}),
    ]
    got = _answers(_send(alice, parts))
    assert got[0][2]["id"] == "alice@northwind.test"
    assert got[1][2]["id"] == "bob@northwind.test"
    assert got[2][1] == 401


def test_each_part_counts_against_the_per_user_quota(sandbox, http, alice):
    control(http, sandbox, "PUT", "/limits", json={"requests_per_minute": 3})
    parts = [(f"p{n}", "GET /calendar/v3/calendars/primary/events", None, {}) for n in range(5)]
    answer = _send(alice, parts)
    assert answer.status_code == 200
    got = _answers(answer)
    assert [status for _, status, _ in got] == [200, 200, 200, 403, 403]
    assert got[3][2]["error"]["errors"][0]["reason"] == "rateLimitExceeded"


def test_more_than_1000_parts_are_refused(alice):
    parts = [(f"p{n}", "GET /calendar/v3/calendars/primary", None, {}) for n in range(1001)]
    answer = _send(alice, parts)
    assert answer.status_code == 400
    assert answer.json()["error"]["errors"][0]["reason"] == "batchSizeTooLarge"


def test_batch_needs_multipart(alice):
    answer = alice.http.post(
        f"{alice.handle.base_url}/google/batch/calendar/v3",
        json={"requests": []},
        headers={"Authorization": f"Bearer {alice.token}"},
    )
    assert answer.status_code == 400


def test_google_api_python_client_batch(sandbox, http):
    creds = sa_credentials(sandbox, http)
    authed = google_auth_httplib2.AuthorizedHttp(
        creds, http=httplib2.Http(ca_certs=str(sandbox.ca_file))
    )
    service = build(
        "calendar", "v3", http=authed, static_discovery=True,
        client_options={"api_endpoint": f"{sandbox.base_url}/google/calendar/v3/"},
    )  # fmt: skip
    results: list[tuple[str, object]] = []

    def collect(request_id, response, exception):
        results.append((request_id, exception or response["id"]))

    batch = BatchHttpRequest(
        callback=collect, batch_uri=f"{sandbox.base_url}/google/batch/calendar/v3"
    )
    for event_id in ("client001", "client002", "client001"):
        batch.add(service.events().insert(calendarId="primary", body=make_event(id=event_id)))
    batch.execute()

    assert [r[1] for r in results[:2]] == ["client001", "client002"]
    assert isinstance(results[2][1], HttpError) and results[2][1].resp.status == 409
    listed = service.events().list(calendarId="primary").execute()
    assert sorted(e["id"] for e in listed["items"]) == ["client001", "client002"]
