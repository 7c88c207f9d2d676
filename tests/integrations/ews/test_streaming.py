"""EwsClient's streaming notifications against the EWS sandbox over HTTPS: a change made "in
Outlook" (the sandbox's control API) arrives on the stream as "this mailbox changed"; an
expired subscription, a stream taken over, the account's connection limit and a busy server
each end the stream with an error the listener can act on. The sandbox here lets an account
hold one open stream (``sandbox_config``)."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from integrations.base import CalendarRef, Throttled
from integrations.ews.streaming import MailboxChanged, StreamTakenOver, SubscriptionLost
from integrations.sandbox.config import default_config
from tests.calendars.conftest import control
from tests.support.ews_client import ROOM, START, data, make_client

ROOM2 = "borealis@contoso.test"


@pytest.fixture
def sandbox_config() -> dict[str, Any]:
    """One open stream per account (on premises: 3), so the limit is quick to reach."""
    config = default_config()
    config["ews"]["hanging_connection_limit"] = 1
    return config


class Listening:
    """``ews.listen`` in a thread; what it yielded and how it ended."""

    def __init__(self, ews, anchor: str, subs: dict[str, str]) -> None:
        self.seen: list[MailboxChanged] = []
        self.error: BaseException | None = None
        self.got = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(ews, anchor, subs), daemon=True)
        self.thread.start()

    def _run(self, ews, anchor: str, subs: dict[str, str]) -> None:
        try:
            for change in ews.listen(anchor, subs, minutes=1):
                self.seen.append(change)
                self.got.set()
        except BaseException as exc:  # handed to the test
            self.error = exc
        finally:
            self.got.set()

    def ended(self, timeout: float = 15) -> bool:
        self.thread.join(timeout)
        return not self.thread.is_alive()


def _outlook_edit(sandbox, mailbox: str, subject: str) -> str:
    created = control(
        sandbox,
        "POST",
        f"ews/mailboxes/{mailbox}/items",
        json={
            "subject": subject,
            "start": START.isoformat(),
            "end": START.replace(hour=10).isoformat(),
        },
    )
    return created["id"]


def _streams(sandbox) -> list[dict]:
    return [s for s in control(sandbox, "GET", "ews/subscriptions")["value"] if s["connected"]]


def test_an_outlook_change_arrives_on_the_stream_as_its_mailbox(ews, sandbox):
    subs = {
        ews.subscribe_stream(CalendarRef(ROOM)): ROOM,
        ews.subscribe_stream(CalendarRef(ROOM2)): ROOM2,
    }
    listening = Listening(ews, ROOM, subs)  # one connection for both rooms
    assert _wait(lambda: len(_streams(sandbox)) == 2)
    _outlook_edit(sandbox, ROOM2, "Walk-in planning")
    assert listening.got.wait(10)
    assert [(c.mailbox, c.events) for c in listening.seen] == [(ROOM2, 1)]
    # ConnectionTimeout (1 minute, on the sandbox clock) ends the stream without an error.
    sandbox.sandbox.advance_clock(61)
    assert listening.ended() and listening.error is None
    # A write by Reserva is told too (the listener's pull sees it is its own).
    ews.create_event(CalendarRef(ROOM), data())
    assert _wait(lambda: not _streams(sandbox))
    _close_once_open(sandbox)
    again = list(ews.listen(ROOM, subs, minutes=1))
    assert [(c.mailbox, c.events) for c in again] == [(ROOM, 1)]
    for sub_id, mailbox in subs.items():
        ews.unsubscribe(mailbox, sub_id)
        ews.unsubscribe(mailbox, sub_id)  # gone already: still success
    assert control(sandbox, "GET", "ews/subscriptions")["value"] == []


def test_an_expired_subscription_ends_the_stream_with_subscription_lost(ews, sandbox):
    sub_id = ews.subscribe_stream(CalendarRef(ROOM))
    listening = Listening(ews, ROOM, {sub_id: ROOM})
    assert _wait(lambda: len(_streams(sandbox)) == 1)
    control(sandbox, "POST", "ews/subscriptions/expire", json={"id": sub_id})
    assert listening.ended()
    # The open stream closes; the next connection is told the subscription is gone.
    with pytest.raises(SubscriptionLost) as lost:
        list(ews.listen(ROOM, {sub_id: ROOM}, minutes=1))
    assert lost.value.code == "ErrorSubscriptionNotFound"
    assert lost.value.subscription_ids == [sub_id]


def test_subscription_lost_names_only_the_expired_one(ews, sandbox):
    kept = ews.subscribe_stream(CalendarRef(ROOM))
    gone = ews.subscribe_stream(CalendarRef(ROOM2))
    control(sandbox, "POST", "ews/subscriptions/expire", json={"id": gone})
    with pytest.raises(SubscriptionLost) as lost:
        list(ews.listen(ROOM, {kept: ROOM, gone: ROOM2}, minutes=1))
    assert lost.value.subscription_ids == [gone]


def test_a_second_connection_takes_the_subscriptions_over(ews, sandbox):
    sub_id = ews.subscribe_stream(CalendarRef(ROOM))
    first = Listening(ews, ROOM, {sub_id: ROOM})
    assert _wait(lambda: len(_streams(sandbox)) == 1)
    second = Listening(ews, ROOM, {sub_id: ROOM})
    assert first.ended()
    assert isinstance(first.error, StreamTakenOver)
    _outlook_edit(sandbox, ROOM, "After the takeover")
    assert second.got.wait(10) and [c.mailbox for c in second.seen] == [ROOM]
    sandbox.sandbox.advance_clock(61)
    assert second.ended() and second.error is None


def test_the_accounts_connection_limit_is_throttled_with_a_wait(ews, sandbox):
    kept = ews.subscribe_stream(CalendarRef(ROOM))
    other = ews.subscribe_stream(CalendarRef(ROOM))
    listening = Listening(ews, ROOM, {kept: ROOM})
    assert _wait(lambda: len(_streams(sandbox)) == 1)
    with pytest.raises(Throttled) as refused:
        list(ews.listen(ROOM, {other: ROOM}, minutes=1))
    assert refused.value.code == "ErrorExceededConnectionCount"
    assert refused.value.retry_after and refused.value.retry_after > 0
    sandbox.sandbox.advance_clock(61)
    assert listening.ended() and listening.error is None


def test_a_busy_server_is_throttled_with_its_back_off(ews, sandbox):
    sub_id = ews.subscribe_stream(CalendarRef(ROOM))
    control(sandbox, "POST", "ews/server-busy", json={"count": 1, "back_off_ms": 7000})
    with pytest.raises(Throttled) as busy:
        list(ews.listen(ROOM, {sub_id: ROOM}, minutes=1))
    assert busy.value.code == "ErrorServerBusy" and busy.value.retry_after == 7.0


def _wait(predicate, timeout: float = 10) -> bool:
    from tests.conftest import wait_for

    return bool(wait_for(predicate, timeout))


def _close_once_open(sandbox) -> None:
    """From a thread: once a stream is open, move the sandbox clock past its minute."""

    def close() -> None:
        if _wait(lambda: len(_streams(sandbox)) >= 1):
            sandbox.sandbox.advance_clock(61)

    threading.Thread(target=close, daemon=True).start()


def test_a_stream_on_the_connections_calendar_folder_hears_that_folder_only(sandbox, waits):
    mailbox = f"ews/mailboxes/{ROOM}"
    folder = control(sandbox, "POST", f"{mailbox}/calendar-folders", json={"name": "Bookings"})
    ews = make_client(sandbox, waits, folder="Bookings")
    sub = ews.subscribe_stream(CalendarRef(ROOM))
    (listed,) = control(sandbox, "GET", "ews/subscriptions")["value"]
    assert listed["folder_ids"] == [folder["id"]]
    listening = Listening(ews, ROOM, {sub: ROOM})
    assert _wait(lambda: len(_streams(sandbox)) == 1)
    _outlook_edit(sandbox, ROOM, "In the calendar itself")  # not watched
    times = {"start": START.isoformat(), "end": START.replace(hour=10).isoformat()}
    control(
        sandbox,
        "POST",
        f"{mailbox}/items",
        params={"folder": folder["id"]},
        json={"subject": "In Bookings", **times},
    )
    assert listening.got.wait(10)
    sandbox.sandbox.advance_clock(61)
    assert listening.ended() and listening.error is None
    assert [(c.mailbox, c.events) for c in listening.seen] == [(ROOM, 1)]
    ews.unsubscribe(ROOM, sub)
