"""Webhook endpoints and subscriptions: the Graph handshake, clientState and Google channel
token checks, replays and malformed bodies refused, lifecycle events, and subscriptions
created, renewed and deleted against the sandbox (which POSTs to ``live_server``)."""

from __future__ import annotations

import json
import threading
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from calendars import subscriptions, tasks, webhooks
from calendars.models import ProviderKind, WebhookStatus, WebhookSubscription
from tests.calendars.conftest import GOOGLE_ROOM, MS_ROOM, control
from tests.conftest import wait_for

MS_URL = "/calendars/webhooks/microsoft/"
MS_LIFECYCLE_URL = "/calendars/webhooks/microsoft/lifecycle/"
GOOGLE_URL = "/calendars/webhooks/google/"
SECRET = "s3cret-client-state-0123456789"


@pytest.fixture
def pulls(monkeypatch) -> list[int]:
    """Every pull requested by a webhook (thread-safe: live_server answers in its thread)."""
    asked: list[int] = []
    lock = threading.Lock()

    def record(binding_id: int) -> None:
        with lock:
            asked.append(binding_id)

    monkeypatch.setattr(tasks, "request_pull", record)
    return asked


def _sub(binding, kind: str, remote_id: str = "sub-1", **extra) -> WebhookSubscription:
    extra.setdefault("status", WebhookStatus.ACTIVE)
    return WebhookSubscription.objects.create(
        binding=binding,
        kind=kind,
        remote_id=remote_id,
        secret=SECRET,
        expires_at=timezone.now() + timedelta(days=2),
        **extra,
    )


def _graph_body(sub_id: str = "sub-1", state: str = SECRET, **item) -> str:
    item = {
        "subscriptionId": sub_id,
        "clientState": state,
        "changeType": "updated",
        "resource": "Users/x/Events/y",
        **item,
    }
    return json.dumps({"value": [item]})


def _post_graph(client, body: str, url: str = MS_URL):
    return client.post(url, data=body, content_type="application/json")


def _google_headers(channel="chan-1", token=SECRET, state="exists", number="2", resource="r-1"):
    return {
        "X-Goog-Channel-ID": channel,
        "X-Goog-Channel-Token": token,
        "X-Goog-Resource-State": state,
        "X-Goog-Message-Number": number,
        "X-Goog-Resource-ID": resource,
    }


# -- Graph endpoint --------------------------------------------------------------------------


def test_graph_validation_handshake_echoes_the_token_as_plain_text(client, db):
    response = client.post(f"{MS_URL}?validationToken=Validation%3A%20Testing%20client")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    assert response.content.decode() == "Validation: Testing client"
    lifecycle = client.post(f"{MS_LIFECYCLE_URL}?validationToken=abc")
    assert (lifecycle.status_code, lifecycle.content) == (200, b"abc")


def test_a_valid_graph_notification_asks_for_one_pull(
    client, ms_binding, pulls, django_capture_on_commit_callbacks
):
    sub = _sub(ms_binding, ProviderKind.MICROSOFT)
    with django_capture_on_commit_callbacks(execute=True):
        response = _post_graph(client, _graph_body())
    assert response.status_code == 202
    assert pulls == [ms_binding.pk]
    sub.refresh_from_db()
    assert sub.notifications == 1 and sub.last_notification_at is not None


def test_several_items_for_one_binding_in_one_post_ask_for_one_pull(
    client, ms_binding, pulls, django_capture_on_commit_callbacks
):
    _sub(ms_binding, ProviderKind.MICROSOFT)
    item = json.loads(_graph_body())["value"][0]
    body = json.dumps({"value": [item, dict(item, changeType="created"), item]})
    with django_capture_on_commit_callbacks(execute=True):
        assert _post_graph(client, body).status_code == 202
    assert pulls == [ms_binding.pk]


@pytest.mark.parametrize(
    "body",
    [
        _graph_body(state="not-the-secret"),
        _graph_body(state=""),
        _graph_body(sub_id="unknown"),
    ],
    ids=["wrong-client-state", "no-client-state", "unknown-subscription"],
)
def test_forged_graph_notifications_are_refused_and_change_nothing(
    client, ms_binding, pulls, django_capture_on_commit_callbacks, body
):
    sub = _sub(ms_binding, ProviderKind.MICROSOFT)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = _post_graph(client, body)
    assert response.status_code == 403
    assert pulls == [] and callbacks == []
    sub.refresh_from_db()
    assert sub.notifications == 0


def test_a_stopped_subscription_accepts_nothing(client, ms_binding, pulls):
    _sub(ms_binding, ProviderKind.MICROSOFT)
    WebhookSubscription.objects.update(status=WebhookStatus.STOPPED)
    assert _post_graph(client, _graph_body()).status_code == 403
    assert pulls == []


@pytest.mark.parametrize(
    "body",
    [
        "{not json",
        "[]",
        '{"value": []}',
        '{"value": "x"}',
        '{"value": [1]}',
        '{"value": [{"clientState": "x"}]}',
        json.dumps({"value": [{"subscriptionId": "sub-1", "changeType": "exploded"}]}),
        json.dumps({"value": [{"subscriptionId": "sub-1", "lifecycleEvent": "boom"}]}),
        "\xff\xfe",
        "[" * 100000,
    ],
)
def test_malformed_graph_bodies_get_400(client, ms_binding, pulls, body):
    _sub(ms_binding, ProviderKind.MICROSOFT)
    response = client.post(
        MS_URL, data=body.encode("utf-8", "surrogatepass"), content_type="application/json"
    )
    assert response.status_code == 400
    assert pulls == []


def test_webhooks_take_post_only_and_bound_the_body(client, ms_binding, pulls):
    assert client.get(MS_URL).status_code == 405
    assert client.get(GOOGLE_URL).status_code == 405
    huge = json.dumps({"value": [], "pad": "x" * (webhooks.MAX_BODY + 1)})
    assert _post_graph(client, huge).status_code == 413
    assert pulls == []


def test_webhooks_need_no_csrf_token(ms_binding, pulls):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    _sub(ms_binding, ProviderKind.MICROSOFT)
    assert _post_graph(strict, _graph_body()).status_code == 202


def test_lifecycle_missed_asks_for_a_pull_and_reauthorization_renews(
    client, ms_binding, pulls, monkeypatch, django_capture_on_commit_callbacks
):
    sub = _sub(ms_binding, ProviderKind.MICROSOFT)
    handled: list[tuple[int, str]] = []
    monkeypatch.setattr(
        subscriptions, "handle_lifecycle", lambda pk, event: handled.append((pk, event)) or "ok"
    )
    missed = _graph_body(changeType=None, lifecycleEvent="missed")
    reauth = _graph_body(changeType=None, lifecycleEvent="reauthorizationRequired")
    with django_capture_on_commit_callbacks(execute=True):
        assert _post_graph(client, missed, MS_LIFECYCLE_URL).status_code == 202
        assert _post_graph(client, reauth, MS_LIFECYCLE_URL).status_code == 202
    assert pulls == [ms_binding.pk]
    assert handled == [(sub.pk, "reauthorizationRequired")]
    forged = _graph_body(state="nope", changeType=None, lifecycleEvent="subscriptionRemoved")
    assert _post_graph(client, forged, MS_LIFECYCLE_URL).status_code == 403
    assert len(handled) == 1


# -- Google endpoint -------------------------------------------------------------------------


def test_google_sync_message_is_acknowledged_without_a_pull(
    client, google_binding, pulls, django_capture_on_commit_callbacks
):
    sub = _sub(google_binding, ProviderKind.GOOGLE, "chan-1", resource_id="r-1")
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(GOOGLE_URL, headers=_google_headers(state="sync", number="1"))
    assert response.status_code == 200
    assert pulls == []
    sub.refresh_from_db()
    assert sub.last_message_number == 1


@pytest.mark.parametrize("state", ["exists", "not_exists"])
def test_google_change_message_asks_for_a_pull_and_a_replay_changes_nothing(
    client, google_binding, pulls, django_capture_on_commit_callbacks, state
):
    sub = _sub(google_binding, ProviderKind.GOOGLE, "chan-1", resource_id="r-1")
    with django_capture_on_commit_callbacks(execute=True):
        assert (
            client.post(GOOGLE_URL, headers=_google_headers(state=state, number="5")).status_code
            == 200
        )
        replayed = client.post(GOOGLE_URL, headers=_google_headers(state=state, number="5"))
        older = client.post(GOOGLE_URL, headers=_google_headers(state=state, number="4"))
    assert (replayed.status_code, older.status_code) == (409, 409)
    assert pulls == [google_binding.pk]
    sub.refresh_from_db()
    assert (sub.last_message_number, sub.notifications) == (5, 1)


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        (_google_headers(token="wrong"), 403),
        (_google_headers(token=""), 403),
        (_google_headers(channel="other"), 404),
        (_google_headers(resource="another-resource"), 403),
        (_google_headers(state="bogus"), 400),
        (_google_headers(number="two"), 400),
        (_google_headers(number="-1"), 400),
        (_google_headers(channel=""), 400),
        ({}, 400),
    ],
    ids=[
        "token",
        "no-token",
        "channel",
        "resource",
        "state",
        "number",
        "negative",
        "no-id",
        "none",
    ],
)
def test_forged_or_malformed_google_pushes_are_refused(
    client, google_binding, pulls, headers, status
):
    sub = _sub(google_binding, ProviderKind.GOOGLE, "chan-1", resource_id="r-1")
    assert client.post(GOOGLE_URL, headers=headers).status_code == status
    assert pulls == []
    sub.refresh_from_db()
    assert (sub.last_message_number, sub.notifications) == (0, 0)


# -- subscriptions against the sandbox (it POSTs to live_server) ----------------------------


@pytest.fixture
def public(settings, live_server):
    settings.PUBLIC_BASE_URL = live_server.url
    settings.CALENDAR_WEBHOOKS = True
    return live_server


def _graph_event(subject: str = "Walk-in") -> dict:
    return {
        "subject": subject,
        "start": {"dateTime": "2030-01-07T09:00:00", "timeZone": "UTC"},
        "end": {"dateTime": "2030-01-07T10:00:00", "timeZone": "UTC"},
    }


@pytest.mark.django_db(transaction=True)
def test_graph_subscription_created_notifies_lifecycle_and_deleted(
    ms_binding, sandbox, public, pulls
):
    assert subscriptions.ensure(ms_binding.pk) == "created"
    sub = WebhookSubscription.objects.get(binding=ms_binding)
    assert sub.status == WebhookStatus.ACTIVE and sub.expires_at > timezone.now()
    (remote,) = control(sandbox, "GET", "microsoft/subscriptions")["value"]
    assert remote["id"] == sub.remote_id
    assert remote["notificationUrl"] == f"{public.url}{MS_URL}"
    assert subscriptions.ensure(ms_binding.pk) == "exists"  # idempotent

    control(sandbox, "POST", f"microsoft/mailboxes/{MS_ROOM}/events", json=_graph_event())
    assert wait_for(lambda: pulls, timeout=10), "no notification reached the endpoint"
    assert set(pulls) == {ms_binding.pk}

    control(
        sandbox,
        "POST",
        f"microsoft/subscriptions/{sub.remote_id}/lifecycle",
        json={"event": "reauthorizationRequired"},
    )
    renewed = wait_for(
        lambda: WebhookSubscription.objects.filter(pk=sub.pk, renewed_at__isnull=False).exists(),
        timeout=10,
    )
    assert renewed, "reauthorizationRequired did not renew the subscription"

    control(
        sandbox,
        "POST",
        f"microsoft/subscriptions/{sub.remote_id}/lifecycle",
        json={"event": "subscriptionRemoved"},
    )
    replaced = wait_for(
        lambda: (
            WebhookSubscription.objects.filter(binding=ms_binding, status=WebhookStatus.ACTIVE)
            .exclude(pk=sub.pk)
            .first()
        ),
        timeout=10,
    )
    assert replaced, "subscriptionRemoved did not recreate the subscription"

    assert subscriptions.remove(ms_binding.pk) == 1
    assert control(sandbox, "GET", "microsoft/subscriptions")["value"] == []
    assert not WebhookSubscription.objects.filter(status=WebhookStatus.ACTIVE).exists()


@pytest.mark.django_db(transaction=True)
def test_graph_subscription_is_renewed_before_expiry(ms_binding, sandbox, public, pulls):
    subscriptions.ensure(ms_binding.pk)
    sub = WebhookSubscription.objects.get(binding=ms_binding)
    WebhookSubscription.objects.filter(pk=sub.pk).update(
        expires_at=timezone.now() + timedelta(hours=1)
    )
    assert subscriptions.renew_due() == {"renewed": 1}
    sub.refresh_from_db()
    assert sub.expires_at > timezone.now() + timedelta(days=2)
    (remote,) = control(sandbox, "GET", "microsoft/subscriptions")["value"]
    assert remote["expirationDateTime"].startswith(sub.expires_at.strftime("%Y-%m-%dT%H:%M"))


@pytest.mark.django_db(transaction=True)
def test_a_failed_renewal_alerts_the_admins_once_and_polling_goes_on(
    ms_binding, sandbox, public, pulls, settings
):
    settings.ADMINS = [("Ops", "ops@example.com")]
    subscriptions.ensure(ms_binding.pk)
    WebhookSubscription.objects.update(expires_at=timezone.now() + timedelta(hours=1))
    control(
        sandbox,
        "POST",
        "faults",
        json={"kind": "500", "method": "PATCH", "path": "/v1.0/subscriptions", "count": 50},
    )
    assert subscriptions.renew_due() == {"failed": 1}
    assert subscriptions.renew_due() == {"failed": 1}
    sub = WebhookSubscription.objects.get()
    ms_binding.refresh_from_db()
    assert sub.status == WebhookStatus.FAILING
    assert ms_binding.last_error.startswith("Webhook renewal failed")
    assert ms_binding.status == "ok"  # the binding keeps syncing by polling
    assert len(mail.outbox) == 1 and "ops@example.com" in mail.outbox[0].to
    assert SECRET not in mail.outbox[0].body and sub.secret not in mail.outbox[0].body

    control(sandbox, "DELETE", "faults")
    assert subscriptions.renew_due() == {"renewed": 1}
    ms_binding.refresh_from_db()
    assert ms_binding.last_error == ""


@pytest.mark.django_db(transaction=True)
def test_google_channel_sync_change_renewal_and_stop(google_binding, sandbox, public, pulls):
    assert subscriptions.ensure(google_binding.pk) == "created"
    sub = WebhookSubscription.objects.get(binding=google_binding)
    assert sub.status == WebhookStatus.ACTIVE and sub.resource_id
    synced = wait_for(
        lambda: WebhookSubscription.objects.filter(pk=sub.pk, last_message_number__gte=1).exists(),
        timeout=10,
    )
    assert synced and pulls == []  # the sync message asks for nothing

    event = {
        "summary": "Walk-in",
        "start": {"dateTime": "2030-01-07T09:00:00Z"},
        "end": {"dateTime": "2030-01-07T10:00:00Z"},
    }
    control(sandbox, "POST", f"google/calendars/{GOOGLE_ROOM}/events", json=event)
    assert wait_for(lambda: pulls, timeout=10), "no push reached the endpoint"

    WebhookSubscription.objects.filter(pk=sub.pk).update(
        expires_at=timezone.now() + timedelta(hours=1)
    )
    assert subscriptions.renew_due() == {"replaced": 1}
    old, new = (
        WebhookSubscription.objects.get(pk=sub.pk),
        WebhookSubscription.objects.get(binding=google_binding, status=WebhookStatus.ACTIVE),
    )
    assert old.status == WebhookStatus.STOPPED and new.remote_id != old.remote_id
    channels = {c["id"]: c for c in control(sandbox, "GET", "google/channels")["value"]}
    assert channels[old.remote_id]["stopped"] and not channels[new.remote_id]["stopped"]

    assert subscriptions.remove(google_binding.pk) == 1
    channels = {c["id"]: c for c in control(sandbox, "GET", "google/channels")["value"]}
    assert channels[new.remote_id]["stopped"]


def test_duplicate_notifications_cause_one_queued_pull(
    client, ms_binding, monkeypatch, django_capture_on_commit_callbacks
):
    """The real request_pull: the second notification finds a pull already queued."""
    from calendars import tasks

    queued: list[int] = []
    monkeypatch.setattr(tasks.pull_binding, "delay", lambda pk: queued.append(pk))
    _sub(ms_binding, ProviderKind.MICROSOFT)
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(3):
            assert _post_graph(client, _graph_body()).status_code == 202
    assert queued == [ms_binding.pk]


def test_admin_lists_the_webhook_state_and_filters_failing_ones(admin_client, ms_binding):
    _sub(ms_binding, ProviderKind.MICROSOFT, status=WebhookStatus.FAILING)
    url = "/admin/calendars/spacecalendar/"
    page = admin_client.get(url).content.decode()
    assert "Renewal failing" in page
    failing = admin_client.get(url, {"webhook": "failing"}).content.decode()
    assert ms_binding.resource_email in failing
    none = admin_client.get(url, {"webhook": "none"}).content.decode()
    assert ms_binding.resource_email not in none


# -- subscriptions follow the binding (calendars/receivers.py) and never double --------------


def _remote_subscriptions(sandbox) -> list[dict]:
    return control(sandbox, "GET", "microsoft/subscriptions")["value"]


@pytest.mark.django_db(transaction=True)
def test_admin_edits_of_a_binding_create_replace_and_remove_its_webhook(
    admin_client, ms_binding, sandbox, public, pulls
):
    """Bound in the admin: subscribed at once; pointed at another room: the old subscription
    goes, a new one watches the new room; sync switched off: none left."""
    url = f"/admin/calendars/spacecalendar/{ms_binding.pk}/change/"
    form = {
        "space": ms_binding.space_id,
        "provider": ms_binding.provider_id,
        "resource_email": ms_binding.resource_email,
        "calendar_id": ms_binding.calendar_id,
        "calendar_name": ms_binding.calendar_name,
        "enabled": "on",
    }
    ms_binding.enabled = False
    ms_binding.save()
    assert _remote_subscriptions(sandbox) == []

    assert admin_client.post(url, form).status_code == 302  # switched on
    (first,) = _remote_subscriptions(sandbox)
    assert MS_ROOM in first["resource"].lower()

    response = admin_client.post(url, {**form, "resource_email": "borealis@contoso.test"})
    assert response.status_code == 302
    (second,) = _remote_subscriptions(sandbox)
    assert second["id"] != first["id"] and "borealis@contoso.test" in second["resource"].lower()
    live = WebhookSubscription.objects.exclude(status=WebhookStatus.STOPPED)
    assert list(live.values_list("remote_id", flat=True)) == [second["id"]]

    assert (
        admin_client.post(url, {k: v for k, v in form.items() if k != "enabled"}).status_code == 302
    )
    assert _remote_subscriptions(sandbox) == []
    assert not WebhookSubscription.objects.exclude(status=WebhookStatus.STOPPED).exists()


@pytest.mark.django_db(transaction=True)
def test_switching_the_provider_off_removes_its_webhooks(ms_binding, sandbox, public, pulls):
    assert subscriptions.ensure(ms_binding.pk) == "created"
    provider = ms_binding.provider
    provider.is_active = False
    provider.save()
    assert _remote_subscriptions(sandbox) == []
    provider.is_active = True
    provider.save()
    assert len(_remote_subscriptions(sandbox)) == 1


@pytest.mark.django_db(transaction=True)
def test_two_workers_ensuring_at_once_make_one_subscription(ms_binding, sandbox, public, pulls):
    """Both find none; without the binding's lock both would create one, and the room would
    notify twice for ever."""
    from django.db import connection

    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def worker() -> None:
        try:
            barrier.wait()
            outcomes.append(subscriptions.ensure(ms_binding.pk))
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(outcomes) == ["created", "exists"]
    assert len(_remote_subscriptions(sandbox)) == 1
    assert WebhookSubscription.objects.filter(status=WebhookStatus.ACTIVE).count() == 1


def test_a_held_lock_makes_others_wait_then_give_up(ms_binding, monkeypatch):
    from calendars import locks

    monkeypatch.setattr(subscriptions, "LOCK_WAIT_SECONDS", 0.3)
    claim = locks.acquire(f"webhook:{ms_binding.pk}", 60)
    assert claim and locks.acquire(f"webhook:{ms_binding.pk}", 60) is None
    with pytest.raises(subscriptions.Busy):
        subscriptions.ensure(ms_binding.pk)
    locks.release(f"webhook:{ms_binding.pk}", "not-the-claim")  # only the holder releases
    assert locks.acquire(f"webhook:{ms_binding.pk}", 60) is None
    locks.release(f"webhook:{ms_binding.pk}", claim)
    assert subscriptions.ensure(ms_binding.pk) == "not wanted"  # webhooks are off in tests


def test_a_dead_workers_lock_expires(db, settings):
    from calendars import locks
    from calendars.models import SyncLock

    settings.REDIS_URL = ""  # the row backend (tests/calendars/test_locks.py: both)
    assert locks.acquire("webhook:1", 60)
    SyncLock.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert locks.acquire("webhook:1", 60)  # taken over
    assert SyncLock.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_webhook_that_cannot_be_created_is_noted_then_cleared(ms_binding, sandbox, public, pulls):
    control(
        sandbox,
        "POST",
        "faults",
        json={"kind": "500", "method": "POST", "path": "/v1.0/subscriptions$", "count": 20},
    )
    assert subscriptions.ensure(ms_binding.pk) == "failed"  # after the client's own retries
    control(sandbox, "DELETE", "faults")
    ms_binding.refresh_from_db()
    assert ms_binding.last_error.startswith("Webhook could not be created")
    assert ms_binding.last_error.endswith("Polling continues.") and ms_binding.status == "ok"

    assert subscriptions.ensure(ms_binding.pk) == "created"  # the task's retry, or the beat's
    ms_binding.refresh_from_db()
    assert ms_binding.last_error == ""


def test_what_a_binding_save_asks_of_its_webhook(
    ms_binding, monkeypatch, settings, django_capture_on_commit_callbacks
):
    """One task per save that changes what the webhook depends on, none for other edits (the
    authorization view relies on this: it no longer asks itself)."""
    from calendars import tasks
    from calendars.models import BindingStatus

    settings.CALENDAR_WEBHOOKS = True
    asked: list[tuple] = []
    monkeypatch.setattr(tasks.ensure_subscription, "delay", lambda *args: asked.append(args))

    def save(**fields) -> list[tuple]:
        asked.clear()
        for name, value in fields.items():
            setattr(ms_binding, name, value)
        with django_capture_on_commit_callbacks(execute=True):
            ms_binding.save()
        return list(asked)

    assert save(calendar_name="Renamed in the admin") == []
    assert save(authorized_at=timezone.now()) == [(ms_binding.pk, False)]  # re-authorized
    assert save(status=BindingStatus.PAUSED) == [(ms_binding.pk, False)]
    assert save(status=BindingStatus.OK) == [(ms_binding.pk, False)]
    assert save(resource_email="borealis@contoso.test") == [(ms_binding.pk, True)]
    assert save(enabled=False) == [(ms_binding.pk, False)]


def test_a_failed_create_is_tried_again_later_by_the_task(ms_binding, monkeypatch):
    from celery.exceptions import Retry

    from calendars import tasks

    monkeypatch.setattr(subscriptions, "ensure", lambda pk, replace=False: "failed")
    asked: list[dict] = []

    def retry(**kwargs):
        asked.append(kwargs)
        return Retry()

    monkeypatch.setattr(tasks.ensure_subscription, "retry", retry)
    for retries, countdown in ((0, 30), (2, 120)):
        tasks.ensure_subscription.push_request(retries=retries, is_eager=False)
        try:
            with pytest.raises(Retry):
                tasks.ensure_subscription(ms_binding.pk)
        finally:
            tasks.ensure_subscription.pop_request()
        assert asked[-1] == {"countdown": countdown, "max_retries": 5}
    tasks.ensure_subscription.push_request(retries=5, is_eager=False)
    try:
        assert tasks.ensure_subscription(ms_binding.pk) == "failed"  # the beat takes over
    finally:
        tasks.ensure_subscription.pop_request()
