"""The wire format of Google's batch endpoint (``POST {root}/batch/calendar/v3``).

From Google's batch guide (reference §3): the body is ``multipart/mixed``; each part is
``Content-Type: application/http`` with a ``Content-ID`` and holds a whole HTTP request whose
URL is path-only. The outer request's headers (``Authorization``) apply to every part. The
answer is ``multipart/mixed`` too, one part per request, each a whole HTTP response whose
``Content-ID`` is ``<response-ID>`` for a request sent with ``<ID>``. Parsing follows
google-api-python-client's ``BatchHttpRequest._execute``: prepend the answer's Content-Type
and feed it to the ``email`` parser.
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any

BOUNDARY_RE = re.compile(r'boundary="?([^";]+)"?', re.IGNORECASE)


@dataclass(frozen=True)
class Part:
    content_id: str
    method: str
    path: str  # path-only, e.g. /calendar/v3/calendars/x/events
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PartAnswer:
    content_id: str
    status: int
    headers: dict[str, str]  # lower-case names
    payload: Any  # decoded JSON, or None


def encode(parts: list[Part]) -> tuple[str, bytes]:
    """(Content-Type header, body) of a batch request."""
    boundary = "batch_reserva_" + secrets.token_hex(12)
    chunks: list[str] = []
    for part in parts:
        lines = [
            f"--{boundary}",
            "Content-Type: application/http",
            f"Content-ID: <{part.content_id}>",
            "",
            f"{part.method} {part.path} HTTP/1.1",
        ]
        lines += [f"{name}: {value}" for name, value in part.headers.items()]
        if part.body is not None:
            lines.append("Content-Type: application/json; charset=UTF-8")
            lines += ["", json.dumps(part.body, separators=(",", ":"))]
        else:
            lines.append("")
        chunks.append("\r\n".join(lines) + "\r\n")
    text = "".join(chunks) + f"--{boundary}--\r\n"
    return f"multipart/mixed; boundary={boundary}", text.encode("utf-8")


def _inner_id(raw: str | None) -> str:
    value = (raw or "").strip().strip("<>")
    return value[len("response-") :] if value.startswith("response-") else value


def decode(content_type: str, body: bytes) -> list[PartAnswer]:
    """The parts of a batch answer, in the order Google sent them."""
    found = BOUNDARY_RE.search(content_type)
    if found is None:
        raise ValueError("the batch answer has no multipart boundary")
    # Google's boundaries may end in "=" and come unquoted, which the email parser rejects.
    header = f'Content-Type: multipart/mixed; boundary="{found.group(1)}"\r\n\r\n'
    message = BytesParser(policy=HTTP).parsebytes(header.encode() + body)
    if not message.is_multipart():
        raise ValueError("the batch answer is not multipart")
    answers: list[PartAnswer] = []
    for part in message.iter_parts():
        raw = part.get_payload(decode=True) or b""
        head, _, inner_body = raw.replace(b"\r\n", b"\n").partition(b"\n\n")
        lines = head.decode("utf-8", "replace").strip("\n").split("\n")
        status_line = lines[0].split(" ")
        status = int(status_line[1]) if len(status_line) > 1 and status_line[1].isdigit() else 0
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        payload = None
        if inner_body.strip():
            try:
                payload = json.loads(inner_body.decode("utf-8"))
            except ValueError:
                payload = None
        answers.append(PartAnswer(_inner_id(part.get("Content-ID")), status, headers, payload))
    return answers
