"""The Calendar batch endpoint: ``POST /batch/calendar/v3`` with a ``multipart/mixed`` body.

From Google's batch guide (reference §3): each part is ``Content-Type: application/http``
with an optional ``Content-ID`` and a whole HTTP request whose URL is path-only; the outer
request's headers (``Authorization``...) apply to every part unless the part overrides them;
at most 1000 parts. The answer is ``multipart/mixed``, one part per request in the same order,
each a whole HTTP response with ``Content-ID: <response-ID>``. Errors are per part inside a
200. Each part is dispatched through the sandbox like a request of its own, so it is
authenticated, counted against the per-user quota, faulted and delayed one by one.
"""

from __future__ import annotations

import secrets
from email.parser import BytesParser
from email.policy import HTTP
from http import HTTPStatus
from typing import TYPE_CHECKING

from ..core import Headers, Request, Response
from .errors import api_error

if TYPE_CHECKING:
    from ..server import Sandbox

MAX_PARTS = 1000
API_PREFIX = "/calendar/v3/"


def _parse_part(raw: bytes, outer: Headers) -> Request:
    head, _, body = raw.replace(b"\r\n", b"\n").partition(b"\n\n")
    lines = head.decode("utf-8").strip("\n").split("\n")
    method, target, *_ = lines[0].split(" ")
    if "://" in target:
        target = "/" + target.split("://", 1)[1].split("/", 1)[1]
    if target.startswith(API_PREFIX):
        target = (
            "/google" + target
        )  # Clients send Google's path; the sandbox mounts it under /google.
    headers = Headers({k: v for k, v in outer.items() if not k.startswith("content-")})
    for line in lines[1:]:
        key, _, value = line.partition(":")
        headers[key.strip()] = value.strip()
    body = body.rstrip(b"\n") if body.strip() else b""
    if body and "\r\n" in raw.decode("utf-8", "replace"):
        body = body.replace(b"\n", b"\r\n")
    return Request.build(method, target, headers, body)


def batch(request: Request, sandbox: Sandbox) -> Response:
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("multipart/mixed") or "boundary=" not in content_type:
        return api_error(400, "badRequest", "Content-Type must be multipart/mixed with a boundary.")
    message = BytesParser(policy=HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + request.body
    )
    parts = list(message.iter_parts()) if message.is_multipart() else []
    if not parts:
        return api_error(400, "badRequest", "Batch request has no parts.")
    if len(parts) > MAX_PARTS:
        return api_error(
            400, "batchSizeTooLarge", f"A batch request may contain at most {MAX_PARTS} calls."
        )
    boundary = "batch_" + secrets.token_hex(12)
    chunks: list[bytes] = []
    for part in parts:
        content_id = part.get("Content-ID")
        try:
            inner = _parse_part(part.get_payload(decode=True) or b"", request.headers)
        except (ValueError, IndexError, UnicodeDecodeError):
            answer = api_error(400, "badRequest", "Malformed batch part.")
        else:
            inner.batch_item = True
            inner.arrived = request.arrived  # sent with its batch
            outcome = sandbox.dispatch(inner)
            if not isinstance(outcome, Response):
                # A "dropped connection" fault on one part: the part fails, the batch answers.
                outcome = api_error(503, "backendError", "Backend Error")
            answer = outcome
        chunks.append(_render_part(answer, content_id, boundary))
    body = b"".join(chunks) + f"--{boundary}--\r\n".encode()
    return Response(200, body, Headers({"Content-Type": f"multipart/mixed; boundary={boundary}"}))


def _render_part(response: Response, content_id: str | None, boundary: str) -> bytes:
    head = [f"--{boundary}", "Content-Type: application/http"]
    if content_id:
        inner_id = content_id.strip().strip("<>")
        head.append(f"Content-ID: <response-{inner_id}>")
    reason = (
        HTTPStatus(response.status).phrase
        if response.status in HTTPStatus._value2member_map_
        else ""
    )
    lines = [f"HTTP/1.1 {response.status} {reason}"]
    for key, value in response.headers.items():
        lines.append(f"{key.title()}: {value}")
    lines.append(f"Content-Length: {len(response.body)}")
    text = "\r\n".join(head) + "\r\n\r\n" + "\r\n".join(lines) + "\r\n\r\n"
    return text.encode() + response.body + b"\r\n"
