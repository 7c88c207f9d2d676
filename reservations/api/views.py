"""API views: read-only catalogue (locations, spaces, availability) and reservations.

Every write calls ``reservations.services`` with the caller as actor and source REST API (or
Mobile for the first-party app), so the booking rules and sync policies apply as in the portal;
their exceptions become JSON errors in ``errors.py``.
"""

from __future__ import annotations

from datetime import timedelta

from django.db.models import Q, QuerySet
from django.utils import timezone
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action, api_view, permission_classes
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response

from .. import approvals, freetimes, queries, rules, services, timebounds
from ..models import (
    Location,
    Reservation,
    ReservationStatus,
    Space,
    SpaceKind,
)
from ..recurrence import Recurrence
from . import schema as _schema  # noqa: F401 - registers the token scheme
from . import serializers as s
from .permissions import caller, source_for

ID_REGEX = r"[0-9]{1,18}"
MAX_ID = s.MAX_ID


# --- query parameters -----------------------------------------------------------------------


class SpaceFilter(serializers.Serializer):
    location = serializers.IntegerField(required=False, min_value=1, max_value=MAX_ID)
    kind = serializers.ChoiceField(choices=SpaceKind.choices, required=False)
    min_capacity = serializers.IntegerField(required=False, min_value=1, max_value=100000)
    amenity = serializers.ListField(
        child=serializers.CharField(max_length=100),
        required=False,
        help_text="Amenity name; repeat for several (all required)",
    )


class AvailabilityQuery(SpaceFilter):
    start = s.AwareDateTimeField()
    end = s.AwareDateTimeField()

    def validate(self, attrs):
        if attrs["end"] <= attrs["start"]:
            raise serializers.ValidationError({"end": ["The end must be after the start."]})
        if attrs["end"] - attrs["start"] > timedelta(days=31):
            raise serializers.ValidationError({"end": ["Ask for at most 31 days at a time."]})
        return attrs


class FreeSlotsQuery(serializers.Serializer):
    date = serializers.DateField(help_text="The day, in the space's location zone")

    def validate_date(self, value):
        if not timebounds.in_range(value):
            raise serializers.ValidationError(timebounds.OUT_OF_RANGE)
        return value


class ReservationFilter(serializers.Serializer):
    space = serializers.IntegerField(required=False, min_value=1, max_value=MAX_ID)
    location = serializers.IntegerField(required=False, min_value=1, max_value=MAX_ID)
    start = s.AwareDateTimeField(required=False, help_text="Only bookings ending after this")
    end = s.AwareDateTimeField(required=False, help_text="Only bookings starting before this")
    status = serializers.ChoiceField(choices=ReservationStatus.choices, required=False)
    requested_for = serializers.EmailField(required=False)


def _query(serializer_class, request: Request) -> dict:
    data = {}
    for name, field in serializer_class().fields.items():
        if isinstance(field, serializers.ListField):
            values = request.query_params.getlist(name)
            if values:
                data[name] = values
        elif name in request.query_params:
            data[name] = request.query_params[name]
    query = serializer_class(data=data)
    query.is_valid(raise_exception=True)
    return query.validated_data


def _filter_spaces(spaces: QuerySet[Space], params: dict) -> QuerySet[Space]:
    if "location" in params:
        spaces = spaces.filter(location_id=params["location"])
    if "kind" in params:
        spaces = spaces.filter(kind=params["kind"])
    if "min_capacity" in params:
        spaces = spaces.filter(capacity__gte=params["min_capacity"])
    for name in params.get("amenity", []):
        spaces = spaces.filter(amenities__name__iexact=name)
    return spaces.distinct()


# --- catalogue ------------------------------------------------------------------------------


class LocationViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = s.LocationSerializer
    queryset = Location.objects.prefetch_related("opening_hours").order_by("name")
    lookup_value_regex = ID_REGEX


@extend_schema_view(list=extend_schema(parameters=[SpaceFilter]))
class SpaceViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = s.SpaceSerializer
    lookup_value_regex = ID_REGEX

    def get_queryset(self) -> QuerySet[Space]:
        spaces = Space.objects.select_related("location").prefetch_related("amenities")
        if self.action == "list":
            spaces = _filter_spaces(spaces, _query(SpaceFilter, self.request))
        return spaces.order_by("location__name", "floor", "name", "pk")

    @extend_schema(parameters=[FreeSlotsQuery], responses=s.FreeSlotsSerializer)
    @action(detail=True, methods=["get"], url_path="free-slots", pagination_class=None)
    def free_slots(self, request: Request, pk: str) -> Response:
        """The free periods of a space on one day, within the location's opening hours and
        outside its closures (and its location's): the times a booking may start and end,
        leaving the space's setup and cleanup buffers and those of the bookings around it
        free."""
        space = self.get_object()
        day = _query(FreeSlotsQuery, request)["date"]
        location = space.location
        zone = location.zone
        slots: list[dict] = []
        if space.is_reservable and space.kind != SpaceKind.CONTAINER:
            slots = [
                {"start": start, "end": end}
                for start, end in freetimes.free_periods(space, day, day)
            ]
        body = {
            "space": space.pk,
            "date": day,
            "time_zone": location.time_zone,
            "slots": [
                {
                    "start": x["start"].astimezone(zone).isoformat(),
                    "end": x["end"].astimezone(zone).isoformat(),
                }
                for x in slots
            ],
        }
        return Response(s.FreeSlotsSerializer(body).data)


class AvailabilityViewSet(viewsets.GenericViewSet):
    """Spaces free for the whole of a window (smallest fitting first)."""

    serializer_class = s.SpaceSerializer

    @extend_schema(parameters=[AvailabilityQuery], responses=s.SpaceSerializer(many=True))
    def list(self, request: Request) -> Response:
        params = _query(AvailabilityQuery, request)
        spaces = queries.free_spaces(params["start"], params["end"])
        spaces = _filter_spaces(spaces, params).select_related("location")
        spaces = spaces.prefetch_related("amenities").order_by("capacity", "name", "pk")
        page = self.paginate_queryset(spaces)
        return self.get_paginated_response(self.get_serializer(page, many=True).data)


# --- reservations ---------------------------------------------------------------------------


def _visible_reservations(request: Request) -> QuerySet[Reservation]:
    reservations = Reservation.objects.select_related(
        "space__location", "requested_for", "booked_by"
    )
    # Read-only integrations (reports, signage: public fields only, see get_serializer_class),
    # read-all ones and managers see every booking; everyone else, and an integration that
    # books for itself, sees the bookings they are part of.
    who = caller(request)
    sees_all = rules.can_manage_all(request.user) or who.reads_every_booking
    if who.books_only_for_itself or not sees_all:
        user = request.user
        reservations = reservations.filter(Q(requested_for=user) | Q(booked_by=user))
    return reservations


@extend_schema_view(
    list=extend_schema(parameters=[ReservationFilter]),
    create=extend_schema(
        request=s.ReservationCreateSerializer, responses={201: s.ReservationSerializer}
    ),
    partial_update=extend_schema(
        request=s.ReservationUpdateSerializer, responses=s.ReservationSerializer
    ),
)
class ReservationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = s.ReservationSerializer
    lookup_value_regex = ID_REGEX

    def get_serializer_class(self):
        # drf-spectacular's schema run has no caller (and documents the full shape).
        schema_run = getattr(self, "swagger_fake_view", False)
        if not schema_run and caller(self.request).sees_public_fields_only:
            return s.PublicReservationSerializer
        return s.ReservationSerializer

    def get_queryset(self) -> QuerySet[Reservation]:
        reservations = _visible_reservations(self.request)
        if self.action == "list":
            params = _query(ReservationFilter, self.request)
            if "requested_for" in params and caller(self.request).sees_public_fields_only:
                # Filtering by person would tell whose the public bookings are.
                raise serializers.ValidationError(
                    {"requested_for": ["A read-only integration cannot filter by person."]}
                )
            if "space" in params:
                reservations = reservations.filter(space_id=params["space"])
            if "location" in params:
                reservations = reservations.filter(space__location_id=params["location"])
            if "start" in params:
                reservations = reservations.filter(end__gt=params["start"])
            if "end" in params:
                reservations = reservations.filter(start__lt=params["end"])
            if "status" in params:
                reservations = reservations.filter(status=params["status"])
            if "requested_for" in params:
                reservations = reservations.filter(
                    requested_for__email__iexact=params["requested_for"]
                )
        return reservations.order_by("start", "pk")

    def _booking_args(self, data: dict) -> dict:
        requested_for = data.get("requested_for") or self.request.user
        if caller(self.request).books_only_for_itself and requested_for != self.request.user:
            raise PermissionDenied("This integration may only book for itself.")
        return {
            "actor": self.request.user,
            "space": data["space"],
            "start": data["start"],
            "end": data["end"],
            "requested_for": requested_for,
            "title": data["title"],
            "public_nickname": data["public_nickname"],
            "description": data["description"],
            "kind": data["kind"],
            "attendees": data["attendees"],
            "source": source_for(self.request),
        }

    def _read(self, reservation: Reservation) -> Reservation:
        return Reservation.objects.select_related(
            "space__location", "requested_for", "booked_by"
        ).get(pk=reservation.pk)

    def create(self, request: Request) -> Response:
        """Book a space once. 409 names the clashing slot and the same space's next free
        slots of the same length (``next_free``)."""
        incoming = s.ReservationCreateSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        args = self._booking_args(incoming.validated_data)
        try:
            result = services.book(**args)
        except services.Conflict as exc:
            # The same room's next free slots of the same length, for the 409's `next_free`.
            exc.next_free = freetimes.next_free(
                args["space"], args["start"], args["end"], now=timezone.now()
            )
            raise
        reservation = self._read(result.reservations[0])
        return Response(self.get_serializer(reservation).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=s.SeriesCreateSerializer, responses={201: s.SeriesResultSerializer})
    @action(detail=False, methods=["post"], pagination_class=None)
    def series(self, request: Request) -> Response:
        """Book a recurring series. With ``skip_unavailable`` the free dates are booked and the
        others reported; without it, any unavailable date is a 409 listing them all."""
        incoming = s.SeriesCreateSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        data = incoming.validated_data
        rule = data["recurrence"]
        recurrence = Recurrence(
            frequency=rule["frequency"],
            interval=rule["interval"],
            weekdays=tuple(sorted(set(rule["weekdays"]))),
            until=rule["until"],
            count=rule["count"],
            last_weekday=rule["last_weekday"],
        )
        result = services.book(
            **self._booking_args(data),
            recurrence=recurrence,
            skip_unavailable=data["skip_unavailable"],
        )
        body = {
            "reservations": [self._read(r) for r in result.reservations],
            "skipped": [{"date": u.day, "reason": u.reason} for u in result.skipped],
        }
        return Response(s.SeriesResultSerializer(body).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request: Request, pk: str) -> Response:
        """Move (times, space) and/or edit details; ``scope=following`` for the rest of a
        series. Send ``version`` to be refused (409) if someone changed it meanwhile."""
        reservation = self.get_object()
        incoming = s.ReservationUpdateSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        data = dict(incoming.validated_data)
        person = data.get("requested_for")
        if person is not None and person != request.user and caller(request).books_only_for_itself:
            raise serializers.ValidationError(
                {"requested_for": ["This integration books only for itself."]}
            )
        scope = services.Scope(data.pop("scope"))
        version = data.pop("version", None)
        moves = {k: data.pop(k) for k in ("start", "end", "space") if k in data}
        changed = services.change(
            actor=request.user,
            reservation=reservation,
            scope=scope,
            expected_version=version,
            source=source_for(request),
            **moves,
            **data,
        )
        current = next((r for r in changed if r.pk == reservation.pk), changed[0])
        return Response(self.get_serializer(self._read(current)).data)

    @extend_schema(request=s.CancelSerializer, responses=s.ReservationSerializer)
    @action(detail=True, methods=["post"], pagination_class=None)
    def cancel(self, request: Request, pk: str) -> Response:
        """Cancel (the row stays, with status cancelled); ``scope=following`` for a series."""
        reservation = self.get_object()
        incoming = s.CancelSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        data = incoming.validated_data
        services.cancel(
            actor=request.user,
            reservation=reservation,
            scope=services.Scope(data["scope"]),
            reason=data["reason"],
            expected_version=data.get("version"),
            source=source_for(request),
        )
        return Response(self.get_serializer(self._read(reservation)).data)

    @extend_schema(
        request=None,
        responses=s.ReservationSerializer,
        description=(
            "Check in to a booking of a space that requires check-in, inside its window "
            "(by default from 15 minutes before to 15 minutes after the start). Idempotent. "
            "409 `check_in_closed` outside the window (the message gives it, in the location's "
            "time zone) or when the booking was released or cancelled; 409 `needs_approval` "
            "while it awaits approval; 403 when it is someone else's."
        ),
    )
    @action(detail=True, methods=["post"], url_path="check-in", pagination_class=None)
    def check_in(self, request: Request, pk: str) -> Response:
        """Check in to the booking (the person it is for, who made it, or a manager)."""
        reservation = self.get_object()
        services.check_in(actor=request.user, reservation=reservation, source=source_for(request))
        return Response(self.get_serializer(self._read(reservation)).data)

    @extend_schema(responses=s.ReservationSerializer(many=True))
    @action(detail=False, methods=["get"], url_path="awaiting-approval", pagination_class=None)
    def awaiting_approval(self, request: Request) -> Response:
        """The bookings awaiting the caller's decision as an approver, soonest first (the
        portal's Approvals queue); empty for anyone who approves nothing."""
        rows = approvals.awaiting_for(request.user)
        return Response(s.ReservationSerializer(rows, many=True).data)

    def _awaiting_decision(self, pk: str) -> Reservation:
        # Approvers decide bookings that are not theirs: looked up among all of them; the
        # service refuses (403) anyone who does not approve this space.
        found = Reservation.objects.select_related("space__location").filter(pk=pk).first()
        if found is None:
            raise NotFound("No such reservation.")
        return found

    @extend_schema(request=None, responses=s.ReservationSerializer)
    @action(detail=True, methods=["post"], pagination_class=None)
    def approve(self, request: Request, pk: str) -> Response:
        """Approve a booking awaiting approval (approvers of its space only: 403 otherwise):
        it becomes `confirmed`. 409 `already_decided` when it is not awaiting approval."""
        reservation = self._awaiting_decision(pk)
        services.approve(actor=request.user, reservation=reservation, source=source_for(request))
        return Response(s.ReservationSerializer(self._read(reservation)).data)

    @extend_schema(request=s.DeclineSerializer, responses=s.ReservationSerializer)
    @action(detail=True, methods=["post"], pagination_class=None)
    def decline(self, request: Request, pk: str) -> Response:
        """Decline a booking awaiting approval, with an optional reason sent to the person
        (approvers only: 403 otherwise): it is cancelled and frees the slot. 409
        `already_decided` when it is not awaiting approval."""
        reservation = self._awaiting_decision(pk)
        incoming = s.DeclineSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        services.decline(
            actor=request.user,
            reservation=reservation,
            reason=incoming.validated_data["reason"],
            source=source_for(request),
        )
        return Response(s.ReservationSerializer(self._read(reservation)).data)


@extend_schema(exclude=True)
@api_view(["GET", "POST", "PUT", "PATCH", "DELETE"])
@permission_classes([AllowAny])
def not_found(request: Request, *args, **kwargs) -> Response:
    """Unknown API paths answer in the API's JSON error shape, not the portal's HTML page."""
    raise NotFound("No such API endpoint.")
