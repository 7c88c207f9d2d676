"""What every Graph handler does first: authenticate, authorise, resolve the mailbox, count.

``open_mailbox`` verifies the bearer token, checks the calendar permission (application
``roles`` or delegated ``scp``), refuses a delegated token on someone else's mailbox, resolves
``me`` / ``users/{id|upn}``, then takes a slot in the (app id, mailbox) limit bucket: over the
limit, the request gets Exchange Online's 429 with ``Retry-After``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import unquote

from ..core import Request, Response
from .errors import graph_error
from .state import Mailbox, MicrosoftState
from .tokens import Principal, TokenInvalid, verify_access_token

if TYPE_CHECKING:
    from ..server import Sandbox

GRAPH_ROOT = "https://graph.microsoft.com/v1.0"
U = r"/v1\.0/(?:users/(?P<user>[^/]+)|(?P<me>me))"
READ = {
    "Calendars.Read",
    "Calendars.ReadWrite",
    "Calendars.Read.Shared",
    "Calendars.ReadWrite.Shared",
    "Calendars.ReadBasic",
}
WRITE = {"Calendars.ReadWrite", "Calendars.ReadWrite.Shared"}


def ms_state(sandbox: Sandbox) -> MicrosoftState:
    return sandbox.services["microsoft"]  # type: ignore[return-value]


@dataclass
class Context:
    principal: Principal
    mailbox: Mailbox
    state: MicrosoftState
    base_url: str  # the sandbox's https base, for next and delta links


def authenticate(request: Request, sandbox: Sandbox) -> Principal | Response:
    try:
        return verify_access_token(sandbox, request.bearer_token())
    except TokenInvalid as exc:
        return graph_error(
            401,
            "InvalidAuthenticationToken",
            str(exc),
            request,
            {
                "WWW-Authenticate": 'Bearer realm="", authorization_uri="'
                'https://login.microsoftonline.com/common/oauth2/authorize", client_id="'
                '00000003-0000-0000-c000-000000000000"'
            },
        )


def access_denied(request: Request) -> Response:
    return graph_error(
        403, "ErrorAccessDenied", "Access is denied. Check credentials and try again.", request
    )


def throttled(request: Request, kind: str, retry_after: int) -> Response:
    if kind == "concurrency":
        code, message = "ApplicationThrottled", "Application is over its MailboxConcurrency limit."
    else:
        code, message = "TooManyRequests", "Application is over its request rate limit for this "
        message += "mailbox. Please retry again later."
    return graph_error(429, code, message, request, {"Retry-After": str(retry_after)})


def open_mailbox(request: Request, sandbox: Sandbox, *, write: bool) -> Context | Response:
    """Authenticate and authorise a mailbox-scoped Graph request, and count it."""
    principal = authenticate(request, sandbox)
    if isinstance(principal, Response):
        return principal
    state = ms_state(sandbox)
    needed = WRITE if write else READ
    if not principal.permissions & needed:
        return access_denied(request)
    if request.params.get("me"):
        if principal.is_app:
            return graph_error(
                400,
                "BadRequest",
                "/me request is only valid with delegated authentication flow.",
                request,
            )
        key = principal.user_id or ""
    else:
        key = unquote(request.params.get("user") or "")
    mailbox = state.mailbox(key)
    if mailbox is None or mailbox.tenant_id != principal.tenant_id:
        return graph_error(
            404, "ErrorInvalidUser", f"The requested user '{key}' is invalid.", request
        )
    if not principal.is_app and mailbox.id != principal.user_id:
        # Delegated tokens reach only the signed-in user's own mailbox (no .Shared grants).
        return access_denied(request)
    denial = sandbox.enter_limit(request, ("graph", principal.app_id, mailbox.address.lower()))
    if denial is not None:
        return throttled(request, denial.kind, denial.retry_after)
    return Context(principal, mailbox, state, sandbox.base_url)


def mailbox_path(box: Mailbox) -> str:
    return f"users('{box.address}')"


def bad_request(request: Request, code: str, message: str, status: int = 400) -> Response:
    return graph_error(status, code, message, request)


def not_found(request: Request) -> Response:
    return graph_error(
        404, "ErrorItemNotFound", "The specified object was not found in the store.", request
    )


def page_size(request: Request, default: int) -> tuple[int, bool]:
    """``Prefer: odata.maxpagesize=N`` (whether it was applied) or ``default``."""
    prefer = request.headers.get("prefer", "")
    for part in prefer.split(","):
        name, _, value = part.strip().partition("=")
        if name.strip().lower() == "odata.maxpagesize" and value.strip().isdigit():
            return max(1, int(value.strip())), True
    return default, False
