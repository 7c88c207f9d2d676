"""exchangelib's exceptions as Reserva's error classes, in words an Exchange administrator can
act on.

exchangelib raises one class per EWS ``ResponseCode`` (``ErrorImpersonateUserDenied``,
``ErrorNonExistentMailbox``, ...) and folds HTTP-level trouble into a few: ``UnauthorizedError``
(401, or "account is currently locked out" in the body), ``TransportError`` (TLS, and
``MalformedResponseError`` for statuses it does not know, such as 403), ``ErrorServerBusy``
with the server's ``BackOffMilliseconds`` in ``back_off``. The messages here are our own: an
exchangelib message can quote response headers and bodies, so none is passed through.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import requests
from exchangelib import errors as ews

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
    TransientError,
    VersionConflict,
)

# Exchange Online's EWS hosts: EWS there is blocked by default from 1 October 2026 and switched
# off for good on 1 April 2027; the Microsoft 365 (Graph) provider is the way there.
EXCHANGE_ONLINE_HOSTS = ("outlook.office365.com", "outlook.office.com", "outlook.office365.us")

MOVE_TO_MICROSOFT_365 = (
    "Exchange Online does not offer EWS to Reserva (blocked since 1 October 2026, off for good "
    "on 1 April 2027). For mailboxes in Microsoft 365, set up a Microsoft 365 (Exchange Online) "
    "provider instead; this provider is for Exchange Server on your own servers."
)

SYNC_STATE = (ews.ErrorInvalidSyncStateData,)
ITEM_GONE = (ews.ErrorItemNotFound, ews.ErrorInvalidIdMalformed)
MAILBOX_GONE = (ews.ErrorNonExistentMailbox, ews.ErrorMailRecipientNotFound)
CONNECTION = (ews.ErrorTimeoutExpired, ews.ErrorInternalServerTransientError)


def is_exchange_online(url: str) -> bool:
    host = (urlsplit(url).hostname or "").lower().rstrip(".")
    return host in EXCHANGE_ONLINE_HOSTS


def is_tls(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, requests.exceptions.SSLError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def is_connection_error(exc: BaseException) -> bool:
    """The request may or may not have reached the server (timeout, dropped connection)."""
    if isinstance(exc, CONNECTION):
        return True
    return (
        isinstance(exc, ews.TransportError)
        and not isinstance(
            exc, ews.ResponseMessageError | ews.MalformedResponseError | ews.RedirectError
        )
        and not is_tls(exc)
    )


def ews_error(
    exc: BaseException,
    *,
    endpoint: str,
    mailbox: str = "",
    event: bool = False,
    status: int | None = None,
) -> ProviderError:
    """``exc`` (raised or returned by exchangelib) as an error class.

    ``event`` says the call addressed one item, so "not found" means the event is gone rather
    than the mailbox; ``status`` is the last HTTP status seen (``transport.last_status``).
    """
    where = f" ({mailbox})" if mailbox else ""
    host = urlsplit(endpoint).netloc
    code = type(exc).__name__
    if isinstance(exc, ProviderError):
        return exc
    if is_exchange_online(endpoint) and (
        isinstance(exc, ews.UnauthorizedError) or status in (401, 403)
    ):
        return PermanentError(MOVE_TO_MICROSOFT_365, status=status, code="exchange_online")
    if isinstance(exc, ews.UnauthorizedError):
        if "locked out" in str(exc).lower():
            return AuthenticationFailed(
                "The sync user's account is locked out in Active Directory (too many wrong "
                "passwords, perhaps from an old copy of the password somewhere). Unlock it, "
                "check the password stored in the credential alias, then test again.",
                status=status,
                code="account_locked",
            )
        return AuthenticationFailed(
            f"{host} refused the sync user's sign-in: the user name or password is wrong, or "
            "the server does not accept this authentication method. For NTLM write the user as "
            "DOMAIN\\user or user@domain; check the password stored in the credential alias.",
            status=401,
            code="unauthorized",
        )
    if is_tls(exc):
        return TlsError(
            f"The certificate of {host} is not trusted. Put the certificate authority that "
            "issued the Exchange server's certificate (a PEM file) in the connection alias's "
            "CA bundle.",
            code="tls",
        )
    if isinstance(exc, ews.ErrorImpersonateUserDenied):
        return ConsentMissing(
            f"The sync user may not impersonate the mailbox{where}: it lacks the "
            "ApplicationImpersonation role. An Exchange administrator grants it with "
            "New-ManagementRoleAssignment -Role ApplicationImpersonation -User <sync user> "
            "(scoped to the room mailboxes with -CustomRecipientWriteScope), or switch the "
            "credential alias to delegate access and give the sync user Full Access.",
            code=code,
        )
    if isinstance(exc, ews.ErrorAccessDenied | ews.ErrorDelegateNoUser):
        return ConsentMissing(
            f"The sync user has no access to the mailbox{where}. Give it Full Access "
            "(Add-MailboxPermission -AccessRights FullAccess) or use impersonation.",
            code=code,
        )
    if isinstance(exc, MAILBOX_GONE):
        return CalendarGone(
            f"No mailbox{where} exists on this Exchange server. Check the address (the room's "
            "primary SMTP address).",
            code=code,
        )
    if isinstance(exc, ews.ErrorFolderNotFound):
        return CalendarGone(
            f"The calendar folder{where} was not found; it may have been deleted or renamed. "
            "Pick the calendar again.",
            code=code,
        )
    if isinstance(exc, SYNC_STATE):
        return SyncTokenExpired(
            f"Exchange no longer accepts the stored sync state{where}; a full sync follows.",
            code=code,
        )
    if isinstance(exc, ITEM_GONE):
        if event:
            return EventGone(f"The event no longer exists in the calendar{where}.", code=code)
        return CalendarGone(f"The calendar{where} was not found.", code=code)
    if isinstance(exc, ews.ErrorIrresolvableConflict):
        return VersionConflict(
            f"The event was changed in Outlook since Reserva last read it{where}.", code=code
        )
    if isinstance(exc, ews.ErrorServerBusy):
        return Throttled(
            f"Exchange is throttling requests{where} (ErrorServerBusy).",
            code=code,
            retry_after=exc.back_off,
        )
    if isinstance(
        exc, ews.ErrorInvalidSchemaVersionForMailboxVersion | ews.ErrorInvalidServerVersion
    ):
        return PermanentError(
            f"The mailbox{where} is on an Exchange version older than 2016, which Reserva "
            "does not support.",
            code=code,
        )
    if isinstance(exc, ews.RedirectError):
        return PermanentError(
            f"{host} redirects the EWS URL elsewhere. Enter the final URL "
            "(https://<server>/EWS/Exchange.asmx) in the connection alias.",
            code="redirect",
        )
    if isinstance(exc, ews.CASError) or status == 403:
        return PermanentError(
            f"{host} answered 403 Forbidden: EWS is switched off for this server or for the "
            "sync user (Set-OrganizationConfig -EwsEnabled, Set-CASMailbox -EwsEnabled, or an "
            "EWS application access policy). " + MOVE_TO_MICROSOFT_365.split(". ", 1)[1],
            status=403,
            code="ews_disabled",
        )
    if isinstance(exc, ews.ErrorInternalServerError) or (status is not None and status >= 500):
        return TransientError(f"{host} answered with a server error{where}.", code=code)
    if is_connection_error(exc):
        return TransientError(f"{host} did not answer ({code}).", code="network")
    if isinstance(exc, ews.ResponseMessageError):
        return PermanentError(f"Exchange refused the request{where}: {code}.", code=code)
    return PermanentError(f"{host} gave an answer Reserva cannot read ({code}).", code=code)
