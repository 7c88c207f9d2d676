"""Template context for every portal page: the signed-in user's profile (time zone)."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest

from .models import Profile


def portal(request: HttpRequest) -> dict[str, Callable[[], Profile]]:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    found: list[Profile] = []

    def profile() -> Profile:
        # Loaded on first use, once per request: pages that never show a time pay nothing,
        # and a list of 25 bookings asks the database once, not 25 times.
        if not found:
            # The view may have read it already (views.common.default_location).
            found.append(getattr(user, "portal_profile", None) or Profile.for_user(user))
        return found[0]

    return {"portal_profile": profile}
