"""Sign-in for the portal (django-allauth) and the admin: who may sign up, where people land,
and one lockout for both; and a person's permissions read in one query (``PermissionsBackend``).

The admin's form signs in through allauth's adapter, so its failures count in allauth's own
``login_failed`` rate limit (ACCOUNT_RATE_LIMITS), in the same cache keys as the portal's: five
wrong passwords for an account at either door lock it at both, with the same message, and a
locked account stays locked for the right password too.
"""

from __future__ import annotations

from allauth.account.adapter import DefaultAccountAdapter, get_adapter
from allauth.account.forms import LoginForm
from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Permission
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
    """The admin's sign-in form, refusing integration (web-service only) users, and locked
    after repeated failures like the portal's."""

    def clean(self) -> dict:
        username = self.cleaned_data.get("username")
        password = self.cleaned_data.get("password")
        if username is not None and password:
            # allauth's authenticate checks the lockout before the password (raising "Too many
            # failed login attempts"), counts a failure, and gives a success its count back.
            self.user_cache = get_adapter(self.request).authenticate(
                self.request, username=username, password=password
            )
            if self.user_cache is None:
                raise self.get_invalid_login_error()
            self.confirm_login_allowed(self.user_cache)
        return self.cleaned_data

    def confirm_login_allowed(self, user) -> None:
        if is_web_service_only(user):
            raise forms.ValidationError(WEB_SERVICE_ONLY, code="web_service_only")
        super().confirm_login_allowed(user)


class PermissionsBackend(ModelBackend):
    """A person's permissions, their own and their groups', in one query (a UNION) where
    ModelBackend asks two: every portal page asks (its navigation's Approvals and Insights
    links), so this is one query less on every page.

    It is listed first in AUTHENTICATION_BACKENDS and signs nobody in (``authenticate``
    answers None, so no sign-in records it in a session; ``get_user`` is ModelBackend's, for
    the sessions the test client makes with the first backend). It fills ModelBackend's own
    per-user cache with the same set ModelBackend would build, so the backends after it read
    that and answer as before. Superusers, inactive and anonymous users are ModelBackend's.
    """

    def authenticate(self, request: HttpRequest | None, **credentials) -> None:
        return None

    def get_all_permissions(self, user_obj, obj=None) -> set[str]:
        if (
            not user_obj.is_active
            or user_obj.is_anonymous
            or user_obj.is_superuser
            or obj is not None
        ):
            return super().get_all_permissions(user_obj, obj)
        if not hasattr(user_obj, "_perm_cache"):  # ModelBackend's name: it reads it after us
            fields = ("content_type__app_label", "codename")
            own = Permission.objects.filter(user=user_obj).order_by().values_list(*fields)
            by_group = (
                Permission.objects.filter(group__user=user_obj).order_by().values_list(*fields)
            )
            user_obj._perm_cache = {f"{app}.{codename}" for app, codename in own.union(by_group)}
        return user_obj._perm_cache
