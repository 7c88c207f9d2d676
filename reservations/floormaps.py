"""Floor maps: spaces placed on a plan of their floor, and what each one is for a chosen time.

A ``FloorMap`` is one uploaded image per floor of a location (``uploads`` checks the file);
a space is on it when its ``floor`` matches and it has a position (``map_x``, ``map_y``: 0..1
from the left and the top of the image, so the image can be replaced by one of another size
without moving anything). Admins place spaces by clicking on the map (``admin_floormaps``).

For *Find a space*'s map view, ``markers`` says for each placed space of a floor whether it is
**free**, **booked** or **not bookable** for a slot, with the very computation the search's
list uses (``queries.free_spaces``: slot-holding bookings widened by each space's buffers,
closures), so the map and the list never disagree. *Not bookable* has a reason: not
reservable, closed (with the closure's words), too small for the people asked for, or not
what the search asked for (kind, amenities).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from django.core.exceptions import ValidationError

from . import closures, queries
from .models import FloorMap, Location, Space, SpaceKind


class State(StrEnum):
    FREE = "free"
    BOOKED = "booked"
    NOT_BOOKABLE = "not bookable"

    @property
    def css(self) -> str:
        return self.name.lower().replace("_", "-")


@dataclass
class Marker:
    """One space on the map, with what it is for the chosen slot."""

    space: Space
    state: State
    reason: str = ""
    amenities: list[str] = field(default_factory=list)

    @property
    def x_percent(self) -> int:
        return round((self.space.map_x or 0) * 100)

    @property
    def y_percent(self) -> int:
        return round((self.space.map_y or 0) * 100)

    @property
    def label(self) -> str:
        """What a screen reader says for the marker: "Thames, 12 seats, free"."""
        seats = f"{self.space.capacity} seat{'s' if self.space.capacity != 1 else ''}"
        return f"{self.space.name}, {seats}, {self.state.value}"


def maps_of(location: Location) -> list[FloorMap]:
    return list(FloorMap.objects.filter(location=location).order_by("floor"))


def choose(maps: list[FloorMap], floor: str | None) -> FloorMap | None:
    """The map of ``floor``, else the first floor that has one."""
    return next((m for m in maps if m.floor == floor), maps[0] if maps else None)


def placed_spaces(floor_map: FloorMap) -> list[Space]:
    return list(
        Space.objects.filter(
            location_id=floor_map.location_id,
            floor=floor_map.floor,
            map_x__isnull=False,
            map_y__isnull=False,
        )
        .prefetch_related("amenities")
        .order_by("name")
    )


def markers(
    floor_map: FloorMap,
    start: datetime,
    end: datetime,
    *,
    min_capacity: int = 1,
    kinds: Iterable[str] = (),
    amenity_ids: Iterable[int] = (),
) -> list[Marker]:
    """Every placed space of the floor with its state for [start, end) (module docstring)."""
    kinds, amenity_ids = list(kinds), list(amenity_ids)
    location = floor_map.location
    free_ids = set(
        queries.free_spaces(
            start,
            end,
            location_id=location.pk,
            min_capacity=min_capacity,
            kinds=kinds,
            amenity_ids=amenity_ids,
        )
        .filter(floor=floor_map.floor)
        .values_list("pk", flat=True)
    )
    spaces = placed_spaces(floor_map)
    closed = {}
    closed_locations, closed_spaces = closures.closed_ids(start, end, location_id=location.pk)
    if closed_locations or closed_spaces:
        for space in spaces:
            if location.pk in closed_locations or space.pk in closed_spaces:
                period = closures.find(space, start, end)
                closed[space.pk] = (
                    closures.notice(period, space) if period else f"{space.name} is closed then."
                )
    found = []
    for space in spaces:
        amenity_names = [a.name for a in space.amenities.all()]
        if space.pk in free_ids:
            state, reason = State.FREE, ""
        else:
            reason = _why_not(space, closed, min_capacity, kinds, amenity_ids)
            state = State.NOT_BOOKABLE if reason else State.BOOKED
            reason = reason or "Booked at that time."
        found.append(Marker(space, state, reason, amenity_names))
    return found


def _why_not(
    space: Space,
    closed: dict[int, str],
    min_capacity: int,
    kinds: list[str],
    amenity_ids: list[int],
) -> str:
    """Why a space that is not free cannot be booked at all then; "" when it is just booked."""
    if not space.is_reservable or space.kind == SpaceKind.CONTAINER:
        return "Not bookable in Reserva."
    if space.pk in closed:
        return closed[space.pk]
    if space.capacity < min_capacity:
        return f"Too small: for up to {space.capacity}, you asked for {min_capacity}."
    if kinds and space.kind not in kinds:
        return f"Not what you searched for (a {space.get_kind_display().lower()})."
    missing = set(amenity_ids) - {a.pk for a in space.amenities.all()}
    if missing:
        return "It lacks an amenity you searched for."
    return ""


def place(space: Space, floor_map: FloorMap, x: float | None, y: float | None) -> Space:
    """Put ``space`` at (x, y) on ``floor_map`` (both None: take it off the map).

    Refused with a ValidationError when the space is not on that floor of that location, or
    a coordinate is missing or outside 0..1."""
    if space.location_id != floor_map.location_id or space.floor != floor_map.floor:
        raise ValidationError(f"{space.name} is not on {floor_map}.")
    if (x is None) != (y is None):
        raise ValidationError("Give both coordinates, or neither to take the space off the map.")
    if x is not None and not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0):
        raise ValidationError("The position must be on the map (0 to 1 across and down).")
    space.map_x, space.map_y = x, y
    space.save(update_fields=["map_x", "map_y"])
    return space
