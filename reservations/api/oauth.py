"""The OAuth endpoints (``/o/token/``, ``/o/revoke_token/``, ``/o/introspect/``) with a rate
limit per client id and per address.

Every request counts, the ones that fail client authentication included: a wrong secret costs
the guesser a request of the client's budget and of its address's, so secrets cannot be tried
at speed, and one address cannot flood the endpoints with made-up client ids. The three share
one budget, since each of them checks a client secret: guessing through revocation is no way
around the token endpoint's limit. The counters are the API's (``throttling.consume``), in the
shared cache. A refused request is answered in OAuth's error shape (RFC 6749, section 5.2) with
``429`` and ``Retry-After``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
from urllib.parse import unquote_plus

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse
from django.utils.decorators import method_decorator
from django.views.decorators.csrf import csrf_exempt
from oauth2_provider.oauth2_validators import OAuth2Validator
from oauth2_provider.views import IntrospectTokenView, RevokeTokenView, TokenView

from .throttling import client_address, consume


def _client_id(request: HttpRequest) -> str:
    """The client id the request claims (Basic header or form body), unverified."""
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "basic" and credentials:
        try:
            decoded = base64.b64decode(credentials, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            decoded = ""
        if ":" in decoded:
            return unquote_plus(decoded.split(":", 1)[0])
    return request.POST.get("client_id", "")


def _refused(retry_after: float) -> HttpResponse:
    seconds = math.ceil(retry_after)
    body = {
        "error": "slow_down",
        "error_description": (
            f"Too many requests for this client or address; try again in {seconds} seconds."
        ),
    }
    response = HttpResponse(json.dumps(body), status=429, content_type="application/json")
    response["Retry-After"] = str(seconds)
    response["Cache-Control"] = "no-store"
    return response


def _retry_after(request: HttpRequest) -> float | None:
    """Count the request; the seconds to wait if the client id or the address is over its
    limit. A request naming no client id (introspection with a bearer token) counts for its
    address only, so such callers do not share one bucket."""
    waits = [
        consume(
            f"oauth-token:address:{client_address(request)}",
            settings.OAUTH_TOKEN_ADDRESS_RATE_LIMIT,
        )
    ]
    if client_id := _client_id(request):
        # Hashed: the id is the caller's choosing and must not make the cache key unbounded.
        digest = hashlib.sha256(client_id.encode()).hexdigest()
        waits.append(consume(f"oauth-token:client:{digest}", settings.OAUTH_TOKEN_RATE_LIMIT))
    refused = [wait for wait in waits if wait is not None]
    return max(refused) if refused else None


class ClientRateLimitMixin:
    """Checked in dispatch, before django-oauth-toolkit authenticates the client (the
    introspection view does that in its own dispatch). Overriding dispatch drops the parent's
    csrf_exempt, so each view below declares it again."""

    def dispatch(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        retry_after = _retry_after(request)
        if retry_after is not None:
            return _refused(retry_after)
        return super().dispatch(request, *args, **kwargs)


@method_decorator(csrf_exempt, name="dispatch")
@method_decorator(login_not_required, name="dispatch")
class ThrottledTokenView(ClientRateLimitMixin, TokenView):
    """Token endpoint behind OAUTH_TOKEN_RATE_LIMIT / OAUTH_TOKEN_ADDRESS_RATE_LIMIT."""


@method_decorator(csrf_exempt, name="dispatch")
@method_decorator(login_not_required, name="dispatch")
class ThrottledRevokeTokenView(ClientRateLimitMixin, RevokeTokenView):
    """Revocation, on the same budget as the token endpoint."""


@method_decorator(csrf_exempt, name="dispatch")
@method_decorator(login_not_required, name="dispatch")
class ThrottledIntrospectTokenView(ClientRateLimitMixin, IntrospectTokenView):
    """Introspection, on the same budget as the token endpoint."""


class ActiveOwnerValidator(OAuth2Validator):
    """No token for a client whose owner is deactivated.

    Deactivating a user deletes the tokens already issued (``reservations.receivers``); this
    keeps the client's secret from getting new ones meanwhile, which would work again the day
    the account is reactivated. The client fails authentication (``invalid_client``), as for
    a wrong secret, so the answer tells a guesser nothing more."""

    def authenticate_client(self, request, *args, **kwargs) -> bool:
        if not super().authenticate_client(request, *args, **kwargs):
            return False
        owner = getattr(request.client, "user", None)
        return owner is None or owner.is_active
