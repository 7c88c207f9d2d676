"""EwsClient against the EWS sandbox: real exchangelib, real NTLM/Basic, real HTTPS.

Each test gets a fresh sandbox. The client trusts the sandbox only through the connection's
CA bundle (``ProviderConfig.ca_bundle``), never through the test's HTTP adapter, so these
tests also show that the bundle reaches exchangelib. Waits go to the sandbox clock.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from exchangelib.protocol import close_connections

from integrations.base import (
    BatchOp,
    CalendarRef,
    EventData,
    EventGone,
    ProviderConfig,
    SyncTokenExpired,
    Throttled,
    VersionConflict,
)
from integrations.ews.client import EwsClient
from integrations.ews.mapping import creation_key
from integrations.http import HttpClient, RetryPolicy
from integrations.sandbox.config import default_config
from integrations.sandbox.testing import SandboxHandle, start_sandbox

ROOM = "atlas@contoso.test"
START = datetime(2030, 1, 7, 9, 0, tzinfo=UTC)
WINDOW = (datetime(2030, 1, 1, tzinfo=UTC), datetime(2030, 2, 1, tzinfo=UTC))


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


@pytest.fixture
def waits() -> list[float]:
    return []


def make_client(handle: SandboxHandle, waits: list[float], **changes: Any) -> EwsClient:
    def sleep(seconds: float) -> None:
        waits.append(seconds)
        handle.sandbox.advance_clock(seconds)

    config = make_config(handle, **changes)
    http = HttpClient(
        ca_bundle=config.ca_bundle, timeout=10, policy=RetryPolicy(max_attempts=3), sleep=sleep
    )
    return EwsClient(config, http)


@pytest.fixture
def client(sandbox: SandboxHandle, waits: list[float]) -> EwsClient:
    return make_client(sandbox, waits)


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


def test_create_writes_the_event_in_the_location_zone_with_our_tag(client, sandbox):
    event = client.create_event(CalendarRef(ROOM), data())
    assert event.reservation_id == 7 and event.version
    assert (event.start, event.end) == (START, START + timedelta(hours=1))
    item = stored(sandbox, event.id)
    assert item.mailbox == ROOM  # impersonation: written in the room's mailbox
    assert item.subject == "Board" and item.start == START
    assert "Europe" in str(item.start_tz)  # W. Europe Standard Time, Berlin's Windows zone
    assert item.uid == creation_key(7)
    found = client.get_event(CalendarRef(ROOM), event.id)
    assert (found.reservation_id, found.version, found.subject) == (7, event.version, "Board")


def test_a_repeated_create_returns_the_first_event(client, sandbox):
    first = client.create_event(CalendarRef(ROOM), data())
    again = client.create_event(CalendarRef(ROOM), data())
    assert again.id == first.id
    mine = [i for i in sandbox.sandbox.services["ews"].items.values() if i.mailbox == ROOM]
    assert len(mine) == 1


def test_update_with_the_current_change_key_then_a_stale_one(client, sandbox):
    ref = CalendarRef(ROOM)
    event = client.create_event(ref, data())
    moved = client.update_event(ref, event.id, data(hour=11, subject="Moved"), event.version)
    assert moved.version != event.version
    assert (moved.start, moved.subject) == (START.replace(hour=11), "Moved")
    assert stored(sandbox, event.id).subject == "Moved"
    with pytest.raises(VersionConflict):
        client.update_event(ref, event.id, data(subject="Stale"), event.version)
    assert stored(sandbox, event.id).subject == "Moved"
    # Without a version the update overwrites.
    client.update_event(ref, event.id, data(subject="Forced"))
    assert stored(sandbox, event.id).subject == "Forced"


def test_update_of_a_deleted_event_is_event_gone_and_delete_is_idempotent(client, sandbox):
    ref = CalendarRef(ROOM)
    event = client.create_event(ref, data())
    client.delete_event(ref, event.id)
    client.delete_event(ref, event.id)  # already gone: success
    with pytest.raises(EventGone):
        client.update_event(ref, event.id, data())
    with pytest.raises(EventGone):
        client.get_event(ref, event.id)
    assert client.read_events(ref, [event.id]) == {event.id: None}


def test_changes_full_read_then_incremental_with_tags_and_removals(client, sandbox):
    ref = CalendarRef(ROOM)
    one = client.create_event(ref, data(1, 9))
    outside = client.create_event(
        ref, data(2, 9, start=START + timedelta(days=90), end=START + timedelta(days=90, hours=1))
    )
    page = client.changes(ref, None, *WINDOW)
    assert [(e.id, e.reservation_id) for e in page.events] == [(one.id, 1)]
    assert page.sync_token and page.next_page is None
    assert outside.id not in {e.id for e in page.events}
    assert client.changes(ref, page.sync_token, *WINDOW).events == []
    client.update_event(ref, one.id, data(1, 10, subject="Later"))
    three = client.create_event(ref, data(3, 12))
    second = client.changes(ref, page.sync_token, *WINDOW)
    assert [(e.id, e.reservation_id, e.subject) for e in second.events] == [
        (one.id, 1, "Later"),
        (three.id, 3, "Board"),
    ]
    client.delete_event(ref, three.id)
    third = client.changes(ref, second.sync_token, *WINDOW)
    assert [(e.id, e.removed) for e in third.events] == [(three.id, True)]


def test_an_invalid_sync_state_asks_for_a_full_sync(client):
    with pytest.raises(SyncTokenExpired):
        client.changes(CalendarRef(ROOM), "H4sIAAAAAAAEAO29B2AcSZYlJi9tynt", *WINDOW)


def test_batch_creates_updates_and_deletes_with_one_result_per_op(client, sandbox):
    ref = CalendarRef(ROOM)
    old = client.create_event(ref, data(10, 8))
    stale = client.create_event(ref, data(11, 13))
    client.update_event(ref, stale.id, data(11, 14), stale.version)
    made_before = client.create_event(ref, data(12, 15))
    ops = [
        BatchOp("a", "create", data(20, 9)),
        BatchOp("b", "create", data(21, 10)),
        BatchOp("c", "create", data(12, 15)),  # made already (a lost answer): not made twice
        BatchOp("d", "update", data(10, 11, subject="Moved"), event_id=old.id, version=old.version),
        BatchOp("e", "update", data(11, 16), event_id=stale.id, version=stale.version),
        BatchOp("f", "delete", event_id=old.id),
        BatchOp("g", "delete", event_id=old.id),
    ]
    results = client.batch(ref, ops)
    assert [r.key for r in results] == list("abcdefg")
    by_key = {r.key: r for r in results}
    assert by_key["a"].ok and by_key["b"].ok
    assert by_key["c"].event.id == made_before.id
    assert by_key["d"].ok and by_key["d"].event.subject == "Moved"
    assert isinstance(by_key["e"].error, VersionConflict)
    assert by_key["f"].ok and by_key["g"].ok  # the second delete finds it gone: success
    tags = sorted(
        int(next(iter(i.extended.values())))
        for i in sandbox.sandbox.services["ews"].items.values()
        if i.mailbox == ROOM and i.extended
    )
    assert tags == [11, 12, 20, 21]


def test_server_busy_waits_its_back_off_then_succeeds(sandbox, waits):
    client = make_client(sandbox, waits)
    client.http.policy = RetryPolicy(max_attempts=6)
    client.test_connection(CalendarRef(ROOM))  # version detected, sessions open
    sandbox.sandbox.limits.set_rule("ews", max_in_flight=None, max_requests=1, window_seconds=2)
    event = client.create_event(CalendarRef(ROOM), data())
    assert event.id
    assert waits and all(w >= 2 for w in waits)


def test_server_busy_for_longer_than_the_policy_allows_is_throttled(sandbox, waits):
    client = make_client(sandbox, waits)
    client.http.policy = RetryPolicy(max_attempts=3, max_retry_after=1)
    client.test_connection(CalendarRef(ROOM))
    sandbox.sandbox.limits.set_rule("ews", max_in_flight=None, max_requests=1, window_seconds=60)
    with pytest.raises(Throttled) as raised:
        client.create_event(CalendarRef(ROOM), data())
    assert raised.value.retry_after >= 2
