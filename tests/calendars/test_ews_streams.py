"""The EWS listener (``calendars/streams.py``) in this process against the sandbox over HTTPS:
a room edited "in Outlook" (the sandbox's control routes) reaches its reservation through the
stream and the pull it requests, with no poll due; an expired subscription is replaced (and
the room pulled once); Exchange refusing another open stream (ErrorExceededConnectionCount) is
waited out, and notifications flow once it allows one again. Tasks run eagerly here, so the
pull happens in the listener's thread; the real-process test is ``test_ews_streams_worker.py``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, timedelta

import pytest
from django.utils import timezone

from calendars import streams
from calendars.models import CalendarProvider, SpaceCalendar, WebhookStatus, WebhookSubscription
from integrations.ews import streaming
from reservations.models import Reservation
from tests.calendars.conftest import control
from tests.conftest import local, next_weekday, wait_for
from tests.support.pull import Remote

SECONDS = 20  # generous for a loaded machine; a stream tells within a fraction of a second


@pytest.fixture
def listening(ews_binding, sandbox, settings) -> Iterator[streams.Listener]:
    settings.EWS_LISTEN_SCAN_SECONDS = 0.2
    settings.EWS_STREAM_MINUTES = 1
    # No poll is due for a day: whatever arrives came through the stream.
    SpaceCalendar.objects.filter(pk=ews_binding.pk).update(
        next_pull_at=timezone.now() + timedelta(days=1)
    )
    listener = streams.Listener()
    thread = threading.Thread(target=listener.run, daemon=True)
    thread.start()
    try:
        yield listener
    finally:
        listener.stop.set()
        thread.join(10)
        assert not thread.is_alive()


def _live(binding) -> list[WebhookSubscription]:
    return list(
        WebhookSubscription.objects.filter(binding=binding, kind="ews", status=WebhookStatus.ACTIVE)
    )


def _streaming(sandbox) -> bool:
    subs = control(sandbox, "GET", "ews/subscriptions")["value"]
    return any(s["connected"] for s in subs)


def _reservation(event_id: str) -> Reservation | None:
    return Reservation.objects.filter(sync_link__external_id=event_id).first()


@pytest.mark.django_db(transaction=True)
def test_an_outlook_edit_reaches_the_reservation_through_the_stream(
    ews_binding, sandbox, listening
):
    assert wait_for(lambda: _live(ews_binding) and _streaming(sandbox), SECONDS)
    remote = Remote(sandbox, "ews")
    start = local(ews_binding.space.location, next_weekday(3), 10).astimezone(UTC)
    event = remote.create("Walk-in planning", start, start + timedelta(hours=1))
    assert wait_for(lambda: _reservation(event), SECONDS), "the new event did not arrive"

    moved = start + timedelta(hours=2)
    remote.move(event, moved, moved + timedelta(hours=1))
    followed = wait_for(lambda: (r := _reservation(event)) and r.start == moved, SECONDS)
    assert followed, "the move did not reach the reservation through the stream"
    (row,) = _live(ews_binding)
    assert row.notifications >= 2 and row.last_notification_at is not None
    assert Reservation.objects.filter(space=ews_binding.space).count() == 1


@pytest.mark.django_db(transaction=True)
def test_an_expired_subscription_is_replaced_and_the_room_pulled(ews_binding, sandbox, listening):
    assert wait_for(lambda: _live(ews_binding) and _streaming(sandbox), SECONDS)
    (first,) = _live(ews_binding)
    control(sandbox, "POST", "ews/subscriptions/expire", json={"id": first.remote_id})
    # Made while no subscription watches the room: only the pull after re-subscribing sees it.
    remote = Remote(sandbox, "ews")
    start = local(ews_binding.space.location, next_weekday(3), 14).astimezone(UTC)
    event = remote.create("Made in the gap", start, start + timedelta(hours=1))

    def replaced():
        live = _live(ews_binding)
        return live and live[0].remote_id != first.remote_id and _streaming(sandbox)

    assert wait_for(replaced, SECONDS), "no new subscription after the expiry"
    first.refresh_from_db()
    assert first.status == WebhookStatus.STOPPED and "replaced" in first.last_error
    assert wait_for(lambda: _reservation(event), SECONDS), "the gap was not pulled"
    later = remote.create("After the gap", start + timedelta(hours=2), start + timedelta(hours=3))
    assert wait_for(lambda: _reservation(later), SECONDS), "the new subscription tells nothing"


@pytest.mark.django_db(transaction=True)
def test_a_refused_stream_is_waited_out_with_the_subscription_kept(
    ews_binding, sandbox, settings, monkeypatch
):
    monkeypatch.setattr(streaming, "CONNECTIONS_BACK_OFF", 0.5)  # Exchange names no wait
    state = sandbox.sandbox.services["ews"]
    state.config["hanging_connection_limit"] = 0  # every stream of the account refused
    settings.EWS_LISTEN_SCAN_SECONDS = 0.2
    settings.EWS_STREAM_MINUTES = 1
    listener = streams.Listener()
    thread = threading.Thread(target=listener.run, daemon=True)
    thread.start()
    try:

        def refused():
            live = _live(ews_binding)
            return live and "HangingConnectionLimit" in live[0].last_error

        assert wait_for(refused, SECONDS), "the refusal was not recorded"
        assert not _streaming(sandbox)
        state.config["hanging_connection_limit"] = 3
        assert wait_for(lambda: _streaming(sandbox), SECONDS), "no stream once allowed"
        remote = Remote(sandbox, "ews")
        start = local(ews_binding.space.location, next_weekday(3), 9).astimezone(UTC)
        event = remote.create("After the refusal", start, start + timedelta(hours=1))
        assert wait_for(lambda: _reservation(event), SECONDS)
        assert len(_live(ews_binding)) == 1  # the same subscription, kept through the refusals
    finally:
        listener.stop.set()
        thread.join(10)


@pytest.mark.parametrize("switched_off", ["binding", "provider"])
@pytest.mark.django_db(transaction=True)
def test_a_switched_off_room_is_unsubscribed(ews_binding, sandbox, listening, switched_off):
    assert wait_for(lambda: _live(ews_binding) and _streaming(sandbox), SECONDS)
    (row,) = _live(ews_binding)
    if switched_off == "binding":
        SpaceCalendar.objects.filter(pk=ews_binding.pk).update(enabled=False)
    else:
        CalendarProvider.objects.filter(pk=ews_binding.provider_id).update(is_active=False)
    sandbox.sandbox.advance_clock(61)  # the open stream ends; the next look finds no room

    def unsubscribed():
        row.refresh_from_db()
        return row.status == WebhookStatus.STOPPED

    assert wait_for(unsubscribed, SECONDS), "the switched-off room's subscription was kept"
    assert control(sandbox, "GET", "ews/subscriptions")["value"] == []
