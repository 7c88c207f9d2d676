"""Google's refusals as Reserva's error classes, in words an administrator can act on.

Two sources:

- the OAuth token endpoint (``{"error", "error_description"}``), reached by google-auth,
  which raises ``RefreshError(details, response_data)``; and
- Calendar v3 (``{"error": {"code", "message", "errors": [{"domain", "reason"}]}}``), whose
  ``reason`` says more than the status: a 403 is a rate limit (``rateLimitExceeded``,
  ``userRateLimitExceeded``: back off and retry), Workspace's anti-abuse cut-off
  (``quotaExceeded``: a long cool-down), missing scopes (``insufficientPermissions``) or
  access to the calendar (``requiredAccessLevel``, ``forbidden``) - Calendar API errors guide,
  reference §4.

Messages name the cause and the fix; they never hold a token, a key or a query string (sync
and page tokens live there). Google's own ``message`` is quoted only for 400s, where Google
writes it for people and it names the offending field.
"""

from __future__ import annotations

from typing import Any

import requests
from google.auth import exceptions as auth_exceptions

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

RATE_LIMIT_REASONS = frozenset({"rateLimitExceeded", "userRateLimitExceeded"})
# Not an API quota: the user's calendar turns read-only "for a certain period" (hours).
LONG_QUOTA_REASONS = frozenset({"quotaExceeded", "dailyLimitExceeded"})
QUOTA_COOL_DOWN = 3600.0
RESOURCE_DOMAIN = "resource.calendar.google.com"


def api_reason(payload: Any) -> tuple[str, str]:
    """(reason, message) of a Calendar v3 error body; empty strings when absent."""
    error = payload.get("error") if isinstance(payload, dict) else None
    if not isinstance(error, dict):
        return "", ""
    items = error.get("errors") or [{}]
    first = items[0] if isinstance(items[0], dict) else {}
    return str(first.get("reason") or error.get("status") or ""), str(error.get("message") or "")


def response_reason(response: requests.Response) -> tuple[str, str]:
    try:
        return api_reason(response.json())
    except ValueError:
        return "", ""


def is_rate_limit(status: int, reason: str) -> bool:
    return status == 429 or (status == 403 and reason in RATE_LIMIT_REASONS)


def api_error(
    status: int,
    reason: str,
    message: str,
    *,
    calendar_id: str = "",
    acting: str = "",
    event: bool = False,
    user: bool = False,
    retry_after: float | None = None,
) -> ProviderError:
    """A Calendar v3 error as an error class.

    ``acting`` is the impersonated user or the person whose token was used; ``event`` says
    the request addressed one event (a 404 then means the event, not the calendar, is gone);
    ``user`` says a person's own token was used.
    """
    where = f" ({calendar_id})" if calendar_id else ""
    who = acting or "the service account"
    if status == 410 and reason == "fullSyncRequired":
        return SyncTokenExpired(
            f"Google no longer accepts this sync token{where}; a full sync follows.",
            status=status,
            code=reason,
        )
    if status == 401:
        if user:
            return TokenRevoked(
                f"Google refused the access token of {who} even after a refresh; connect the "
                "calendar again.",
                status=status,
                code=reason or "authError",
            )
        return AuthenticationFailed(
            "Google Calendar refused the service account's access token even after a refresh. "
            "Check the service-account key and that the Calendar API is enabled for its project.",
            status=status,
            code=reason or "authError",
        )
    if is_rate_limit(status, reason):
        return Throttled(
            f"Google Calendar is rate-limiting requests for {who}{where}.",
            status=status,
            code=reason or "rateLimitExceeded",
            retry_after=retry_after,
        )
    if status == 403 and reason in LONG_QUOTA_REASONS:
        return Throttled(
            f"Google's Calendar usage limits were exceeded for {who}; Google makes the calendar "
            "read-only for a while (usually hours). Sync resumes later by itself.",
            status=status,
            code=reason,
            retry_after=max(retry_after or 0.0, QUOTA_COOL_DOWN),
        )
    if status == 403 and reason == "insufficientPermissions":
        return ConsentMissing(
            "The token lacks the Google Calendar scope "
            "(https://www.googleapis.com/auth/calendar). Add it to the domain-wide delegation "
            "of the service account in the Admin console, or connect the calendar again "
            "granting calendar access.",
            status=status,
            code=reason,
        )
    if status == 403 and reason == "forbiddenForServiceAccounts":
        return ConsentMissing(
            "A service account acting as itself cannot invite attendees or rooms. Set the "
            "delegated user (a person of the Workspace domain who can write to the calendar) "
            "and grant the service account domain-wide delegation.",
            status=status,
            code=reason,
        )
    if status == 403:
        return ConsentMissing(
            f"The impersonated user {who} cannot write to this calendar{where}. Share the "
            'calendar (or the resource) with that user with "Make changes to events", or '
            "choose a delegated user who has that access.",
            status=status,
            code=reason or "forbidden",
        )
    if status == 404 and event:
        return EventGone(
            f"The event no longer exists in the calendar{where}.", status=status, code=reason
        )
    if status == 404:
        return CalendarGone(
            f"The calendar{where} was not found, or {who} cannot see it. Check the calendar id "
            "(for a room: the resource's email) and that the calendar is shared with that user.",
            status=status,
            code=reason or "notFound",
        )
    if status == 410:
        return EventGone(f"The event was deleted{where}.", status=status, code=reason)
    if status == 412:
        return VersionConflict(
            f"The event was changed in Google Calendar since Reserva last read it{where}; "
            "read it again before writing.",
            status=status,
            code=reason or "conditionNotMet",
        )
    if status >= 500:
        return TransientError(
            f"Google Calendar answered {status}{where}; it will be retried.",
            status=status,
            code=reason,
            retry_after=retry_after,
        )
    return PermanentError(
        f"Google Calendar refused the request{where}: {reason} {message}".strip(),
        status=status,
        code=reason,
    )


def _oauth_fields(exc: auth_exceptions.RefreshError) -> tuple[str, str]:
    data = exc.args[1] if len(exc.args) > 1 and isinstance(exc.args[1], dict) else {}
    error = str(data.get("error") or "")
    description = str(data.get("error_description") or "")
    if not error and exc.args:
        error, _, description = str(exc.args[0]).partition(": ")
    return error, description


def service_account_error(
    exc: auth_exceptions.RefreshError, *, subject: str, account: str
) -> ProviderError:
    """A token-endpoint refusal of the service account's JWT assertion."""
    error, description = _oauth_fields(exc)
    lowered = description.lower()
    if error == "unauthorized_client":
        return ConsentMissing(
            f"The service account {account} has no domain-wide delegation for the Calendar "
            f"scope, so it cannot act as {subject}. In the Google Admin console (Security > "
            "API controls > Domain-wide delegation) add its client id with the scope "
            "https://www.googleapis.com/auth/calendar.",
            code=error,
        )
    if error == "invalid_grant" and "invalid email or user id" in lowered:
        if subject.lower().endswith(RESOURCE_DOMAIN):
            return AuthenticationFailed(
                f"The delegated user {subject} is a resource calendar, which cannot be "
                "impersonated. The resource's email is the calendar id; the delegated user "
                "must be a person of the Workspace domain who can write to it.",
                code=error,
            )
        return AuthenticationFailed(
            f"The delegated user {subject} is not an active user of the Google Workspace domain "
            "that granted the delegation. Check the address.",
            code=error,
        )
    if error == "invalid_grant" and "signature" in lowered:
        return AuthenticationFailed(
            f"Google does not accept the private key of {account}: the key was deleted or "
            "replaced. Create a new JSON key for the service account and store it in the "
            "credential alias.",
            code=error,
        )
    if error == "invalid_grant" and "account not found" in lowered:
        return AuthenticationFailed(
            f"The service account {account} does not exist (any more). Check the key file.",
            code=error,
        )
    if error == "invalid_grant" and ("iat" in lowered or "short-lived" in lowered):
        return AuthenticationFailed(
            "Google refused the sign-in assertion's time window; check this server's clock.",
            code=error,
        )
    if error == "invalid_scope":
        return ConsentMissing(
            "Google refused the requested scopes; check the credential alias's scopes.",
            code=error,
        )
    if error in ("temporarily_unavailable", "internal_failure", "server_error"):
        return TransientError("Google sign-in is temporarily unavailable.", code=error)
    return AuthenticationFailed(
        f"Google refused the service account's sign-in ({error or 'unknown error'}).", code=error
    )


def user_refresh_error(exc: auth_exceptions.RefreshError, *, account: str) -> ProviderError:
    """A refresh of a person's token that failed."""
    error, _ = _oauth_fields(exc)
    if error == "invalid_grant":
        return TokenRevoked(
            f"The Google sign-in of {account} was revoked or has expired (revoked access, a "
            "password change, or six months unused). Connect the calendar again.",
            code=error,
        )
    if error in ("invalid_client", "unauthorized_client", "deleted_client", "disabled_client"):
        return AuthenticationFailed(
            "Google refused the OAuth client id or secret; check the credential alias.",
            code=error,
        )
    if error in ("temporarily_unavailable", "internal_failure", "server_error"):
        return TransientError("Google sign-in is temporarily unavailable.", code=error)
    return TokenRevoked(
        f"Google could not refresh the sign-in of {account} ({error or 'unknown error'}); "
        "connect the calendar again.",
        code=error,
    )


def oauth_error(payload: Any, status: int) -> ProviderError:
    """A token or revoke endpoint answer in the RFC 6749 shape, called without google-auth."""
    data = payload if isinstance(payload, dict) else {}
    error = str(data.get("error") or "")
    if error in ("invalid_client", "unauthorized_client", "deleted_client", "disabled_client"):
        return AuthenticationFailed(
            "Google refused the OAuth client id or secret; check the credential alias.",
            status=status,
            code=error,
        )
    if error == "redirect_uri_mismatch":
        return AuthenticationFailed(
            "The redirect URI differs from the one used to start the sign-in, or is not "
            "registered for the OAuth client in Google Cloud.",
            status=status,
            code=error,
        )
    if error == "invalid_grant":
        return PermanentError(
            "Google refused the authorization code (expired, used already, or the PKCE "
            "verifier does not match). Start the connection again.",
            status=status,
            code=error,
        )
    if status >= 500 or error in ("temporarily_unavailable", "internal_failure"):
        return TransientError(
            "Google sign-in is temporarily unavailable.", status=status, code=error
        )
    return AuthenticationFailed(
        f"Google sign-in failed ({error or status}).", status=status, code=error
    )


def transport_error(exc: auth_exceptions.TransportError, what: str) -> ProviderError:
    """A requests failure inside google-auth (which calls the token endpoint itself)."""
    cause = exc.__cause__ or (exc.args[0] if exc.args else None)
    if isinstance(cause, requests.exceptions.SSLError):
        return TlsError(
            f"The certificate of {what} is not trusted; check the connection alias's CA bundle.",
            code="tls",
        )
    return TransientError(f"{what} did not answer ({type(cause).__name__}).", code="network")
