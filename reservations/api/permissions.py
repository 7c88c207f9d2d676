"""Who may call the API, and what an integration's role and token scopes allow.

- Session calls: any active portal user; the booking rules then decide per reservation.
- OAuth tokens: the ``read`` scope for GET, ``write`` for anything that changes data; the
  integration user's role narrows further: read-only and read-all never write; read-only sees
  every booking's public fields only (signage, reports: no title, person or email), read-all
  sees them in full; book-for-itself books only for itself and sees only its own bookings.
"""

from __future__ import annotations

from dataclasses import dataclass

from rest_framework import permissions

from ..models import IntegrationAccount, IntegrationRole, Source


@dataclass(frozen=True)
class Caller:
    role: str | None  # None for a portal user (session, or a personal OAuth client)
    is_mobile_app: bool

    @property
    def may_write(self) -> bool:
        return self.role not in (IntegrationRole.READ_ONLY, IntegrationRole.READ_ALL)

    @property
    def reads_every_booking(self) -> bool:
        return self.role in (IntegrationRole.READ_ONLY, IntegrationRole.READ_ALL)

    @property
    def sees_public_fields_only(self) -> bool:
        return self.role == IntegrationRole.READ_ONLY

    @property
    def books_only_for_itself(self) -> bool:
        return self.role == IntegrationRole.BOOK_FOR_ITSELF


def caller(request) -> Caller:
    """The integration behind a request, cached on it."""
    cached = getattr(request, "_reserva_caller", None)
    if cached is not None:
        return cached
    account = IntegrationAccount.objects.filter(user_id=request.user.pk).first()
    application = getattr(request.auth, "application", None)
    owner_account = account
    if application is not None and application.user_id not in (None, request.user.pk):
        owner_account = IntegrationAccount.objects.filter(user_id=application.user_id).first()
    result = Caller(
        role=account.role if account else None,
        is_mobile_app=bool(owner_account and owner_account.is_mobile_app),
    )
    request._reserva_caller = result
    return result


def source_for(request) -> str:
    return Source.MOBILE if caller(request).is_mobile_app else Source.REST_API


class ApiAccess(permissions.BasePermission):
    message = "You are not allowed to do this."

    def has_permission(self, request, view) -> bool:
        user = request.user
        if user is None or not user.is_authenticated or not user.is_active:
            return False
        safe = request.method in permissions.SAFE_METHODS
        token = request.auth
        if token is not None and hasattr(token, "is_valid"):
            needed = ["read"] if safe else ["write"]
            if not (token.is_valid(needed) or (safe and token.allow_scopes(["write"]))):
                self.message = (
                    f"This token lacks the '{needed[0]}' scope; request it when getting a token."
                )
                return False
        if not safe and not caller(request).may_write:
            self.message = "This integration is read-only."
            return False
        return True
