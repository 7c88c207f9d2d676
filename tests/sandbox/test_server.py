"""The sandbox server itself: TLS with its own CA, keep-alive, control API basics."""

from __future__ import annotations

import requests

from integrations.sandbox.testing import start_sandbox


def test_serves_https_trusted_through_the_ca_file(sandbox, http):
    response = http.get(f"{sandbox.base_url}/_sandbox/api/state")
    assert response.status_code == 200
    assert response.json()["base_url"] == sandbox.base_url
    assert sandbox.ca_file.read_text().startswith("-----BEGIN CERTIFICATE-----")


def test_untrusted_without_the_ca_file(sandbox):
    session = requests.Session()
    session.trust_env = False
    try:
        session.get(f"{sandbox.base_url}/_sandbox/api/state")
    except requests.exceptions.SSLError:
        return
    raise AssertionError("the sandbox certificate must not be trusted without its CA file")


def test_reuses_the_ca_across_restarts(tmp_path):
    first = start_sandbox(tmp_path)
    ca_pem = first.ca_file.read_bytes()
    first.stop()
    second = start_sandbox(tmp_path)
    try:
        assert second.ca_file.read_bytes() == ca_pem
    finally:
        second.stop()
