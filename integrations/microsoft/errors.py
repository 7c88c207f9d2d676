"""Microsoft's refusals as Reserva's error classes, in words an administrator can act on.

Two sources: the identity platform (msal hands back ``{"error", "error_description",
"error_codes": [AADSTS number]}``) and Graph (``{"error": {"code", "message"}}`` with an HTTP
status). Messages name the cause and the fix; they never include a token, a secret or a
query string (delta links and codes live there). Graph's own ``message`` is quoted only
where Microsoft writes it for people and it carries no secret.
"""

from __future__ import annotations

from typing import Any

import requests

from ..base import (
    AuthenticationFailed,
    CalendarGone,
    ConsentMissing,
    EventGone,
    PermanentError,
    ProviderError,
    SyncTokenExpired,
    Throttled,
    TlsError,
    TokenRevoked,
    TransientError,
    VersionConflict,
)

# AADSTS numbers: https://learn.microsoft.com/entra/identity-platform/reference-error-codes
WRONG_SECRET = {7000215, 7000222}  # invalid secret; expired secret
UNKNOWN_APP = {700016}
UNKNOWN_TENANT = {90002, 90023}
NO_CONSENT = {65001, 65004, 650056, 500011}
GRANT_GONE = {700082, 50173, 70008, 70043, 700084, 50078, 50076, 50079, 50158, 530003}

SYNC_STATE_CODES = {"syncstatenotfound", "resyncrequired", "syncstateinvalid"}
MAILBOX_CODES = {
    "errorinvaliduser",
    "mailboxnotenabledforrestapi",
    "mailboxnotsupportedforrestapi",
    "errornonexistentmailbox",
    "resourcenotfound",
}


def aadsts_codes(result: dict[str, Any]) -> set[int]:
    return {int(c) for c in result.get("error_codes") or [] if str(c).isdigit()}


def _first_line(description: str) -> str:
    """The AADSTS sentence without the trace, correlation and timestamp lines."""
    text = description.replace("\r\n", "\n").split("\n", 1)[0]
    return text.split(" Trace ID:", 1)[0].strip()


def msal_error(result: dict[str, Any], *, user: bool = False) -> ProviderError:
    """An msal error dict as an error class; ``user`` when it came from a person's token."""
    codes = aadsts_codes(result)
    error = str(result.get("error") or "")
    detail = _first_line(str(result.get("error_description") or error))
    code = f"AADSTS{min(codes)}" if codes else error
    if codes & WRONG_SECRET:
        return AuthenticationFailed(
            "The client secret is wrong or expired. Create a new secret for the app "
            "registration in Microsoft Entra (Certificates & secrets) and store its Value "
            f"(not its Secret ID) in the credential alias. ({code})",
            code=code,
        )
    if codes & UNKNOWN_APP:
        return AuthenticationFailed(
            "No app registration with this client id exists in the tenant, or it has not "
            f"been added to the tenant. Check the client id and the tenant id. ({code})",
            code=code,
        )
    if codes & UNKNOWN_TENANT or error == "invalid_tenant":
        return AuthenticationFailed(
            f"The tenant was not found. Check the tenant id (a GUID or a domain). ({code})",
            code=code,
        )
    if codes & NO_CONSENT or error == "consent_required":
        return ConsentMissing(
            "The app has not been granted the permissions it asks for. An administrator must "
            f"grant admin consent in Microsoft Entra (API permissions). ({code})",
            code=code,
        )
    if user and (codes & GRANT_GONE or error in ("invalid_grant", "interaction_required")):
        return TokenRevoked(
            "The Microsoft sign-in for this account has expired or was revoked (for example "
            "after 90 days unused, or a password change). Connect the calendar again. "
            f"({code})",
            code=code,
        )
    if error in ("temporarily_unavailable", "server_error") or codes & {90033, 90100}:
        return TransientError(f"Microsoft sign-in is temporarily unavailable. ({code})", code=code)
    if error == "invalid_client":
        return AuthenticationFailed(f"Microsoft refused the app's credentials: {detail}", code=code)
    if error in ("invalid_grant", "interaction_required"):
        return TokenRevoked(f"Microsoft refused the sign-in: {detail}", code=code)
    return AuthenticationFailed(f"Microsoft sign-in failed: {detail}", code=code)


def transport_error(exc: requests.RequestException, what: str) -> ProviderError:
    """A requests failure inside msal (which calls its http_client directly)."""
    if isinstance(exc, requests.exceptions.SSLError):
        return TlsError(
            f"The certificate of {what} is not trusted; check the connection alias's CA bundle.",
            code="tls",
        )
    return TransientError(f"{what} did not answer ({type(exc).__name__}).", code="network")


def graph_body(response: requests.Response) -> tuple[str, str]:
    """Graph's error code and message from a response (empty strings when absent)."""
    try:
        payload = response.json()
    except ValueError:
        return "", ""
    return body_code_message(payload)


def body_code_message(payload: Any) -> tuple[str, str]:
    error = payload.get("error") if isinstance(payload, dict) else None
    if not isinstance(error, dict):
        return "", ""
    return str(error.get("code") or ""), str(error.get("message") or "")


def is_access_policy(message: str) -> bool:
    lowered = message.lower()
    return (
        "odata is disabled" in lowered
        or "accesspolicy" in lowered
        or "access policy" in lowered
        or "blocked by tenant" in lowered
    )


def graph_error(
    status: int,
    code: str,
    message: str,
    *,
    mailbox: str = "",
    event: bool = False,
    retry_after: float | None = None,
) -> ProviderError:
    """A Graph error status and body as an error class.

    ``event`` says the request addressed one event, so a 404 means the event is gone rather
    than the mailbox or the calendar.
    """
    lowered = code.lower()
    where = f" ({mailbox})" if mailbox else ""
    if lowered in SYNC_STATE_CODES or (status == 410 and not event):
        return SyncTokenExpired(
            f"Microsoft Graph no longer knows this delta link{where}; a full sync follows.",
            status=status,
            code=code,
        )
    if status == 401:
        return AuthenticationFailed(
            "Microsoft Graph refused the app's access token. Check the tenant id and that the "
            "app registration is enabled.",
            status=status,
            code=code,
        )
    if status == 403 and is_access_policy(message):
        return ConsentMissing(
            f"An Exchange Online application access policy does not let this app reach "
            f"the mailbox{where}. Add the mailbox to the group the policy names "
            "(New-ApplicationAccessPolicy / Test-ApplicationAccessPolicy); policy changes can "
            "take an hour to apply.",
            status=status,
            code=code,
        )
    if status == 403:
        return ConsentMissing(
            "The app lacks the Calendars.ReadWrite permission or an administrator has not "
            "granted admin consent for it in Microsoft Entra (API permissions)"
            f"{where}.",
            status=status,
            code=code,
        )
    if lowered in MAILBOX_CODES:
        return CalendarGone(
            f"The mailbox{where} was not found, or it has no Exchange Online mailbox. Check "
            "the address.",
            status=status,
            code=code,
        )
    if status in (404, 410):
        if event:
            return EventGone(
                f"The event no longer exists in the calendar{where}.", status=status, code=code
            )
        return CalendarGone(
            f"The calendar{where} was not found; it may have been deleted. Pick the calendar "
            "again.",
            status=status,
            code=code,
        )
    if status == 412 or lowered == "errorirresolvableconflict":
        return VersionConflict(
            f"The event was changed in Outlook since Reserva last read it{where}.",
            status=status,
            code=code,
        )
    if status == 429:
        return Throttled(
            f"Microsoft Graph is throttling requests{where}.",
            status=status,
            code=code,
            retry_after=retry_after,
        )
    if status >= 500:
        return TransientError(
            f"Microsoft Graph answered {status}{where}.",
            status=status,
            code=code,
            retry_after=retry_after,
        )
    return PermanentError(
        f"Microsoft Graph refused the request{where}: {code} {message}".strip(),
        status=status,
        code=code,
    )
