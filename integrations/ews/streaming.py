"""EWS streaming notifications: subscribe a room calendar, listen on a stream, unsubscribe.

Why streaming: push subscriptions need the Exchange server to open connections to Reserva
(a callback URL it can reach, which an on-premises server behind the company's firewall
usually cannot, and which Reserva would have to expose to it); pull subscriptions work from
the inside too, but only tell of a change when asked, so they are polling with extra steps.
A streaming subscription is opened from Reserva's side and the server answers on that same
connection as changes happen: seconds, with no inbound route.

- ``subscribe_stream(ref)``: ``Subscribe`` with a ``StreamingSubscriptionRequest`` on the
  room's calendar folder, as the sync user (impersonating or delegating, as every call does);
  the subscription id. Exchange drops one nobody has streamed for 30 minutes.
- ``listen(anchor, subscriptions, minutes)``: one ``GetStreamingEvents`` connection carrying
  several subscriptions (of any mailboxes the sync user subscribed), open for ``minutes``
  (``ConnectionTimeout``, 1-30) and read as it arrives; yields a :class:`MailboxChanged` per
  notification. Its end is the server's ``Closed``; or one of:
  ``SubscriptionLost`` (``ErrorSubscriptionNotFound``: expired or removed, with the ids the
  server named; subscribe them again and pull once, since changes in between were not told),
  ``StreamTakenOver`` (another connection opened for these subscriptions,
  ``ErrorNewEventStreamConnectionOpened``: that listener serves them now), ``Throttled``
  (``ErrorExceededConnectionCount``: the account holds as many streams as the server allows;
  ``ErrorServerBusy`` with its back-off), or ``TransientError`` (the connection dropped or
  went silent).
- ``unsubscribe(mailbox, subscription_id)``: ``Unsubscribe``; one already gone is success.

A stream does not hold a limiter slot (it would hold one of the mailbox's few for half an
hour); its request is one connection of the account's ``HangingConnectionLimit`` instead,
which is why one connection carries many rooms. The heartbeats the server sends keep the read
alive: ``transport.py`` gives ``GetStreamingEvents`` a read timeout of
``transport.STREAM_READ_TIMEOUT`` instead of the connection alias's.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import requests
from exchangelib import Account
from exchangelib import errors as ews
from exchangelib.errors import SessionPoolMinSizeReached
from exchangelib.properties import StatusEvent
from exchangelib.services import GetStreamingEvents

from ..base import CalendarRef, ProviderError, Throttled, TransientError
from .connection import EwsConnection
from .errors import ews_error

log = logging.getLogger("integrations.ews")

EVENT_TYPES = ("CreatedEvent", "ModifiedEvent", "DeletedEvent", "MovedEvent", "CopiedEvent")
LOST = (ews.ErrorSubscriptionNotFound, ews.ErrorInvalidSubscription)
# ErrorExceededConnectionCount names no wait: one of the account's streams must end first.
CONNECTIONS_BACK_OFF = 60.0


class _FixedPool:
    """The account's protocol, except that its session pool will not shrink."""

    def __init__(self, protocol: Any) -> None:
        self._protocol = protocol

    def __getattr__(self, name: str) -> Any:
        return getattr(self._protocol, name)

    def decrease_poolsize(self) -> None:
        raise SessionPoolMinSizeReached("a notification stream does not shrink the pool")


class _StreamingEvents(GetStreamingEvents):
    """exchangelib's ``GetStreamingEvents``, raising ``ErrorExceededConnectionCount``: left to
    itself it shrinks the session pool and retries at once, and the retry then waits for a
    session that this process's own open streams hold, for up to half an hour."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.protocol = _FixedPool(self.protocol)


class SubscriptionLost(ProviderError):
    """Subscriptions of the stream expired or were removed at the server: subscribe again.
    ``subscription_ids``: those the server named (``ErrorSubscriptionIds``), else all."""

    def __init__(self, message: str, *, subscription_ids: list[str], code: str = "") -> None:
        super().__init__(message, code=code)
        self.subscription_ids = subscription_ids


class StreamTakenOver(ProviderError):
    """Another connection opened for these subscriptions; this one was closed."""


@dataclass(frozen=True)
class MailboxChanged:
    """Something changed in the calendar a subscription watches: pull that mailbox."""

    subscription_id: str
    mailbox: str
    events: int


class StreamingMixin(EwsConnection):
    """Streaming notifications for ``EwsClient`` (module doc)."""

    def subscribe_stream(self, ref: CalendarRef) -> str:
        """A new streaming subscription on the calendar ``ref`` names; its id."""

        def subscribe(account: Account) -> str:
            folder = self._folder(account, ref)
            return str(folder.subscribe_to_streaming(event_types=list(EVENT_TYPES)))

        return self._call(ref.mailbox, subscribe, idempotent=False)

    def unsubscribe(self, mailbox: str, subscription_id: str) -> None:
        """End a subscription; one the server no longer knows is success."""

        def unsubscribe(account: Account) -> None:
            account.calendar.unsubscribe(subscription_id)

        try:
            self._call(mailbox, unsubscribe)
        except ProviderError as exc:
            if exc.code in {cls.__name__ for cls in LOST}:
                return
            raise

    def listen(
        self, anchor: str, subscriptions: dict[str, str], minutes: int
    ) -> Iterator[MailboxChanged]:
        """Stream the ``subscriptions`` (id -> mailbox) for ``minutes`` on one connection made
        as ``anchor`` (one of their mailboxes); a :class:`MailboxChanged` per notification,
        until the server closes the connection. Raises as the module doc says."""
        minutes = max(1, min(30, int(minutes)))
        ids = list(subscriptions)
        try:
            service = _StreamingEvents(account=self._account(anchor))
            for note in service.call(subscription_ids=ids, connection_timeout=minutes):
                changes = [e for e in note.events or [] if not isinstance(e, StatusEvent)]
                if not changes:
                    continue
                sub_id = str(note.subscription_id)
                yield MailboxChanged(sub_id, subscriptions.get(sub_id, ""), len(changes))
        except ProviderError:
            raise
        except LOST as exc:
            # exchangelib adds the ids the server named (ErrorSubscriptionIds) to the message.
            named = [sub_id for sub_id in ids if sub_id in str(exc)]
            raise SubscriptionLost(
                f"A streaming subscription for {anchor} expired or was removed.",
                subscription_ids=named or ids,
                code=_code(exc),
            ) from exc
        except ews.ErrorNewEventStreamConnectionOpened as exc:
            raise StreamTakenOver(
                f"Another connection now streams the subscriptions of {anchor}.", code=_code(exc)
            ) from exc
        except ews.ErrorExceededConnectionCount as exc:
            raise Throttled(
                f"The sync user holds as many open streams as Exchange allows ({anchor}): "
                "HangingConnectionLimit. Fewer listeners, or a higher limit on the server.",
                code=_code(exc),
                retry_after=CONNECTIONS_BACK_OFF,
            ) from exc
        except ews.ErrorServerBusy as exc:
            wait = exc.back_off or CONNECTIONS_BACK_OFF
            self.http.hold_off(self._limit_key(anchor), wait)
            raise Throttled(
                f"Exchange is throttling requests ({anchor}) (ErrorServerBusy).",
                code=_code(exc),
                retry_after=wait,
            ) from exc
        except (requests.RequestException, OSError) as exc:
            raise TransientError(
                f"The notification stream for {anchor} dropped ({type(exc).__name__}).",
                code="network",
            ) from exc
        except ews.EWSError as exc:
            raise ews_error(exc, endpoint=self.endpoint, mailbox=anchor) from exc


def _code(exc: BaseException) -> str:
    return type(exc).__name__
