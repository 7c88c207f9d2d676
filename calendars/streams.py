"""Exchange Server change notifications: streaming subscriptions turned into pull requests.

``manage.py ews_listen`` runs a :class:`Listener`: a long-running process (one or more in
production, any number of hosts) that keeps EWS notification streams open and, for every
"this room's calendar changed", calls ``calendars.tasks.request_pull`` (what a Graph webhook
does), so a change made in Outlook reaches Reserva in seconds. Polling stays the fallback:
beat's ``pull_due_bindings`` pulls every binding on its interval whatever the streams do, so a
listener that is down, throttled or refused only makes changes arrive at the next poll.

Why streaming (``integrations/ews/streaming.py``): push subscriptions would need the Exchange
server to reach Reserva; pull subscriptions only answer when asked (polling again).

**Groups and claims.** An EWS provider's syncing bindings, in id order, are cut into groups of
``EWS_STREAM_GROUP_SIZE`` (one ``GetStreamingEvents`` connection carries a group: Exchange
counts open streams per account, three by default, and allows 200 subscriptions a connection).
A listener serves a group while it holds the lock ``ews-stream:<provider>:<group>``
(``calendars/locks.py``: Redis or a ``SyncLock`` row), renewed by a ``Heartbeat`` thread; a
killed listener's lock expires after ``SYNC_LOCK_TTL_SECONDS`` and any listener (another, or
the restarted one) takes the group at its next look (every ``EWS_LISTEN_SCAN_SECONDS``). It
then streams the same subscriptions, which Exchange allows one connection at a time: the new
connection closes any old one (``ErrorNewEventStreamConnectionOpened``), so a listener that
lost its lock without knowing it stops at once. A process serves at most
``GROUPS_PER_PROVIDER`` groups of one provider: each open stream holds one of exchangelib's
few sessions for the sync user.

**State.** Each binding's subscription is a ``WebhookSubscription`` row of kind ``ews`` (its
id in ``remote_id``, ``expires_at`` 30 minutes after its last stream, the notification count
and last error an admin sees), reused by whichever listener holds the group. A subscription
the server no longer knows (30 idle minutes, a restarted server) is replaced, and its room
pulled once: changes in between were told to nobody.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import close_old_connections, connections
from django.db.models import F, QuerySet
from django.utils import timezone

from integrations.base import PermanentError, ProviderError, TransientError
from integrations.ews.streaming import StreamTakenOver, SubscriptionLost
from integrations.registry import PROVIDERS

from . import locks, remote
from .models import (
    BindingStatus,
    CalendarProvider,
    SpaceCalendar,
    WebhookStatus,
    WebhookSubscription,
)
from .subscriptions import record_binding_error, recovered

log = logging.getLogger(__name__)

IDLE_EXPIRY = timedelta(minutes=30)  # Exchange drops a streaming subscription unused this long
GROUPS_PER_PROVIDER = 2
RETRY_SECONDS = (5.0, 15.0, 60.0)  # after a dropped stream, a refusal, ... (capped)
PREFIX = "ews-stream"


def streaming_kinds() -> list[str]:
    """The provider kinds whose rooms are watched by streams (``ProviderSpec.streams``)."""
    return [kind for kind, provider in PROVIDERS.items() if provider.streams]


def lock_name(provider_id: int, group: int) -> str:
    return f"{PREFIX}:{provider_id}:{group}"


def group_size() -> int:
    return max(1, min(200, int(settings.EWS_STREAM_GROUP_SIZE)))


def stream_minutes() -> int:
    return max(1, min(30, int(settings.EWS_STREAM_MINUTES)))


def syncing_bindings(provider_id: int) -> QuerySet[SpaceCalendar]:
    return (
        SpaceCalendar.objects.filter(
            provider_id=provider_id, enabled=True, provider__is_active=True
        )
        .exclude(status=BindingStatus.PAUSED)
        .order_by("pk")
    )


def wanted_groups() -> list[tuple[int, int]]:
    """(provider id, group index) of every group that should have a stream now."""
    groups: list[tuple[int, int]] = []
    providers = CalendarProvider.objects.filter(kind__in=streaming_kinds(), is_active=True)
    for provider_id in providers.order_by("pk").values_list("pk", flat=True):
        count = syncing_bindings(provider_id).count()
        groups += [(provider_id, index) for index in range(-(-count // group_size()))]
    return groups


def group_bindings(provider_id: int, group: int) -> list[SpaceCalendar]:
    size = group_size()
    return list(
        syncing_bindings(provider_id).select_related("provider")[group * size : (group + 1) * size]
    )


@dataclass
class Stream:
    """One group's subscriptions for one connection: id -> binding, and the anchor mailbox."""

    anchor: str
    bindings: dict[str, SpaceCalendar]

    def mailboxes(self) -> dict[str, str]:
        return {sub_id: b.resource_email for sub_id, b in self.bindings.items()}


def _subscribe(binding: SpaceCalendar) -> WebhookSubscription | None:
    """A new streaming subscription for the binding, or None (the error is recorded on the
    binding; polling covers the room)."""
    calendar = remote.room_calendar(binding)
    try:
        sub_id = calendar.client.subscribe_stream(calendar.ref)
    except ProviderError as exc:
        record_binding_error(
            binding,
            f"Streaming notifications could not be set up: {exc.message}",
            source="Streaming",
        )
        return None
    recovered(binding, source="Streaming")
    row = WebhookSubscription.objects.create(
        binding=binding,
        kind=binding.provider.kind,
        remote_id=sub_id,
        secret="",
        status=WebhookStatus.ACTIVE,
        expires_at=timezone.now() + IDLE_EXPIRY,
    )
    from .tasks import request_pull

    request_pull(binding.pk)  # what changed while no subscription watched the room
    return row


def prepare(bindings: list[SpaceCalendar]) -> Stream | None:
    """The group's stream: each binding's live subscription, made where missing."""
    live = {
        row.binding_id: row
        for row in WebhookSubscription.objects.filter(
            binding__in=bindings, kind__in=streaming_kinds(), status=WebhookStatus.ACTIVE
        ).order_by("-pk")
    }  # one query for the group; a binding's oldest live row wins (it is written last)
    subs: dict[str, SpaceCalendar] = {}
    for binding in bindings:
        row = live.get(binding.pk) or _subscribe(binding)
        if row is not None:
            subs[row.remote_id] = binding
    if not subs:
        return None
    return Stream(anchor=next(iter(subs.values())).resource_email, bindings=subs)


def stop_unwanted(provider_id: int) -> int:
    """End the subscriptions of the provider's bindings that no longer sync (disabled, paused,
    deleted provider settings); how many."""
    rows = WebhookSubscription.objects.select_related("binding__provider").filter(
        binding__provider_id=provider_id,
        kind__in=streaming_kinds(),
        status__in=(WebhookStatus.ACTIVE, WebhookStatus.FAILING),
    )
    syncing = set(syncing_bindings(provider_id).values_list("pk", flat=True))
    stopped = 0
    for row in rows:
        if row.binding_id in syncing:
            continue
        note = ""
        try:
            client = remote.room_calendar(row.binding).client
            client.unsubscribe(row.binding.resource_email, row.remote_id)
        except ProviderError as exc:
            note = f"Could not be removed at the server ({exc.message}); it expires."
        _stop(row.pk, note)
        stopped += 1
    return stopped


def _stop(row_id: int, note: str = "") -> None:
    WebhookSubscription.objects.filter(pk=row_id).update(
        status=WebhookStatus.STOPPED, last_error=note
    )


def notified(stream: Stream, subscription_id: str) -> None:
    """A change in the subscription's calendar: count it, and ask for a pull."""
    from .tasks import request_pull

    binding = stream.bindings.get(subscription_id)
    if binding is None:
        return
    close_old_connections()  # the stream may have been quiet for longer than a connection lives
    WebhookSubscription.objects.filter(
        remote_id=subscription_id, kind=binding.provider.kind
    ).update(notifications=F("notifications") + 1, last_notification_at=timezone.now())
    request_pull(binding.pk)


def _rows(stream: Stream) -> QuerySet[WebhookSubscription]:
    return WebhookSubscription.objects.filter(
        remote_id__in=list(stream.bindings), status=WebhookStatus.ACTIVE
    )


class GroupListener(threading.Thread):
    """Serves one group while its lock is ours: prepare, stream, act on how the stream ended,
    again. Ends when the lock is lost, the group is gone, or the process stops."""

    def __init__(self, provider_id: int, group: int, claim: str, stop: threading.Event) -> None:
        super().__init__(name=f"{PREFIX}-{provider_id}-{group}", daemon=True)
        self.provider_id, self.group, self.claim, self.stop = provider_id, group, claim, stop
        self.name_ = lock_name(provider_id, group)
        self.failures = 0

    def run(self) -> None:
        try:
            with locks.Heartbeat(lambda: locks.renew(self.name_, self.claim)) as beat:
                while not self.stop.is_set() and not beat.lost:
                    close_old_connections()
                    if not self.cycle(lambda: beat.lost or self.stop.is_set()):
                        break
        except Exception:
            log.exception("Listener of %s failed; the group is free for another", self.name_)
        finally:
            locks.release(self.name_, self.claim)
            connections.close_all()  # this thread's connections

    def cycle(self, stopping: Callable[[], bool]) -> bool:
        """One stream, start to end; False when the group has nothing to stream."""
        if self.group == 0:
            stop_unwanted(self.provider_id)
        bindings = group_bindings(self.provider_id, self.group)
        if not bindings:
            return False
        stream = prepare(bindings)
        if stream is None:
            self.pause(RETRY_SECONDS[-1])  # every room refused: the errors are on the bindings
            return True
        minutes = stream_minutes()
        _rows(stream).update(expires_at=timezone.now() + timedelta(minutes=minutes) + IDLE_EXPIRY)
        try:
            self.listen(stream, minutes, stopping)
        except SubscriptionLost as lost:
            log.info("Subscriptions of %s gone at the server; subscribing again", self.name_)
            gone = _rows(stream).filter(remote_id__in=lost.subscription_ids)
            for row_id in gone.values_list("pk", flat=True):
                _stop(row_id, "Expired or removed at the server; replaced.")
        except StreamTakenOver:
            self.pause(1.0)  # another listener streams these; if it holds the lock, we stop
        except (TransientError, PermanentError) as exc:
            self.failed(stream, exc)
        return True

    def listen(self, stream: Stream, minutes: int, stopping: Callable[[], bool]) -> None:
        client = remote.room_calendar(next(iter(stream.bindings.values()))).client
        for change in client.listen(stream.anchor, stream.mailboxes(), minutes):
            notified(stream, change.subscription_id)
            self.failures = 0
            if stopping():
                return
        self.failures = 0
        _rows(stream).update(expires_at=timezone.now() + IDLE_EXPIRY, last_error="")

    def failed(self, stream: Stream, exc: ProviderError) -> None:
        wait = getattr(exc, "retry_after", None) or RETRY_SECONDS[min(self.failures, 2)]
        self.failures += 1
        _rows(stream).update(last_error=f"{exc.message} Polling continues.")
        log.warning("Stream of %s ended (%s); again in %.1f s", self.name_, exc.code, wait)
        self.pause(wait)

    def pause(self, seconds: float) -> None:
        self.stop.wait(seconds)


class Listener:
    """The process: every ``EWS_LISTEN_SCAN_SECONDS``, claim the groups nobody serves (up to
    ``GROUPS_PER_PROVIDER`` per provider) and serve each in a thread, until ``stop`` is set."""

    def __init__(self, stop: threading.Event | None = None) -> None:
        self.stop = stop or threading.Event()
        self.threads: dict[tuple[int, int], GroupListener] = {}

    def scan(self) -> int:
        """Claim what is free now; how many groups this process serves."""
        close_old_connections()
        self.threads = {key: t for key, t in self.threads.items() if t.is_alive()}
        wanted = wanted_groups()
        self.tidy(wanted)
        for provider_id, group in wanted:
            if (provider_id, group) in self.threads:
                continue
            mine = sum(1 for p, _ in self.threads if p == provider_id)
            if mine >= GROUPS_PER_PROVIDER:
                continue
            claim = locks.acquire(lock_name(provider_id, group))
            if claim is None:
                continue  # another listener serves it
            log.info("Listening for provider %s, group %s", provider_id, group)
            thread = GroupListener(provider_id, group, claim, self.stop)
            self.threads[(provider_id, group)] = thread
            thread.start()
        return len(self.threads)

    def tidy(self, wanted: list[tuple[int, int]]) -> None:
        """Stop the subscriptions of providers with no group to stream (their last room
        switched off, the provider deactivated), which no group listener would reach; under
        the provider's group-0 lock, which no listener then holds for long."""
        streaming = {provider_id for provider_id, _ in wanted}
        left = (
            WebhookSubscription.objects.filter(
                kind__in=streaming_kinds(), status__in=(WebhookStatus.ACTIVE, WebhookStatus.FAILING)
            )
            .exclude(binding__provider_id__in=streaming)
            .values_list("binding__provider_id", flat=True)
            .distinct()
        )
        for provider_id in list(left):
            # Renewed while the unsubscribe calls run, so a slow server cannot outlast the lock.
            with contextlib.suppress(locks.Busy), locks.hold(lock_name(provider_id, 0)):
                stop_unwanted(provider_id)

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                try:
                    self.scan()
                except Exception:
                    log.exception("Listener scan failed; looking again")
                self.stop.wait(float(settings.EWS_LISTEN_SCAN_SECONDS))
        finally:
            self.stop.set()
            for thread in self.threads.values():
                thread.join(timeout=1)
            # A thread still inside a stream (its read ends with the stream) would keep its
            # group until the lock expires: given back here (only our own claims).
            for thread in self.threads.values():
                if thread.is_alive():
                    locks.release(thread.name_, thread.claim)
            connections.close_all()
