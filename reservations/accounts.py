"""Sign-in for the portal (django-allauth): who may sign up, where people land."""

from __future__ import annotations

from allauth.account.adapter import DefaultAccountAdapter
from allauth.account.forms import LoginForm
from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.admin.forms import AdminAuthenticationForm
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect

from .models import is_web_service_only

WEB_SERVICE_ONLY = "This is an integration account: it works through the API only, not sign-in."


class PortalAccountAdapter(DefaultAccountAdapter):
    """Accounts are created by administrators; self sign-up only when the site opts in."""

    def is_open_for_signup(self, request: HttpRequest) -> bool:
        return settings.PORTAL_OPEN_SIGNUP

    def pre_login(self, request: HttpRequest, user, **kwargs) -> HttpResponse | None:
        # Every allauth sign-in (password or Microsoft/Google) passes here: integration users
        # are web-service only, so a leaked password still opens no portal session.
        if is_web_service_only(user):
            messages.error(request, WEB_SERVICE_ONLY)
            return redirect(settings.LOGIN_URL)
        return super().pre_login(request, user, **kwargs)


class PortalLoginForm(LoginForm):
    """allauth's sign-in form with a label that says what to type."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["login"].label = "Username or email"
        self.fields["login"].widget.attrs["placeholder"] = ""
        self.fields["password"].widget.attrs["placeholder"] = ""
        self.fields["remember"].label = "Keep me signed in"


class WebServiceAwareAdminLoginForm(AdminAuthenticationForm):
    """The admin's sign-in form, refusing integration (web-service only) users."""

    def confirm_login_allowed(self, user) -> None:
        if is_web_service_only(user):
            raise forms.ValidationError(WEB_SERVICE_ONLY, code="web_service_only")
        super().confirm_login_allowed(user)
