"""Streaming and pull subscriptions through exchangelib: Subscribe, GetStreamingEvents,
GetEvents, Unsubscribe, expiry on the sandbox clock."""

from __future__ import annotations

import threading

import pytest
from exchangelib import UTC, CalendarItem, EWSDateTime
from exchangelib.errors import (
    ErrorInvalidPullSubscriptionId,
    ErrorInvalidSubscription,
    ErrorInvalidWatermark,
    ErrorSubscriptionAccessDenied,
    ErrorSubscriptionNotFound,
)
from exchangelib.properties import CreatedEvent, DeletedEvent, ModifiedEvent, StatusEvent

from tests.support.ews_sandbox import account

ALICE, BOB = "alice@contoso.test", "bob@contoso.test"


def at(hour: int) -> EWSDateTime:
    return EWSDateTime(2030, 1, 7, hour, tzinfo=UTC)


def make(acc, subject: str = "Board") -> CalendarItem:
    item = CalendarItem(account=acc, folder=acc.calendar, subject=subject, start=at(9), end=at(10))
    item.save()
    return item


def kinds(notifications) -> list[tuple[str, str]]:
    return [
        (type(event).__name__, event.item_id.id)
        for note in notifications
        for event in note.events
        if not isinstance(event, StatusEvent)
    ]


def advance(http, base_url: str, **amount: float) -> None:
    assert http.post(f"{base_url}/_sandbox/api/clock/advance", json=amount).status_code == 200


def test_streaming_delivers_queued_and_new_events_then_closes(ews, http):
    acc = account(ews, ALICE, max_connections=2)
    sub = acc.calendar.subscribe_to_streaming()
    item = make(acc)  # queued before any connection
    first = list(
        acc.calendar.get_streaming_events(sub, connection_timeout=1, max_notifications_returned=1)
    )
    assert kinds(first) == [("CreatedEvent", item.id)]
    assert first[0].subscription_id == sub

    seen: list = []
    got_one = threading.Event()

    def listen() -> None:
        for note in account(ews, ALICE).calendar.get_streaming_events(sub, connection_timeout=1):
            seen.append(note)
            got_one.set()

    thread = threading.Thread(target=listen)
    thread.start()
    item.subject = "Board (moved)"
    item.save(update_fields=["subject"])
    assert got_one.wait(10)
    item_id = item.id
    item.delete()
    # One minute later on the sandbox clock, the server ends the stream with ConnectionStatus
    # Closed, and exchangelib's generator finishes on its own.
    advance(http, ews.base_url, seconds=61)
    thread.join(10)
    assert not thread.is_alive()
    assert kinds(seen) == [("ModifiedEvent", item_id), ("DeletedEvent", item_id)]


def test_streaming_events_carry_timestamps_and_parent_folders(ews):
    acc = account(ews, ALICE)
    sub = acc.calendar.subscribe_to_streaming(event_types=["CreatedEvent"])
    item = make(acc)
    item.subject = "ignored: not subscribed to ModifiedEvent"
    item.save(update_fields=["subject"])
    other = make(acc, "second")
    notes = list(
        acc.calendar.get_streaming_events(sub, connection_timeout=1, max_notifications_returned=1)
    )
    events = [e for n in notes for e in n.events]
    assert [type(e) for e in events] == [CreatedEvent, CreatedEvent]
    assert [e.item_id.id for e in events] == [item.id, other.id]
    assert {e.parent_folder_id.id for e in events} == {acc.calendar.id}
    assert all(e.timestamp is not None for e in events)


def test_a_subscription_sees_only_its_mailbox(ews):
    alice, bob = account(ews, ALICE), account(ews, BOB)
    sub = alice.calendar.subscribe_to_streaming()
    make(bob)
    mine = make(alice)
    notes = list(
        alice.calendar.get_streaming_events(sub, connection_timeout=1, max_notifications_returned=1)
    )
    assert kinds(notes) == [("CreatedEvent", mine.id)]


def test_one_connection_serves_several_subscriptions(ews):
    svc = account(ews, ALICE, "svc-reserva@contoso.test", impersonate=True)
    bob = account(ews, BOB, "svc-reserva@contoso.test", impersonate=True)
    subs = [svc.calendar.subscribe_to_streaming(), bob.calendar.subscribe_to_streaming()]
    mine, his = make(svc), make(bob)
    notes = list(
        svc.calendar.get_streaming_events(subs, connection_timeout=1, max_notifications_returned=2)
    )
    assert {n.subscription_id: kinds([n]) for n in notes} == {
        subs[0]: [("CreatedEvent", mine.id)],
        subs[1]: [("CreatedEvent", his.id)],
    }


def test_unknown_malformed_and_foreign_subscription_ids(ews):
    alice, bob = account(ews, ALICE), account(ews, BOB)
    sub = alice.calendar.subscribe_to_streaming()
    with pytest.raises(ErrorSubscriptionAccessDenied):
        list(bob.calendar.get_streaming_events(sub, connection_timeout=1))
    with pytest.raises(ErrorInvalidSubscription):
        list(alice.calendar.get_streaming_events("not-a-subscription", connection_timeout=1))
    alice.calendar.unsubscribe(sub)
    with pytest.raises(ErrorSubscriptionNotFound):
        list(alice.calendar.get_streaming_events(sub, connection_timeout=1))
    with pytest.raises(ErrorSubscriptionNotFound):
        alice.calendar.unsubscribe(sub)


def test_streaming_subscription_expires_after_30_idle_minutes(ews, http):
    acc = account(ews, ALICE)
    kept, idle = acc.calendar.subscribe_to_streaming(), acc.calendar.subscribe_to_streaming()
    advance(http, ews.base_url, minutes=20)
    make(acc)
    assert kinds(
        acc.calendar.get_streaming_events(kept, connection_timeout=1, max_notifications_returned=1)
    )
    advance(http, ews.base_url, minutes=11)
    with pytest.raises(ErrorSubscriptionNotFound):
        list(acc.calendar.get_streaming_events(idle, connection_timeout=1))
    # The used one counts its 30 minutes from the end of its last connection.
    make(acc)
    assert kinds(
        acc.calendar.get_streaming_events(kept, connection_timeout=1, max_notifications_returned=1)
    )


def test_pull_subscription_get_events_and_watermarks(ews):
    acc = account(ews, ALICE)
    sub, watermark = acc.calendar.subscribe_to_pull(timeout=10)
    item = make(acc)
    item.subject = "renamed"
    item.save(update_fields=["subject"])
    notes = list(acc.calendar.get_events(sub, watermark))
    events = [e for n in notes for e in n.events]
    assert [type(e) for e in events] == [CreatedEvent, ModifiedEvent]
    assert notes[0].previous_watermark == watermark
    # From the last watermark on, nothing new: a StatusEvent with a watermark.
    quiet = list(acc.calendar.get_events(sub, events[-1].watermark))
    assert [type(e) for n in quiet for e in n.events] == [StatusEvent]
    item.delete()
    later = list(acc.calendar.get_events(sub, quiet[0].events[0].watermark))
    assert [type(e) for n in later for e in n.events] == [DeletedEvent]
    with pytest.raises(ErrorInvalidWatermark):
        list(acc.calendar.get_events(sub, "bm90LWEtd2F0ZXJtYXJr"))


def test_pull_subscription_expires_after_its_timeout(ews, http):
    acc = account(ews, ALICE)
    sub, watermark = acc.calendar.subscribe_to_pull(timeout=5)
    advance(http, ews.base_url, minutes=4)
    list(acc.calendar.get_events(sub, watermark))  # a GetEvents restarts the timeout
    advance(http, ews.base_url, minutes=4)
    list(acc.calendar.get_events(sub, watermark))
    advance(http, ews.base_url, minutes=6)
    with pytest.raises(ErrorSubscriptionNotFound):
        list(acc.calendar.get_events(sub, watermark))


def test_pull_and_streaming_ids_are_not_interchangeable(ews):
    acc = account(ews, ALICE)
    streaming = acc.calendar.subscribe_to_streaming()
    pull, watermark = acc.calendar.subscribe_to_pull(timeout=5)
    with pytest.raises(ErrorInvalidPullSubscriptionId):
        list(acc.calendar.get_events(streaming, watermark))
    with pytest.raises(ErrorInvalidSubscription):
        list(acc.calendar.get_streaming_events(pull, connection_timeout=1))


def test_control_api_expires_a_subscription(ews, http):
    acc = account(ews, ALICE)
    sub = acc.calendar.subscribe_to_streaming()
    listed = http.get(f"{ews.base_url}/_sandbox/api/ews/subscriptions").json()["value"]
    assert [(s["id"], s["kind"], s["mailbox"]) for s in listed] == [(sub, "streaming", ALICE)]
    answer = http.post(f"{ews.base_url}/_sandbox/api/ews/subscriptions/expire", json={"id": sub})
    assert answer.json() == {"expired": 1}
    with pytest.raises(ErrorSubscriptionNotFound):
        list(acc.calendar.get_streaming_events(sub, connection_timeout=1))
