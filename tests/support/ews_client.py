"""EwsClient against the EWS sandbox: the configuration, client and event data of the tests.

The client trusts the sandbox only through the connection's CA bundle
(``ProviderConfig.ca_bundle``), never through a test's HTTP adapter; waits go to the
sandbox clock instead of sleeping.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from integrations.base import EventData, ProviderConfig
from integrations.ews.client import EwsClient
from integrations.http import HttpClient, RetryPolicy
from integrations.sandbox.testing import SandboxHandle

ROOM = "atlas@contoso.test"
START = datetime(2030, 1, 7, 9, 0, tzinfo=UTC)
WINDOW = (datetime(2030, 1, 1, tzinfo=UTC), datetime(2030, 2, 1, tzinfo=UTC))


def make_config(handle: SandboxHandle, **changes: Any) -> ProviderConfig:
    config = ProviderConfig(
        kind="ews",
        authority_url="",
        authorization_url="",
        api_base_url=f"{handle.base_url}/EWS/Exchange.asmx",
        auth_method="ntlm",
        username="CONTOSO\\svc-reserva",
        password="Reserva-sandbox-1",
        account_email="svc-reserva@contoso.test",
        impersonation=True,
        ca_bundle=str(handle.ca_file),
        timeout=10,
    )
    return replace(config, **changes)


def make_client(handle: SandboxHandle, waits: list[float], **changes: Any) -> EwsClient:
    def sleep(seconds: float) -> None:
        waits.append(seconds)
        handle.sandbox.advance_clock(seconds)

    config = make_config(handle, **changes)
    http = HttpClient(
        ca_bundle=config.ca_bundle, timeout=10, policy=RetryPolicy(max_attempts=3), sleep=sleep
    )
    return EwsClient(config, http)


def data(reservation_id: int = 7, hour: int = 9, **changes: Any) -> EventData:
    event = EventData(
        reservation_id=reservation_id,
        subject="Board",
        start=START.replace(hour=hour),
        end=START.replace(hour=hour + 1),
        body="Booked in Reserva",
        location="Atlas",
        time_zone="Europe/Berlin",
    )
    return replace(event, **changes)


def stored(handle: SandboxHandle, item_id: str) -> Any:
    return handle.sandbox.services["ews"].items.get(item_id)


__all__ = ["ROOM", "START", "WINDOW", "data", "make_client", "make_config", "stored", "timedelta"]
