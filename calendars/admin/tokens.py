"""Admin for calendar tokens people connected ("Connect my calendar"): their state, how long
they have been idle, and "Disconnect". The token itself is never shown, not even encrypted."""

from __future__ import annotations

from django.contrib import admin, messages

from ..models import UserToken


class TokenAttentionFilter(admin.SimpleListFilter):
    """Tokens someone must act on: expired, revoked, or near the idle limit."""

    title = "needs attention"
    parameter_name = "attention"

    def lookups(self, request, model_admin):
        return [("yes", "Expired, revoked or expiring"), ("no", "Valid")]

    def queryset(self, request, queryset):
        from ..tokens import NEEDS_ATTENTION

        if self.value() == "yes":
            return queryset.filter(status__in=NEEDS_ATTENTION)
        if self.value() == "no":
            return queryset.exclude(status__in=NEEDS_ATTENTION)
        return queryset


@admin.register(UserToken)
class UserTokenAdmin(admin.ModelAdmin):
    list_display = (
        "user",
        "provider",
        "account_email",
        "status",
        "days_idle",
        "access_token_expires_at",
        "last_refreshed_at",
        "last_used_at",
    )
    list_filter = (TokenAttentionFilter, "status", "provider")
    search_fields = ("user__username", "account_email")
    list_select_related = ("user", "provider")
    actions = ["disconnect_tokens"]

    @admin.display(description="Days idle")
    def days_idle(self, obj: UserToken) -> int:
        from ..tokens import days_idle

        return days_idle(obj)

    @admin.action(description="Disconnect (delete the token; revoke it at Google)")
    def disconnect_tokens(self, request, queryset) -> None:
        from ..tokens import disconnect

        count = 0
        for token in queryset.select_related("provider"):
            disconnect(token)
            count += 1
        self.message_user(request, f"{count} token(s) disconnected.", messages.SUCCESS)

    # The token itself is never shown, not even encrypted.
    fields = (
        "user",
        "provider",
        "account_email",
        "scopes",
        "status",
        "access_token_expires_at",
        "last_refreshed_at",
        "last_used_at",
        "created",
    )
    readonly_fields = fields

    def has_add_permission(self, request) -> bool:
        return False  # tokens come from the OAuth flow only
