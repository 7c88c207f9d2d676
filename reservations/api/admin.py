"""Admin for integrations (web-service-only users and their role) and calendar feed keys.

OAuth clients themselves are django-oauth-toolkit's "Applications" (its own admin): create one
with grant type "client credentials" and the integration user as its user. Its secret is
hashed on save, so it is shown once, in the form, before saving.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.http import HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.cache import add_never_cache_headers

from .. import feeds
from ..models import FeedToken, IntegrationAccount


@admin.register(IntegrationAccount)
class IntegrationAccountAdmin(admin.ModelAdmin):
    list_display = ["user", "role", "is_mobile_app"]
    list_filter = ["role", "is_mobile_app"]
    search_fields = ["user__username", "user__email"]
    autocomplete_fields = ["user"]


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
