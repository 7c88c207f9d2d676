"""Admin for space calendars (bindings): the list with its attention and webhook filters,
and what becomes of the bookings a binding pulled when it stops reading its calendar.

``SpaceCalendarAdmin`` names its mixins: ``PulledBookingsAdminMixin`` (below), "Resume sync"
(``sync.SyncResumeMixin``) and the bulk export (``export.ExportAdminMixin``).

Retargeting a binding (another provider, room mailbox or calendar), switching it off or
deleting it leaves the bookings it pulled from the old calendar behind; the admin must say what
becomes of them (``calendars.bindings.PulledBookings``): the change form shows a required
choice when there are any, and the delete confirmation asks the same. A second space bound to a
calendar that is already bound is refused by the model's validation, naming the other space.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect

from .. import bindings
from ..forms import pulled_bookings_field
from ..models import BindingStatus, SpaceCalendar, WebhookStatus
from .export import ExportAdminMixin
from .sync import SyncResumeMixin

FIELD = "pulled_bookings"


def _leaving(old: SpaceCalendar, new: dict[str, Any] | SpaceCalendar) -> bool:
    """The binding stops reading ``old``'s calendar: retargeted, or switched off."""
    enabled = new.get("enabled") if isinstance(new, dict) else new.enabled
    return bindings.retargeted(old, new) or (old.enabled and not enabled)


def _summary(kept: int, cancelled: int) -> str:
    return (
        f"Bookings pulled from the old calendar: {kept} kept as local bookings, "
        f"{cancelled} cancelled (their people were told)."
    )


class SpaceCalendarForm(forms.ModelForm):
    pulled_bookings = pulled_bookings_field(
        "Bookings pulled from this calendar",
        (
            "Asked when you point this space at another calendar, switch its sync off or "
            "delete it: the bookings made in Outlook / Google Calendar that Reserva imported "
            "from the current calendar would otherwise stay as bookings nobody updates. Their "
            "events in that calendar are left as they are."
        ),
    )

    class Meta:
        model = SpaceCalendar
        fields = ("space", "provider", "resource_email", "calendar_id", "calendar_name", "enabled")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        pk = self.instance.pk
        self.pulled_count = bindings.pulled(self.instance).count() if pk else 0
        self.leaving = False

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if not self.pulled_count:
            return data
        old = SpaceCalendar.objects.get(pk=self.instance.pk)
        provider = data.get("provider")
        new = {
            "provider_id": provider.pk if provider else None,
            "resource_email": data.get("resource_email") or "",
            "calendar_id": data.get("calendar_id") or "",
            "enabled": data.get("enabled"),
        }
        self.leaving = _leaving(old, new)
        if self.leaving and not data.get(FIELD):
            self.add_error(
                FIELD,
                f"{self.pulled_count} booking(s) came from {old.resource_email}, which this "
                "space will no longer read: keep them as local bookings, or cancel them.",
            )
        return data


class PulledBookingsAdminMixin:
    """The form, the delete confirmation and the release of pulled bookings."""

    form = SpaceCalendarForm
    delete_confirmation_template = "admin/calendars/spacecalendar/delete_confirmation.html"

    def get_fields(self, request, obj=None):
        fields = list(super().get_fields(request, obj))  # type: ignore[misc]
        if obj is None or not bindings.pulled(obj).exists():
            fields = [f for f in fields if f != FIELD]  # nothing to ask
        elif FIELD in fields:
            fields.append(fields.pop(fields.index(FIELD)))  # last, under what changes
        return fields

    def get_actions(self, request):
        # The bulk delete cannot ask about each binding's pulled bookings: one at a time.
        actions = super().get_actions(request)  # type: ignore[misc]
        actions.pop("delete_selected", None)
        return actions

    def save_model(self, request, obj, form, change) -> None:
        if change and getattr(form, "leaving", False) and form.cleaned_data.get(FIELD):
            old = SpaceCalendar.objects.select_related("space").get(pk=obj.pk)
            kept, cancelled = bindings.release_pulled(old, form.cleaned_data[FIELD], request.user)
            self.message_user(request, _summary(kept, cancelled), messages.INFO)  # type: ignore[attr-defined]
        super().save_model(request, obj, form, change)  # type: ignore[misc]

    def delete_view(self, request: HttpRequest, object_id: str, extra_context=None) -> HttpResponse:
        binding = SpaceCalendar.objects.filter(pk=object_id).first()
        count = bindings.pulled(binding).count() if binding else 0
        if request.method == "POST" and count:
            choice = request.POST.get(FIELD, "")
            if choice not in bindings.CHOICE_VALUES:
                self.message_user(  # type: ignore[attr-defined]
                    request,
                    f"Say what becomes of the {count} booking(s) pulled from "
                    f"{binding.resource_email} before deleting the binding.",
                    messages.ERROR,
                )
                return HttpResponseRedirect(request.path)
            request._pulled_bookings = choice  # read by delete_model
        context = {
            **(extra_context or {}),
            "pulled_count": count,
            "pulled_choices": bindings.CHOICES,
        }
        return super().delete_view(request, object_id, context)  # type: ignore[misc]

    def delete_model(self, request, obj) -> None:
        choice = getattr(request, "_pulled_bookings", "")
        if choice:
            kept, cancelled = bindings.release_pulled(obj, choice, request.user)
            self.message_user(request, _summary(kept, cancelled), messages.INFO)  # type: ignore[attr-defined]
        super().delete_model(request, obj)  # type: ignore[misc]


class WebhookFilter(admin.SimpleListFilter):
    """Bindings whose webhook renewal fails, or that have none (polling only)."""

    title = "webhook"
    parameter_name = "webhook"

    def lookups(self, request, model_admin):
        return [("active", "Active"), ("failing", "Renewal failing"), ("none", "None")]

    def queryset(self, request, queryset):
        live = (WebhookStatus.PENDING, WebhookStatus.ACTIVE, WebhookStatus.FAILING)
        if self.value() == "active":
            return queryset.filter(webhook_subscriptions__status=WebhookStatus.ACTIVE).distinct()
        if self.value() == "failing":
            return queryset.filter(webhook_subscriptions__status=WebhookStatus.FAILING).distinct()
        if self.value() == "none":
            return queryset.exclude(webhook_subscriptions__status__in=live)
        return queryset


class AttentionFilter(admin.SimpleListFilter):
    """Bindings paused (credentials) or in error (retrying): the admin home links here."""

    title = "needs attention"
    parameter_name = "attention"

    def lookups(self, request, model_admin):
        return [("yes", "Paused or failing")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(status__in=(BindingStatus.PAUSED, BindingStatus.ERROR))
        return queryset


@admin.register(SpaceCalendar)
class SpaceCalendarAdmin(
    PulledBookingsAdminMixin, SyncResumeMixin, ExportAdminMixin, admin.ModelAdmin
):
    list_display = (
        "space",
        "provider",
        "resource_email",
        "enabled",
        "status",
        "last_synced",
        "webhook",
        "short_error",
    )
    list_filter = (
        AttentionFilter,
        "status",
        "enabled",
        WebhookFilter,
        "provider",
        "space__location",
    )
    search_fields = ("space__name", "resource_email", "calendar_name")
    list_select_related = ("space__location", "provider")
    autocomplete_fields = ("space",)
    readonly_fields = ("authorized_by", "authorized_at", "status", "last_error", "last_synced_at")
    # "Calendar sync" (authorize, pick the calendar, remove authorization) and "Bind a space"
    # buttons: calendars/views.py space_sync / space_pick.
    change_form_template = "admin/calendars/spacecalendar/change_form.html"
    change_list_template = "admin/calendars/spacecalendar/change_list.html"

    @admin.display(description="Last synced", ordering="last_synced_at")
    def last_synced(self, obj: SpaceCalendar) -> str:
        if obj.last_synced_at is None:
            return "never"
        local = obj.last_synced_at.astimezone(obj.space.location.zone)
        return f"{local:%Y-%m-%d %H:%M}"

    @admin.display(description="Last error")
    def short_error(self, obj: SpaceCalendar) -> str:
        return obj.last_error[:80]

    def get_queryset(self, request):
        # The webhook column reads the subscriptions of every row: one query for the page.
        return super().get_queryset(request).prefetch_related("webhook_subscriptions")

    @admin.display(description="Webhook")
    def webhook(self, obj: SpaceCalendar) -> str:
        """The newest live subscription's state and expiry (calendars/subscriptions.py)."""
        live = [s for s in obj.webhook_subscriptions.all() if s.status != WebhookStatus.STOPPED]
        if not live:
            return "-"
        sub = live[0]
        expires = sub.expires_at.astimezone(obj.space.location.zone) if sub.expires_at else None
        until = f" until {expires:%Y-%m-%d %H:%M}" if expires else ""
        return f"{sub.get_status_display()}{until}"
