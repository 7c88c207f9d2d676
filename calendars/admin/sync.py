"""Admin for the sync engine's records and controls: sync jobs (filters, "Retry failed",
"Sync now"), sync links (read-only), the one row of sync settings, the reservation's sync
column and field (``ReservationSyncMixin``, composed into the reservation admin in
``reservation.py``) and "Resume sync" for bindings (``SyncResumeMixin``, mixed into the
SpaceCalendar admin in ``bindings.py``).
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponseRedirect
from django.urls import reverse
from django.utils.html import format_html

from reservations.models import Reservation

from ..models import JobKind, JobStatus, LinkState, SpaceCalendar, SyncJob, SyncLink, SyncSettings


def _enqueue_pushes(reservation_ids) -> int:
    from ..tasks import push_reservation

    ids = sorted({pk for pk in reservation_ids if pk})
    # An administrator's retry starts a new day of beat retries for pushes that gave up.
    SyncLink.objects.filter(reservation_id__in=ids, state=LinkState.FAILED).update(
        failing_since=None, next_attempt_at=None
    )
    for pk in ids:
        push_reservation.delay(pk)
    return len(ids)


class ProgressFilter(admin.SimpleListFilter):
    """Jobs not finished yet, queued or running (the admin home's running exports)."""

    title = "progress"
    parameter_name = "progress"

    def lookups(self, request, model_admin):
        return [("running", "Queued or running")]

    def queryset(self, request, queryset):
        if self.value() == "running":
            return queryset.filter(status__in=(JobStatus.QUEUED, JobStatus.RUNNING))
        return queryset


@admin.register(SyncJob)
class SyncJobAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "kind",
        "status",
        "binding",
        "reservation_id",
        "created_count",
        "updated_count",
        "deleted_count",
        "failed_count",
        "started_at",
        "finished_at",
        "first_error",
    )
    list_filter = ("kind", ProgressFilter, "status", "binding")
    list_select_related = ("binding__space",)
    search_fields = ("reservation__id", "binding__space__name", "binding__resource_email")
    date_hierarchy = "created"
    actions = ["retry_failed", "sync_now"]
    readonly_fields = [f.name for f in SyncJob._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # a record of what happened

    @admin.display(description="Error")
    def first_error(self, obj: SyncJob) -> str:
        errors = obj.errors or []
        first = errors[0] if errors else ""
        return str(first.get("error", first) if isinstance(first, dict) else first)[:100]

    @admin.action(description="Retry failed pushes of the selected jobs")
    def retry_failed(self, request: HttpRequest, queryset: QuerySet[SyncJob]) -> None:
        failed = queryset.filter(
            kind=JobKind.PUSH, status__in=(JobStatus.FAILED, JobStatus.PAUSED, JobStatus.PARTIAL)
        )
        count = _enqueue_pushes(failed.values_list("reservation_id", flat=True))
        self.message_user(request, f"{count} push(es) queued again.", messages.SUCCESS)

    @admin.action(description="Sync now: push the selected jobs' reservations again")
    def sync_now(self, request: HttpRequest, queryset: QuerySet[SyncJob]) -> None:
        count = _enqueue_pushes(queryset.values_list("reservation_id", flat=True))
        self.message_user(request, f"{count} push(es) queued.", messages.SUCCESS)


@admin.register(SyncLink)
class SyncLinkAdmin(admin.ModelAdmin):
    list_display = (
        "reservation_id",
        "binding",
        "mailbox",
        "state",
        "external_id",
        "pushed_version",
        "attempts",
        "next_attempt_at",
        "updated",
    )
    list_filter = ("state", "provider", "binding")
    search_fields = ("reservation__id", "external_id", "ical_uid", "mailbox")
    list_select_related = ("binding__space",)
    readonly_fields = [f.name for f in SyncLink._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # written by the sync engine only


@admin.register(SyncSettings)
class SyncSettingsAdmin(admin.ModelAdmin):
    """One row of settings, so one page: the list opens the form itself (made on first use)."""

    def changelist_view(self, request, extra_context=None):
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        settings_row = SyncSettings.load()
        return HttpResponseRedirect(
            reverse("admin:calendars_syncsettings_change", args=[settings_row.pk])
        )

    def has_add_permission(self, request) -> bool:
        return False  # the one row is made by SyncSettings.load()

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class ReservationSyncMixin:
    """The reservation's calendar sync state: the "Sync" column (``sync_state``, reading the
    ``sync_link`` the list selects with its rows) and the "Calendar sync" read-only field
    (``calendar_sync``). The reservation admin lists both names (``reservation.py``).

    A read-only field rather than an inline: an inline would add a formset whose management
    form every admin POST (and the reservations app's own tests) would have to carry.
    """

    @admin.display(description="Sync")
    def sync_state(self, obj: Reservation) -> str:
        link = getattr(obj, "sync_link", None)
        return link.get_state_display() if link else "-"

    @admin.display(description="Calendar sync")
    def calendar_sync(self, obj: Reservation) -> str:
        link = SyncLink.objects.filter(reservation=obj).first() if obj.pk else None
        if link is None:
            return "Not synced"
        parts = [
            link.get_state_display(),
            f"in {link.mailbox}" if link.mailbox else "",
            f"sync ID {link.external_id}" if link.external_id else "",
            f"version {link.pushed_version}",
            f"last error: {link.last_error}" if link.last_error else "",
        ]
        return format_html("{}", " · ".join(p for p in parts if p))


class SyncResumeMixin:
    """Adds "Resume sync" to the SpaceCalendar admin, next to its other actions."""

    def get_actions(self, request: HttpRequest):
        actions = super().get_actions(request)
        if self.has_change_permission(request):
            actions["resume_sync"] = self.get_action("resume_sync")
        return actions

    @admin.action(description="Resume sync (after fixing the connection)")
    def resume_sync(self, request: HttpRequest, queryset: QuerySet[SpaceCalendar]) -> None:
        from ..tasks import resume_binding

        bindings = list(queryset.filter(enabled=True))
        for binding in bindings:
            resume_binding.delay(binding.pk)
        self.message_user(
            request, f"Sync resumed for {len(bindings)} space calendar(s).", messages.SUCCESS
        )
