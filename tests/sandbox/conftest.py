"""Fixtures that start a real sandbox on a free loopback port, one per test.

``sandbox`` is the running :class:`~integrations.sandbox.testing.SandboxHandle`;
``sandbox_config`` can be overridden in a test module to change the configuration;
``http`` is a ``requests.Session`` that trusts the sandbox CA (and ignores the machine's
REQUESTS_CA_BUNDLE, which would otherwise override ``Session.verify``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from integrations.sandbox.config import default_config
from integrations.sandbox.testing import SandboxHandle, start_sandbox


@pytest.fixture
def sandbox_config() -> dict[str, Any]:
    return default_config()


@pytest.fixture
def sandbox(
    tmp_path_factory: pytest.TempPathFactory, sandbox_config: dict[str, Any]
) -> Iterator[SandboxHandle]:
    # One CA per session keeps the tests fast; each test still gets fresh sandbox state.
    state_dir = tmp_path_factory.getbasetemp() / "sandbox-state"
    handle = start_sandbox(state_dir, sandbox_config)
    try:
        yield handle
    finally:
        handle.stop()


def trusting_session(handle: SandboxHandle) -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    session.verify = str(handle.ca_file)
    return session


@pytest.fixture
def http(sandbox: SandboxHandle) -> Iterator[requests.Session]:
    session = trusting_session(sandbox)
    yield session
    session.close()


@pytest.fixture
def ews(sandbox: SandboxHandle, monkeypatch: pytest.MonkeyPatch) -> Iterator[SandboxHandle]:
    """The running sandbox, with exchangelib trusting its CA for the test's duration."""
    from exchangelib.protocol import BaseProtocol, close_connections

    from tests.support.ews_sandbox import adapter_for

    monkeypatch.setattr(BaseProtocol, "HTTP_ADAPTER_CLS", adapter_for(str(sandbox.ca_file)))
    yield sandbox
    close_connections()
