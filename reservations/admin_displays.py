"""Admin for room displays: add one for a space (the answer shows its one-time pairing code
and what to do on the tablet), a new code for a display to pair again, revoke, and when each
was last seen (``reservations.displays``).

The code is shown in the answer that made it, never stored readable nor put in a message or
the session; a lost code is replaced with *New pairing code*.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from . import displays
from .models import Display


class StateFilter(admin.SimpleListFilter):
    """Displays not seen for ``displays.OFFLINE_AFTER`` (the admin home links here)."""

    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [("offline", "Offline"), ("revoked", "Revoked")]

    def queryset(self, request, queryset):
        if self.value() == "offline":
            return queryset.filter(displays.offline_q(timezone.now()))
        if self.value() == "revoked":
            return queryset.filter(revoked_at__isnull=False)
        return queryset


@admin.register(Display)
class DisplayAdmin(admin.ModelAdmin):
    list_display = ("__str__", "location", "status", "last_seen", "paired_at", "created_by")
    list_filter = (StateFilter, "space__location")
    search_fields = ("space__name", "name")
    list_select_related = ("space__location", "created_by")
    fields = ("space", "name")
    actions = ["revoke_selected"]

    def get_readonly_fields(self, request, obj=None):
        return ("space",) if obj is not None else ()

    @admin.display(description="Location", ordering="space__location__name")
    def location(self, obj: Display) -> str:
        return obj.space.location.name

    @admin.display(description="Status")
    def status(self, obj: Display) -> str:
        now = timezone.now()
        if obj.revoked_at is not None:
            return "Revoked"
        if obj.paired_at is None:
            if obj.pairing_expires_at and obj.pairing_expires_at > now:
                return "Waiting for its pairing code"
            return "Not paired (code expired: make a new one)"
        seen = obj.last_seen_at or obj.paired_at
        if now - seen > displays.OFFLINE_AFTER:
            return "Offline"
        return "Online"

    @admin.display(description="Last seen", ordering="last_seen_at")
    def last_seen(self, obj: Display) -> str:
        if obj.last_seen_at is None:
            return "Never"
        local = obj.last_seen_at.astimezone(obj.space.location.zone)
        return f"{local:%Y-%m-%d %H:%M:%S} ({obj.space.location.time_zone})"

    def save_model(self, request: HttpRequest, obj: Display, form, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        pairing = displays.create(space=obj.space, name=obj.name, created_by=request.user)
        obj.pk, obj.user = pairing.display.pk, pairing.display.user
        obj.pairing_expires_at = pairing.display.pairing_expires_at
        request._display_code = pairing.code  # shown once, in response_add

    def response_add(self, request: HttpRequest, obj: Display, post_url_continue=None):
        return self._code_page(request, obj, request._display_code)

    def get_urls(self):
        mine = [
            path(
                "<int:display_id>/pairing-code/",
                self.admin_site.admin_view(self.pairing_code_view),
                name="reservations_display_pairing_code",
            )
        ]
        return mine + super().get_urls()

    def pairing_code_view(self, request: HttpRequest, display_id: int) -> HttpResponse:
        """POST: a fresh code for this display (to pair a new tablet, or after expiry)."""
        display = Display.objects.select_related("space__location").filter(pk=display_id).first()
        if display is None or not self.has_change_permission(request, display):
            raise Http404("No such display.")
        return require_POST(self._new_code)(request, display)

    def _new_code(self, request: HttpRequest, display: Display) -> HttpResponse:
        if display.revoked_at is not None:
            display.revoked_at = None  # pairing again undoes a revocation
            display.save(update_fields=["revoked_at"])
        return self._code_page(request, display, displays.new_code(display))

    def _code_page(self, request: HttpRequest, display: Display, code: str) -> HttpResponse:
        expires = display.pairing_expires_at.astimezone(display.space.location.zone)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": f"Pair the display of {display.space.name}",
            "display": display,
            "code": f"{code[:3]} {code[3:]}",
            "expires": expires,
            "minutes": displays.PAIRING_MINUTES,
            "pair_url": request.build_absolute_uri(reverse("display:pair")),
        }
        return TemplateResponse(request, "admin/reservations/display/pairing_code.html", context)

    @admin.action(description="Revoke the selected displays")
    def revoke_selected(self, request: HttpRequest, queryset) -> None:
        revoked = sum(displays.revoke(display) for display in queryset)
        messages.success(
            request, f"{revoked} display{'s' if revoked != 1 else ''} revoked: "
            "their pages now say they are not paired."
        )  # fmt: skip
