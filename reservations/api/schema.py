"""OpenAPI description of Reserva's bearer tokens (drf-spectacular extension).

Our authentication class subclasses django-oauth-toolkit's, which drf-spectacular describes
only by exact class; this says it is the same OAuth 2 client-credentials scheme.
"""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ClientTokenScheme(OpenApiAuthenticationExtension):
    target_class = "reservations.api.authentication.ClientTokenAuthentication"
    name = "oauth2"

    def get_security_definition(self, auto_schema) -> dict:
        return {
            "type": "oauth2",
            "flows": {
                "clientCredentials": {
                    "tokenUrl": "/o/token/",
                    "scopes": {
                        "read": "Read spaces, availability and reservations",
                        "write": "Book and cancel",
                    },
                }
            },
        }
