"""Admin for integrations (web-service-only users and their role) and calendar feed keys.

*Integration accounts -> Add* registers an API client in one screen: it creates the user
(username, email; no password, it never signs in), its role, and its OAuth client
(django-oauth-toolkit's ``Application``, client-credentials grant), then shows the client id
and secret once. The secret is hashed on save, so that answer is the only place it is seen.
More clients for an account can still be added in the toolkit's own *Applications* admin.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from oauth2_provider.generators import generate_client_secret
from oauth2_provider.models import get_application_model

from .. import feeds
from ..models import FeedToken, IntegrationAccount


class NewIntegrationForm(forms.ModelForm):
    """The add form: a new user by name and email instead of a box for an existing user's id."""

    username = forms.CharField(
        max_length=150,
        validators=[UnicodeUsernameValidator()],
        help_text="The account the other system acts as, e.g. 'room-signage'. It cannot sign in.",
    )
    email = forms.EmailField(help_text="Whom to contact about this integration.")
    client_name = forms.CharField(
        max_length=255,
        required=False,
        label="Client name",
        help_text="Shown in the list of OAuth clients; the username when left empty.",
    )

    class Meta:
        model = IntegrationAccount
        fields = ["role", "is_mobile_app", "notes"]

    def clean_username(self) -> str:
        username = self.cleaned_data["username"]
        if get_user_model().objects.filter(username__iexact=username).exists():
            raise forms.ValidationError(
                f"A user named {username!r} exists already: choose another name."
            )
        return username


@admin.register(IntegrationAccount)
class IntegrationAccountAdmin(admin.ModelAdmin):
    list_display = ["user", "email", "role", "is_mobile_app", "clients"]
    list_filter = ["role", "is_mobile_app"]
    search_fields = ["user__username", "user__email"]
    list_select_related = ["user"]
    add_fields = ["username", "email", "role", "is_mobile_app", "notes", "client_name"]
    fields = ["user", "role", "is_mobile_app", "notes"]

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = NewIntegrationForm
            kwargs["fields"] = None
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request, obj=None):
        return self.add_fields if obj is None else self.fields

    def get_readonly_fields(self, request, obj=None):
        # An account stays with its user: another system gets an account of its own.
        return ["user"] if obj is not None else []

    @admin.display(description="Email", ordering="user__email")
    def email(self, obj: IntegrationAccount) -> str:
        return obj.user.email

    @admin.display(description="OAuth clients")
    def clients(self, obj: IntegrationAccount) -> int:
        return get_application_model().objects.filter(user_id=obj.user_id).count()

    def save_model(self, request: HttpRequest, obj: IntegrationAccount, form, change) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        data = form.cleaned_data
        user = get_user_model().objects.create_user(
            username=data["username"], email=data["email"], password=None
        )  # no password: it cannot sign in (and never may: reservations.accounts)
        obj.user = user
        obj.save()
        Application = get_application_model()
        secret = generate_client_secret()
        application = Application.objects.create(
            name=data["client_name"] or user.username,
            user=user,
            client_type=Application.CLIENT_CONFIDENTIAL,
            authorization_grant_type=Application.GRANT_CLIENT_CREDENTIALS,
            client_secret=secret,  # hashed on save: this request is the only one that has it
        )
        request._reserva_new_client = (application.client_id, secret)

    def response_add(self, request, obj: IntegrationAccount, post_url_continue=None):
        client_id, secret = request._reserva_new_client
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": f"API client for {obj.user.username}",
            "account": obj,
            "client_id": client_id,
            "client_secret": secret,
            "token_url": request.build_absolute_uri(reverse("oauth2_provider:token")),
        }
        response = TemplateResponse(
            request, "admin/reservations/integrationaccount/new_client.html", context
        )
        add_never_cache_headers(response)
        return response


@admin.register(FeedToken)
class FeedTokenAdmin(admin.ModelAdmin):
    """Space feeds are issued here; people manage their own on the profile page.

    Only a key's hash is stored, so no page here can show a feed's address: it is shown once,
    to whoever issues it (adding a space feed, or rotating one), in that answer alone. Issuing
    needs the add permission; view-only staff see owners and dates, never an address.
    """

    list_display = ["__str__", "user", "space", "created", "last_used_at", "revoked_at"]
    list_filter = [("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["user__username", "space__name"]
    fields = ["space", "user", "created", "last_used_at", "revoked_at"]
    readonly_fields = ["created", "last_used_at", "revoked_at", "user"]
    autocomplete_fields = ["space"]
    actions = ["rotate", "revoke"]

    def get_readonly_fields(self, request, obj=None) -> list[str]:
        # A feed's space is chosen when it is added; afterwards a rotation issues a new feed.
        return [*self.readonly_fields, "space"] if obj is not None else self.readonly_fields

    def save_model(self, request, obj: FeedToken, form, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        # One live key per space: adding a feed rotates the space's key.
        issued = feeds.issue(space=obj.space)
        obj.pk = issued.token.pk
        request._reserva_issued_feeds = [issued]

    def response_add(self, request, obj: FeedToken, post_url_continue=None) -> HttpResponse:
        return _issued_page(request, self, getattr(request, "_reserva_issued_feeds", []))

    @admin.action(
        description="Rotate a space's feed: revoke and issue a new address", permissions=["add"]
    )
    def rotate(self, request, queryset) -> HttpResponse | None:
        active = queryset.filter(revoked_at__isnull=True)
        issued = [feeds.issue(space=token.space) for token in active.filter(space__isnull=False)]
        # A person's feed is theirs to re-issue (on their profile page): the admin only revokes
        # it, so an administrator never holds a URL to someone's bookings.
        personal = active.filter(user__isnull=False).update(revoked_at=timezone.now())
        if personal:
            messages.info(
                request,
                f"{personal} personal feed(s) revoked; their owners can get a new link on their "
                "profile page.",
            )
        if not issued:
            return None
        return _issued_page(request, self, issued)

    @admin.action(description="Revoke", permissions=["change"])
    def revoke(self, request, queryset) -> None:
        count = queryset.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
        messages.success(request, f"{count} feed address(es) revoked.")


def _issued_page(request, model_admin: FeedTokenAdmin, issued: list[feeds.IssuedFeed]):
    """The new addresses, in this answer only (never cached, stored or put in a message)."""
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.model._meta,
        "title": "New feed address" if len(issued) == 1 else "New feed addresses",
        "issued": issued,
    }
    response = TemplateResponse(request, "admin/reservations/feedtoken/issued.html", context)
    add_never_cache_headers(response)
    return response
