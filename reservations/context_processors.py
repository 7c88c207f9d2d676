"""Template context for every portal page: the signed-in user's profile (time zone)."""

from __future__ import annotations

from django.http import HttpRequest

from .models import Profile


def portal(request: HttpRequest) -> dict:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    # Lazily: pages that never show the profile do not pay for the query.
    return {"portal_profile": lambda: Profile.for_user(user)}
