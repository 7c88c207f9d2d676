"""Admin for the bulk export: "Run the export" on a space calendar, and a live progress page.

Mixed into ``SpaceCalendarAdmin`` (``bindings.py``). Everything is for staff with the
change permission on space calendars: others get 403, an unknown job 404. The progress page
polls a small JSON endpoint (``static/calendars/export_progress.js``) and redraws its bar,
counts and errors without reloading. Errors shown are the provider errors' messages, which
never hold a secret.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.urls import path, reverse
from django.utils.html import format_html
from django.views.decorators.http import require_POST

from .. import tasks
from ..models import JobKind, SpaceCalendar, SyncJob
from ..sync import export

FINISHED = ("succeeded", "partial", "failed", "paused")


def progress(job: SyncJob) -> dict[str, Any]:
    """What the progress page shows, as JSON."""
    total = job.total or 0
    if total:
        percent = min(100, round(100 * job.done / total))
    else:  # nothing to send: a finished job is complete
        percent = 100 if job.status in FINISHED else 0
    return {
        "id": job.pk,
        "status": job.status,
        "status_display": job.get_status_display(),
        "dry_run": job.dry_run,
        "total": total,
        "done": job.done,
        "percent": percent,
        "created": job.created_count,
        "updated": job.updated_count,
        "failed": job.failed_count,
        "finished": job.status in FINISHED,
        "started_at": job.started_at.isoformat() if job.started_at else None,
        "heartbeat_at": job.heartbeat_at.isoformat() if job.heartbeat_at else None,
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
        "errors": [
            {
                "reservation": e.get("reservation"),
                "start": e.get("start", ""),
                "error": str(e.get("error", ""))[:500],
                "code": e.get("code", ""),
            }
            for e in (job.errors or [])[:100]
            if isinstance(e, dict)
        ],
    }


class ExportAdminMixin:
    """Actions, a change-form button and the progress views for :class:`SpaceCalendar`."""

    actions = ["run_export", "run_export_dry"]

    # -- permissions ---------------------------------------------------------------------

    def _check(self, request: HttpRequest, binding: SpaceCalendar | None = None) -> None:
        if not (request.user.is_active and request.user.is_staff):
            raise PermissionDenied
        if not self.has_change_permission(request, binding):  # type: ignore[attr-defined]
            raise PermissionDenied

    # -- change form -----------------------------------------------------------------------

    def get_readonly_fields(self, request, obj=None):
        fields = super().get_readonly_fields(request, obj)  # type: ignore[misc]
        return (*fields, "bulk_export") if obj is not None else fields

    @admin.display(description="Bulk export")
    def bulk_export(self, obj: SpaceCalendar) -> str:
        job = SyncJob.objects.filter(kind=JobKind.EXPORT, binding=obj).first()
        last = (
            format_html(
                ' <a href="{}">Last export: #{} ({})</a>',
                reverse("admin:calendars_export_progress", args=[job.pk]),
                job.pk,
                job.get_status_display(),
            )
            if job
            else ""
        )
        if not export.has_unsynced(obj):
            return format_html("No future reservations waiting to be synced.{}", last)
        url = reverse("admin:calendars_spacecalendar_export", args=[obj.pk])
        # Buttons of the change form itself (formaction): their POST carries its CSRF token.
        return format_html(
            '<button type="submit" class="button" formaction="{}" formnovalidate>'
            "Run the export</button> "
            '<button type="submit" class="button" formaction="{}?dry_run=1" formnovalidate>'
            "Dry run (send nothing)</button>{}",
            url,
            url,
            last,
        )

    # -- actions ---------------------------------------------------------------------------

    def _start(self, request, queryset, dry_run: bool):
        started = []
        for binding in queryset.select_related("space"):
            try:
                started.append(tasks.start_export(binding, request.user, dry_run=dry_run))
            except export.ExportRefused as refused:
                self.message_user(request, str(refused), messages.WARNING)  # type: ignore[attr-defined]
        if len(started) == 1:
            return HttpResponseRedirect(
                reverse("admin:calendars_export_progress", args=[started[0].pk])
            )
        if started:
            self.message_user(  # type: ignore[attr-defined]
                request,
                f"{len(started)} export(s) queued: " + ", ".join(f"#{job.pk}" for job in started),
                messages.SUCCESS,
            )
        return None

    @admin.action(description="Run the export (future reservations not yet synced)")
    def run_export(self, request, queryset):
        return self._start(request, queryset, dry_run=False)

    @admin.action(description="Dry run of the export (build the events, send nothing)")
    def run_export_dry(self, request, queryset):
        return self._start(request, queryset, dry_run=True)

    # -- views -----------------------------------------------------------------------------

    def get_urls(self):
        site = self.admin_site  # type: ignore[attr-defined]
        mine = [
            path(
                "<int:binding_id>/export/",
                site.admin_view(require_POST(self.export_view)),
                name="calendars_spacecalendar_export",
            ),
            path(
                "export/<int:job_id>/",
                site.admin_view(self.progress_view),
                name="calendars_export_progress",
            ),
            path(
                "export/<int:job_id>/progress.json",
                self.progress_json,  # not admin_view: a poller gets 403, not a login page
                name="calendars_export_progress_json",
            ),
        ]
        return mine + super().get_urls()  # type: ignore[misc]

    def export_view(self, request: HttpRequest, binding_id: int) -> HttpResponse:
        binding = SpaceCalendar.objects.select_related("space").filter(pk=binding_id).first()
        if binding is None:
            raise Http404
        self._check(request, binding)
        dry_run = request.GET.get("dry_run") == "1" or request.POST.get("dry_run") == "1"
        try:
            job = tasks.start_export(binding, request.user, dry_run=dry_run)
        except export.ExportRefused as refused:
            self.message_user(request, str(refused), messages.WARNING)  # type: ignore[attr-defined]
            return HttpResponseRedirect(
                reverse("admin:calendars_spacecalendar_change", args=[binding.pk])
            )
        return HttpResponseRedirect(reverse("admin:calendars_export_progress", args=[job.pk]))

    def _job(self, request: HttpRequest, job_id: int) -> SyncJob:
        self._check(request)
        job = (
            SyncJob.objects.select_related("binding__space")
            .filter(pk=job_id, kind=JobKind.EXPORT)
            .first()
        )
        if job is None:
            raise Http404
        return job

    def progress_view(self, request: HttpRequest, job_id: int) -> HttpResponse:
        job = self._job(request, job_id)
        context = {
            **self.admin_site.each_context(request),  # type: ignore[attr-defined]
            "title": f"Bulk export #{job.pk}",
            "job": job,
            "binding": job.binding,
            "progress": progress(job),
            "json_url": reverse("admin:calendars_export_progress_json", args=[job.pk]),
        }
        return render(request, "calendars/admin/export_progress.html", context)

    def progress_json(self, request: HttpRequest, job_id: int) -> JsonResponse:
        job = self._job(request, job_id)
        response = JsonResponse(progress(job))
        response["Cache-Control"] = "no-store"
        return response
