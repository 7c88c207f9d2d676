"""Fixtures of the EwsClient tests: a fresh EWS sandbox per test, and a client of it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from exchangelib.protocol import close_connections

from integrations.ews.client import EwsClient
from integrations.sandbox.config import default_config
from integrations.sandbox.testing import SandboxHandle, start_sandbox
from tests.support.ews_client import make_client


@pytest.fixture
def sandbox_config() -> dict[str, Any]:
    return default_config()


@pytest.fixture
def sandbox(
    tmp_path_factory: pytest.TempPathFactory, sandbox_config: dict[str, Any]
) -> Iterator[SandboxHandle]:
    handle = start_sandbox(tmp_path_factory.getbasetemp() / "ews-client-sandbox", sandbox_config)
    try:
        yield handle
    finally:
        close_connections()
        handle.stop()


@pytest.fixture
def waits() -> list[float]:
    return []


@pytest.fixture
def ews(sandbox: SandboxHandle, waits: list[float]) -> EwsClient:
    return make_client(sandbox, waits)
