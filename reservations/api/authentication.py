"""Bearer tokens from Reserva's OAuth server, acting as the client's integration user.

django-oauth-toolkit issues client-credentials tokens without a user (no person approved
them); in Reserva every client belongs to an integration user, whose role and permissions the
booking rules judge, so the token acts as that user. A client without one gets no access.
"""

from __future__ import annotations

from oauth2_provider.contrib.rest_framework import OAuth2Authentication


class ClientTokenAuthentication(OAuth2Authentication):
    www_authenticate_realm = "reserva"

    def authenticate(self, request):
        result = super().authenticate(request)
        if result is None:
            return None
        user, token = result
        if user is None and token.application_id is not None:
            user = token.application.user
        return user, token
