"""The booking form: one space, once or as a series, for oneself or on someone's behalf.

A conflict is not a dead end: the page shows the taken slot and offers the other spaces that
are free at the same time and big enough (one click re-submits the same form for that
space), the same space's next free times of the same length (``freetimes.next_free``; one
click re-submits the form at that time), and for a series it lists the dates that cannot be
booked and offers to book the free ones.

How many people the alternatives must hold: the number the person searched for (*Find a
space* passes it along as ``people``), else the capacity of the space they chose (they picked
a room that size, so a smaller one is not an equal offer); never fewer than a group's
attendees and its organiser.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.utils import timezone

from .. import approvals, freetimes, limits, services
from ..forms import BookingForm
from ..models import ReservationKind, Source, Space, SpaceKind
from .common import alternatives, apply_booking_error

PLANNER = "planner"  # the `via` value the schedule view puts in its links
PREFILL_FIELDS = ("date", "start", "end", "duration", "title")
MAX_PEOPLE = 1000  # the search form's bound


def _space_from(value: str | None) -> Space:
    if not value or not value.isdigit():
        raise Http404("Choose a space first.")
    try:
        return Space.objects.select_related("location").get(pk=int(value))
    except Space.DoesNotExist as exc:
        raise Http404("No such space.") from exc


@login_required
def book(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return _booking_form(request)
    return _submit_booking(request)


def _booking_form(request: HttpRequest) -> HttpResponse:
    """The empty form, prefilled from a search result or a free slot of the schedule."""
    if not request.GET.get("space"):
        messages.info(request, "Choose a space first: search, or click a free slot.")
        return redirect("portal:find")
    space = _space_from(request.GET.get("space"))
    initial = {k: request.GET[k] for k in PREFILL_FIELDS if request.GET.get(k)}
    form = BookingForm(user=request.user, space=space, initial=initial)
    people = _people(request.GET.get("people"))
    return _render(request, form, space, via=request.GET.get("via", ""), people=people)


def _submit_booking(request: HttpRequest) -> HttpResponse:
    """Book through the service; on success the new booking's page, else the form again with
    what went wrong (400) or the conflict and what is free instead (409)."""
    data: QueryDict = request.POST.copy()
    if data.get("use_space"):  # "book this one instead" from the conflict panel
        data["space"] = data["use_space"]
    if data.get("use_time"):  # "book it then instead": "YYYY-MM-DD HH:MM HH:MM"
        use_time(data, data["use_time"])
    space = _space_from(data.get("space"))
    form = BookingForm(data, user=request.user, space=space)
    via = data.get("via", "")
    people = _people(data.get("people"))
    if not form.is_valid():
        return _render(request, form, space, via=via, people=people, status=400)
    cleaned = form.cleaned_data
    attendees = cleaned.get("attendees") or []
    try:
        result = services.book(
            actor=request.user,
            space=cleaned["space"],
            start=cleaned["start_at"],
            end=cleaned["end_at"],
            requested_for=cleaned.get("requested_for") or request.user,
            title=cleaned["title"],
            public_nickname=cleaned["public_nickname"],
            description=cleaned["description"],
            kind=ReservationKind.GROUP if attendees else ReservationKind.STANDARD,
            attendees=attendees,
            source=Source.EVENT_PLANNER if via == PLANNER else Source.PORTAL,
            recurrence=form.recurrence(),
            skip_unavailable=bool(data.get("skip_unavailable")),
        )
    except services.Conflict as exc:
        return _render_conflict(request, form, space, exc, via=via, people=people)
    except services.BookingError as exc:
        apply_booking_error(form, exc)
        return _render(request, form, space, via=via, people=people, status=400)

    first = result.reservations[0]
    messages.success(request, _booked_message(result))
    return redirect("portal:detail", pk=first.pk)


def _render_conflict(
    request: HttpRequest,
    form: BookingForm,
    space: Space,
    exc: services.Conflict,
    *,
    via: str,
    people: int | None,
) -> HttpResponse:
    """The form again (409) with the taken slot and what is free instead: for a one-off
    booking the same space's next free time and other spaces; for a series, its dates."""
    cleaned = form.cleaned_data
    attendees = cleaned.get("attendees") or []
    is_series = form.recurrence() is not None
    if not is_series:
        exc.next_free = freetimes.next_free(
            cleaned["space"], cleaned["start_at"], cleaned["end_at"], now=timezone.now()
        )
    need = max(people or cleaned["space"].capacity, len(attendees) + 1)
    return _render(
        request,
        form,
        space,
        via=via,
        people=people,
        conflict=exc,
        is_series=is_series,
        options=[] if is_series else _alternatives_for(cleaned, need),
        need=need,
        status=409,
    )


def _booked_message(result: services.BookingResult) -> str:
    """What was booked, how many dates were left out and, when it awaits approval, by whom."""
    first = result.reservations[0]
    if len(result.reservations) == 1:
        text = f"Booked {first.space.name}."
    else:
        text = f"Booked {first.space.name} on {len(result.reservations)} dates."
    if result.skipped:
        skipped = len(result.skipped)
        text += (
            " 1 date that was not free was left out."
            if skipped == 1
            else f" {skipped} dates that were not free were left out."
        )
    if first.approval == "awaiting":
        rule = approvals.rule_for(first.space)
        who = rule.approvers.name if rule else "the approvers"
        text += f" It is held for you and awaits approval by {who}; you will get an email."
    return text


def _alternatives_for(cleaned: dict, people: int) -> list[Space]:
    """Other free spaces for a one-off booking (for a series the dates panel is the offer)."""
    return alternatives(cleaned["space"], cleaned["start_at"], cleaned["end_at"], people)


def _people(value: str | None) -> int | None:
    """The number of people from *Find a space*, or None when it is missing or not a sensible
    number (a tampered hidden field is ignored, not an error: it only narrows the offers)."""
    if not value or not value.isdigit() or len(value) > 4:
        return None
    people = int(value)
    return people if 1 <= people <= MAX_PEOPLE else None


def use_time(data: QueryDict, value: str) -> None:
    """Put a next-free-time offer ("2026-12-08 14:30 15:30", in the location's zone) into the
    form's date, start and end; the form then checks them like typed ones."""
    parts = value.split()
    if len(parts) == 3:
        data["date"], data["start"], data["end"] = parts
    else:
        data["date"] = value  # the form says what is wrong with it


def _render(
    request,
    form,
    space,
    *,
    via="",
    people=None,
    need=1,
    conflict=None,
    is_series=False,
    options=(),
    status=200,
):
    context = {
        "form": form,
        "space": space,
        "via": via,
        "people": people,
        "need": need,
        "conflict": conflict,
        "options": options,
        "is_series": is_series,
        "container": space.kind == SpaceKind.CONTAINER,
        "approval_rule": approvals.needs_approval(space, request.user),
        # "You hold 2 of your 2 active bookings": before the refusal, not only after it.
        "holding": limits.standing(request.user, space.location, now=timezone.now()),
    }
    return render(request, "reservations/book.html", context, status=status)
