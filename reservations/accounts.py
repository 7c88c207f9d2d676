"""Sign-in for the portal (django-allauth): who may sign up, where people land."""

from __future__ import annotations

from allauth.account.adapter import DefaultAccountAdapter
from django.conf import settings
from django.http import HttpRequest


class PortalAccountAdapter(DefaultAccountAdapter):
    """Accounts are created by administrators; self sign-up only when the site opts in."""

    def is_open_for_signup(self, request: HttpRequest) -> bool:
        return settings.PORTAL_OPEN_SIGNUP
