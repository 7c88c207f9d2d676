"""Find a space (with htmx-updated results) and the one-click quick reservation."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import prefetch_related_objects
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from .. import opening, queries, services
from ..forms import QuickForm, SearchForm
from ..models import Location, Source, Space, SpaceKind
from .common import default_location, is_htmx, location_problem, nearest_five, next_slot
from .floormap import map_context

QUICK_MINUTES = 30
QUICK_MIN_MINUTES = 15  # shorter than this before closing time is not worth a booking
QUICK_SIZES = (1, 2, 4, 6, 8, 12)
QUICK_ATTEMPTS = 5  # rooms tried when the first choice is taken between the query and the booking


def _first_open_slot(location: Location, now: datetime) -> datetime:
    """The next half hour at which the location is open (today, or its next open day)."""
    start = next_slot(now, location.zone)
    hours = {h.weekday: h for h in location.opening_hours.all()}
    for _ in range(8):
        day_hours = hours.get(start.weekday())
        if day_hours is not None:
            if start.time() < day_hours.opens:
                return start.replace(hour=day_hours.opens.hour, minute=day_hours.opens.minute)
            if start.time() < day_hours.closes:
                return start
        start = (start + timedelta(days=1)).replace(hour=0, minute=0)
    return next_slot(now, location.zone)  # never open: let the search say so


def _defaults(location: Location) -> dict[str, str]:
    start = _first_open_slot(location, timezone.now())
    return {
        "location": str(location.pk),
        "date": start.date().isoformat(),
        "start": f"{start:%H:%M}",
        "duration": "60",
        "capacity": "1",
    }


@login_required
def find(request: HttpRequest) -> HttpResponse:
    """Search form and results. Without parameters it shows what is free from the next
    half hour at the user's default location, so the first page is already useful."""
    location = default_location(request.user, request.GET.get("location"))
    if location is None:
        return render(request, "reservations/find.html", {"form": None, "no_locations": True})
    # Its opening hours, read once: the default search, the quick reservation box and the
    # search's own check all ask them.
    prefetch_related_objects([location], "opening_hours")
    data = request.GET.copy() if "date" in request.GET else None
    if data is None:
        data = _defaults(location)
    else:
        for key, value in _defaults(location).items():
            data.setdefault(key, value)
    data.setdefault("view", "list")
    form = SearchForm(data, location=location)  # its hours read: the form takes it as it is
    context = {"form": form, "location": location, "quick_sizes": QUICK_SIZES}
    # Quick reservation is offered only when it can book something now; else the box says
    # why and when the location opens.
    if not is_htmx(request):
        window = _quick_window(location, timezone.now())
        context["quick_closed"] = window if isinstance(window, str) else ""
    if form.is_valid():
        context.update(_results(form.cleaned_data))
    if form.is_valid() and form.cleaned_data.get("view") == "map" and not context.get("problem"):
        context.update(map_context(data, form.cleaned_data))
    template = "reservations/_results.html" if is_htmx(request) else "reservations/find.html"
    return render(request, template, context)


def _results(data: dict) -> dict:
    location, start, end = data["location"], data["start_at"], data["end_at"]
    problem = location_problem(location, start, end)
    if problem:
        return {"problem": problem, "searched": True}
    spaces = queries.free_spaces(
        start,
        end,
        location_id=location.pk,
        min_capacity=data.get("capacity") or 1,
        kinds=[data["kind"]] if data.get("kind") else (),
        amenity_ids=[a.pk for a in data.get("amenities") or ()],
    )[:50]
    spaces = list(spaces)
    names = queries.amenity_names(spaces)
    for space in spaces:
        space.amenity_names = names[space.pk]
    zone = location.zone
    local_start, local_end = start.astimezone(zone), end.astimezone(zone)
    return {
        "searched": True,
        "spaces": spaces,
        "slot_start": start,
        "slot_end": end,
        "search_location": location,
        # What every result's Book link carries after its space (the template escapes the &).
        "book_query": (
            f"date={local_start:%Y-%m-%d}&start={local_start:%H:%M}&end={local_end:%H:%M}"
            f"&people={data.get('capacity') or 1}"
        ),
    }


@login_required
@require_POST
def quick(request: HttpRequest) -> HttpResponse:
    """Book the smallest free room that fits, at the default location, for the next 30
    minutes (shorter if the location closes sooner)."""
    form = QuickForm(request.POST)
    people = (form.cleaned_data.get("people") or 1) if form.is_valid() else 1
    location = default_location(request.user, request.POST.get("location"))
    if location is None:
        messages.error(request, "There is no location to book in yet.")
        return redirect("portal:find")
    window = _quick_window(location, timezone.now())
    if isinstance(window, str):
        messages.error(request, window)
        return redirect("portal:find")
    start, end = window
    candidates = queries.free_spaces(
        start, end, location_id=location.pk, min_capacity=people, kinds=[SpaceKind.ROOM]
    )
    for space in candidates[:QUICK_ATTEMPTS]:
        try:
            result = services.book(
                actor=request.user,
                space=space,
                start=start,
                end=end,
                title="Quick reservation",
                source=Source.QUICK,
            )
        except services.Conflict:
            continue  # taken a moment ago: try the next smallest room
        except services.BookingError as exc:
            messages.error(request, exc.message)
            return redirect("portal:find")
        reservation = result.reservations[0]
        messages.success(
            request,
            f"{space.name} is yours from {start:%H:%M} to {end:%H:%M} ({location.time_zone}).",
        )
        return redirect("portal:detail", pk=reservation.pk)
    size = "anyone" if people == 1 else f"{people} people"
    messages.error(
        request,
        f"No room for {size} is free at {location.name} from {start:%H:%M} to {end:%H:%M}. "
        "Try another time or location below.",
    )
    return redirect("portal:find")


def _quick_window(location: Location, now: datetime) -> tuple[datetime, datetime] | str:
    """The slot a quick reservation books, or why there is none right now (and when the
    location opens)."""
    zone = location.zone
    start = nearest_five(now, zone)
    hours = {h.weekday: h for h in location.opening_hours.all()}.get(start.weekday())
    if hours is not None and hours.opens <= start.time() < hours.closes:
        closing = start.replace(hour=hours.closes.hour, minute=hours.closes.minute)
        end = min(start + timedelta(minutes=QUICK_MINUTES), closing)
        if end - start < timedelta(minutes=QUICK_MIN_MINUTES):
            later = opening.opens_phrase(location, opening.next_opening(location, closing), now)
            return (
                f"{location.name} closes at {hours.closes:%H:%M} today and {later} "
                f"({location.time_zone})."
            )
        # A closure of the whole location says why; one of a single room skips that room.
        return services.closure_problem(Space(location=location), start, end) or (start, end)
    later = opening.opens_phrase(location, opening.next_opening(location, start), now)
    return f"{location.name} is closed now and {later} ({location.time_zone})."
