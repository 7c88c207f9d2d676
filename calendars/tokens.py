"""People's own calendar tokens: storing a grant, their health, disconnecting, clean-up.

Token health follows the providers' published lifetimes (reference: microsoft-graph.md §1.5,
google-calendar.md "refresh token expiry"):

- Microsoft refresh tokens die after **90 days** unused (AADSTS700082) or when revoked
  (password reset, an administrator's revoke-all: AADSTS50173);
- Google refresh tokens die when the person revokes access, on some password changes, or
  after **six months** unused.

``check_token`` (run daily by ``calendars.tasks.check_user_tokens``) tries a silent refresh:
a refusal marks the token ``revoked`` (or ``expired`` when the provider says it ran out of
time); success marks it ``valid``, or ``expiring`` when the person has not used it for
longer than ``IDLE_WARNING`` (measured from ``last_used_at``, else from when it was
connected). The refresh itself keeps the grant alive, but the warning still matters: the
check may not run (beat stopped), and tenants with sign-in frequency or token-lifetime
policies end idle sessions sooner; the banner asks the person to reconnect before sync
pauses. No token, code or secret is ever logged: only the token's row id and outcome.

Deactivating a user deletes their tokens: a ``post_save`` receiver on the user model (see
``user_saved``), so ``reservations`` (whose ``deactivate_user`` service and admin untick
``is_active``) never imports this app, and any other path that deactivates a user (the
stock user admin, a shell) is covered too.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from integrations.base import ProviderError, TokenGrant, TokenRevoked, UserCredentials
from integrations.registry import spec

from .models import CalendarProvider, ProviderKind, TokenStatus, UserToken
from .remote import provider_config

log = logging.getLogger(__name__)

# Where a person removes Reserva's consent themselves (Microsoft has no revoke endpoint for
# an app's delegated grant that the app itself may call): the My Apps portal lists the apps
# with access to the account, each with "Manage your application" > "Revoke permissions".
MICROSOFT_CONSENT_URL = "https://myapps.microsoft.com"
# Microsoft reports "ran out of time" with these; everything else that ends a grant is a
# revocation (password reset, admin revoke, consent removed).
EXPIRED_CODES = {"AADSTS700082", "AADSTS70043", "AADSTS700084"}
NEEDS_ATTENTION = (TokenStatus.EXPIRING, TokenStatus.EXPIRED, TokenStatus.REVOKED)


def idle_since(token: UserToken) -> datetime:
    """When the person last used the token (or connected it)."""
    return token.last_used_at or token.created or timezone.now()


def days_idle(token: UserToken, now: datetime | None = None) -> int:
    return max(0, ((now or timezone.now()) - idle_since(token)).days)


def idle_status(token: UserToken, now: datetime | None = None) -> str:
    """``expiring`` past the provider's warning threshold, else ``valid``."""
    limit = spec(token.provider.kind).idle_warning
    if (now or timezone.now()) - idle_since(token) > limit:
        return TokenStatus.EXPIRING
    return TokenStatus.VALID


def _access_expiry(kind: str, material: dict[str, Any]) -> datetime | None:
    """The access token's expiry, read from the stored material (never logged)."""
    try:
        if kind == ProviderKind.GOOGLE:
            value = material.get("expiry")
            if not value:
                return None
            moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
            return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
        stamps = [
            int(item.get("expires_on"))
            for item in (material.get("AccessToken") or {}).values()
            if str(item.get("expires_on") or "").isdigit()
        ]
        return datetime.fromtimestamp(max(stamps), UTC) if stamps else None
    except (TypeError, ValueError, AttributeError):
        return None


def store_grant(user, provider: CalendarProvider, grant: TokenGrant) -> UserToken:
    """Save a completed authorization as the person's token for this provider (encrypted)."""
    now = timezone.now()
    token, _ = UserToken.objects.update_or_create(
        user=user,
        provider=provider,
        defaults={
            "account_email": grant.account_email,
            "token": grant.token,
            "access_token_expires_at": grant.expires_at
            or _access_expiry(provider.kind, grant.token),
            "scopes": " ".join(grant.scopes),
            "status": TokenStatus.VALID,
            "last_refreshed_at": now,
            # A (re)connection counts as use: the idle clock starts again.
            "last_used_at": now,
        },
    )
    return token


def _refresh(provider: CalendarProvider, credentials: UserCredentials) -> None:
    config = provider_config(provider)
    spec(provider.kind).auth_module().user_token(config, credentials, fresh=True)


def check_token(token_id: int) -> str | None:
    """Silently refresh one token and record its status; the new status (None if gone).

    Transient failures (network, 5xx) leave the status as it was: the next run tries again.
    """
    token = UserToken.objects.select_related("provider").filter(pk=token_id).first()
    if token is None or token.token is None:
        return None
    if token.status in (TokenStatus.REVOKED, TokenStatus.EXPIRED):
        return token.status  # a dead grant stays dead: only a reconnection brings it back
    credentials = UserCredentials(account_email=token.account_email, token=dict(token.token))
    try:
        _refresh(token.provider, credentials)
    except TokenRevoked as exc:
        status = TokenStatus.EXPIRED if exc.code in EXPIRED_CODES else TokenStatus.REVOKED
        UserToken.objects.filter(pk=token.pk).update(status=status)
        log.info("user token %s: refresh refused (%s), marked %s", token.pk, exc.code, status)
        return status
    except ProviderError as exc:
        if exc.permanent:
            # The app's own credentials are broken (secret, consent): the person's grant may be
            # fine, so it is not marked; the provider's Test connection says what is wrong.
            log.warning("user token %s: provider refused the app (%s)", token.pk, exc.code)
        else:
            log.info("user token %s: refresh failed for now (%s)", token.pk, exc.code)
        return token.status
    status = idle_status(token)
    with transaction.atomic():
        row = UserToken.objects.select_for_update().get(pk=token.pk)
        if credentials.changed:
            row.token = credentials.token  # refresh tokens rotate: keep the newest
        row.status = status
        row.last_refreshed_at = timezone.now()
        row.access_token_expires_at = _access_expiry(token.provider.kind, credentials.token)
        row.save(update_fields=["token", "status", "last_refreshed_at", "access_token_expires_at"])
    return status


def check_all() -> dict[str, int]:
    """Check every stored token of an active provider; counts by resulting status."""
    counts: dict[str, int] = {}
    ids = UserToken.objects.filter(provider__is_active=True, token__isnull=False).values_list(
        "pk", flat=True
    )
    for token_id in list(ids):
        status = check_token(token_id)
        if status is not None:
            counts[status] = counts.get(status, 0) + 1
    return counts


def disconnect(token: UserToken) -> str:
    """Delete a person's token; revoke the grant at Google. Returns what to tell them.

    The row is deleted even when the revocation fails (the person asked to disconnect; a
    grant Reserva no longer holds is harmless and dies unused).
    """
    provider = token.provider
    material = dict(token.token or {})
    token.delete()
    if provider.kind == ProviderKind.GOOGLE:
        from integrations.google import oauth as google_oauth

        try:
            google_oauth.revoke(provider_config(provider), material)
        except ProviderError as exc:
            return (
                f"Disconnected. Google could not be told to revoke the access ({exc.message}); "
                "you can remove Reserva at https://myaccount.google.com/permissions."
            )
        return "Disconnected, and Reserva's access to your Google Calendar was revoked."
    return (
        "Disconnected: Reserva no longer holds a Microsoft sign-in for you. To remove the "
        f"app's permission from your account as well, open {MICROSOFT_CONSENT_URL}, find "
        'Reserva, and choose "Manage your application" > "Revoke permissions".'
    )


def user_saved(sender, instance, created: bool = False, **kwargs) -> None:
    """``post_save`` on the user model: an inactive account keeps no calendar tokens."""
    if created or instance.is_active:
        return
    deleted, _ = UserToken.objects.filter(user_id=instance.pk).delete()
    if deleted:
        log.info("user %s deactivated: %s calendar token(s) deleted", instance.pk, deleted)
