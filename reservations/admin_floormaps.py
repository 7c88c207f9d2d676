"""Admin for floor maps: upload a plan per floor, then place the floor's spaces by clicking.

The change page of a floor map shows its image with the spaces already placed as markers, and
a select of that floor's spaces: clicking on the image puts the selected space there. The
click is sent (``static/reservations/floormap_admin.js``, no inline script: the CSP forbids
it) to ``place_view``, a POST with the admin's CSRF token that needs permission to change
spaces; positions are stored relative to the image (``floormaps.place``). Without
JavaScript, a space's position can be typed on the space's own page (*Floor map* fields).
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path, reverse

from . import floormaps
from .models import FloorMap, Space

CHANGE_SPACE = "reservations.change_space"


@admin.register(FloorMap)
class FloorMapAdmin(admin.ModelAdmin):
    list_display = ("__str__", "location", "floor", "size", "placed")
    list_filter = ("location",)
    search_fields = ("location__name", "floor")
    list_select_related = ("location",)
    readonly_fields = ("size",)
    change_form_template = "admin/reservations/floormap/change_form.html"

    class Media:
        css = {"all": ("portal/floormap.css",)}
        js = ("reservations/floormap_admin.js",)

    @admin.display(description="Image size")
    def size(self, obj: FloorMap) -> str:
        return f"{obj.width} x {obj.height}" if obj.width else "-"

    @admin.display(description="Spaces placed")
    def placed(self, obj: FloorMap) -> str:
        spaces = Space.objects.filter(location_id=obj.location_id, floor=obj.floor)
        return f"{spaces.filter(map_x__isnull=False).count()} of {spaces.count()}"

    def get_urls(self):
        mine = [
            path(
                "<int:map_id>/place/",
                self.admin_site.admin_view(self.place_view),
                name="reservations_floormap_place",
            )
        ]
        return mine + super().get_urls()

    def change_view(self, request, object_id, form_url="", extra_context=None):
        floor_map = self.get_object(request, object_id)
        extra = dict(extra_context or {})
        if floor_map is not None:
            spaces = list(
                Space.objects.filter(location_id=floor_map.location_id, floor=floor_map.floor)
            )
            extra["floor_spaces"] = [
                {
                    "space": space,
                    "x": round(space.map_x * 100) if space.map_x is not None else None,
                    "y": round(space.map_y * 100) if space.map_y is not None else None,
                }
                for space in spaces
            ]
            extra["place_url"] = reverse("admin:reservations_floormap_place", args=[floor_map.pk])
            extra["can_place"] = request.user.has_perm(CHANGE_SPACE)
        return super().change_view(request, object_id, form_url, extra)

    def save_model(self, request, obj: FloorMap, form, change) -> None:
        super().save_model(request, obj, form, change)
        if not Space.objects.filter(location_id=obj.location_id, floor=obj.floor).exists():
            self.message_user(
                request,
                f"No space of {obj.location} has floor {obj.floor!r} yet: set the spaces' Floor "
                "to place them on this map.",
                messages.WARNING,
            )

    def place_view(self, request: HttpRequest, map_id: int) -> HttpResponse:
        return _place(self, request, map_id)


def _place(model_admin: FloorMapAdmin, request: HttpRequest, map_id: int) -> HttpResponse:
    """POST space=<id>, x=<0..1>, y=<0..1> (or clear=1): JSON with the stored position, or a
    4xx with the reason."""
    if request.method != "POST":
        return JsonResponse({"error": "Use POST."}, status=405)
    floor_map = FloorMap.objects.select_related("location").filter(pk=map_id).first()
    if floor_map is None or not model_admin.has_view_or_change_permission(request, floor_map):
        return JsonResponse({"error": "No such floor map."}, status=404)
    if not request.user.has_perm(CHANGE_SPACE):
        return JsonResponse({"error": "You may not change spaces."}, status=403)
    space_id = request.POST.get("space", "")
    space = Space.objects.filter(pk=int(space_id)).first() if space_id.isdigit() else None
    if space is None:
        return JsonResponse({"error": "Choose a space to place."}, status=400)
    if request.POST.get("clear"):
        x = y = None
    else:
        try:
            x, y = float(request.POST["x"]), float(request.POST["y"])
        except (KeyError, ValueError):
            return JsonResponse({"error": "The position is missing or not a number."}, status=400)
    try:
        floormaps.place(space, floor_map, x, y)
    except ValidationError as exc:
        return JsonResponse({"error": " ".join(exc.messages)}, status=400)
    return JsonResponse({"space": space.pk, "name": space.name, "x": space.map_x, "y": space.map_y})
