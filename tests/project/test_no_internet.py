"""The suite's guard (tests/conftest.py): no test reaches the internet, and one that tries
fails, naming the host, even when the code under test catches the error."""

from __future__ import annotations

import socket

import pytest
import requests

from tests import conftest


def test_a_request_to_the_internet_is_refused_at_once_and_recorded():
    with pytest.raises(requests.ConnectionError, match="may not reach the internet"):
        requests.get("https://login.microsoftonline.com/common/discovery", timeout=5)
    assert conftest._internet_attempts == ["login.microsoftonline.com"]
    conftest._internet_attempts.clear()  # tried on purpose: the guard must not fail this test


def test_loopback_names_and_addresses_still_resolve():
    for host in ("localhost", "127.0.0.1", "::1"):
        assert socket.getaddrinfo(host, 80)
    assert conftest._internet_attempts == []
    with pytest.raises(socket.gaierror):
        socket.getaddrinfo("example.com", 443)
    conftest._internet_attempts.clear()
