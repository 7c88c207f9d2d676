"""The booking form: one space, once or as a series, for oneself or on someone's behalf.

A conflict is not a dead end: the page shows the taken slot and offers the other spaces that
are free at the same time (one click re-submits the same form for that space), and for a
series it lists the dates that cannot be booked and offers to book the free ones.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.utils import timezone

from .. import approvals, limits, services
from ..forms import BookingForm
from ..models import ReservationKind, Source, Space, SpaceKind
from .common import alternatives, apply_booking_error

PLANNER = "planner"  # the `via` value the schedule view puts in its links
PREFILL_FIELDS = ("date", "start", "end", "duration", "title")


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
        if not request.GET.get("space"):
            messages.info(request, "Choose a space first: search, or click a free slot.")
            return redirect("portal:find")
        space = _space_from(request.GET.get("space"))
        initial = {k: request.GET[k] for k in PREFILL_FIELDS if request.GET.get(k)}
        form = BookingForm(user=request.user, space=space, initial=initial)
        return _render(request, form, space, via=request.GET.get("via", ""))

    data: QueryDict = request.POST.copy()
    if data.get("use_space"):  # "book this one instead" from the conflict panel
        data["space"] = data["use_space"]
    space = _space_from(data.get("space"))
    form = BookingForm(data, user=request.user, space=space)
    via = data.get("via", "")
    if not form.is_valid():
        return _render(request, form, space, via=via, status=400)
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
        return _render(
            request,
            form,
            space,
            via=via,
            conflict=exc,
            is_series=form.recurrence() is not None,
            options=[] if form.recurrence() else _alternatives_for(cleaned, len(attendees) + 1),
            status=409,
        )
    except services.BookingError as exc:
        apply_booking_error(form, exc)
        return _render(request, form, space, via=via, status=400)

    first = result.reservations[0]
    if len(result.reservations) == 1:
        text = f"Booked {first.space.name}."
    else:
        text = f"Booked {first.space.name} on {len(result.reservations)} dates."
    if result.skipped:
        text += f" {len(result.skipped)} dates that were not free were left out."
    if first.approval == "awaiting":
        rule = approvals.rule_for(first.space)
        who = rule.approvers.name if rule else "the approvers"
        text += f" It is held for you and awaits approval by {who}; you will get an email."
    messages.success(request, text)
    return redirect("portal:detail", pk=first.pk)


def _alternatives_for(cleaned: dict, people: int) -> list[Space]:
    """Other free spaces for a one-off booking (for a series the dates panel is the offer)."""
    return alternatives(cleaned["space"], cleaned["start_at"], cleaned["end_at"], people)


def _render(
    request, form, space, *, via="", conflict=None, is_series=False, options=(), status=200
):
    context = {
        "form": form,
        "space": space,
        "via": via,
        "conflict": conflict,
        "options": options,
        "is_series": is_series,
        "container": space.kind == SpaceKind.CONTAINER,
        "approval_rule": approvals.needs_approval(space, request.user),
        # "You hold 2 of your 2 active bookings": before the refusal, not only after it.
        "holding": limits.standing(request.user, space.location, now=timezone.now()),
    }
    return render(request, "reservations/book.html", context, status=status)
