"""Webhook endpoints: Graph change / lifecycle notifications and Google push channels.

Each endpoint verifies the notification against the stored subscription (clientState or
channel token, compared in constant time), stores what arrived on the subscription row, and
asks for a pull of the binding (``calendars.tasks.request_pull`` coalesces: a burst of
notifications becomes one pull). The pull itself runs in a worker, so the answer goes back
within milliseconds.

Forged (unknown subscription, wrong secret), replayed (a Google message number already seen)
and malformed notifications are answered 4xx and change nothing. No input gives a 500.
Parsing and verification are in ``integrations/*/notifications.py``; no secret is logged.
"""

from __future__ import annotations

import logging

from django.core.exceptions import RequestDataTooBig
from django.db import transaction
from django.db.models import F
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from integrations.google import notifications as google_notifications
from integrations.microsoft import notifications as graph_notifications

from .models import ProviderKind, WebhookStatus, WebhookSubscription

log = logging.getLogger(__name__)

MAX_BODY = 256 * 1024  # Graph batches notifications, but never anywhere near this
ACCEPTING = (WebhookStatus.PENDING, WebhookStatus.ACTIVE, WebhookStatus.FAILING)


def _read_body(request: HttpRequest) -> bytes | None:
    """The body, or None when it is (or claims to be) over ``MAX_BODY``."""
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return None
    if declared > MAX_BODY:
        return None
    try:
        body = request.body
    except (RequestDataTooBig, OSError):
        return None
    return body if len(body) <= MAX_BODY else None


def _refuse(status: int, why: str) -> HttpResponse:
    log.info("Webhook refused (%s): %s", status, why)
    return HttpResponse(why, status=status, content_type="text/plain; charset=utf-8")


def _pull_after_commit(binding_ids: set[int]) -> None:
    from .tasks import request_pull

    for binding_id in sorted(binding_ids):
        transaction.on_commit(lambda b=binding_id: request_pull(b), robust=True)


# -- Microsoft Graph ---------------------------------------------------------------------------


def _graph(request: HttpRequest) -> HttpResponse:
    # The handshake: Graph POSTs ?validationToken=... while creating the subscription and
    # needs the decoded token back as text/plain within 10 seconds.
    if "validationToken" in request.GET:
        token = graph_notifications.validation_token(request.GET)
        if token is None:
            return _refuse(400, "unusable validation token")
        return HttpResponse(token, status=200, content_type="text/plain; charset=utf-8")
    body = _read_body(request)
    if body is None:
        return _refuse(413, "body too large")
    try:
        items = graph_notifications.parse(body)
    except graph_notifications.MalformedNotification as exc:
        return _refuse(400, str(exc))
    subs = {
        s.remote_id: s
        for s in WebhookSubscription.objects.filter(
            kind=ProviderKind.MICROSOFT,
            remote_id__in={item.subscription_id for item in items},
            status__in=ACCEPTING,
        )
    }
    pulls: set[int] = set()
    lifecycle: list[tuple[int, str]] = []
    verified = 0
    for item in items:
        sub = subs.get(item.subscription_id)
        if sub is None or not graph_notifications.client_state_matches(
            sub.secret, item.client_state
        ):
            continue
        verified += 1
        WebhookSubscription.objects.filter(pk=sub.pk).update(
            notifications=F("notifications") + 1, last_notification_at=timezone.now()
        )
        if item.lifecycle_event == "missed":
            pulls.add(sub.binding_id)  # notifications were lost: the delta round catches up
        elif item.lifecycle_event:
            lifecycle.append((sub.pk, item.lifecycle_event))
        else:
            pulls.add(sub.binding_id)
    if not verified:
        return _refuse(403, "no notification matched a subscription")
    _pull_after_commit(pulls)
    if lifecycle:
        from .tasks import webhook_lifecycle

        for pk, event in lifecycle:
            transaction.on_commit(lambda p=pk, e=event: webhook_lifecycle.delay(p, e), robust=True)
    return HttpResponse(status=202)


@csrf_exempt
@require_POST
def microsoft(request: HttpRequest) -> HttpResponse:
    """Graph change notifications (and lifecycle ones, should Graph send them here)."""
    return _graph(request)


@csrf_exempt
@require_POST
def microsoft_lifecycle(request: HttpRequest) -> HttpResponse:
    """Graph lifecycle notifications: reauthorizationRequired, missed, subscriptionRemoved."""
    return _graph(request)


# -- Google ------------------------------------------------------------------------------------


@csrf_exempt
@require_POST
def google(request: HttpRequest) -> HttpResponse:
    """Google push: ``sync`` is acknowledged; ``exists`` / ``not_exists`` ask for a pull."""
    if _read_body(request) is None:
        return _refuse(413, "body too large")
    try:
        push = google_notifications.parse(request.headers)
    except google_notifications.MalformedNotification as exc:
        return _refuse(400, str(exc))
    sub = WebhookSubscription.objects.filter(
        kind=ProviderKind.GOOGLE, remote_id=push.channel_id, status__in=ACCEPTING
    ).first()
    if sub is None:
        return _refuse(404, "unknown channel")
    if not google_notifications.token_matches(sub.secret, push.token):
        return _refuse(403, "channel token does not match")
    if sub.resource_id and push.resource_id and sub.resource_id != push.resource_id:
        return _refuse(403, "resource id does not match")
    # Message numbers grow per channel: one not above the last accepted is a replay. Taken
    # atomically, so two copies of one message racing each other count once. An older number
    # arriving late loses nothing: the newer one already asked for a pull of everything.
    fresh = WebhookSubscription.objects.filter(
        pk=sub.pk, last_message_number__lt=push.message_number
    ).update(
        last_message_number=push.message_number,
        last_notification_at=timezone.now(),
        notifications=F("notifications") + 1,
    )
    if not fresh:
        return _refuse(409, "message already seen")
    if not push.is_sync:
        _pull_after_commit({sub.binding_id})
    return HttpResponse(status=200)
