"""Admin for check-in: a printable QR code per space, and the released-minutes rollup.

The QR code encodes the absolute address of the space's check-in page
(``/spaces/<id>/check-in/``, ``reservations.views.checkin.space``), built from
``PUBLIC_BASE_URL`` (else the request's own address), so a printed code keeps working behind
a proxy. It is drawn as inline SVG by ``segno`` (pure Python, no dependencies). The rollup
(``SpaceDayUsage``) is written only by the release of no-shows, so the admin shows it read-only.
"""

from __future__ import annotations

import segno
from django.conf import settings
from django.contrib import admin
from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.safestring import mark_safe

from . import checkin
from .models import Space, SpaceDayUsage


def check_in_address(request: HttpRequest, space: Space) -> str:
    """The absolute URL a space's QR code opens."""
    where = reverse("portal:space_check_in", args=[space.pk])
    base = getattr(settings, "PUBLIC_BASE_URL", "")
    return base + where if base else request.build_absolute_uri(where)


def qr_svg(address: str) -> str:
    return segno.make(address, error="m").svg_inline(scale=6, border=2)


class CheckInQRMixin:
    """For SpaceAdmin: the "Check-in QR code" page of one space (a link on its change page)
    and the list action printing the codes of the selected spaces on one page."""

    actions = ["print_check_in_qr_codes"]

    def get_urls(self):
        mine = [
            path(
                "<int:space_id>/check-in-qr/",
                self.admin_site.admin_view(self.check_in_qr_view),
                name="reservations_space_check_in_qr",
            )
        ]
        return mine + super().get_urls()

    def check_in_qr_view(self, request: HttpRequest, space_id: int) -> HttpResponse:
        space = Space.objects.select_related("location").filter(pk=space_id).first()
        if space is None or not self.has_view_or_change_permission(request, space):
            raise Http404("No such space.")
        return self._render_codes(request, [space])

    @admin.action(description="Print check-in QR codes")
    def print_check_in_qr_codes(self, request: HttpRequest, queryset) -> HttpResponse:
        return self._render_codes(request, list(queryset.select_related("location")))

    def _render_codes(self, request: HttpRequest, spaces: list[Space]) -> HttpResponse:
        codes = []
        for space in spaces:
            address = check_in_address(request, space)
            codes.append(
                {
                    "space": space,
                    "address": address,
                    "svg": mark_safe(qr_svg(address)),  # noqa: S308 - segno's own SVG markup
                    "required": checkin.policy_for(space).required,
                }
            )
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Check-in QR codes",
            "codes": codes,
        }
        return TemplateResponse(request, "admin/reservations/space/check_in_qr.html", context)


@admin.register(SpaceDayUsage)
class SpaceDayUsageAdmin(admin.ModelAdmin):
    list_display = ("day", "space", "location", "released_minutes")
    list_filter = ("space__location", "day")
    search_fields = ("space__name",)
    list_select_related = ("space__location",)
    date_hierarchy = "day"

    @admin.display(description="Location", ordering="space__location__name")
    def location(self, obj: SpaceDayUsage) -> str:
        return obj.space.location.name

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
