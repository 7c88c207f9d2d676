"""JSON batching: ``POST /v1.0/$batch`` with at most 20 requests.

Each item runs through the sandbox's dispatch like a request of its own, so it is
authenticated with the batch's Authorization header, counted against its (app, mailbox)
limits (a throttled item gets its own 429 and ``retry-after`` while the batch is 200),
delayed by the per-item latency and open to injected faults. Responses come back in an
order of the sandbox's choosing, as Graph allows; clients must correlate by ``id``.
``dependsOn`` makes items wait; an item whose dependency failed gets 424.

Like Graph with Outlook, an unordered batch runs at most 4 items at a time ("regardless of the
target mailboxes"); a batch that uses ``dependsOn`` runs its items one at a time.
"""

from __future__ import annotations

import json
import random
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from ..core import Headers, Request, Response, Router
from .errors import GRAPH, graph_error

if TYPE_CHECKING:
    from ..server import Sandbox

MAX_REQUESTS = 20
MAX_PARALLEL_ITEMS = 4  # Graph sends at most 4 requests of an unordered batch to Outlook at once
METHODS = {"GET", "POST", "PATCH", "PUT", "DELETE"}


def _malformed(request: Request, message: str) -> Response:
    return graph_error(400, "BadRequest", message, request)


def _validate(request: Request) -> list[dict[str, Any]] | Response:
    try:
        payload = request.json()
    except (ValueError, UnicodeDecodeError):
        return _malformed(request, "Invalid batch payload format.")
    items = payload.get("requests") if isinstance(payload, dict) else None
    if not isinstance(items, list) or not items:
        return _malformed(request, "Invalid batch payload format.")
    if len(items) > MAX_REQUESTS:
        return _malformed(
            request, f"The number of batch requests exceeds the limit of {MAX_REQUESTS}."
        )
    seen: set[str] = set()
    for item in items:
        if not isinstance(item, dict) or not all(k in item for k in ("id", "method", "url")):
            return _malformed(request, "Each batch request needs an id, a method and a url.")
        item_id = str(item["id"])
        if item_id in seen:
            return _malformed(
                request, f"Batch request ids must be unique; '{item_id}' is repeated."
            )
        seen.add(item_id)
        if str(item["method"]).upper() not in METHODS:
            return _malformed(request, f"Invalid method '{item['method']}' in batch request.")
        url = str(item["url"])
        if url.startswith(("http://", "https://")):
            return _malformed(
                request, "Batch request urls must be relative, e.g. /users/{id}/events."
            )
        if "body" in item and not any(
            k.lower() == "content-type" for k in item.get("headers") or {}
        ):
            return _malformed(
                request, "A Content-Type header is required for a batch request with a body."
            )
    for item in items:
        for dep in item.get("dependsOn") or []:
            if str(dep) not in seen:
                return _malformed(request, f"dependsOn references an unknown request id '{dep}'.")
    return items


def _item_request(outer: Request, item: dict[str, Any]) -> Request:
    url = str(item["url"])
    if not url.startswith("/"):
        url = "/" + url
    if url.lower().startswith("/$batch"):
        url = "/$batch-nested"
    headers = Headers(
        {
            k: v
            for k, v in outer.headers.items()
            if k in ("authorization", "client-request-id", "prefer")
        }
    )
    for key, value in (item.get("headers") or {}).items():
        headers[key] = str(value)
    body = item.get("body")
    raw = b"" if body is None else (body if isinstance(body, str) else json.dumps(body)).encode()
    sub = Request.build(str(item["method"]), f"/v1.0{url}", headers, raw)
    sub.batch_item = True
    sub.arrived = outer.arrived  # sent with its batch
    return sub


def _as_item(item_id: str, response: Response) -> dict[str, Any]:
    headers = {k: v for k, v in response.headers.items() if k not in ("content-length",)}
    result: dict[str, Any] = {"id": item_id, "status": response.status, "headers": headers}
    if response.body:
        try:
            result["body"] = json.loads(response.body)
        except ValueError:
            result["body"] = response.body.decode("utf-8", "replace")
    return result


def batch(request: Request, sandbox: Sandbox) -> Response:
    from ..server import Drop

    items = _validate(request)
    if isinstance(items, Response):
        return items
    ordered_batch = any(item.get("dependsOn") for item in items)
    results: dict[str, dict[str, Any]] = {}
    pending = list(items)
    with ThreadPoolExecutor(max_workers=1 if ordered_batch else MAX_PARALLEL_ITEMS) as pool:
        while pending:
            ready = [
                item
                for item in pending
                if all(str(d) in results for d in item.get("dependsOn") or [])
            ]
            if not ready:
                return _malformed(request, "dependsOn forms a cycle.")
            if ordered_batch:
                ready = ready[:1]  # one at a time, in dependency order
            runnable = []
            for item in ready:
                pending.remove(item)
                item_id = str(item["id"])
                deps = [str(d) for d in item.get("dependsOn") or []]
                if any(results[d]["status"] >= 400 for d in deps):
                    failed = graph_error(
                        424,
                        "FailedDependency",
                        "The request could not be completed because a request it depends on "
                        "failed.",
                        request,
                    )
                    results[item_id] = _as_item(item_id, failed)
                else:
                    runnable.append(item)
            outcomes = pool.map(
                lambda item: sandbox.dispatch(_item_request(request, item)), runnable
            )
            for item, outcome in zip(runnable, list(outcomes), strict=True):
                if isinstance(outcome, Drop):
                    return outcome  # type: ignore[return-value]
                results[str(item["id"])] = _as_item(str(item["id"]), outcome)
    ordered = list(results.values())
    random.shuffle(ordered)
    return Response.json(200, {"responses": ordered})


def register(router: Router, sandbox: Sandbox) -> None:
    router.add("POST", r"/v1\.0/\$batch", batch, service=GRAPH, name="graph $batch")
