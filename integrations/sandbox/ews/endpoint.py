"""``POST /EWS/Exchange.asmx``: authentication, envelope, impersonation, throttling, dispatch.

Authentication is what IIS in front of Exchange does: ``Basic`` (``user@domain``,
``DOMAIN\\user`` or ``user``) and ``NTLM`` (a three-leg handshake on one connection, verified
by pyspnego acting as the server; once it succeeds the connection stays signed in, as IIS
keeps it). A missing or wrong credential is a 401 with ``WWW-Authenticate`` for each scheme
offered, before any SOAP is read.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import os
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from ..core import Headers, Request, Response
from .operations import OPERATIONS, Call
from .soap import ItemError, SoapFault, envelope_response, fault_response, parse_envelope
from .state import EwsState, Mailbox

if TYPE_CHECKING:
    from ..server import Sandbox

SERVICE = "ews"
_NTLM_ENV_LOCK = threading.Lock()


def handle(request: Request, sandbox: Sandbox) -> Response:
    state: EwsState = sandbox.services["ews"]  # type: ignore[assignment]
    user = authenticate(request, state)
    if isinstance(user, Response):
        return user
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "text/xml":
        # EWS's SOAP 1.1 binding answers other media types with HTTP 415.
        return Response.text(
            415,
            "Cannot process the message because the content type "
            f"'{content_type}' was not the expected type 'text/xml'.",
        )
    try:
        envelope = parse_envelope(request.body)
        acting, impersonating = _acting(envelope.impersonation, user, state)
        denial = sandbox.enter_limit(request, ("ews", user.email))
        injected = state.take_busy()
        if injected is not None:
            raise SoapFault(
                "ErrorServerBusy",
                "The server cannot service this request right now. Try again later.",
                back_off_ms=injected,
                client=False,
            )
        if denial is not None:
            minimum = int(state.config.get("min_back_off_ms", 2000))
            raise SoapFault(
                "ErrorServerBusy",
                "The server cannot service this request right now. Try again later.",
                back_off_ms=max(minimum, denial.retry_after * 1000),
                client=False,
            )
        operation = OPERATIONS.get(envelope.name)
        if operation is None:
            raise SoapFault(
                "ErrorInvalidOperation",
                f"The sandbox does not emulate the EWS operation '{envelope.name}'.",
            )
        request.items = written_items(envelope.name, envelope.operation)
        call = Call(state, sandbox, user, acting, impersonating, envelope, request.connection)
        answer = operation(call)
        if isinstance(answer, Response):
            return answer  # already whole (GetStreamingEvents' stream)
        return envelope_response(answer, state.build)
    except SoapFault as fault:
        return fault_response(fault, state.build)


# The element holding the items a multi-item write processes, one after another.
WRITE_LISTS = {"CreateItem": "Items", "UpdateItem": "ItemChanges", "DeleteItem": "ItemIds"}


def written_items(name: str, operation: Any) -> int:
    """How many items a CreateItem / UpdateItem / DeleteItem writes (0 for other operations):
    Exchange processes them one after another, so the sandbox charges each the per-item
    latency (``sandbox.latency.per_item``) on top of the request's."""
    container = WRITE_LISTS.get(name)
    if container is None:
        return 0
    found = next((child for child in operation if child.tag.endswith("}" + container)), None)
    return len(found) if found is not None else 0


def _acting(ident: dict[str, str], user: Mailbox, state: EwsState) -> tuple[Mailbox, bool]:
    """Whom the request acts as; refuses impersonation without the role."""
    if not ident:
        return user, False
    kind, value = next(iter(ident.items()))
    if kind not in ("PrimarySmtpAddress", "SmtpAddress", "PrincipalName"):
        raise SoapFault(
            "ErrorImpersonationFailed",
            f"The sandbox identifies impersonated users by address, not by {kind}.",
        )
    if not user.impersonation:
        raise SoapFault(
            "ErrorImpersonateUserDenied",
            "The account does not have permission to impersonate the requested user.",
        )
    try:
        target = state.mailbox(value)
    except ItemError as error:
        raise SoapFault(error.code, error.message) from None
    return target, True


# -- authentication ----------------------------------------------------------------------


def _challenge(state: EwsState, ntlm_token: str | None = None) -> Response:
    response = Response.text(
        401, "401 - Unauthorized: Access is denied due to invalid credentials.", "text/html"
    )
    schemes = state.config.get("auth", ["NTLM", "Basic"])
    values = []
    if ntlm_token:
        values.append(f"NTLM {ntlm_token}")
    else:
        if "NTLM" in schemes:
            values += ["Negotiate", "NTLM"]
        if "Basic" in schemes:
            values.append('Basic realm="127.0.0.1"')
    # requests reads repeated WWW-Authenticate headers joined by commas.
    response.headers = Headers({"Content-Type": "text/html", "WWW-Authenticate": ", ".join(values)})
    return response


def authenticate(request: Request, state: EwsState) -> Mailbox | Response:
    conn = request.connection
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    scheme = scheme.lower()
    schemes = [s.lower() for s in state.config.get("auth", ["NTLM", "Basic"])]
    if not header and conn.get("ntlm_user"):
        return state.mailboxes[conn["ntlm_user"]]
    if scheme == "basic" and "basic" in schemes:
        try:
            login, _, password = base64.b64decode(token, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            return _challenge(state)
        user = state.user_by_login(login)
        if user is None or password != user.password:
            return _challenge(state)
        return user
    if scheme in ("ntlm", "negotiate") and "ntlm" in schemes:
        return _ntlm_step(conn, token.strip(), state)
    return _challenge(state)


def _ntlm_step(conn: dict[str, Any], token: str, state: EwsState) -> Mailbox | Response:
    import spnego  # only needed for NTLM; pyspnego comes with exchangelib's requests_ntlm

    try:
        raw = base64.b64decode(token, validate=True)
    except (binascii.Error, ValueError):
        return _challenge(state)
    message_type = raw[8:9] if raw.startswith(b"NTLMSSP\x00") else b""
    store = _credential_file(state)
    try:
        with _ntlm_store(store):
            if message_type == b"\x01":
                context = spnego.server(protocol="ntlm")
                challenge = context.step(raw)
                conn["ntlm_context"] = context
                conn.pop("ntlm_user", None)
                return _challenge(state, base64.b64encode(challenge or b"").decode())
            context = conn.pop("ntlm_context", None)
            if message_type != b"\x03" or context is None:
                return _challenge(state)
            context.step(raw)
            client = context.client_principal or ""
    except spnego.exceptions.SpnegoError:
        return _challenge(state)
    user = state.user_by_login(client)
    if user is None:
        return _challenge(state)
    conn["ntlm_user"] = user.email
    return user


def _credential_file(state: EwsState) -> str:
    """The NTLM credential store pyspnego's acceptor reads (Heimdal ``DOMAIN:USER:PASSWORD``)."""
    path = state.state_dir / "ews-ntlm-users"
    lines = []
    for box in state.mailboxes.values():
        if box.kind == "user" and box.password:
            lines.append(f"{state.netbios}:{box.username}:{box.password}")
            lines.append(f":{box.email}:{box.password}")
    text = "\n".join(lines) + "\n"
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
        path.chmod(0o600)
    return str(path)


@contextlib.contextmanager
def _ntlm_store(path: str) -> Iterator[None]:
    # pyspnego's NTLM acceptor only reads its credential store from NTLM_USER_FILE; set it
    # for the duration of one step, under a lock, and put back whatever was there.
    with _NTLM_ENV_LOCK:
        previous = os.environ.get("NTLM_USER_FILE")
        os.environ["NTLM_USER_FILE"] = path
        try:
            yield
        finally:
            if previous is None:
                os.environ.pop("NTLM_USER_FILE", None)
            else:
                os.environ["NTLM_USER_FILE"] = previous
