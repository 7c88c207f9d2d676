"""Admin for integrations (web-service-only users and their role) and calendar feed keys.

OAuth clients themselves are django-oauth-toolkit's "Applications" (its own admin): create one
with grant type "client credentials" and the integration user as its user. Its secret is
hashed on save, so it is shown once, in the form, before saving.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.utils import timezone

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
    """Space feeds are issued here; people manage their own on the profile page."""

    list_display = ["__str__", "user", "space", "created", "revoked_at"]
    list_filter = [("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["user__username", "space__name"]
    fields = ["space", "user", "feed_address", "created", "revoked_at"]
    readonly_fields = ["feed_address", "created", "revoked_at", "user"]
    autocomplete_fields = ["space"]
    actions = ["rotate", "revoke"]

    @admin.display(description="Feed address")
    def feed_address(self, token: FeedToken) -> str:
        return feeds.feed_url(token) if token.pk and token.is_active else "-"

    def save_model(self, request, obj: FeedToken, form, change: bool) -> None:
        if not change:
            # One live key per space: adding a feed rotates the space's key.
            feeds.revoke(space=obj.space)
            obj.key = feeds.new_key()
        super().save_model(request, obj, form, change)

    @admin.action(description="Rotate: revoke and issue a new address")
    def rotate(self, request, queryset) -> None:
        for token in queryset.filter(revoked_at__isnull=True):
            feeds.issue(user=token.user, space=token.space if token.user is None else None)
        messages.success(request, "New feed addresses issued; the old ones stopped working.")

    @admin.action(description="Revoke")
    def revoke(self, request, queryset) -> None:
        count = queryset.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
        messages.success(request, f"{count} feed address(es) revoked.")
