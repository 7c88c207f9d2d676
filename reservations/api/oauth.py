"""``/o/token/`` with a rate limit per client id and per address.

Every request counts, the ones that fail client authentication included: a wrong secret costs
the guesser a request of the client's budget and of its address's, so secrets cannot be tried
at speed, and one address cannot flood the endpoint with made-up client ids. The counters are
the API's (``throttling.consume``), in the shared cache. A refused request is answered in
OAuth's error shape (RFC 6749, section 5.2) with ``429`` and ``Retry-After``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
from urllib.parse import unquote_plus

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from oauth2_provider.views import TokenView

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
        "error_description": f"Too many token requests; try again in {seconds} seconds.",
    }
    response = HttpResponse(json.dumps(body), status=429, content_type="application/json")
    response["Retry-After"] = str(seconds)
    response["Cache-Control"] = "no-store"
    return response


class ThrottledTokenView(TokenView):
    """django-oauth-toolkit's token endpoint behind OAUTH_TOKEN_RATE_LIMIT (per client id) and
    OAUTH_TOKEN_ADDRESS_RATE_LIMIT (per address)."""

    def post(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        # Hashed: the key is a client's own choosing and must not grow the cache key unbounded.
        client = hashlib.sha256(_client_id(request).encode()).hexdigest()
        waits = [
            consume(f"oauth-token:client:{client}", settings.OAUTH_TOKEN_RATE_LIMIT),
            consume(
                f"oauth-token:address:{client_address(request)}",
                settings.OAUTH_TOKEN_ADDRESS_RATE_LIMIT,
            ),
        ]
        refused = [wait for wait in waits if wait is not None]
        if refused:
            return _refused(max(refused))
        return super().post(request, *args, **kwargs)
