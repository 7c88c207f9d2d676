"""JSON shapes of the API. Times are ISO 8601 with an offset, given back in the space's zone.

Input times without an offset are refused (which wall clock would they be?). ``requested_for``
is a person's email address, the identifier other systems share with Reserva.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from .. import timebounds
from ..models import (
    Amenity,
    Frequency,
    Location,
    OpeningHours,
    Reservation,
    ReservationKind,
    Space,
    SpaceKind,
)
from ..recurrence import MAX_OCCURRENCES
from ..services import Scope

MAX_WEST, MAX_EAST = timedelta(hours=12), timedelta(hours=14)


@extend_schema_field(OpenApiTypes.DATETIME)
class AwareDateTimeField(serializers.Field):
    """An ISO 8601 date-time that must carry an offset; output in the given zone, if any."""

    default_error_messages = {
        "invalid": "Give an ISO 8601 date-time, e.g. 2030-01-15T09:00:00+01:00.",
        "naive": "Include a UTC offset (e.g. +01:00 or Z).",
        "offset": "A UTC offset must lie between -12:00 and +14:00.",
        "range": timebounds.OUT_OF_RANGE,
    }

    def to_internal_value(self, data) -> datetime:
        if not isinstance(data, str):
            self.fail("invalid")
        try:
            value = parse_datetime(data.strip())
        except ValueError:
            value = None
        if value is None:
            self.fail("invalid")
        if timezone.is_naive(value):
            self.fail("naive")
        offset = value.utcoffset()
        # Every zone on Earth lies within these; PostgreSQL refuses offsets past 15:59
        # ("time zone displacement out of range"), which answered 500.
        if not -MAX_WEST <= offset <= MAX_EAST:
            self.fail("offset")
        if not timebounds.in_range(value):
            self.fail("range")
        return value

    def to_representation(self, value: datetime) -> str:
        return value.isoformat()


def _in_zone(value: datetime, reservation_or_space) -> str:
    space = getattr(reservation_or_space, "space", reservation_or_space)
    return value.astimezone(space.location.zone).isoformat()


@extend_schema_field({"type": "string", "pattern": "^[0-2][0-9]:[0-5][0-9]$", "example": "09:00"})
class WallClockField(serializers.TimeField):
    """A local wall-clock time (HH:MM) in the location's zone; OpenAPI's ``time`` format would
    claim an offset, which opening hours do not have."""

    def __init__(self, **kwargs) -> None:
        super().__init__(format="%H:%M", **kwargs)


class OpeningHoursSerializer(serializers.ModelSerializer):
    opens = WallClockField(read_only=True)
    closes = WallClockField(read_only=True)

    class Meta:
        model = OpeningHours
        fields = ["weekday", "opens", "closes"]


class LocationSerializer(serializers.ModelSerializer):
    opening_hours = OpeningHoursSerializer(many=True, read_only=True)

    class Meta:
        model = Location
        fields = [
            "id",
            "name",
            "address",
            "time_zone",
            "booking_horizon_days",
            "max_booking_minutes",
            "opening_hours",
        ]


class SpaceSerializer(serializers.ModelSerializer):
    amenities = serializers.SlugRelatedField(many=True, read_only=True, slug_field="name")

    class Meta:
        model = Space
        fields = [
            "id",
            "location",
            "name",
            "floor",
            "kind",
            "capacity",
            "amenities",
            "description",
            "is_reservable",
            "allows_group",
            "container",
        ]


class AmenitySerializer(serializers.ModelSerializer):
    class Meta:
        model = Amenity
        fields = ["id", "name"]


class SlotSerializer(serializers.Serializer):
    start = serializers.CharField(help_text="ISO 8601 with the location's offset")
    end = serializers.CharField(help_text="ISO 8601 with the location's offset")


class FreeSlotsSerializer(serializers.Serializer):
    space = serializers.IntegerField()
    date = serializers.DateField()
    time_zone = serializers.CharField()
    slots = SlotSerializer(many=True)


class LocalTimesMixin:
    """``start`` and ``end`` in the location's zone (each serializer declares the two fields)."""

    @extend_schema_field(OpenApiTypes.DATETIME)
    def get_start(self, obj: Reservation) -> str:
        return _in_zone(obj.start, obj)

    @extend_schema_field(OpenApiTypes.DATETIME)
    def get_end(self, obj: Reservation) -> str:
        return _in_zone(obj.end, obj)


class ReservationSerializer(LocalTimesMixin, serializers.ModelSerializer):
    """A reservation as clients read it."""

    start = serializers.SerializerMethodField()
    end = serializers.SerializerMethodField()
    requested_for = serializers.SerializerMethodField()
    booked_by = serializers.SerializerMethodField()

    class Meta:
        model = Reservation
        fields = [
            "id",
            "space",
            "start",
            "end",
            "title",
            "public_nickname",
            "description",
            "requested_for",
            "booked_by",
            "kind",
            "attendees",
            "status",
            "approval",
            "source",
            "series",
            "version",
            "checked_in_at",
            "released_at",
            "created",
            "updated",
        ]
        read_only_fields = fields
        extra_kwargs = {
            "approval": {
                "help_text": (
                    "Empty when the space needs no approval; `awaiting` while an approver has "
                    "not decided (status `pending`, the slot is held), then `approved` "
                    "(status `confirmed`) or `declined` (status `cancelled`, with the reason)."
                )
            }
        }

    @extend_schema_field({"type": "string", "format": "email", "nullable": True})
    def get_requested_for(self, obj: Reservation) -> str | None:
        return obj.requested_for.email if obj.requested_for_id else None

    @extend_schema_field({"type": "string", "format": "email", "nullable": True})
    def get_booked_by(self, obj: Reservation) -> str | None:
        return obj.booked_by.email if obj.booked_by_id else None


class PublicReservationSerializer(LocalTimesMixin, serializers.ModelSerializer):
    """A reservation as a read-only integration (signage, reports) reads it: the space, the
    times and the public nickname (or "Reserved"); never the title, description, people or
    their addresses. The read-all role gets ``ReservationSerializer``."""

    start = serializers.SerializerMethodField()
    end = serializers.SerializerMethodField()
    public_nickname = serializers.SerializerMethodField()

    class Meta:
        model = Reservation
        fields = ["id", "space", "start", "end", "public_nickname", "status"]
        read_only_fields = fields

    def get_public_nickname(self, obj: Reservation) -> str:
        return obj.public_nickname or "Reserved"


@extend_schema_field({"type": "string", "format": "email", "nullable": True})
class PersonField(serializers.Field):
    """An active user, named by email address."""

    default_error_messages = {
        "invalid": "Enter a valid email address.",
        "unknown": "No single active person has this email address.",
    }

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        email = data.strip()
        try:
            validate_email(email)
        except DjangoValidationError:
            self.fail("invalid")
        users = get_user_model().objects.filter(email__iexact=email, is_active=True)[:2]
        if len(users) != 1:
            self.fail("unknown")
        return users[0]

    def to_representation(self, value) -> str:
        return value.email


class RecurrenceSerializer(serializers.Serializer):
    frequency = serializers.ChoiceField(choices=Frequency.choices)
    interval = serializers.IntegerField(min_value=1, max_value=99, default=1)
    weekdays = serializers.ListField(
        child=serializers.IntegerField(min_value=0, max_value=6),
        required=False,
        default=list,
        max_length=7,
        help_text="For weekly rules: 0=Monday ... 6=Sunday",
    )
    until = serializers.DateField(required=False, allow_null=True, default=None)
    count = serializers.IntegerField(
        min_value=1, max_value=MAX_OCCURRENCES, required=False, allow_null=True, default=None
    )
    last_weekday = serializers.BooleanField(required=False, default=False)

    def validate(self, attrs):
        if attrs.get("until") is None and attrs.get("count") is None:
            raise serializers.ValidationError("Give 'until' or 'count'.")
        return attrs


MAX_ID = 10**18  # larger ids cannot exist; checked before the database sees them


class SpaceField(serializers.PrimaryKeyRelatedField):
    """A space by id; out-of-range ids are a 400, not a database overflow."""

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int | str):
            self.fail("incorrect_type", data_type=type(data).__name__)
        try:
            number = int(data)
        except (TypeError, ValueError):
            self.fail("incorrect_type", data_type=type(data).__name__)
        if not 0 < number < MAX_ID:
            self.fail("does_not_exist", pk_value=data)
        return super().to_internal_value(number)


class ReservationCreateSerializer(serializers.Serializer):
    space = SpaceField(queryset=Space.objects.select_related("location"))
    start = AwareDateTimeField()
    end = AwareDateTimeField()
    title = serializers.CharField(max_length=255, required=False, default="", allow_blank=True)
    public_nickname = serializers.CharField(
        max_length=100, required=False, default="", allow_blank=True
    )
    description = serializers.CharField(
        max_length=10000, required=False, default="", allow_blank=True
    )
    requested_for = PersonField(
        required=False, allow_null=True, default=None, help_text="Email; default: the caller"
    )
    kind = serializers.ChoiceField(choices=ReservationKind.choices, default="standard")
    attendees = serializers.ListField(
        child=serializers.EmailField(), required=False, default=list, max_length=500
    )

    def validate(self, attrs):
        if attrs["end"] <= attrs["start"]:
            raise serializers.ValidationError({"end": ["The end must be after the start."]})
        return attrs


class SeriesCreateSerializer(ReservationCreateSerializer):
    recurrence = RecurrenceSerializer()
    skip_unavailable = serializers.BooleanField(
        default=False, help_text="Book the dates that can be booked; report the others."
    )


class UnavailableSerializer(serializers.Serializer):
    date = serializers.DateField()
    reason = serializers.CharField()


class SeriesResultSerializer(serializers.Serializer):
    reservations = ReservationSerializer(many=True)
    skipped = UnavailableSerializer(many=True)


UNCHANGEABLE = {  # what PATCH answers for fields a reservation has but PATCH does not change
    "status": "Cancel with POST .../cancel/; the status cannot be set.",
    "kind": "The kind of a booking cannot be changed; cancel it and book again.",
}


class ReservationUpdateSerializer(serializers.Serializer):
    """What PATCH may change. Any other field is refused by name (400), never ignored: a client
    that sends ``status`` or a typo must learn that nothing of it was applied."""

    space = SpaceField(queryset=Space.objects.select_related("location"), required=False)
    start = AwareDateTimeField(required=False)
    end = AwareDateTimeField(required=False)
    title = serializers.CharField(max_length=255, required=False, allow_blank=True)
    public_nickname = serializers.CharField(max_length=100, required=False, allow_blank=True)
    description = serializers.CharField(max_length=10000, required=False, allow_blank=True)
    attendees = serializers.ListField(
        child=serializers.EmailField(), required=False, max_length=500
    )
    requested_for = PersonField(
        required=False,
        help_text="Email; hands the booking to this person (needs the right to book for them)",
    )
    scope = serializers.ChoiceField(choices=[s.value for s in Scope], default=Scope.THIS.value)
    version = serializers.IntegerField(
        required=False, min_value=1, help_text="The version you read; refused if it changed."
    )

    def to_internal_value(self, data):
        if isinstance(data, Mapping):
            refused = {
                str(name): [
                    UNCHANGEABLE.get(name, "This field cannot be changed.")
                    if name in ReservationSerializer.Meta.fields
                    else "Unknown field."
                ]
                for name in data
                if name not in self.fields
            }
            if refused:
                raise serializers.ValidationError(refused)
        return super().to_internal_value(data)


class DeclineSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=200, required=False, default="", allow_blank=True)


class CancelSerializer(serializers.Serializer):
    scope = serializers.ChoiceField(choices=[s.value for s in Scope], default=Scope.THIS.value)
    reason = serializers.CharField(max_length=255, required=False, default="", allow_blank=True)
    version = serializers.IntegerField(required=False, min_value=1)


SPACE_KINDS = [k.value for k in SpaceKind]
