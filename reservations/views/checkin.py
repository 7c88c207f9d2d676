"""Check-in pages: the button on My reservations and the booking's page, the reminder email's
signed link (``/check-in/<token>/``) and a space's QR code page (``/spaces/<id>/check-in/``).

Every check-in is a POST (with CSRF) to ``services.check_in``: opening a link only shows the
booking and its button, so a mail scanner that follows links checks nobody in. A booking made
in Outlook/Google by someone with no Reserva account can be checked in with its link alone
(its organizer got it by email); any other needs its person signed in.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from .. import checkin, services
from ..models import Reservation, ReservationStatus, Source, Space
from .common import get_visible_reservation


def _done(reservation: Reservation) -> str:
    local = reservation.checked_in_at.astimezone(reservation.space.location.zone)
    return f"Checked in at {local:%H:%M}."


@login_required
@require_POST
def check_in(request: HttpRequest, pk: int) -> HttpResponse:
    """The Check in button of My reservations and of the booking's page."""
    reservation = get_visible_reservation(request.user, pk)
    try:
        reservation = services.check_in(
            actor=request.user, reservation=reservation, source=Source.PORTAL
        )
    except services.BookingError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _done(reservation))
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
        target = ""
    return redirect(target or "portal:detail", **({} if target else {"pk": pk}))


def link(request: HttpRequest, token: str) -> HttpResponse:
    """The reminder email's link: the booking and its Check in button."""
    now = timezone.now()
    try:
        pk = checkin.read_token(token, now)
    except checkin.TokenInvalid:
        return _page(request, error="This check-in link is not valid.", status=400)
    except checkin.TokenExpired:
        return _page(
            request, error="This check-in link has expired: check-in is closed.", status=410
        )
    reservation = (
        Reservation.objects.select_related("space__location", "requested_for").filter(pk=pk).first()
    )
    if reservation is None:
        return _page(request, error="This booking no longer exists.", status=404)
    has_person = reservation.requested_for_id is not None or reservation.booked_by_id is not None
    signed_in = request.user.is_authenticated
    if has_person and not signed_in:
        return redirect_to_login(request.get_full_path())
    allowed = signed_in and checkin.may_check_in(request.user, reservation)
    if has_person and not allowed:
        return _page(request, error="This booking is someone else's.", status=403)
    if request.method == "POST":
        # Without a person, the signed link is the organizer's proof (it came by email).
        return _check_in(request, reservation, actor=request.user if allowed else None)
    return _page(request, reservation=reservation)


@login_required
def space(request: HttpRequest, pk: int) -> HttpResponse:
    """The page a space's QR code opens: the signed-in person's booking whose check-in window
    is open now, with its Check in button."""
    room = get_object_or_404(Space.objects.select_related("location"), pk=pk)
    if request.method == "POST":
        reservation = get_object_or_404(
            Reservation.objects.select_related("space__location"),
            pk=request.POST.get("reservation") or 0,
            space=room,
        )
        if not checkin.may_check_in(request.user, reservation):
            return _page(request, space=room, error="This booking is someone else's.", status=403)
        return _check_in(request, reservation, actor=request.user, space=room)
    now = timezone.now()
    mine = (
        Reservation.objects.filter(
            space=room,
            status=ReservationStatus.CONFIRMED,
            start__lte=now + checkin.WIDEST,
            end__gt=now,
        )
        .filter(requested_for=request.user)
        .select_related("space__location")
        .order_by("start")
    )
    current = next((r for r in mine if checkin.window(r).contains(now) or r.checked_in_at), None)
    if current is None:
        return _page(
            request,
            space=room,
            error=f"You have no booking of {room.name} to check in to now "
            "(check-in opens shortly before the start).",
        )
    return _page(request, space=room, reservation=current)


def _check_in(request, reservation: Reservation, *, actor, space: Space | None = None):
    try:
        reservation = services.check_in(actor=actor, reservation=reservation, source=Source.PORTAL)
    except services.BookingError as exc:
        return _page(request, space=space, reservation=reservation, error=exc.message, status=409)
    return _page(request, space=space, reservation=reservation, done=_done(reservation))


def _page(request, *, reservation=None, space=None, error="", done="", status=200):
    return render(
        request,
        "reservations/check_in.html",
        {
            "reservation": reservation,
            "space": space or (reservation.space if reservation else None),
            "error": error,
            "done": done,
            "window": checkin.describe_window(reservation) if reservation else "",
        },
        status=status,
    )
