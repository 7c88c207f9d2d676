"""My reservations: the list (upcoming and past), details with history, reschedule, cancel.

Someone else's reservation is a 404 (managers with ``manage_all`` see every one). Whether a
reservation can be changed is asked of ``rules.check`` - the same hook the service uses - so
what the portal greys out and what the service refuses always agree, with the same reason.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone

from .. import checkin, freetimes, rules, services
from ..forms import CancelForm, ChangeForm
from ..models import SLOT_HOLDING_STATUSES, Reservation, Source, source_words
from .booking import use_time
from .common import alternatives, apply_booking_error, get_visible_reservation, is_htmx

PAGE_SIZE = 25
SYNC_POLLS = 40  # 40 times 3 seconds: two minutes, then the person reloads if they wish


def annotate_permissions(user, reservations) -> None:
    """Set ``can_change``/``can_cancel`` and ``locked_reason`` on each reservation."""
    now = timezone.now()
    rules.preload(reservations)  # what the policies look up, for the whole page at once
    for reservation in reservations:
        change = rules.check(rules.Action.CHANGE, user, reservation, Source.PORTAL)
        cancel = rules.check(rules.Action.CANCEL, user, reservation, Source.PORTAL)
        active = reservation.holds_slot and reservation.end > now
        reservation.can_change = bool(change) and active
        reservation.can_cancel = bool(cancel) and active
        reservation.locked_reason = change.reason or cancel.reason
        reservation.can_check_in = checkin.can_check_in_now(
            reservation, now
        ) and checkin.may_check_in(user, reservation)


@login_required
def my_reservations(request: HttpRequest) -> HttpResponse:
    now = timezone.now()
    past = request.GET.get("show") == "past"
    mine = Reservation.objects.filter(
        Q(requested_for=request.user) | Q(booked_by=request.user)
    ).select_related("space__location", "requested_for", "booked_by", "series")
    upcoming_q = Q(end__gt=now, status__in=SLOT_HOLDING_STATUSES)
    if past:
        qs = mine.exclude(upcoming_q).order_by("-start")
    else:
        qs = mine.filter(upcoming_q).order_by("start")
    page = Paginator(qs, PAGE_SIZE).get_page(request.GET.get("page"))
    share_spaces(page.object_list)
    annotate_permissions(request.user, page.object_list)
    # The paginator has counted the upcoming ones already when they are what is listed.
    upcoming_count = mine.filter(upcoming_q).count() if past else page.paginator.count
    return render(
        request,
        "reservations/my_reservations.html",
        {"page": page, "past": past, "upcoming_count": upcoming_count},
    )


def share_spaces(reservations) -> None:
    """One Space (and Location) instance per space among ``reservations``, so that what the
    rules look up about a space (its calendar binding, its approval rule) is fetched once
    per space on the page, not once per booking, as the schedule does."""
    spaces: dict[int, object] = {}
    for reservation in reservations:
        reservation.space = spaces.setdefault(reservation.space_id, reservation.space)


@login_required
def detail(request: HttpRequest, pk: int) -> HttpResponse:
    reservation = get_visible_reservation(request.user, pk)
    annotate_permissions(request.user, [reservation])
    occurrences = []
    if reservation.series_id:
        occurrences = list(
            Reservation.objects.filter(series_id=reservation.series_id)
            .select_related("space__location")
            .order_by("start")
        )
    poll = _poll_number(request.GET.get("poll"))
    context = {
        "reservation": reservation,
        "occurrences": occurrences,
        # The sync panel asks again every few seconds while the calendar has not answered
        # (calendars/portal/reservation_sync.html decides), for at most SYNC_POLLS times.
        "sync_refresh_url": (
            f"{request.path}?part=sync&poll={poll + 1}" if poll < SYNC_POLLS else None
        ),
    }
    if is_htmx(request) and request.GET.get("part") == "sync":
        return render(request, "reservations/_detail_sync.html", context)
    context["history"] = _history(reservation)
    return render(request, "reservations/detail.html", context)


def _poll_number(value: str | None) -> int:
    """How many times the sync panel has been fetched again (0 for the page itself)."""
    return int(value) if value and value.isdigit() and len(value) < 4 else 0


def _history(reservation: Reservation) -> list[dict]:
    """Each recorded change, newest first: when, who, from where, what changed."""
    records = list(reservation.history.select_related("history_user").order_by("history_date"))
    labels = {f.name: f.verbose_name for f in Reservation._meta.fields}
    order = {f.name: index for index, f in enumerate(Reservation._meta.fields)}
    entries = []
    previous = None
    for record in records:
        if previous is None:
            what = "Booked"
        else:
            changed = sorted(
                (c.field for c in record.diff_against(previous).changes if c.field != "version"),
                key=lambda name: order.get(name, 99),
            )
            if record.approval == "approved" and previous.approval != "approved":
                what = "Approved"
            elif record.status == "cancelled" and previous.status != "cancelled":
                what = "Cancelled"
                if record.cancel_reason:
                    what += f": {record.cancel_reason}"
            elif record.status == "released" and previous.status != "released":
                what = record.cancel_reason or "Released: nobody checked in"
            elif changed == ["checked_in_at"] and record.history_change_reason:
                what = record.history_change_reason  # "Checked in at 09:58"
            elif changed:
                what = "Changed " + ", ".join(str(labels.get(name, name)) for name in changed)
            else:
                what = "Saved without changes"
        entries.append(
            {
                "when": record.history_date,
                "who": record.history_user,
                "source": source_words(record.change_source) if record.change_source else "",
                "what": what,
            }
        )
        previous = record
    return list(reversed(entries))


@login_required
def change(request: HttpRequest, pk: int) -> HttpResponse:
    reservation = get_visible_reservation(request.user, pk)
    annotate_permissions(request.user, [reservation])
    if not reservation.can_change:
        messages.error(
            request, reservation.locked_reason or "This booking can no longer be changed."
        )
        return redirect("portal:detail", pk=pk)
    if request.method != "POST":
        start, end = reservation.local_start, reservation.local_end
        form = ChangeForm(
            reservation=reservation,
            initial={
                "space": reservation.space_id,
                "date": start.date(),
                "start": start.time(),
                "end": end.time(),
                "title": reservation.title,
                "public_nickname": reservation.public_nickname,
                "description": reservation.description,
                "expected_version": reservation.version,
            },
        )
        return _render_change(request, reservation, form)

    data = request.POST.copy()
    if data.get("use_space"):  # "book this one instead" from the conflict panel
        data["space"] = data["use_space"]
    if data.get("use_time"):  # "book it then instead": the same space at a free time
        use_time(data, data["use_time"])
    form = ChangeForm(data, reservation=reservation)
    if not form.is_valid():
        return _render_change(request, reservation, form, status=400)
    cleaned = form.cleaned_data
    try:
        services.change(
            actor=request.user,
            reservation=reservation,
            start=cleaned["start_at"],
            end=cleaned["end_at"],
            space=cleaned["space"],
            scope=services.Scope(cleaned.get("scope") or services.Scope.THIS),
            expected_version=cleaned["expected_version"],
            source=Source.PORTAL,
            title=cleaned["title"],
            public_nickname=cleaned["public_nickname"],
            description=cleaned["description"],
        )
    except services.Conflict as exc:
        if not exc.clashes:  # opening hours, horizon...: not a clash, a problem with the time
            form.add_error("start", exc.message)
            return _render_change(request, reservation, form, status=400)
        # The same offers as the booking form's: other spaces for as many people as the
        # booking holds (its space's size, or its attendees and organiser), and this space
        # at its next free times, counting the booking being moved as free.
        space = cleaned["space"]
        need = max(space.capacity, len(reservation.attendees or []) + 1)
        options = []
        if len(exc.unavailable) <= 1:
            options = alternatives(space, cleaned["start_at"], cleaned["end_at"], need)
            exc.next_free = freetimes.next_free(
                space,
                cleaned["start_at"],
                cleaned["end_at"],
                now=timezone.now(),
                exclude=(reservation.pk,),
            )
        return _render_change(
            request, reservation, form, conflict=exc, options=options, need=need, status=409
        )
    except services.BookingError as exc:
        apply_booking_error(form, exc)
        return _render_change(request, reservation, form, status=400)
    messages.success(request, "Your booking was updated.")
    return redirect("portal:detail", pk=pk)


def _render_change(request, reservation, form, *, conflict=None, options=(), need=1, status=200):
    context = {
        "reservation": reservation,
        "form": form,
        "conflict": conflict,
        "options": options,
        "need": need,
        "space": reservation.space,  # the conflict panel's fallback for the chosen space
    }
    return render(request, "reservations/change.html", context, status=status)


@login_required
def cancel(request: HttpRequest, pk: int) -> HttpResponse:
    reservation = get_visible_reservation(request.user, pk)
    annotate_permissions(request.user, [reservation])
    if not reservation.can_cancel:
        messages.error(
            request, reservation.locked_reason or "This booking can no longer be cancelled."
        )
        return redirect("portal:detail", pk=pk)
    if request.method != "POST":
        form = CancelForm(
            reservation=reservation, initial={"expected_version": reservation.version}
        )
        return render(
            request, "reservations/cancel.html", {"reservation": reservation, "form": form}
        )
    form = CancelForm(request.POST, reservation=reservation)
    if form.is_valid():
        try:
            cancelled = services.cancel(
                actor=request.user,
                reservation=reservation,
                scope=services.Scope(form.cleaned_data.get("scope") or services.Scope.THIS),
                reason=form.cleaned_data["reason"],
                expected_version=form.cleaned_data["expected_version"],
                source=Source.PORTAL,
            )
        except services.BookingError as exc:
            form.add_error(None, exc.message)
        else:
            count = len(cancelled)
            messages.success(
                request,
                "Your booking was cancelled."
                if count == 1
                else f"{count} occurrences of your booking were cancelled.",
            )
            return redirect("portal:mine")
    return render(
        request,
        "reservations/cancel.html",
        {"reservation": reservation, "form": form},
        status=400,
    )
