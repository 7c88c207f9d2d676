"""JSON batching for MicrosoftClient: ``POST /$batch`` with up to 20 writes per request.

Graph answers a batch 200 even when items fail; each item has its own status, headers and
body, in any order (matched here by ``id``). An item throttled on its own (429, or 503/504)
is sent again after its own ``Retry-After``, in a smaller batch, for a bounded number of
rounds; SDKs do not do this for you. The limiter counts every item (``items=``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from ..base import (
    BatchOp,
    BatchResult,
    CalendarRef,
    EventGone,
    RemoteEvent,
    TransientError,
    UserCredentials,
)
from ..http import backoff, parse_retry_after
from . import mapping
from .errors import body_code_message, graph_error
from .mapping import PREFER, etag

if TYPE_CHECKING:
    from .client import MicrosoftClient

BATCH_SIZE = 20  # Graph's limit per $batch
BATCH_ITEM_ROUNDS = 3  # retries of throttled items inside a batch, after the first send
RETRYABLE_ITEM = frozenset({429, 503, 504})


# %20 rather than '+' for spaces: OData parsers read '+' literally.
TAG_QUERY = urlencode(
    {"$expand": f"singleValueExtendedProperties($filter=id eq '{mapping.RESERVATION_PROPERTY}')"},
    quote_via=quote,
    safe="()'/,:$",
)


class BatchMixin:
    """The batch part of :class:`~integrations.microsoft.client.MicrosoftClient`."""

    def batch(
        self: MicrosoftClient,
        ref: CalendarRef,
        ops: list[BatchOp],
        as_user: UserCredentials | None = None,
    ) -> list[BatchResult]:
        """Creates, updates and deletes in ``$batch`` requests of 20; one result per op."""
        results: list[BatchResult] = []
        for start in range(0, len(ops), BATCH_SIZE):
            chunk = ops[start : start + BATCH_SIZE]
            results.extend(self._batch_chunk(ref, chunk, as_user))
        return results

    def read_events(
        self: MicrosoftClient,
        ref: CalendarRef,
        event_ids: list[str],
        as_user: UserCredentials | None = None,
    ) -> dict[str, RemoteEvent | None]:
        """Each event by id, with our tag expanded (calendarView/delta cannot expand extended
        properties), in ``$batch`` GETs of 20: ``{id: event}``, None for an event that no
        longer exists. An item that fails otherwise (after its throttling rounds) raises its
        mapped error: the caller cannot tell whose event it is."""
        found: dict[str, RemoteEvent | None] = {}
        for start in range(0, len(event_ids), BATCH_SIZE):
            chunk = event_ids[start : start + BATCH_SIZE]
            ops = [BatchOp(event_id, "read", event_id=event_id) for event_id in chunk]
            for result in self._batch_chunk(ref, ops, as_user):
                if isinstance(result.error, EventGone):
                    found[result.key] = None
                elif result.error is not None:
                    raise result.error
                else:
                    found[result.key] = result.event
        return found

    def _batch_item(self: MicrosoftClient, item_id: str, op: BatchOp, ref: CalendarRef) -> dict:
        events = f"{self._calendar(ref)}/events"
        headers = {"Prefer": PREFER}
        if op.version and op.action in ("update", "delete"):
            headers["If-Match"] = etag(op.version)
        if op.action == "create" and op.data is not None:
            body = mapping.event_body(op.data, creating=True)
            return {"id": item_id, "method": "POST", "url": events, "body": body,
                    "headers": headers | {"Content-Type": "application/json"}}  # fmt: skip
        target = f"{events}/{quote(op.event_id, safe='')}"
        if op.action == "update" and op.data is not None:
            body = mapping.event_body(op.data, creating=False)
            return {"id": item_id, "method": "PATCH", "url": target, "body": body,
                    "headers": headers | {"Content-Type": "application/json"}}  # fmt: skip
        if op.action == "delete":
            return {"id": item_id, "method": "DELETE", "url": target, "headers": headers}
        if op.action == "read":  # with our tag expanded (calendarView/delta cannot)
            return {"id": item_id, "method": "GET", "url": f"{target}?{TAG_QUERY}",
                    "headers": headers}  # fmt: skip
        raise ValueError(f"batch op {op.key!r}: unknown action {op.action!r} or missing data")

    def _batch_chunk(
        self: MicrosoftClient,
        ref: CalendarRef,
        chunk: list[BatchOp],
        as_user: UserCredentials | None,
    ) -> list:
        mailbox = ref.mailbox
        pending = {str(i): op for i, op in enumerate(chunk)}
        done: dict[str, BatchResult] = {}
        refreshed = False
        for round_ in range(BATCH_ITEM_ROUNDS + 1):
            last = round_ == BATCH_ITEM_ROUNDS
            body = {"requests": [self._batch_item(i, op, ref) for i, op in pending.items()]}
            response = self._send(
                "POST",
                "/$batch",
                mailbox=mailbox,
                as_user=as_user,
                json=body,
                items=len(pending),
                idempotent=True,  # creates carry transactionIds; the rest are idempotent
            )
            payload = self._check(response, mailbox)
            retry: dict[str, BatchOp] = {}
            waits: list[float] = []
            saw_401 = False
            for item in payload.get("responses") or []:
                item_id, status = str(item.get("id")), int(item.get("status") or 0)
                op = pending.get(item_id)
                if op is None:
                    continue
                headers = {str(k).lower(): str(v) for k, v in (item.get("headers") or {}).items()}
                if status in RETRYABLE_ITEM and not last:
                    retry[item_id] = op
                    hint = parse_retry_after(headers.get("retry-after"))
                    waits.append(
                        hint if hint is not None else backoff(round_ + 1, self.http.policy)
                    )
                    continue
                if status == 401 and not refreshed and not last:
                    retry[item_id] = op  # once, with a fresh token
                    saw_401 = True
                    continue
                done[item_id] = self._batch_result(op, status, item.get("body"), headers, mailbox)
            for item_id, op in pending.items():
                if item_id not in done and item_id not in retry:
                    error = TransientError("Graph's $batch answer left this item out.")
                    done[item_id] = BatchResult(op.key, error=error)
            if not retry:
                break
            if saw_401:
                refreshed = True
                self._token(as_user, fresh=True)
            wait = max(waits, default=0.0)
            self.http.hold_off(self._limit_key(mailbox), wait)  # every process waits too
            if wait > self.http.policy.max_retry_after:
                for item_id, op in retry.items():
                    error = graph_error(
                        429, "TooManyRequests", "", mailbox=mailbox, retry_after=wait
                    )
                    done[item_id] = BatchResult(op.key, error=error)
                break
            if wait:
                self.http.sleep(wait)
            pending = retry
        return [done[str(i)] for i in range(len(chunk))]

    def _batch_result(
        self: MicrosoftClient,
        op: BatchOp,
        status: int,
        body: Any,
        headers: dict[str, str],
        mailbox: str,
    ) -> BatchResult:
        if 200 <= status < 300:
            if op.action == "delete" or not isinstance(body, dict):
                return BatchResult(op.key)
            if op.action == "read":
                return BatchResult(op.key, event=mapping.parse_event(body))
            reservation_id = op.data.reservation_id if op.data else None
            return BatchResult(
                op.key, event=mapping.parse_event(body, reservation_id=reservation_id)
            )
        if op.action == "delete" and status in (404, 410):
            return BatchResult(op.key)  # already gone
        code, message = body_code_message(body)
        error = graph_error(
            status,
            code,
            message,
            mailbox=mailbox,
            event=op.action != "create",  # a read of a missing event: EventGone
            retry_after=parse_retry_after(headers.get("retry-after")),
        )
        return BatchResult(op.key, error=error)
