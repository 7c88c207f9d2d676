"""Multi-item writes: CreateItem, UpdateItem and DeleteItem for many events in one request
(exchangelib's ``bulk_create`` / ``bulk_update`` / ``bulk_delete``), one result per op.

Creates are idempotent by looking first (``_create_items``, also what a single create uses):
events already tagged at their time are taken as they are, and a CreateItem whose answer was
lost is looked for again before the rest is created once more.
"""

from __future__ import annotations

import logging
from typing import Any

from exchangelib import (
    Account,
    CalendarItem,
)
from exchangelib.items import (
    ALL_OCCURRENCES,
    ALWAYS_OVERWRITE,
    MOVE_TO_DELETED_ITEMS,
    NEVER_OVERWRITE,
    SAVE_ONLY,
    SEND_TO_ALL_AND_SAVE_COPY,
    SEND_TO_CHANGED_AND_SAVE_COPY,
)

from ..base import (
    BatchOp,
    BatchResult,
    CalendarRef,
    EventData,
    EventGone,
    PermanentError,
    ProviderError,
    TransientError,
    UserCredentials,
)
from . import mapping
from .connection import EwsConnection, invitations, update_items
from .errors import (
    ews_error,
)

log = logging.getLogger("integrations.ews")

BATCH_CHUNK = 50  # items per multi-item request (registry: batch_size)


class BatchMixin(EwsConnection):
    def _create_items(self, ref: CalendarRef, creates: list[tuple[str, EventData]]) -> dict:
        """``{key: RemoteEvent or exception}``: events already tagged at their time are taken
        as they are, the rest made with one multi-item CreateItem. Each request retries on its
        own (a busy server processed nothing); a CreateItem whose answer was lost is looked for
        again before the rest is created once more."""
        results: dict[str, Any] = {}
        pending = list(creates)
        for round_ in range(2):
            datas = [d for _, d in pending]
            existing = self._call(
                ref.mailbox,
                lambda account, datas=datas: self._existing(self._folder(account, ref), datas),
            )
            rest = []
            for key, data in pending:
                found = existing.get(data.reservation_id)
                if found is not None:
                    log.info("EWS create of reservation %s: made already", data.reservation_id)
                    results[key] = mapping.parse_item(found)
                else:
                    rest.append((key, data))
            if not rest:
                break

            def create(account: Account, rest: list = rest) -> list[Any]:
                folder = self._folder(account, ref)
                items = [
                    CalendarItem(
                        account=account,
                        folder=folder,
                        uid=mapping.creation_key(data.reservation_id),
                        **mapping.item_fields(data),
                    )
                    for _, data in rest
                ]
                send = (
                    invitations(rest[0][1], update=False)
                    if len(rest) == 1
                    else SEND_TO_ALL_AND_SAVE_COPY
                )
                made = account.bulk_create(
                    folder=folder,
                    items=items,
                    message_disposition=SAVE_ONLY,
                    send_meeting_invitations=send,
                )
                answers: list[Any] = []
                for (_, data), item, result in zip(rest, items, made, strict=True):
                    if isinstance(result, BaseException):
                        answers.append(result)
                        continue
                    item.id, item.changekey = result.id, result.changekey
                    answers.append(mapping.parse_item(item, reservation_id=data.reservation_id))
                return answers

            try:
                made = self._call(ref.mailbox, create, idempotent=False, items=len(rest))
            except TransientError as error:
                if error.code != "network" or round_:
                    raise
                pending = rest  # the outcome is unknown: look again, then create what is missing
                continue
            results.update({key: answer for (key, _), answer in zip(rest, made, strict=True)})
            break
        return results

    def batch(
        self, ref: CalendarRef, ops: list[BatchOp], as_user: UserCredentials | None = None
    ) -> list[BatchResult]:
        """Multi-item CreateItem, UpdateItem and DeleteItem; one result per op, in order."""
        self._personal(as_user)
        results: dict[str, BatchResult] = {}
        for offset in range(0, len(ops), BATCH_CHUNK):
            chunk = ops[offset : offset + BATCH_CHUNK]
            try:
                self._batch_chunk(ref, chunk, results)
            except ProviderError as error:
                # What a phase that went through answered is kept; the rest failed with this.
                for op in chunk:
                    results.setdefault(op.key, BatchResult(op.key, error=error))
        return [results[op.key] for op in ops]

    def _batch_chunk(
        self, ref: CalendarRef, ops: list[BatchOp], out: dict[str, BatchResult]
    ) -> None:
        """One chunk in phases (creates, updates, deletes), each request retried on its own;
        each op's result goes into ``out`` as soon as its phase is done."""

        def record(op: BatchOp, answer: Any) -> None:
            if isinstance(answer, BaseException):
                error = ews_error(answer, endpoint=self.endpoint, mailbox=ref.mailbox, event=True)
                if op.action == "delete" and isinstance(error, EventGone):
                    out[op.key] = BatchResult(op.key)
                else:
                    out[op.key] = BatchResult(op.key, error=error)
            else:
                out[op.key] = BatchResult(op.key, event=answer)

        creates = [op for op in ops if op.action == "create" and op.data is not None]
        updates = [op for op in ops if op.action == "update" and op.data is not None]
        deletes = [op for op in ops if op.action == "delete"]
        for op in ops:
            if op not in creates and op not in updates and op not in deletes:
                out[op.key] = BatchResult(
                    op.key, error=PermanentError(f"Unknown batch action {op.action!r}.")
                )
        if creates:
            made = self._create_items(ref, [(op.key, op.data) for op in creates if op.data])
            for op in creates:
                record(op, made[op.key])
        if updates:
            for op, answer in self._batch_updates(ref, updates):
                record(op, answer)
        if deletes:
            answers = self._call(
                ref.mailbox,
                lambda account: account.bulk_delete(
                    ids=[(op.event_id, op.version or None) for op in deletes],
                    delete_type=MOVE_TO_DELETED_ITEMS,
                    send_meeting_cancellations=SEND_TO_ALL_AND_SAVE_COPY,
                    affected_task_occurrences=ALL_OCCURRENCES,
                    suppress_read_receipts=True,
                ),
                items=len(deletes),
            )
            for op, answer in zip(deletes, answers, strict=True):
                record(op, answer if isinstance(answer, BaseException) else None)

    def _batch_updates(self, ref: CalendarRef, updates: list[BatchOp]) -> list[tuple[BatchOp, Any]]:
        """``(op, RemoteEvent or exception)`` per update: versioned ones with NeverOverwrite
        (a stale ChangeKey is that item's VersionConflict), the others with the current key
        read first and AlwaysOverwrite."""
        answers: list[tuple[BatchOp, Any]] = []
        unversioned = [op for op in updates if not op.version]
        keys: dict[str, Any] = {op.key: op.version for op in updates if op.version}
        if unversioned:
            current = self._call(
                ref.mailbox,
                lambda account: self._current_keys(account, [op.event_id for op in unversioned]),
                items=len(unversioned),
            )
            keys.update(zip([op.key for op in unversioned], current, strict=True))
        for resolution, group in (
            (NEVER_OVERWRITE, [op for op in updates if op.version]),
            (ALWAYS_OVERWRITE, unversioned),
        ):
            answers += [
                (op, keys[op.key]) for op in group if isinstance(keys[op.key], BaseException)
            ]
            ready = [op for op in group if not isinstance(keys[op.key], BaseException)]
            if not ready:
                continue

            def update(account: Account, ready: list = ready, resolution: str = resolution):
                folder = self._folder(account, ref)
                prepared = [
                    self._prepared_update(account, folder, op.event_id, op.data, keys[op.key])
                    for op in ready
                ]
                results = update_items(account, prepared, resolution, SEND_TO_CHANGED_AND_SAVE_COPY)
                events: list[Any] = []
                for op, item, result in zip(ready, prepared, results, strict=True):
                    if isinstance(result, BaseException):
                        events.append(result)
                        continue
                    item.id, item.changekey = result
                    events.append(mapping.parse_item(item, reservation_id=op.data.reservation_id))
                return events

            # A versioned update replayed after a lost answer would meet itself.
            made = self._call(
                ref.mailbox, update, idempotent=resolution == ALWAYS_OVERWRITE, items=len(ready)
            )
            answers += list(zip(ready, made, strict=True))
        return answers
