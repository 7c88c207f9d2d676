"""Locations, spaces and reservations.

Times are stored in UTC; a location's IANA zone is used at the edges (validation of opening
hours, recurrence, display). Only ``pending`` and ``confirmed`` reservations hold a slot.
Writes go through ``reservations.services``; nothing else saves a reservation.
"""

from __future__ import annotations

import uuid
import zoneinfo
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords

from .uploads import inspect, read_upload, stored_name, validate_image


def validate_time_zone(value: str) -> None:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise ValidationError(
            _("%(value)s is not an IANA time zone (for example Europe/London)."),
            params={"value": value},
        ) from exc


class EventTitle(models.TextChoices):
    PATRON_NAME = "patron_name", _("Patron name")
    PATRON_NAME_EMAIL = "patron_name_email", _("Patron name and email")
    PUBLIC_NICKNAME = "public_nickname", _("Public nickname")


class NoShowAction(models.TextChoices):
    RELEASE = "release", _("Release the rest of the slot")
    CANCEL = "cancel", _("Cancel the whole booking")


# The check-in window is bounded so a typo cannot keep a no-show's room for hours.
MAX_CHECK_IN_MINUTES = 240


class Location(models.Model):
    name = models.CharField(max_length=200, unique=True)
    address = models.TextField(blank=True)
    time_zone = models.CharField(
        max_length=64, validators=[validate_time_zone], help_text=_("IANA name, e.g. Europe/London")
    )
    booking_horizon_days = models.PositiveIntegerField(
        default=90, help_text=_("How many days ahead bookings may be made.")
    )
    max_booking_minutes = models.PositiveIntegerField(
        default=480, help_text=_("Longest single booking, in minutes.")
    )
    event_title = models.CharField(
        max_length=32,
        choices=EventTitle.choices,
        default=EventTitle.PATRON_NAME,
        help_text=_("What the synced calendar event is titled with."),
    )
    pull_organizer_details = models.BooleanField(
        default=False,
        help_text=_("Fill name and email from the organizer of bookings made in Outlook/Google."),
    )
    check_in_required = models.BooleanField(
        default=False,
        help_text=_(
            "People must check in to their booking (My reservations, the booking's page, the "
            "reminder email, the room's QR code or the API); a booking nobody checks in to is "
            "released when the check-in window closes. Each space may override this."
        ),
    )
    check_in_opens_minutes = models.PositiveSmallIntegerField(
        default=15,
        validators=[MaxValueValidator(MAX_CHECK_IN_MINUTES)],
        help_text=_("Check-in opens this many minutes before the start (a reminder is sent then)."),
    )
    check_in_closes_minutes = models.PositiveSmallIntegerField(
        default=15,
        validators=[MaxValueValidator(MAX_CHECK_IN_MINUTES)],
        help_text=_(
            "Check-in closes this many minutes after the start; a booking not checked in by "
            "then is a no-show (within a minute)."
        ),
    )
    no_show_action = models.CharField(
        max_length=8,
        choices=NoShowAction.choices,
        default=NoShowAction.RELEASE,
        help_text=_(
            "What happens to a no-show: release the rest of the slot (the booking is kept as "
            "'released', its time bookable at once), or cancel the whole booking."
        ),
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.time_zone)


def floor_map_name(instance: FloorMap, filename: str) -> str:
    return stored_name(
        "floormaps", f"{instance.location_id}-floor-{instance.floor}", instance.image
    )


def space_photo_name(instance: Space, filename: str) -> str:
    return stored_name("spaces", instance.name, instance.photo)


class FloorMap(models.Model):
    """The plan of one floor of a location: an uploaded PNG, JPEG or SVG (``uploads``), on
    which the spaces of that floor (``Space.floor``) are placed at relative positions."""

    location = models.ForeignKey(Location, on_delete=models.CASCADE, related_name="floor_maps")
    floor = models.CharField(
        max_length=50,
        help_text=_("As the spaces' Floor field says it, e.g. 1 or Ground."),
    )
    image = models.FileField(
        upload_to=floor_map_name,
        validators=[validate_image],
        help_text=_("A PNG, JPEG or SVG plan of the floor (the size limit is UPLOAD_MAX_BYTES)."),
    )
    width = models.PositiveIntegerField(default=0, editable=False)
    height = models.PositiveIntegerField(default=0, editable=False)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["location", "floor"]
        constraints = [
            models.UniqueConstraint(fields=["location", "floor"], name="one_map_per_floor")
        ]

    def __str__(self) -> str:
        return f"{self.location} floor {self.floor}"

    def save(self, *args, **kwargs) -> None:
        if self.image and not getattr(self.image, "_committed", True):
            info = inspect(read_upload(self.image))
            self.width, self.height = info.width, info.height
        super().save(*args, **kwargs)


class Weekday(models.IntegerChoices):
    MONDAY = 0, _("Monday")
    TUESDAY = 1, _("Tuesday")
    WEDNESDAY = 2, _("Wednesday")
    THURSDAY = 3, _("Thursday")
    FRIDAY = 4, _("Friday")
    SATURDAY = 5, _("Saturday")
    SUNDAY = 6, _("Sunday")


class OpeningHours(models.Model):
    """When a location can be booked on one weekday; a weekday without a row is closed."""

    location = models.ForeignKey(Location, on_delete=models.CASCADE, related_name="opening_hours")
    weekday = models.PositiveSmallIntegerField(choices=Weekday.choices)
    opens = models.TimeField()
    closes = models.TimeField()

    class Meta:
        ordering = ["location", "weekday"]
        constraints = [
            models.UniqueConstraint(fields=["location", "weekday"], name="one_opening_per_weekday"),
            models.CheckConstraint(
                condition=models.Q(closes__gt=models.F("opens")),
                name="opening_closes_after_opens",
                violation_error_message=_("Closing time must be after the opening time."),
            ),
        ]
        verbose_name_plural = _("opening hours")

    def __str__(self) -> str:
        return f"{self.get_weekday_display()} {self.opens:%H:%M}-{self.closes:%H:%M}"


class Closure(models.Model):
    """A dated closure of a whole location or of one space: a holiday, maintenance, a move.

    Dates and times are the location's wall clock (``reservations.closures`` turns them into
    UTC periods). Nothing can be booked in a closed period, from any entry point; bookings that
    already exist there are listed in the admin, which offers to cancel them with a notice.
    """

    location = models.ForeignKey(
        Location,
        on_delete=models.CASCADE,
        related_name="closures",
        help_text=_("The location concerned (for a space, the space's location)."),
    )
    space = models.ForeignKey(
        "Space",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="closures",
        help_text=_("Leave empty to close the whole location; choose a space to close only it."),
    )
    start_date = models.DateField(help_text=_("First closed day, in the location's time zone."))
    end_date = models.DateField(
        help_text=_("Last closed day (included); the same as the first day for a single day.")
    )
    start_time = models.TimeField(
        null=True,
        blank=True,
        help_text=_("Optional: closed from this time on the first day (empty: the whole day)."),
    )
    end_time = models.TimeField(
        null=True,
        blank=True,
        help_text=_("Optional: closed until this time on the last day (empty: the whole day)."),
    )
    reason = models.CharField(
        max_length=200,
        help_text=_(
            "Shown to people when a booking is refused and on the schedule, e.g. "
            "'Christmas Day' or 'Maintenance: new carpets'."
        ),
    )
    yearly = models.BooleanField(
        default=False,
        help_text=_("Repeats every year on the same dates (holidays such as 25 December)."),
    )
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["start_date", "start_time"]
        indexes = [models.Index(fields=["location", "end_date"], name="closure_location_end")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(end_date__gte=models.F("start_date")),
                name="closure_ends_on_or_after_start",
                violation_error_message=_("The last day must be on or after the first day."),
            ),
        ]

    def __str__(self) -> str:
        where = self.space.name if self.space_id else str(self.location)
        days = f"{self.start_date:%Y-%m-%d}"
        if self.end_date != self.start_date:
            days += f" to {self.end_date:%Y-%m-%d}"
        return f"{where} closed {days}: {self.reason}"

    def clean(self) -> None:
        in_other_location = (
            self.space_id is not None
            and self.location_id is not None
            and self.space.location_id != self.location_id
        )
        if in_other_location:
            raise ValidationError({"space": _("This space is in another location.")})
        if self.start_date and self.end_date:
            if self.end_date < self.start_date:
                raise ValidationError({"end_date": _("The last day is before the first day.")})
            if (
                self.start_date == self.end_date
                and self.start_time is not None
                and self.end_time is not None
                and self.end_time <= self.start_time
            ):
                raise ValidationError({"end_time": _("The end must be after the start.")})
            if self.yearly and (self.end_date - self.start_date).days >= 365:
                raise ValidationError(
                    {"yearly": _("A closure that repeats every year must last less than a year.")}
                )


class BookingLimit(models.Model):
    """Limits per person at a location, for everyone there or for the members of one group.

    How several rows combine (``reservations.limits``): a group's row overrides the everyone
    row field by field where it sets a value; when a person is in several groups with rows,
    the most generous value wins (more bookings, more hours, a shorter notice, a longer
    window, overlaps allowed), so facilities staff are not held to contractors' limits.
    Without any row, nobody may hold two overlapping desk bookings; rooms may overlap.
    """

    location = models.ForeignKey(
        Location,
        on_delete=models.CASCADE,
        related_name="booking_limits",
        help_text=_("The location whose bookings these limits count and refuse."),
    )
    group = models.ForeignKey(
        "auth.Group",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="booking_limits",
        help_text=_(
            "Empty: everyone at the location. A group's row overrides the everyone row for "
            "its members, field by field where it sets a value; for someone in several groups "
            "with rows, the most generous value of those groups wins."
        ),
    )
    max_active_bookings = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text=_(
            "At most this many bookings at the location that hold their slot and have not "
            "ended yet, per person (a series counts each date). Empty: no limit of its own."
        ),
    )
    max_hours_per_week = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text=_(
            "At most this many booked hours at the location per person in one week (Monday to "
            "Sunday in the location's time zone, the week of the booking). Empty: no limit."
        ),
    )
    min_notice_minutes = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text=_(
            "Bookings must be made at least this many minutes before they start, e.g. 15; "
            "0 for none. Not applied to bookings made in Outlook or Google."
        ),
    )
    booking_window_days = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text=_(
            "How many days ahead these people may book, instead of the location's horizon "
            "(longer or shorter: e.g. staff 14, facilities 365). Empty: the location's horizon."
        ),
    )
    no_overlap_rooms = models.BooleanField(
        null=True,
        blank=True,
        help_text=_(
            "Refuse a room booking that overlaps another room booking of the same person. "
            "Unknown: as the everyone row, else off."
        ),
    )
    no_overlap_desks = models.BooleanField(
        null=True,
        blank=True,
        help_text=_(
            "Refuse a desk or seat booking that overlaps another desk or seat booking of the "
            "same person. Unknown: as the everyone row, else on."
        ),
    )

    class Meta:
        ordering = ["location", "group__name"]
        constraints = [
            models.UniqueConstraint(
                fields=["location", "group"],
                condition=models.Q(group__isnull=False),
                name="one_booking_limit_per_group",
            ),
            models.UniqueConstraint(
                fields=["location"],
                condition=models.Q(group__isnull=True),
                name="one_booking_limit_for_everyone",
            ),
        ]

    def __str__(self) -> str:
        who = self.group.name if self.group_id else "Everyone"
        return f"{who} at {self.location}"


class Amenity(models.Model):
    name = models.CharField(max_length=100, unique=True)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = _("amenities")

    def __str__(self) -> str:
        return self.name


class SpaceKind(models.TextChoices):
    ROOM = "room", _("Room")
    DESK = "desk", _("Desk")
    SEAT = "seat", _("Seat")
    CONTAINER = "container", _("Container with seats")
    OTHER = "other", _("Other")


# Setup and cleanup buffers are bounded so a typo cannot block a room for days.
MAX_BUFFER_MINUTES = 240


class Space(models.Model):
    location = models.ForeignKey(Location, on_delete=models.PROTECT, related_name="spaces")
    floor = models.CharField(max_length=50, blank=True)
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=16, choices=SpaceKind.choices, default=SpaceKind.ROOM)
    container = models.ForeignKey(
        "self",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="seats",
        limit_choices_to={"kind": SpaceKind.CONTAINER},
        help_text=_("For a seat: the container space it belongs to."),
    )
    capacity = models.PositiveIntegerField(default=1)
    amenities = models.ManyToManyField(Amenity, blank=True, related_name="spaces")
    description = models.TextField(blank=True)
    is_reservable = models.BooleanField(default=True)
    allows_group = models.BooleanField(
        default=False, help_text=_("Whether group reservations with attendees are allowed.")
    )
    setup_minutes = models.PositiveSmallIntegerField(
        default=0,
        validators=[MaxValueValidator(MAX_BUFFER_MINUTES)],
        help_text=_(
            "Minutes kept free before every booking to set the space up (at most 240). "
            "Nobody else can book them; people and calendars see the booked times only. "
            "A change applies to bookings made or moved from then on."
        ),
    )
    cleanup_minutes = models.PositiveSmallIntegerField(
        default=0,
        validators=[MaxValueValidator(MAX_BUFFER_MINUTES)],
        help_text=_(
            "Minutes kept free after every booking to clean or reset the space (at most 240). "
            "A change applies to bookings made or moved from then on."
        ),
    )
    # Check-in overrides of the location's settings (``reservations.checkin.policy_for``).
    check_in_required = models.BooleanField(
        null=True,
        blank=True,
        help_text=_("Check-in for this space: Unknown = as its location, Yes or No overrides."),
    )
    check_in_opens_minutes = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        validators=[MaxValueValidator(MAX_CHECK_IN_MINUTES)],
        help_text=_("Minutes before the start check-in opens; empty = as its location."),
    )
    check_in_closes_minutes = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        validators=[MaxValueValidator(MAX_CHECK_IN_MINUTES)],
        help_text=_("Minutes after the start check-in closes; empty = as its location."),
    )
    no_show_action = models.CharField(
        max_length=8,
        choices=NoShowAction.choices,
        blank=True,
        help_text=_("What happens to a no-show here; empty = as its location."),
    )

    # Where the space is on its floor's map (``FloorMap``), relative to the image: 0..1 from
    # the left and from the top, so any image size works (``reservations.floormaps``).
    map_x = models.FloatField(
        null=True,
        blank=True,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text=_(
            "Position on its floor's map, 0 (left) to 1 (right); set by clicking on the map."
        ),
    )
    map_y = models.FloatField(
        null=True,
        blank=True,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text=_("Position on its floor's map, 0 (top) to 1 (bottom)."),
    )
    photo = models.FileField(
        upload_to=space_photo_name,
        blank=True,
        validators=[validate_image],
        help_text=_("Optional: a PNG, JPEG or SVG image shown in search results and when booking."),
    )

    class Meta:
        ordering = ["location", "floor", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["location", "name"], name="space_name_unique_per_location"
            ),
            models.CheckConstraint(
                condition=(models.Q(map_x__isnull=True) & models.Q(map_y__isnull=True))
                | models.Q(
                    map_x__isnull=False,
                    map_y__isnull=False,
                    map_x__gte=0,
                    map_x__lte=1,
                    map_y__gte=0,
                    map_y__lte=1,
                ),
                name="space_map_position_within_the_map",
                violation_error_message=_(
                    "A place on the floor map needs both coordinates, each from 0 to 1."
                ),
            ),
        ]
        indexes = [models.Index(fields=["location", "kind", "capacity"])]

    def __str__(self) -> str:
        return f"{self.name} ({self.location})"

    @property
    def setup(self) -> timedelta:
        return timedelta(minutes=self.setup_minutes)

    @property
    def cleanup(self) -> timedelta:
        return timedelta(minutes=self.cleanup_minutes)

    def clean(self) -> None:
        if (self.map_x is None) != (self.map_y is None):
            raise ValidationError(
                {
                    "map_y" if self.map_y is None else "map_x": _(
                        "Give both map coordinates, or neither."
                    )
                }
            )
        if self.kind == SpaceKind.SEAT and self.container_id is None:
            raise ValidationError({"container": _("A seat must belong to a container space.")})
        if self.kind != SpaceKind.SEAT and self.container_id is not None:
            raise ValidationError({"container": _("Only seats belong to a container.")})
        if self.container_id is not None:
            container = self.container
            if container.kind != SpaceKind.CONTAINER:
                raise ValidationError({"container": _("The parent must be a container space.")})
            if container.location_id != self.location_id:
                raise ValidationError(
                    {"container": _("A seat must be in the same location as its container.")}
                )


class ReservationKind(models.TextChoices):
    STANDARD = "standard", _("Standard")
    BLOCKER = "blocker", _("Blocker")
    GROUP = "group", _("Group")


class ReservationStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    CONFIRMED = "confirmed", _("Confirmed")
    CANCELLED = "cancelled", _("Cancelled")
    CONFLICTED = "conflicted", _("Conflicted")
    RELEASED = "released", _("Released (nobody checked in)")


SLOT_HOLDING_STATUSES = (ReservationStatus.PENDING, ReservationStatus.CONFIRMED)
# Bookings that are over for good, whatever their remote event says: cancelled, or released
# because nobody checked in (``reservations.checkin``). Neither holds its slot.
ENDED_STATUSES = (ReservationStatus.CANCELLED, ReservationStatus.RELEASED)


class Approval(models.TextChoices):
    """Where a booking stands with its space's approvers (``reservations.approvals``). Kept
    apart from ``pending``, which also means "waiting for the invited room's answer"."""

    NOT_NEEDED = "", _("Not needed")
    AWAITING = "awaiting", _("Awaiting approval")
    APPROVED = "approved", _("Approved")
    DECLINED = "declined", _("Declined")


class ApprovalRule(models.Model):
    """Bookings of a space, or of every space of a kind at a location, need approval.

    Such bookings are made ``pending`` (they hold the slot) until an approver decides; the
    approvers are the members of ``approvers`` (and anyone who may manage every reservation).
    A space's own rule wins over its kind's rule at its location.
    """

    location = models.ForeignKey(
        Location,
        on_delete=models.CASCADE,
        related_name="approval_rules",
        help_text=_("The location concerned (for a space, the space's location)."),
    )
    space = models.ForeignKey(
        "Space",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="approval_rules",
        help_text=_("One space that needs approval. Leave empty and choose a kind instead."),
    )
    space_kind = models.CharField(
        max_length=16,
        choices=SpaceKind.choices,
        blank=True,
        help_text=_(
            "Every space of this kind at the location needs approval (a space's own rule "
            "wins). Leave empty when a space is chosen."
        ),
    )
    approvers = models.ForeignKey(
        "auth.Group",
        on_delete=models.PROTECT,
        related_name="approval_rules",
        help_text=_(
            "The group whose members approve or decline these bookings (members with an "
            "email address are emailed). They, and people who may manage every reservation, "
            "book these spaces without approval."
        ),
    )
    decide_hours_before = models.PositiveIntegerField(
        default=24,
        help_text=_(
            "A booking not decided this many hours before its start is declined automatically "
            "(a booking made later than that waits until its start at most)."
        ),
    )

    class Meta:
        ordering = ["location", "space", "space_kind"]
        constraints = [
            models.CheckConstraint(
                condition=(
                    models.Q(space__isnull=False, space_kind="")
                    | models.Q(space__isnull=True) & ~models.Q(space_kind="")
                ),
                name="approval_rule_space_or_kind",
                violation_error_message=_("Choose a space or a kind of space: one of the two."),
            ),
            models.UniqueConstraint(
                fields=["space"],
                condition=models.Q(space__isnull=False),
                name="one_approval_rule_per_space",
            ),
            models.UniqueConstraint(
                fields=["location", "space_kind"],
                condition=models.Q(space__isnull=True),
                name="one_approval_rule_per_kind",
            ),
        ]

    def __str__(self) -> str:
        where = self.space.name if self.space_id else f"{self.get_space_kind_display()}s"
        return f"{where} at {self.location}: approved by {self.approvers}"

    def clean(self) -> None:
        if self.space_id is None and not self.space_kind:
            raise ValidationError(_("Choose a space or a kind of space."))
        if self.space_id is not None and self.space_kind:
            raise ValidationError({"space_kind": _("Choose a space or a kind, not both.")})
        if (
            self.space_id is not None
            and self.location_id is not None
            and self.space.location_id != self.location_id
        ):
            raise ValidationError({"space": _("This space is in another location.")})


class Source(models.TextChoices):
    PORTAL = "portal", _("Portal")
    EVENT_PLANNER = "event_planner", _("Event planner")
    QUICK = "quick", _("Quick reservation")
    MOBILE = "mobile", _("Mobile")
    REST_API = "rest_api", _("REST API")
    ADMIN = "admin", _("Admin")
    EXCHANGE = "exchange", _("Exchange")
    GOOGLE = "google", _("Google")
    DISPLAY = "display", _("Display")  # a room's paired wall tablet (reservations.displays)


REMOTE_SOURCES = (Source.EXCHANGE, Source.GOOGLE)

# What the portal calls each source: the thing a person used, in their words (the labels
# above are the admin's and the API's names; "Event planner" means nothing to staff).
SOURCE_WORDS = {
    Source.PORTAL: "Booking form",
    Source.EVENT_PLANNER: "Schedule",
    Source.QUICK: "Quick reservation",
    Source.MOBILE: "Mobile app",
    Source.REST_API: "Another system (API)",
    Source.ADMIN: "Admin",
    Source.EXCHANGE: "Outlook calendar",
    Source.GOOGLE: "Google Calendar",
    Source.DISPLAY: "Room display",
}


def source_words(value: str) -> str:
    """The portal's name for a reservation's source (``SOURCE_WORDS``)."""
    if value in SOURCE_WORDS:
        return SOURCE_WORDS[value]
    return Source(value).label if value in Source.values else value


class SyncMailbox(models.TextChoices):
    ROOM = "room", _("Room mailbox")
    USER = "user", _("Requested-for user's mailbox")
    OTHER = "other", _("Delegated mailbox")


class Frequency(models.TextChoices):
    DAILY = "daily", _("Daily")
    WEEKLY = "weekly", _("Weekly")
    MONTHLY_BY_DAY = "monthly_day", _("Monthly on a day of the month")
    MONTHLY_BY_WEEKDAY = "monthly_weekday", _("Monthly on the nth weekday")


class Series(models.Model):
    """The recurrence rule a set of occurrences was made from."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    frequency = models.CharField(max_length=16, choices=Frequency.choices)
    interval = models.PositiveSmallIntegerField(default=1)
    weekdays = models.JSONField(default=list, blank=True, help_text=_("0=Monday ... 6=Sunday"))
    until = models.DateField(null=True, blank=True)
    count = models.PositiveSmallIntegerField(null=True, blank=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = _("series")

    def __str__(self) -> str:
        return f"{self.get_frequency_display()} series {str(self.id)[:8]}"


class HistorySource(models.Model):
    """Extra column on every historical reservation row: where the change came from."""

    change_source = models.CharField(max_length=16, choices=Source.choices, blank=True)

    class Meta:
        abstract = True


class Reservation(models.Model):
    space = models.ForeignKey(Space, on_delete=models.PROTECT, related_name="reservations")
    requested_for = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="reservations",
        null=True,
        blank=True,
        help_text=_("Empty for a reservation that came from outside with an unknown organizer."),
    )
    booked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        null=True,
        blank=True,
    )
    start = models.DateTimeField()
    end = models.DateTimeField()
    title = models.CharField(max_length=255, blank=True)
    public_nickname = models.CharField(max_length=100, blank=True)
    description = models.TextField(blank=True)
    kind = models.CharField(
        max_length=16, choices=ReservationKind.choices, default=ReservationKind.STANDARD
    )
    attendees = models.JSONField(default=list, blank=True, help_text=_("Email addresses"))
    status = models.CharField(
        max_length=16, choices=ReservationStatus.choices, default=ReservationStatus.CONFIRMED
    )
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.PORTAL)
    sync_mailbox = models.CharField(
        max_length=8, choices=SyncMailbox.choices, default=SyncMailbox.ROOM, editable=False
    )
    series = models.ForeignKey(
        Series, on_delete=models.SET_NULL, null=True, blank=True, related_name="occurrences"
    )
    organizer_name = models.CharField(max_length=200, blank=True)
    organizer_email = models.EmailField(blank=True)
    cancel_reason = models.CharField(max_length=255, blank=True)
    # Check-in (``reservations.checkin``): when the person checked in, when a no-show was
    # released, when the check-in reminder was sent (once).
    checked_in_at = models.DateTimeField(null=True, blank=True, editable=False)
    released_at = models.DateTimeField(null=True, blank=True, editable=False)
    check_in_reminded_at = models.DateTimeField(null=True, blank=True, editable=False)
    # The reminder before the start (``reservations.reminders``), claimed once.
    reminder_sent_at = models.DateTimeField(null=True, blank=True, editable=False)
    approval = models.CharField(
        max_length=8,
        choices=Approval.choices,
        blank=True,
        default=Approval.NOT_NEEDED,
        editable=False,
        help_text=_("Set by the booking service for spaces that need approval."),
    )
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        related_name="+",
        null=True,
        blank=True,
        editable=False,
    )
    decided_at = models.DateTimeField(null=True, blank=True, editable=False)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)
    version = models.PositiveIntegerField(default=1, editable=False)
    # The booked times widened by the space's setup and cleanup buffers: the range that no
    # other slot-holding booking of the space may overlap (PostgreSQL's exclusion constraint
    # is built on it). Stamped when the booking is made, moved or given another space, from
    # the space's buffers at that moment; a later change of the buffers leaves it alone, so
    # bookings that were valid stay valid (see ``save``).
    buffered_start = models.DateTimeField(editable=False)
    buffered_end = models.DateTimeField(editable=False)

    history = HistoricalRecords(
        bases=[HistorySource],
        excluded_fields=[
            "updated",
            "buffered_start",
            "buffered_end",
            "check_in_reminded_at",
            "reminder_sent_at",
        ],
    )

    class Meta:
        ordering = ["start"]
        indexes = [
            models.Index(fields=["space", "start", "end"], name="reservation_space_time"),
            models.Index(fields=["requested_for", "start"], name="reservation_user_start"),
            models.Index(fields=["status", "start"], name="reservation_status_start"),
            # "My reservations": a person's upcoming bookings, for them or by them, found
            # without reading their past ones (which only grow).
            models.Index(
                fields=["requested_for", "end"],
                name="reservation_for_upcoming",
                condition=models.Q(status__in=SLOT_HOLDING_STATUSES),
            ),
            models.Index(
                fields=["booked_by", "end"],
                name="reservation_by_upcoming",
                condition=models.Q(status__in=SLOT_HOLDING_STATUSES),
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(end__gt=models.F("start")),
                name="reservation_ends_after_start",
                violation_error_message=_("The end must be after the start."),
            ),
        ]
        permissions = [
            ("book_on_behalf", "Can book on behalf of someone else"),
            ("manage_all", "Can manage every reservation"),
        ]

    def __str__(self) -> str:
        # The wall-clock time of the room, as everyone there reads it (admin titles,
        # history, log entries), with the zone's abbreviation, e.g. "Thames 2026-03-02 10:00
        # GMT".
        start = self.local_start
        return f"{self.space.name} {start:%Y-%m-%d %H:%M} {start:%Z}"

    def save(self, *args, **kwargs) -> None:
        # Restamped only when the booking is new or moved: recomputing on every save (a
        # cancellation, a confirmation) from buffers changed since would widen ranges that
        # another booking may already sit next to.
        placement = self._placement()
        if (
            self.buffered_start is None
            or self.buffered_end is None
            or (placement is not None and placement != getattr(self, "_stamped_for", None))
        ):
            self.stamp_buffers()
            update_fields = kwargs.get("update_fields")
            if update_fields is not None:
                kwargs["update_fields"] = {*update_fields, "buffered_start", "buffered_end"}
        super().save(*args, **kwargs)
        self._stamped_for = self._placement()

    @classmethod
    def from_db(cls, db, field_names, values):
        instance = super().from_db(db, field_names, values)
        instance._stamped_for = instance._placement()
        return instance

    def _placement(self) -> tuple | None:
        fields = self.__dict__
        if "start" not in fields or "end" not in fields or "space_id" not in fields:
            return None  # deferred: not loaded, so not changed either
        return (self.start, self.end, self.space_id)

    def stamp_buffers(self) -> None:
        """Take the space's current setup and cleanup buffers (``reservations.buffers``)."""
        self.buffered_start = self.start - self.space.setup
        self.buffered_end = self.end + self.space.cleanup

    @property
    def holds_slot(self) -> bool:
        return self.status in SLOT_HOLDING_STATUSES

    @property
    def local_start(self) -> datetime:
        return self.start.astimezone(self.space.location.zone)

    @property
    def local_end(self) -> datetime:
        return self.end.astimezone(self.space.location.zone)


class SpaceDayUsage(models.Model):
    """A daily rollup per space for utilisation reports: the minutes released from no-shows.

    Written by the release of each no-show (``reservations.checkin``), in its transaction, as
    an increment; so a report reads one row per space per day and never scans reservations.
    ``day`` is the date in the location's time zone of the released booking's start.
    """

    space = models.ForeignKey(Space, on_delete=models.CASCADE, related_name="day_usage")
    day = models.DateField(help_text=_("In the location's time zone."))
    released_minutes = models.PositiveIntegerField(
        default=0, help_text=_("Booked minutes given back because nobody checked in.")
    )

    class Meta:
        ordering = ["-day", "space"]
        verbose_name = _("space usage per day")
        verbose_name_plural = _("space usage per day")
        constraints = [
            models.UniqueConstraint(fields=["space", "day"], name="one_usage_row_per_space_day")
        ]

    def __str__(self) -> str:
        return f"{self.space.name} {self.day:%Y-%m-%d}"


class SpaceDayStats(models.Model):
    """The insights' daily rollup: one row per space per day (in the location's time zone).

    Rebuilt whole for a location and a day by ``reservations.insights.rollup`` (a beat task
    for yesterday and today, ``manage.py rollup_insights`` for any period), so the Insights
    page sums these rows and never scans reservations. A booking counts when it held its slot
    (pending, confirmed) or was a no-show (released, or cancelled by the no-show rule); its
    counts and lengths go to the day it starts, its booked minutes to the days and hours it
    covers (a no-show's until it was released). ``h00``..``h23``: booked minutes per hour of
    the day, on the location's wall clock (added below the class).
    """

    space = models.ForeignKey(Space, on_delete=models.CASCADE, related_name="day_stats")
    day = models.DateField(help_text=_("In the location's time zone."))
    weekday = models.PositiveSmallIntegerField(choices=Weekday.choices)
    available_minutes = models.PositiveIntegerField(
        default=0, help_text=_("Opening hours of that day minus closures (0: not bookable).")
    )
    booked_minutes = models.PositiveIntegerField(default=0)
    bookings = models.PositiveIntegerField(default=0, help_text=_("Bookings starting that day."))
    check_in_required = models.BooleanField(default=False)
    checked_in = models.PositiveIntegerField(default=0)
    released = models.PositiveIntegerField(
        default=0, help_text=_("No-shows: released, or cancelled because nobody checked in.")
    )
    released_minutes = models.PositiveIntegerField(default=0)
    booking_minutes = models.PositiveIntegerField(
        default=0, help_text=_("Sum of the lengths of the bookings starting that day.")
    )
    lead_minutes = models.BigIntegerField(
        default=0, help_text=_("Sum of (start - made) of the bookings starting that day.")
    )

    class Meta:
        ordering = ["-day", "space"]
        verbose_name = _("space statistics per day")
        verbose_name_plural = _("space statistics per day")
        constraints = [
            models.UniqueConstraint(fields=["space", "day"], name="one_stats_row_per_space_day")
        ]
        indexes = [models.Index(fields=["day", "space"], name="space_day_stats_day")]
        permissions = [("view_insights", "Can view occupancy insights")]

    def __str__(self) -> str:
        return f"{self.space.name} {self.day:%Y-%m-%d}"


HOUR_FIELDS = tuple(f"h{hour:02d}" for hour in range(24))


def _add_hour_fields(model: type[models.Model]) -> None:
    for hour, name in enumerate(HOUR_FIELDS):
        model.add_to_class(
            name,
            models.PositiveIntegerField(
                default=0, help_text=_("Booked minutes from %(h)02d:00 (local).") % {"h": hour}
            ),
        )


_add_hour_fields(SpaceDayStats)


class SpaceDaySource(models.Model):
    """How many of a ``SpaceDayStats`` row's bookings came from each source (portal, REST
    API, Exchange, ...): a row per source present, so a new ``Source`` needs no migration.
    ``space`` and ``day`` repeat the row's, so the page filters these rows without a join."""

    stats = models.ForeignKey(SpaceDayStats, on_delete=models.CASCADE, related_name="sources")
    space = models.ForeignKey(Space, on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    source = models.CharField(max_length=16)
    bookings = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["stats", "source"], name="one_source_row_per_stats")
        ]
        indexes = [models.Index(fields=["day", "space"], name="space_day_source_day")]

    def __str__(self) -> str:
        return f"{self.stats} {self.source}"


class SpaceMonthStats(models.Model):
    """The daily rollup summed per space, month and weekday, so a long period reads a
    seventh of a month's rows instead of one a day (``reservations.insights``: a year of 1,000
    spaces is 84,000 rows, not 365,000). Rebuilt from ``SpaceDayStats`` for every month a
    rebuild touches; the Insights page reads the whole months of a period here and the days
    at its edges from the daily rows. Fields as ``SpaceDayStats``, summed; ``check_in_bookings``
    replaces the daily flag (the bookings of the days when check-in was required).
    """

    space = models.ForeignKey(Space, on_delete=models.CASCADE, related_name="month_stats")
    month = models.DateField(help_text=_("The first day of the month."))
    weekday = models.PositiveSmallIntegerField(choices=Weekday.choices)
    available_minutes = models.PositiveIntegerField(default=0)
    booked_minutes = models.PositiveIntegerField(default=0)
    bookings = models.PositiveIntegerField(default=0)
    check_in_bookings = models.PositiveIntegerField(default=0)
    checked_in = models.PositiveIntegerField(default=0)
    released = models.PositiveIntegerField(default=0)
    released_minutes = models.PositiveIntegerField(default=0)
    booking_minutes = models.PositiveIntegerField(default=0)
    lead_minutes = models.BigIntegerField(default=0)

    class Meta:
        ordering = ["-month", "space", "weekday"]
        verbose_name = _("space statistics per month")
        verbose_name_plural = _("space statistics per month")
        constraints = [
            models.UniqueConstraint(
                fields=["space", "month", "weekday"], name="one_stats_row_per_space_month_weekday"
            )
        ]
        indexes = [models.Index(fields=["month", "space"], name="space_month_stats_month")]

    def __str__(self) -> str:
        return f"{self.space.name} {self.month:%Y-%m} {self.get_weekday_display()}"


_add_hour_fields(SpaceMonthStats)


class SpaceMonthSource(models.Model):
    """``SpaceDaySource`` summed per space and month (the source counts of a long period)."""

    space = models.ForeignKey(Space, on_delete=models.CASCADE, related_name="+")
    month = models.DateField()
    source = models.CharField(max_length=16)
    bookings = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["space", "month", "source"], name="one_source_row_per_space_month"
            )
        ]
        indexes = [models.Index(fields=["month", "space"], name="space_month_source_month")]

    def __str__(self) -> str:
        return f"{self.space.name} {self.month:%Y-%m} {self.source}"


class UserDeactivation(models.Model):
    """Record of a user being deactivated and what happened to their bookings."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="deactivations"
    )
    deactivated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    at = models.DateTimeField(auto_now_add=True)
    cancelled_reservations = models.PositiveIntegerField(default=0)
    reason = models.CharField(max_length=255, blank=True)

    class Meta:
        ordering = ["-at"]

    def __str__(self) -> str:
        return f"{self.user} deactivated {self.at:%Y-%m-%d}"


class Profile(models.Model):
    """A portal user's preferences. Created on first use (``Profile.for_user``)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="reservation_profile"
    )
    time_zone = models.CharField(
        max_length=64,
        blank=True,
        validators=[validate_time_zone],
        help_text=_("IANA name, e.g. Europe/London; empty means the site default."),
    )
    default_location = models.ForeignKey(
        Location,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text=_("Where searches and quick reservations start."),
    )
    email_reminders = models.BooleanField(
        default=True,
        help_text=_("Email a reminder shortly before each of my bookings starts."),
    )

    def __str__(self) -> str:
        return f"Profile of {self.user}"

    @classmethod
    def for_user(cls, user) -> Profile:
        # With the default location: find a space and the schedule open there.
        profile, _created = cls.objects.select_related("default_location").get_or_create(user=user)
        return profile

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.time_zone or settings.TIME_ZONE)


class IntegrationRole(models.TextChoices):
    READ_ONLY = "read_only", _("Read only (public fields)")
    READ_ALL = "read_all", _("Read all")
    BOOK_FOR_ANYONE = "book_for_anyone", _("Book for anyone")
    BOOK_FOR_ITSELF = "book_for_itself", _("Book for itself")


class IntegrationAccount(models.Model):
    """Marks a user as the integration user of an external system (REST API client).

    Such a user is web-service only: it cannot sign in to the portal or the admin
    (``reservations.accounts``), it acts only through OAuth tokens issued to its clients, and
    its ``role`` limits what those tokens may do (``reservations.api.permissions``).
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="integration_account"
    )
    role = models.CharField(
        max_length=16, choices=IntegrationRole.choices, default=IntegrationRole.READ_ONLY
    )
    is_mobile_app = models.BooleanField(
        default=False,
        help_text=_("The first-party mobile app: its bookings are recorded with source Mobile."),
    )
    notes = models.TextField(blank=True)

    def __str__(self) -> str:
        return f"{self.user} ({self.get_role_display()})"

    def save(self, *args, **kwargs) -> None:
        super().save(*args, **kwargs)
        # The booking rules know permissions, not roles: "book for anyone" is the on-behalf and
        # manage-all permissions, so every entry point judges this user the same way.
        from django.contrib.auth.models import Permission

        perms = Permission.objects.filter(
            content_type__app_label="reservations", codename__in=("book_on_behalf", "manage_all")
        )
        if self.role == IntegrationRole.BOOK_FOR_ANYONE:
            self.user.user_permissions.add(*perms)
        else:
            self.user.user_permissions.remove(*perms)


def is_web_service_only(user) -> bool:
    """True for integration users, who may use the API but never sign in interactively."""
    if user is None or not getattr(user, "pk", None):
        return False
    return IntegrationAccount.objects.filter(user_id=user.pk).exists()


class FeedToken(models.Model):
    """The secret part of an iCalendar feed URL: one user's bookings or one space's busy times.

    The key is the capability (whoever has the URL reads the feed, as calendar apps cannot
    authenticate), so it is long and random; rotating revokes the old key and issues a new one.
    Only its SHA-256 is stored (``reservations.feeds.hash_key``): the URL is shown once, when
    it is issued, and neither a database dump nor the admin can give it back.
    """

    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="feed_tokens",
    )
    space = models.ForeignKey(
        Space, on_delete=models.CASCADE, null=True, blank=True, related_name="feed_tokens"
    )
    created = models.DateTimeField(auto_now_add=True)
    # Recorded at most every few minutes (feeds.LAST_USED_RESOLUTION): polls are frequent.
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created"]
        constraints = [
            models.CheckConstraint(
                condition=(models.Q(user__isnull=False, space__isnull=True))
                | (models.Q(user__isnull=True, space__isnull=False)),
                name="feed_token_for_user_xor_space",
                violation_error_message=_("A feed is of one person or of one space."),
            )
        ]

    def __str__(self) -> str:
        owner = self.user or self.space
        state = "revoked" if self.revoked_at else "active"
        return f"Feed of {owner} ({state})"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class Display(models.Model):
    """A wall tablet at a space's door (``reservations.displays``): it shows the room's state
    and books, checks in, ends early and extends from ``/display/<token>/``.

    The token in that URL is the credential (the tablet cannot sign in): only its SHA-256 is
    stored. It is issued when the tablet types the one-time 6-digit pairing code shown in the
    admin (kept as an HMAC, valid 10 minutes, used once). The display acts as ``user``, an
    account of its own that cannot sign in, so its actions go through the booking service and
    every rule like anyone's, recorded with source *Display*.
    """

    space = models.ForeignKey(Space, on_delete=models.CASCADE, related_name="displays")
    name = models.CharField(
        max_length=100, blank=True, help_text=_("Optional, e.g. 'Door tablet, north entrance'.")
    )
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="room_display",
        editable=False,
        help_text=_("The account the display books as (it cannot sign in)."),
    )
    token_hash = models.CharField(max_length=64, blank=True, editable=False)
    pairing_code_hash = models.CharField(max_length=64, blank=True, editable=False)
    pairing_expires_at = models.DateTimeField(null=True, blank=True, editable=False)
    paired_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)
    # Written at most every ~30 s (displays.SEEN_RESOLUTION): the tablet polls every 5 s.
    last_seen_at = models.DateTimeField(null=True, blank=True, editable=False)
    # Set when the "not seen" alert is sent; cleared when the display is seen again, so one
    # email per outage.
    offline_alerted_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        editable=False,
    )
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["space__name", "pk"]
        verbose_name = _("room display")
        constraints = [
            models.UniqueConstraint(
                fields=["token_hash"],
                condition=~models.Q(token_hash=""),
                name="one_display_per_token",
            )
        ]

    def __str__(self) -> str:
        return f"Display of {self.space.name}" + (f" ({self.name})" if self.name else "")

    @property
    def is_active(self) -> bool:
        return self.paired_at is not None and self.revoked_at is None

    @classmethod
    def acts_for(cls, user, space_id: int) -> bool:
        """Whether ``user`` is the account of a paired, unrevoked display of that space."""
        if user is None or not getattr(user, "pk", None):
            return False
        return cls.objects.filter(
            user_id=user.pk, space_id=space_id, paired_at__isnull=False, revoked_at__isnull=True
        ).exists()
