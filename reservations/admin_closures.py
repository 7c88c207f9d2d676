"""Admin for closures: create one, then see the bookings it falls on and cancel them.

Saving a closure never touches a booking. When bookings already hold a slot in it, the admin
says so and opens a confirmation page listing them; only "Cancel these bookings" cancels them,
each through ``services.cancel`` with the closure's words as the reason, so the person gets the
usual cancellation email and the remote event goes by the ordinary push.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from . import closures, services
from .models import Closure, Source


@admin.register(Closure)
class ClosureAdmin(admin.ModelAdmin):
    list_display = (
        "reason",
        "location",
        "space",
        "start_date",
        "end_date",
        "start_time",
        "end_time",
        "yearly",
        "bookings_during",
    )
    list_filter = ("location", "yearly")
    search_fields = ("reason", "location__name", "space__name")
    list_select_related = ("location", "space")
    autocomplete_fields = ("space",)
    date_hierarchy = "start_date"

    @admin.display(description="Bookings during it")
    def bookings_during(self, obj: Closure) -> str:
        count = len(closures.affected(obj, timezone.now()))
        if not count:
            return "none"
        url = reverse("admin:reservations_closure_bookings", args=[obj.pk])
        return format_html('<a href="{}">{} to review</a>', url, count)

    def get_urls(self):
        mine = [
            path(
                "<int:closure_id>/bookings/",
                self.admin_site.admin_view(self.bookings_view),
                name="reservations_closure_bookings",
            )
        ]
        return mine + super().get_urls()

    def _after_save(self, request: HttpRequest, obj: Closure, response: HttpResponse):
        count = len(closures.affected(obj, timezone.now()))
        if not count or "_continue" in request.POST or "_addanother" in request.POST:
            if count:
                self.message_user(request, self._waiting(count), messages.WARNING)
            return response
        self.message_user(request, self._waiting(count), messages.WARNING)
        return HttpResponseRedirect(reverse("admin:reservations_closure_bookings", args=[obj.pk]))

    @staticmethod
    def _waiting(count: int) -> str:
        return (
            f"{count} booking(s) already hold a slot during this closure. They stand until you "
            "cancel them on the closure's booking page."
        )

    def response_add(self, request, obj, post_url_continue=None):
        return self._after_save(request, obj, super().response_add(request, obj, post_url_continue))

    def response_change(self, request, obj):
        return self._after_save(request, obj, super().response_change(request, obj))

    def bookings_view(self, request: HttpRequest, closure_id: int) -> HttpResponse:
        """The bookings a closure falls on; POST cancels the ones ticked, with a notice."""
        closure = Closure.objects.select_related("location", "space").filter(pk=closure_id).first()
        if closure is None:
            raise Http404("No such closure.")
        if not self.has_view_or_change_permission(request, closure):
            raise Http404("No such closure.")
        found = closures.affected(closure, timezone.now())
        if request.method == "POST" and self.has_change_permission(request, closure):
            chosen = set(request.POST.getlist("reservation"))
            done, refused = 0, []
            for reservation, period in found:
                if str(reservation.pk) not in chosen:
                    continue
                try:
                    services.cancel(
                        actor=request.user,
                        reservation=reservation,
                        source=Source.ADMIN,
                        reason=closures.notice(period, reservation.space),
                    )
                    done += 1
                except services.BookingError as exc:
                    refused.append(f"{reservation}: {exc.message}")
            if done:
                self.message_user(
                    request,
                    f"Cancelled {done} booking(s); each person is emailed the closure's reason.",
                    messages.SUCCESS,
                )
            for line in refused:
                self.message_user(request, line, messages.WARNING)
            if not done and not refused:
                self.message_user(request, "No booking was selected.", messages.INFO)
            return HttpResponseRedirect(
                reverse("admin:reservations_closure_bookings", args=[closure.pk])
            )
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": f"Bookings during: {closure}",
            "closure": closure,
            "rows": [
                {
                    "reservation": reservation,
                    "notice": closures.notice(period, reservation.space),
                }
                for reservation, period in found
            ],
            "can_cancel": self.has_change_permission(request, closure),
        }
        return TemplateResponse(request, "admin/reservations/closure/bookings.html", context)
