"""Admin for locations, spaces and reservations.

Reservations are added, changed and cancelled through ``reservations.services`` (never a
plain ``save()``), so the admin obeys the same validation, rules and overlap guarantee as the
portal; a refusal comes back as a form error or an admin message.

``ReservationAdmin`` is the booking side of the reservation admin and is not registered here:
the calendars app registers it once, composed with its sync and conflict columns and actions
(``calendars/admin/reservation.py``), as this app never imports ``calendars``.
"""

from __future__ import annotations

from datetime import datetime

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from simple_history.admin import SimpleHistoryAdmin
from simple_history.template_utils import HistoricalRecordContextHelper

from . import admin_confirm, queries, services, timebounds, zones
from .admin_approvals import approve_selected, decline_selected
from .admin_checkin import CheckInQRMixin
from .models import (
    REMOTE_SOURCES,
    SLOT_HOLDING_STATUSES,
    Amenity,
    Approval,
    Location,
    OpeningHours,
    Profile,
    Reservation,
    ReservationStatus,
    Series,
    Source,
    Space,
    SpaceKind,
    UserDeactivation,
)
from .recurrence import localize

User = get_user_model()


class OpeningHoursInline(admin.TabularInline):
    model = OpeningHours
    extra = 0


class SpaceInline(admin.TabularInline):
    model = Space
    fk_name = "location"
    fields = ("name", "floor", "kind", "capacity", "is_reservable")
    extra = 0
    show_change_link = True


class SearchableSelect(forms.Select):
    """A select with a search box (the admin's bundled Select2), for long lists of names."""

    def __init__(self, attrs=None, choices=()):
        super().__init__({"data-searchable": "", **(attrs or {})}, choices)

    class Media:
        css = {
            "screen": (
                "admin/css/vendor/select2/select2.css",
                "admin/css/autocomplete.css",
                "reservations/searchable_select.css",
            )
        }
        js = (
            "admin/js/vendor/jquery/jquery.js",
            "admin/js/vendor/select2/select2.full.js",
            "admin/js/jquery.init.js",
            "reservations/searchable_select.js",
        )


class LocationAdminForm(forms.ModelForm):
    """The time zone is picked from the current IANA names (``reservations.zones``), not
    typed: a typo or a deprecated alias (``US/Eastern``) cannot be saved. No ``Meta``: the
    admin makes the form with its own list of fields."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        field = self.fields["time_zone"]
        stored = self.instance.time_zone if self.instance.pk else ""
        self.fields["time_zone"] = forms.ChoiceField(
            label=field.label,
            choices=[("", "---------"), *zones.choices(stored)],
            initial=self.initial.get("time_zone") or settings.TIME_ZONE,
            help_text="Type to search, e.g. 'London' or 'New York'.",
            widget=SearchableSelect,
        )


@admin.register(Location)
class LocationAdmin(admin.ModelAdmin):
    form = LocationAdminForm
    list_display = (
        "name",
        "time_zone",
        "booking_horizon_days",
        "max_booking_minutes",
        "event_title",
        "space_count",
    )
    search_fields = ("name", "address")
    list_filter = ("time_zone", "event_title", "check_in_required")
    inlines = [OpeningHoursInline, SpaceInline]

    def get_queryset(self, request):
        from django.db.models import Count

        return super().get_queryset(request).annotate(_spaces=Count("spaces"))

    @admin.display(description="Spaces", ordering="_spaces")
    def space_count(self, obj: Location) -> int:
        return obj._spaces


class SeatInline(admin.TabularInline):
    model = Space
    fk_name = "container"
    fields = ("name", "floor", "kind", "capacity", "is_reservable")
    extra = 0
    verbose_name = "seat"
    verbose_name_plural = "seats"


@admin.register(Space)
class SpaceAdmin(CheckInQRMixin, admin.ModelAdmin):
    list_display = (
        "name",
        "location",
        "floor",
        "kind",
        "capacity",
        "is_reservable",
        "allows_group",
    )
    list_filter = (
        "location",
        "kind",
        "is_reservable",
        "allows_group",
        "check_in_required",
        "amenities",
    )
    search_fields = ("name", "floor", "location__name")
    list_select_related = ("location",)
    filter_horizontal = ("amenities",)
    autocomplete_fields = ("container",)

    def get_inlines(self, request, obj):
        return [SeatInline] if obj is not None and obj.kind == SpaceKind.CONTAINER else []


@admin.register(Amenity)
class AmenityAdmin(admin.ModelAdmin):
    search_fields = ("name",)


class DayFilter(admin.SimpleListFilter):
    """Today's bookings: pending or confirmed, overlapping today in their own location's
    time zone (the admin home links here with a location, per location)."""

    title = "day (location time)"
    parameter_name = "day"

    def lookups(self, request, model_admin):
        return [("today", "Today (pending or confirmed)")]

    def queryset(self, request, queryset):
        if self.value() == "today":
            today = queries.on_local_day(Location.objects.all(), timezone.now())
            return queryset.filter(today, status__in=SLOT_HOLDING_STATUSES)
        return queryset


class ReservationAdminForm(forms.ModelForm):
    # Set by ReservationAdmin when the booking service refused the posted form: (field or
    # None, message), shown inline on the form it re-renders with the input kept.
    booking_error: tuple[str | None, str] | None = None

    attendees_text = forms.CharField(
        label="Attendees",
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Email addresses, one per line or separated by commas.",
    )

    class Meta:
        model = Reservation
        fields = (
            "space",
            "requested_for",
            "start",
            "end",
            "title",
            "public_nickname",
            "description",
            "kind",
        )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.initial["attendees_text"] = "\n".join(self.instance.attendees)
            # Shown as wall-clock time in the space's location, like everywhere else.
            self.initial["start"] = self.instance.local_start.replace(tzinfo=None)
            self.initial["end"] = self.instance.local_end.replace(tzinfo=None)
        person = self.fields["requested_for"]
        remote = bool(self.instance.pk) and self.instance.source in REMOTE_SOURCES
        # A booking made in Outlook or Google Calendar may have an organizer Reserva does not
        # know: it stays without one (the model's help text says so); any other needs one.
        person.required = not remote
        if not self.instance.pk:
            person.help_text = "Whom the booking is for."
        elif remote:
            person.help_text = (
                "Made in Outlook or Google Calendar: empty when its organizer is not a Reserva "
                "user. Choosing someone hands the booking to them."
            )
        else:
            person.help_text = (
                "Changing it hands the booking to that person (history, emails and the synced "
                "event follow). Not possible for a booking kept in its owner's own calendar."
            )
        for name in ("start", "end"):
            self.fields[name].help_text = "In the location's time zone."

    def clean(self):
        data = super().clean()
        space = data.get("space")
        if space is None:
            return data
        for name in ("start", "end"):
            value = data.get(name)
            if value is None:
                continue
            wall = timezone.make_naive(value)  # what was typed, read in the current zone
            if not timebounds.in_range(wall.date()):
                # Reading it in the location's zone would overflow near year 1 or 9999.
                self.add_error(name, timebounds.OUT_OF_RANGE)
                continue
            aware = localize(wall.date(), wall.time(), space.location.zone)
            if aware is None:
                self.add_error(
                    name,
                    f"{wall:%H:%M} does not exist on {wall:%d %b %Y} in "
                    f"{space.location.time_zone} (clocks change).",
                )
            else:
                data[name] = aware
        start, end = data.get("start"), data.get("end")
        valid = "start" not in self.errors and "end" not in self.errors
        if valid and start and end and end <= start:
            # A field error here, before the model's check constraint would say the same thing
            # in a database's words (a field with an error is then left out of the check).
            self.add_error("end", "The end must be after the start.")
        if self.booking_error is not None:
            self.add_error(self.booking_error[0], self.booking_error[1])
        return data

    def clean_attendees_text(self) -> list[str]:
        raw = self.cleaned_data.get("attendees_text", "")
        return [part.strip() for part in raw.replace(",", "\n").splitlines() if part.strip()]


def _refusal(error: services.BookingError) -> str:
    """The service's words, and for a clash each booking in the way, linked."""
    clashes = [c for c in getattr(error, "clashes", ()) if c.reservation_id]
    if not clashes:
        return error.message
    links = format_html_join(
        ", ",
        '<a href="{}">#{} {}</a>',
        (
            (
                reverse("admin:reservations_reservation_change", args=[c.reservation_id]),
                c.reservation_id,
                c.describe(),
            )
            for c in clashes
        ),
    )
    return format_html("{} Clashes with: {}", error.message, links)


class _HistoryWords(HistoricalRecordContextHelper):
    """What changed, in words: a dash for nothing (not "None"), times in the location's zone,
    choices by their label."""

    def prepare_delta_change_value(self, change, value):
        value = super().prepare_delta_change_value(change, value)
        field = self.model._meta.get_field(change.field)
        if value is None or value == "" or value == []:
            return "—"
        if isinstance(value, datetime):
            zone = self.record.space.location.zone
            return f"{value.astimezone(zone):%Y-%m-%d %H:%M}"
        if getattr(field, "choices", None):
            return dict(field.flatchoices).get(value, value)
        return value


class ReservationAdmin(SimpleHistoryAdmin):
    form = ReservationAdminForm
    # The columns that answer "what is this booking", narrow enough for 1,366 px with the
    # sync state and the clash columns calendars adds (approval, kind and mailbox are filters).
    list_display = (
        "space",
        "local_time",
        "title",
        "person",
        "status_shown",
        "source",
    )
    list_filter = (
        "status",
        DayFilter,
        "approval",
        "kind",
        "source",
        "sync_mailbox",
        "space__location",
        "start",
    )
    search_fields = ("title", "space__name", "requested_for__username", "requested_for__email")
    list_select_related = ("space__location", "requested_for")
    date_hierarchy = "start"
    autocomplete_fields = ("space", "requested_for")
    readonly_fields = (
        "status",
        "source",
        "sync_mailbox",
        "booked_by",
        "series",
        "version",
        "cancel_reason",
        "checked_in_at",
        "released_at",
        "approval",
        "decided_by",
        "decided_at",
        "created",
        "updated",
    )
    # Readable headers, local times, a dash for nothing: history_list.html and the helpers
    # below (simple_history's own page shows field names, UTC and "None").
    history_list_display = ("changed_at_local", "booked_time_local")
    object_history_list_template = "admin/reservations/reservation/history_list.html"
    actions = ["cancel_selected", approve_selected, decline_selected]

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # cancel instead: the history and the remote calendars stay consistent

    def save_model(self, request: HttpRequest, obj: Reservation, form, change: bool) -> None:
        data = form.cleaned_data
        try:
            if not change:
                result = services.book(
                    actor=request.user,
                    space=data["space"],
                    start=data["start"],
                    end=data["end"],
                    requested_for=data["requested_for"],
                    title=data["title"],
                    public_nickname=data["public_nickname"],
                    description=data["description"],
                    kind=data["kind"],
                    attendees=data["attendees_text"],
                    source=Source.ADMIN,
                )
                obj.pk = result.reservations[0].pk
            else:
                original = Reservation.objects.get(pk=obj.pk)
                services.change(
                    actor=request.user,
                    reservation=original,
                    start=data["start"],
                    end=data["end"],
                    space=data["space"],
                    source=Source.ADMIN,
                    requested_for=data["requested_for"],
                    title=data["title"],
                    public_nickname=data["public_nickname"],
                    description=data["description"],
                    kind=data["kind"],
                    attendees=data["attendees_text"],
                )
        except services.BookingError as exc:
            request._booking_error = exc  # read by the response_* methods below

    def _refused(self, request) -> bool:
        return getattr(request, "_booking_error", None) is not None

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        error = getattr(request, "_booking_error", None)
        if error is None:
            return form
        shown = (error.field if error.field in form.base_fields else None, _refusal(error))
        return type(form.__name__, (form,), {"booking_error": shown})

    def response_add(self, request, obj, post_url_continue=None):
        if self._refused(request):
            # The same form again, with what was typed and the refusal beside its field
            # (get_form above): a second pass that cannot book, as the form is now invalid.
            return self._changeform_view(request, None, request.get_full_path(), None)
        return super().response_add(request, obj, post_url_continue)

    def response_change(self, request, obj):
        if self._refused(request):
            return self._changeform_view(request, str(obj.pk), request.get_full_path(), None)
        return super().response_change(request, obj)

    def save_related(self, request, form, formsets, change):
        pass  # no m2m on Reservation; attendees are written by the service

    def log_addition(self, request, obj, message):
        if not self._refused(request):
            super().log_addition(request, obj, message)

    def log_change(self, request, obj, message):
        if not self._refused(request):
            super().log_change(request, obj, message)

    def changed_at_local(self, record) -> str:
        zone = record.space.location.zone
        return f"{record.history_date.astimezone(zone):%Y-%m-%d %H:%M:%S}"

    def booked_time_local(self, record) -> str:
        zone = record.space.location.zone
        start, end = record.start.astimezone(zone), record.end.astimezone(zone)
        return f"{start:%a %d %b %Y %H:%M}-{end:%H:%M}"

    def get_historical_record_context_helper(self, request, historical_record):
        return _HistoryWords(self.model, historical_record)

    @admin.display(description="When (location time)", ordering="start")
    def local_time(self, obj: Reservation) -> str:
        start, end = obj.local_start, obj.local_end
        until = f"{end:%H:%M}" if end.date() == start.date() else f"{end:%Y-%m-%d %H:%M}"
        return f"{start:%Y-%m-%d %H:%M}-{until} {start:%Z}"

    @admin.display(description="Person", ordering="requested_for__username")
    def person(self, obj: Reservation) -> str:
        if obj.requested_for_id:
            return obj.requested_for.get_full_name() or obj.requested_for.username
        return obj.organizer_name or obj.organizer_email or "\u2014"

    @admin.display(description="Status", ordering="status")
    def status_shown(self, obj: Reservation) -> str:
        if obj.approval == Approval.AWAITING:
            return f"{obj.get_status_display()}, awaiting approval"
        return obj.get_status_display()

    @admin.action(description="Cancel selected reservations")
    def cancel_selected(self, request: HttpRequest, queryset) -> HttpResponse | None:
        active = queryset.filter(
            status__in=[ReservationStatus.PENDING, ReservationStatus.CONFIRMED]
        ).select_related("space__location")
        if not admin_confirm.confirmed(request):
            return admin_confirm.confirmation_page(
                self,
                request,
                queryset,
                affected=active,
                action="cancel_selected",
                title="Cancel reservations",
                explanation=(
                    "These reservations will be cancelled: their people are told by email and "
                    "their events are removed from the synced calendars. A cancellation cannot "
                    "be undone."
                ),
                button="Yes, cancel them",
                skipped="The other selected reservations are not active and are left alone.",
            )
        done, refused = 0, []
        for reservation in active:
            try:
                services.cancel(
                    actor=request.user,
                    reservation=reservation,
                    source=Source.ADMIN,
                    reason="Cancelled by an administrator.",
                )
                done += 1
            except services.BookingError as exc:
                refused.append(f"{reservation}: {exc.message}")
        if done:
            self.message_user(request, f"Cancelled {done} reservation(s).", messages.SUCCESS)
        for line in refused:
            self.message_user(request, line, messages.WARNING)
        if not done and not refused:
            self.message_user(request, "Nothing to cancel: those are not active.", messages.INFO)


@admin.register(Series)
class SeriesAdmin(admin.ModelAdmin):
    list_display = ("id", "frequency", "interval", "until", "count", "created")
    readonly_fields = ("frequency", "interval", "weekdays", "until", "count", "created")


@admin.register(UserDeactivation)
class UserDeactivationAdmin(admin.ModelAdmin):
    list_display = ("user", "at", "deactivated_by", "cancelled_reservations", "reason")
    readonly_fields = ("user", "at", "deactivated_by", "cancelled_reservations", "reason")

    def has_add_permission(self, request) -> bool:
        return False


class ProfileInline(admin.StackedInline):
    model = Profile
    can_delete = False
    fields = ("time_zone", "default_location")
    verbose_name = verbose_name_plural = "portal preferences"


class ReservaUserAdmin(UserAdmin):
    """Deactivating a user (unticking Active, or the action) cancels their future bookings."""

    actions = ["deactivate"]
    inlines = [*UserAdmin.inlines, ProfileInline]

    def save_model(self, request, obj, form, change):
        was_active = change and User.objects.filter(pk=obj.pk, is_active=True).exists()
        super().save_model(request, obj, form, change)
        if was_active and not obj.is_active:
            record = services.deactivate_user(actor=request.user, user=obj)
            self.message_user(
                request,
                f"{obj} deactivated; {record.cancelled_reservations} future "
                "reservation(s) cancelled.",
                messages.INFO,
            )

    @admin.action(description="Deactivate and cancel their future reservations")
    def deactivate(self, request, queryset) -> None:
        for user in queryset.filter(is_active=True).exclude(pk=request.user.pk):
            record = services.deactivate_user(actor=request.user, user=user)
            self.message_user(
                request,
                f"{user} deactivated; {record.cancelled_reservations} future "
                "reservation(s) cancelled.",
                messages.INFO,
            )


if admin.site.is_registered(User):
    admin.site.unregister(User)
admin.site.register(User, ReservaUserAdmin)

from . import admin_closures as _admin_closures  # noqa: E402, F401 - closures and their bookings
from . import admin_displays as _admin_displays  # noqa: E402, F401 - room displays
from . import admin_floormaps as _admin_floormaps  # noqa: E402, F401 - floor maps, placing spaces
from . import admin_limits as _admin_limits  # noqa: E402, F401 - limits per person
from .api import admin as _api_admin  # noqa: E402, F401 - integrations and feed keys (issue 9)
