"""A confirmation page before an admin action that cannot be undone (cancelling bookings,
cancelling remote events): the action runs only when posted again from that page, as
Django's own "Delete selected" does."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin import helpers
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse


def confirmed(request: HttpRequest) -> bool:
    """True when the action was posted from its confirmation page."""
    return request.POST.get("post") == "yes"


def confirmation_page(
    model_admin: admin.ModelAdmin,
    request: HttpRequest,
    queryset: QuerySet,
    *,
    affected: QuerySet,
    action: str,
    title: str,
    explanation: str,
    button: str,
    skipped: str = "",
) -> TemplateResponse:
    """The page asking to confirm ``action`` for ``affected`` (the selected rows it applies
    to); ``skipped`` says why other selected rows are left alone."""
    opts = model_admin.model._meta
    objects = list(affected)
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": opts,
        "title": title,
        "explanation": explanation,
        "objects": objects,
        "objects_label": opts.verbose_name if len(objects) == 1 else opts.verbose_name_plural,
        "selected": list(queryset),
        "skipped": skipped if len(objects) < queryset.count() else "",
        "action": action,
        "button": button,
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
    }
    return TemplateResponse(request, "admin/confirm_action.html", context)
