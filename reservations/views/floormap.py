"""*Find a space* as a map: the chosen floor's plan with each placed space as a marker (free,
booked, not bookable for the searched slot; ``reservations.floormaps``) and, under it, the
same spaces as a table, for anyone who does not use the map."""

from __future__ import annotations

from django.http import QueryDict

from .. import floormaps


def map_context(params: QueryDict | dict, data: dict) -> dict:
    """The map part of the results: ``params`` are the search's (for the floor links),
    ``data`` the search form's cleaned data."""
    location = data["location"]
    maps = floormaps.maps_of(location)
    chosen = floormaps.choose(maps, data.get("floor") or None)
    context: dict = {"map_view": True, "floor_map": chosen, "floor_links": []}
    if chosen is None:
        return context
    query = QueryDict(mutable=True)
    for key in params:
        values = params.getlist(key) if isinstance(params, QueryDict) else [params[key]]
        query.setlist(key, values)
    query["view"] = "map"
    for floor_map in maps:
        query["floor"] = floor_map.floor
        context["floor_links"].append(
            {"floor": floor_map.floor, "query": query.urlencode(), "current": floor_map == chosen}
        )
    context["markers"] = floormaps.markers(
        chosen,
        data["start_at"],
        data["end_at"],
        min_capacity=data.get("capacity") or 1,
        kinds=[data["kind"]] if data.get("kind") else (),
        amenity_ids=[a.pk for a in data.get("amenities") or ()],
    )
    context["unplaced"] = location.spaces.filter(floor=chosen.floor, map_x__isnull=True).count()
    return context
