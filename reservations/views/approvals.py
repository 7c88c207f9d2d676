"""Approvals in the portal: the approver's queue and the page an emailed link opens.

``/approvals/`` lists the bookings awaiting the signed-in approver's decision, soonest first,
each with Approve and Decline (with an optional reason). ``/approvals/<token>/`` is where an
approve or decline link of the approvers' email leads: it shows the booking and one button;
only the button's POST decides (mail scanners follow links with GET). Both go through
``services.approve`` / ``services.decline``, which check again that the user is an approver.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from .. import approvals, services
from ..models import Reservation, Source
from ..rules import can_manage_all

REASON_MAX = 200


def approves_anything(user) -> bool:
    return can_manage_all(user) or user.groups.filter(approval_rules__isnull=False).exists()


@login_required
def queue(request: HttpRequest) -> HttpResponse:
    if not approves_anything(request.user):
        raise PermissionDenied("Only approvers have an approvals queue.")
    rows = approvals.awaiting_for(request.user)
    rules = approvals.rules_for({r.space_id: r.space for r in rows}.values())
    for row in rows:
        row.approval_deadline = approvals.deadline(row, rules.get(row.space_id))
    return render(request, "reservations/approvals.html", {"rows": rows})


def _decide(request: HttpRequest, reservation: Reservation, action: str) -> bool:
    """Carry out the decision; a message says what happened. True when it was made."""
    try:
        if action == approvals.Action.APPROVE:
            services.approve(actor=request.user, reservation=reservation, source=Source.PORTAL)
            messages.success(request, f"Approved: {reservation.space.name}, {_when(reservation)}.")
        else:
            reason = request.POST.get("reason", "").strip()[:REASON_MAX]
            services.decline(
                actor=request.user, reservation=reservation, reason=reason, source=Source.PORTAL
            )
            messages.success(request, f"Declined: {reservation.space.name}, {_when(reservation)}.")
    except services.NotAllowed as exc:
        raise PermissionDenied(exc.message) from exc
    except services.BookingError as exc:
        messages.error(request, exc.message)
        return False
    return True


def _when(reservation: Reservation) -> str:
    return f"{reservation.local_start:%a %d %b %H:%M}-{reservation.local_end:%H:%M}"


@login_required
@require_POST
def decide(request: HttpRequest, pk: int) -> HttpResponse:
    action = request.POST.get("action", "")
    reservation = Reservation.objects.select_related("space__location").filter(pk=pk).first()
    if reservation is None or action not in approvals.ACTIONS:
        messages.error(request, "That booking or decision does not exist.")
        return redirect("portal:approvals")
    _decide(request, reservation, action)
    return redirect("portal:approvals")


@login_required
def link(request: HttpRequest, token: str) -> HttpResponse:
    try:
        found = approvals.read_any_token(token)
    except approvals.BadLink as exc:
        return render(request, "reservations/approval_link.html", {"problem": str(exc)}, status=400)
    reservation = (
        Reservation.objects.select_related("space__location", "requested_for")
        .filter(pk=found.reservation_id)
        .first()
    )
    if reservation is None:
        return render(
            request,
            "reservations/approval_link.html",
            {"problem": "This booking no longer exists."},
            status=404,
        )
    if not approvals.may_decide(request.user, reservation):
        raise PermissionDenied("Only the approvers of this space may decide its bookings.")
    if request.method == "POST" and _decide(request, reservation, found.action):
        return redirect("portal:approvals")
    rule = approvals.rule_for(reservation.space)
    return render(
        request,
        "reservations/approval_link.html",
        {
            "reservation": reservation,
            "action": found.action,
            "rule": rule,
            "deadline": approvals.deadline(reservation, rule),
            "awaiting": reservation.approval == "awaiting" and reservation.holds_slot,
        },
    )
