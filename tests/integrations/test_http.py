"""The one outbound HTTP path: retries, Retry-After, request ids, CA bundle per request."""

from __future__ import annotations

import logging
import os

import pytest
import requests
import responses

from integrations.base import Throttled, TlsError, TransientError
from integrations.http import HttpClient, RetryPolicy, parse_retry_after
from integrations.sandbox.testing import start_sandbox

URL = "https://graph.example.test/v1.0/users/room@example.com/events"


@pytest.fixture
def waits():
    return []


@pytest.fixture
def client(waits):
    return HttpClient(policy=RetryPolicy(max_attempts=4), sleep=waits.append)


@responses.activate
def test_retry_after_is_honoured_then_success(client, waits):
    responses.get(URL, status=429, headers={"Retry-After": "7"})
    responses.get(URL, status=503, headers={"Retry-After": "2"})
    responses.get(URL, json={"value": []})
    response = client.request("GET", URL)
    assert response.status_code == 200
    assert waits == [7.0, 2.0]
    ids = {call.request.headers["client-request-id"] for call in responses.calls}
    assert len(ids) == 3  # a fresh id per attempt


@responses.activate
def test_backoff_without_retry_after_is_jittered_exponential(client, waits):
    for _ in range(3):
        responses.get(URL, status=504)
    responses.get(URL, json={})
    client.request("GET", URL)
    assert len(waits) == 3
    assert all(0 <= w <= 0.5 * 2**i for i, w in enumerate(waits))


@responses.activate
def test_exhausted_retries_raise_throttled_with_the_hint(client):
    for _ in range(4):
        responses.get(URL, status=429, headers={"Retry-After": "3"})
    with pytest.raises(Throttled) as err:
        client.request("GET", URL)
    assert err.value.retry_after == 3.0 and err.value.status == 429
    assert not err.value.permanent


@responses.activate
def test_a_very_long_retry_after_is_left_to_the_caller(client, waits):
    responses.get(URL, status=429, headers={"Retry-After": "3600"})
    with pytest.raises(Throttled) as err:
        client.request("GET", URL)
    assert waits == [] and err.value.retry_after == 3600.0


@responses.activate
def test_other_errors_are_returned_to_the_client_code(client):
    responses.post(URL, status=403, json={"error": {"code": "ErrorAccessDenied"}})
    assert client.request("POST", URL, json={}).status_code == 403
    assert len(responses.calls) == 1


def test_unknown_outcome_of_a_post_is_retried_only_when_idempotent(client):
    with responses.RequestsMock() as mock:
        mock.post(URL, body=requests.ConnectionError("connection reset"))
        with pytest.raises(TransientError, match="did not answer"):
            client.request("POST", URL, json={})
        assert len(mock.calls) == 1  # a plain POST may have landed: not retried

    with responses.RequestsMock() as mock:
        mock.post(URL, body=requests.ConnectionError("connection reset"))
        mock.post(URL, json={"id": "AAMk"}, status=201)
        response = client.request("POST", URL, json={"transactionId": "t-1"}, idempotent=True)
        assert response.status_code == 201 and len(mock.calls) == 2


@responses.activate
def test_logs_carry_no_secrets_or_query_strings(client, caplog):
    responses.get(URL, json={})
    with caplog.at_level(logging.INFO, logger="integrations.http"):
        client.request(
            "GET",
            URL + "?$deltatoken=SECRETISH",
            headers={"Authorization": "Bearer eyJ-very-secret"},
        )
    text = caplog.text
    assert "graph.example.test/v1.0/users/room@example.com/events -> 200" in text
    assert "eyJ-very-secret" not in text and "SECRETISH" not in text


def test_parse_retry_after_accepts_seconds_and_dates():
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after("Wed, 21 Oct 2026 07:28:00 GMT", now=1792567660.0) == 20.0
    assert parse_retry_after("soon") is None


def test_ca_bundle_is_applied_per_request_despite_requests_ca_bundle(tmp_path, monkeypatch):
    """The machine's REQUESTS_CA_BUNDLE (system CAs) must not hide the alias's CA bundle."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    assert os.environ["REQUESTS_CA_BUNDLE"]
    with start_sandbox(tmp_path / "sandbox") as sandbox:
        url = f"{sandbox.base_url}/_sandbox/api/state"
        trusted = HttpClient(ca_bundle=str(sandbox.ca_file), sleep=lambda s: None)
        assert trusted.request("GET", url).status_code == 200
        untrusted = HttpClient(sleep=lambda s: None)  # system CAs only
        with pytest.raises(TlsError, match="not trusted") as err:
            untrusted.request("GET", url)
        assert err.value.permanent
