"""Google's batch endpoint for Calendar writes: :class:`BatchMixin`, part of ``GoogleClient``.

``batch`` sends creates, updates and deletes of one calendar in batch requests of at most 50
calls (Google allows 1000 per Calendar batch; 50 keeps one request well inside the per-user
rate, and the limiter counts every part). Each part has its own answer: a part answered 429,
5xx or 403 ``rateLimitExceeded``/``userRateLimitExceeded`` is sent again in the next round
after its ``Retry-After`` (or a backoff), a bounded number of rounds; a part answered 401 is
retried once with a fresh token; a create answered 409 is resolved as ``create_event``
resolves it (the existing event, when it is ours). Results come back one per op, in order.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import quote

from ..base import (
    BatchOp,
    BatchResult,
    CalendarRef,
    ProviderError,
    Throttled,
    TransientError,
    UserCredentials,
)
from ..http import backoff, parse_retry_after
from . import mapping, multipart
from .errors import api_error, api_reason, is_rate_limit

if TYPE_CHECKING:
    from .client import GoogleClient

BATCH_SIZE = 50
BATCH_ROUNDS = 3  # retries of throttled parts inside a batch, after the first send
RETRYABLE_PART = frozenset({429, 500, 502, 503, 504})


class BatchMixin:
    """The batch half of :class:`~integrations.google.client.GoogleClient`."""

    def batch(
        self: GoogleClient,
        ref: CalendarRef,
        ops: list[BatchOp],
        as_user: UserCredentials | None = None,
    ) -> list[BatchResult]:
        """Creates, updates and deletes in batch requests of 50; one result per op, in order."""
        results: list[BatchResult] = []
        for start in range(0, len(ops), BATCH_SIZE):
            chunk = ops[start : start + BATCH_SIZE]
            results.extend(self._batch_chunk(ref.calendar_id, chunk, as_user))
        return results

    def _part(self: GoogleClient, content_id: str, op: BatchOp, calendar_id: str) -> multipart.Part:
        events = f"{self.api_path}{self._calendar(calendar_id)}/events"
        headers = {"If-Match": op.version} if op.version and op.action != "create" else {}
        if op.action == "create" and op.data is not None:
            chosen = mapping.event_id(op.data.reservation_id)
            body = mapping.event_body(op.data, event_id_value=chosen)
            return multipart.Part(content_id, "POST", events, body)
        target = f"{events}/{quote(op.event_id, safe='')}"
        if op.action == "update" and op.data is not None and op.event_id:
            return multipart.Part(content_id, "PUT", target, mapping.event_body(op.data), headers)
        if op.action == "delete" and op.event_id:
            return multipart.Part(content_id, "DELETE", target, None, headers)
        raise ValueError(f"batch op {op.key!r}: unknown action {op.action!r} or missing data")

    def _batch_chunk(
        self: GoogleClient, calendar_id: str, chunk: list[BatchOp], as_user: UserCredentials | None
    ) -> list[BatchResult]:
        pending = {f"item{i}": op for i, op in enumerate(chunk)}
        done: dict[str, BatchResult] = {}
        policy = self.http.policy
        refreshed = False
        for round_ in range(BATCH_ROUNDS + 1):
            last = round_ == BATCH_ROUNDS
            parts = [self._part(cid, op, calendar_id) for cid, op in pending.items()]
            content_type, body = multipart.encode(parts)
            response = self._send(
                "POST",
                self.batch_url,
                as_user=as_user,
                headers={"Content-Type": content_type},
                data=body,
                items=len(parts),
                idempotent=True,  # creates carry their ids; updates If-Match; deletes repeat
            )
            if response.status_code >= 400:
                self._check(response, calendar_id, as_user)  # the whole batch was refused
            try:
                answers = multipart.decode(
                    response.headers.get("Content-Type", ""), response.content
                )
            except ValueError:
                answers = []  # unreadable: every call below is reported as left out
            retry: dict[str, BatchOp] = {}
            waits: list[float] = []
            saw_401 = False
            for answer in answers:
                op = pending.get(answer.content_id)
                if op is None or answer.content_id in done:
                    continue
                reason, _ = api_reason(answer.payload)
                throttled = answer.status in RETRYABLE_PART or is_rate_limit(answer.status, reason)
                if throttled and not last:
                    retry[answer.content_id] = op
                    hint = parse_retry_after(answer.headers.get("retry-after"))
                    waits.append(hint if hint is not None else backoff(round_ + 1, policy))
                    continue
                if answer.status == 401 and not refreshed and not last:
                    retry[answer.content_id] = op  # once, with a fresh token
                    saw_401 = True
                    continue
                done[answer.content_id] = self._part_result(op, answer, calendar_id, as_user)
            for cid, op in pending.items():
                if cid not in done and cid not in retry:
                    error = TransientError("Google's batch answer left this call out.")
                    done[cid] = BatchResult(op.key, error=error)
            if not retry:
                break
            if saw_401:
                refreshed = True
                self._token(as_user, fresh=True)
            wait = max(waits, default=0.0)
            self.http.hold_off(self._limit_key(as_user), wait)  # every process waits too
            if wait > policy.max_retry_after:
                for cid, op in retry.items():
                    error = Throttled(
                        f"Google Calendar is rate-limiting requests for {self._acting(as_user)}.",
                        status=429,
                        retry_after=wait,
                    )
                    done[cid] = BatchResult(op.key, error=error)
                break
            if wait:
                self.http.sleep(wait)
            pending = retry
        return [done[f"item{i}"] for i in range(len(chunk))]

    def _part_result(
        self: GoogleClient,
        op: BatchOp,
        answer: multipart.PartAnswer,
        calendar_id: str,
        as_user: UserCredentials | None,
    ) -> BatchResult:
        status, payload = answer.status, answer.payload
        if 200 <= status < 300:
            if op.action == "delete" or not isinstance(payload, dict):
                return BatchResult(op.key)
            return BatchResult(op.key, event=mapping.parse_event(payload, calendar_id=calendar_id))
        if op.action == "delete" and status in (404, 410):
            return BatchResult(op.key)  # already gone
        try:
            if op.action == "create" and status == 409 and op.data is not None:
                existing = self._ours(
                    calendar_id, mapping.event_id(op.data.reservation_id), op.data.reservation_id,
                    as_user,
                )  # fmt: skip
                if existing is None:
                    existing = self._create(calendar_id, op.data, as_user, first_generation=1)
                return BatchResult(op.key, event=existing)
        except ProviderError as error:
            return BatchResult(op.key, error=error)
        reason, message = api_reason(payload)
        error = api_error(
            status,
            reason,
            message,
            calendar_id=calendar_id,
            acting=self._acting(as_user),
            event=op.action != "create",
            user=as_user is not None,
            retry_after=parse_retry_after(answer.headers.get("retry-after")),
        )
        return BatchResult(op.key, error=error)
