"""Admin for where and how Reserva connects: connection aliases (endpoints), credential
aliases (sign-in apps, secrets) and calendar providers ("Test connection").

Secrets are write-only here: the form shows whether one is set, an empty input keeps the
stored value, and a "clear" box removes it. No page ever renders a stored secret or token.
"""

from __future__ import annotations

import json

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import models
from django.urls import reverse
from django.utils.html import format_html
from django.utils.text import capfirst

from .. import endpoints
from ..models import CalendarProvider, ConnectionAlias, CredentialAlias, ProviderKind


def _https_by_default(db_field, **kwargs):
    """An endpoint typed without a scheme is https (Django 6's default; 5.2 assumes http)."""
    if isinstance(db_field, models.URLField):
        kwargs.setdefault("assume_scheme", "https")
    return db_field.formfield(**kwargs)


class ConnectionAliasForm(forms.ModelForm):
    """Refuses a change to a field the user may only read (``locked_fields``), instead of
    dropping it silently as the admin does with read-only fields."""

    locked_fields: tuple[str, ...] = ()

    class Meta:
        model = ConnectionAlias
        fields = (
            "name",
            "kind",
            *endpoints.ENDPOINT_FIELDS,
            "timeout_seconds",
            "server_version",
            "calendar_folder",
        )
        formfield_callback = _https_by_default

    def clean(self):
        data = super().clean()
        tried = [
            name
            for name in self.locked_fields
            if name in self.data
            and self.data[name].strip() != (getattr(self.instance, name) or "").strip()
        ]
        if tried:
            names = ", ".join(str(ConnectionAlias._meta.get_field(n).verbose_name) for n in tried)
            raise forms.ValidationError(
                f"Not saved: you may not change {names}. Only superusers and people with the "
                '"Can set a connection alias\'s URLs and CA bundle" permission may say where '
                "Reserva sends a credential."
            )
        return data

    def _update_errors(self, errors: ValidationError) -> None:
        # The model may name a field this user sees read-only (a stored URL the allowlist no
        # longer allows): said above the form, with the field's name, instead of a crash.
        if hasattr(errors, "error_dict"):
            shown: dict[str, list] = {}
            for name, field_errors in errors.error_dict.items():
                if name == NON_FIELD_ERRORS or name in self.fields:
                    shown.setdefault(name, []).extend(field_errors)
                    continue
                label = capfirst(ConnectionAlias._meta.get_field(name).verbose_name)
                shown.setdefault(NON_FIELD_ERRORS, []).extend(
                    ValidationError(f"{label}: {message}")
                    for error in field_errors
                    for message in error.messages
                )
            errors = ValidationError(shown)
        super()._update_errors(errors)


@admin.register(ConnectionAlias)
class ConnectionAliasAdmin(admin.ModelAdmin):
    form = ConnectionAliasForm
    list_display = ("name", "kind", "api_base_url", "ca_bundle", "timeout_seconds")
    list_filter = ("kind",)
    search_fields = ("name",)
    # The admin builds its own form fields: the same https default there.
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}

    def get_readonly_fields(self, request, obj=None):
        # Where a credential goes (and whom it trusts) is not for everyone who may edit an
        # alias: a URL of theirs would receive the client secret on the next token request.
        if endpoints.may_manage(request.user):
            return ()
        return endpoints.ENDPOINT_FIELDS

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        locked = () if endpoints.may_manage(request.user) else endpoints.ENDPOINT_FIELDS
        return type(form.__name__, (form,), {"locked_fields": locked})

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if not endpoints.may_manage(request.user):
            fieldsets[0][1]["description"] = (
                "The URLs and the CA bundle are shown read-only: only superusers and people "
                'with the "Can set a connection alias\'s URLs and CA bundle" permission may '
                "change them. An alias added here uses the provider's public endpoints."
            )
        return fieldsets


class CredentialAliasForm(forms.ModelForm):
    new_client_secret = forms.CharField(
        label="Client secret",
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
    )
    clear_client_secret = forms.BooleanField(
        label="Remove the stored client secret", required=False
    )
    new_service_account_key = forms.CharField(
        label="Service-account key (JSON)",
        required=False,
        widget=forms.Textarea(attrs={"rows": 4, "autocomplete": "off"}),
        help_text="Paste the key file downloaded from Google Cloud. Stored encrypted.",
    )
    clear_service_account_key = forms.BooleanField(
        label="Remove the stored service-account key", required=False
    )
    new_password = forms.CharField(
        label="Password",
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
    )
    clear_password = forms.BooleanField(label="Remove the stored password", required=False)

    class Meta:
        model = CredentialAlias
        fields = (
            "name",
            "kind",
            "tenant_id",
            "client_id",
            "scopes",
            "auth_method",
            "username",
            "resource_url",
            "account_email",
            "access_type",
        )
        formfield_callback = _https_by_default

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        secret_set = bool(self.instance.pk and self.instance.client_secret)
        key_set = bool(self.instance.pk and self.instance.service_account_key)
        self.fields["new_client_secret"].help_text = (
            "A secret is stored; leave empty to keep it." if secret_set else "No secret is stored."
        )
        if key_set:
            self.fields[
                "new_service_account_key"
            ].help_text = "A key is stored; leave empty to keep it."
        password_set = bool(self.instance.pk and self.instance.password)
        self.fields["new_password"].help_text = "Exchange Server: the sync user's password. " + (
            "A password is stored; leave empty to keep it." if password_set else "None stored."
        )

    def clean_new_service_account_key(self):
        raw = self.cleaned_data["new_service_account_key"].strip()
        if not raw:
            return None
        try:
            key = json.loads(raw)
        except ValueError as exc:
            raise forms.ValidationError("This is not JSON; paste the whole key file.") from exc
        if not (
            isinstance(key, dict)
            and key.get("type") == "service_account"
            and key.get("private_key")
            and key.get("client_email")
        ):
            raise forms.ValidationError(
                "This is not a Google service-account key (it needs type, client_email and "
                "private_key)."
            )
        return key

    def _post_clean(self):
        data = self.cleaned_data
        if data.get("clear_client_secret"):
            self.instance.client_secret = ""
        elif data.get("new_client_secret"):
            self.instance.client_secret = data["new_client_secret"]
        if data.get("clear_service_account_key"):
            self.instance.service_account_key = None
        elif data.get("new_service_account_key"):
            self.instance.service_account_key = data["new_service_account_key"]
        if data.get("clear_password"):
            self.instance.password = ""
        elif data.get("new_password"):
            self.instance.password = data["new_password"]
        super()._post_clean()

    def _update_errors(self, errors: ValidationError) -> None:
        # The model names the stored password; the form's input for it is new_password.
        if hasattr(errors, "error_dict") and "password" in errors.error_dict:
            errors.error_dict["new_password"] = errors.error_dict.pop("password")
        super()._update_errors(errors)


@admin.register(CredentialAlias)
class CredentialAliasAdmin(admin.ModelAdmin):
    form = CredentialAliasForm
    list_display = ("name", "kind", "tenant_id", "client_id", "secret_state")
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    list_filter = ("kind",)
    search_fields = ("name", "client_id", "tenant_id")

    @admin.display(description="Secret")
    def secret_state(self, obj: CredentialAlias) -> str:
        if obj.client_secret:
            return "client secret set"
        if obj.service_account_key:
            return "service-account key set"
        if obj.password:
            return "password set"
        return "none"


class CalendarProviderForm(forms.ModelForm):
    """Lists only the aliases of the provider's kind, once the kind is known (the provider
    being changed, the kind posted, or ``?kind=`` on the add page); before that, each alias
    says its kind. The model's ``clean`` refuses a mismatch either way."""

    class Meta:
        model = CalendarProvider
        fields = (
            "name",
            "kind",
            "is_active",
            "connection",
            "credential",
            "delegated_user_email",
            "sign_in_enabled",
        )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        kind = self.data.get(self.add_prefix("kind")) if self.is_bound else None
        if not self.is_bound:
            kind = self.initial.get("kind") or self.instance.kind
        for name in ("connection", "credential"):
            field = self.fields.get(name)
            if field is None:
                continue
            if kind in ProviderKind.values:
                field.queryset = field.queryset.filter(kind=kind)
            else:
                field.label_from_instance = lambda alias: f"{alias} ({alias.get_kind_display()})"


@admin.register(CalendarProvider)
class CalendarProviderAdmin(admin.ModelAdmin):
    form = CalendarProviderForm
    list_display = (
        "name",
        "kind",
        "is_active",
        "connection",
        "credential",
        "delegated_user_email",
        "test_link",
    )
    list_filter = ("kind", "is_active")
    search_fields = ("name",)
    actions = ["test_connection"]
    # Adds a "Test connection" button next to History (calendars/views.py: provider_test).
    change_form_template = "admin/calendars/calendarprovider/change_form.html"

    @admin.display(description="Test")
    def test_link(self, obj: CalendarProvider) -> str:
        return format_html(
            '<a href="{}">Test connection</a>', reverse("calendars:provider_test", args=[obj.pk])
        )

    def has_test_permission(self, request) -> bool:
        """A test sends the credential: it takes the right to edit it too."""
        from ..views import may_test_connection

        return may_test_connection(request.user)

    def get_list_display(self, request):
        shown = super().get_list_display(request)
        if self.has_test_permission(request):
            return shown
        return tuple(name for name in shown if name != "test_link")

    def render_change_form(self, request, context, *args, **kwargs):
        context["may_test_connection"] = self.has_test_permission(request)
        return super().render_change_form(request, context, *args, **kwargs)

    @admin.action(
        description="Test connection (delegated user or first bound room)", permissions=["test"]
    )
    def test_connection(self, request, queryset) -> None:
        from ..views import default_test_target, run_connection_test

        for provider in queryset.select_related("connection", "credential"):
            target = default_test_target(provider)
            if not target:
                self.message_user(
                    request,
                    f"{provider.name}: nothing to test against yet (no delegated user and no "
                    "bound space); use its Test connection page and type a mailbox.",
                    messages.WARNING,
                )
                continue
            ok, text = run_connection_test(provider, target)
            self.message_user(request, text, messages.SUCCESS if ok else messages.ERROR)
