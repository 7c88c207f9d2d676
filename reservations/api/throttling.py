"""Per-client rate limit: one bucket per OAuth application (all its tokens together), or per
user for session calls. The rate is read from settings on every request so it can be changed
without a restart of the class-level DRF configuration (and in tests)."""

from __future__ import annotations

from django.conf import settings
from rest_framework.throttling import SimpleRateThrottle


class ClientRateThrottle(SimpleRateThrottle):
    scope = "client"

    def get_rate(self) -> str | None:
        return settings.API_RATE_LIMIT or None

    def get_cache_key(self, request, view) -> str | None:
        application = getattr(request.auth, "application", None)
        if application is not None:
            ident = f"app:{application.pk}"
        elif request.user and request.user.is_authenticated:
            ident = f"user:{request.user.pk}"
        else:
            ident = f"anon:{self.get_ident(request)}"
        return self.cache_format % {"scope": self.scope, "ident": ident}
