"""The room display's pages (``/display/``): pairing, the room's page, its 5-second state
poll and its buttons. No sign-in: the token in the URL is the credential (``displays``).

The page polls ``/display/<token>/state/`` with htmx every 5 s. That answer carries an ETag
(``displays.etag``: one aggregate query) and the page's script sends it back, so a poll that
finds nothing new is a 304 with no body. Polling rather than server-sent events: a sync
gunicorn worker held by each tablet's open stream would be a worker lost per room, proxies cut
idle streams, and a tablet that lost the network simply asks again 5 s later.

The buttons are forms posted with CSRF (the page sets the CSRF cookie; no session is needed).
With htmx they answer with the new state and a message for the tablet; a refusal is the
booking service's reason, shown on the display, never an error page.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import condition, require_POST, require_safe

from .. import displays, services
from ..api.throttling import client_address

COOKIE_AGE = 365 * 24 * 3600


def _not_paired(request: HttpRequest) -> HttpResponse:
    response = render(request, "reservations/display/not_paired.html", status=404)
    response.delete_cookie(displays.COOKIE)
    return response


@never_cache
def home(request: HttpRequest) -> HttpResponse:
    """``/display/``: the tablet's start page; its paired room when the cookie says so."""
    token = request.COOKIES.get(displays.COOKIE, "")
    if displays.by_token(token) is not None:
        return redirect("display:page", token=token)
    return redirect("display:pair")


@never_cache
@ensure_csrf_cookie
def pair(request: HttpRequest) -> HttpResponse:
    """The tablet types the 6-digit code shown in the admin."""
    error = ""
    if request.method == "POST":
        try:
            _paired, token = displays.pair(
                request.POST.get("code", ""), address=client_address(request)
            )
        except displays.PairingRefused as exc:
            error = exc.message
        else:
            response = redirect("display:page", token=token)
            response.set_cookie(
                displays.COOKIE,
                token,
                max_age=COOKIE_AGE,
                httponly=True,
                samesite="Lax",
                secure=settings.SESSION_COOKIE_SECURE,
            )
            return response
    return render(
        request,
        "reservations/display/pair.html",
        {"error": error},
        status=400 if error else 200,
    )


def _context(display, token: str, *, message: str = "", error: bool = False) -> dict:
    return {
        "state": displays.state(display),
        "token": token,
        "message": message,
        "error": error,
    }


def _display(token: str):
    display = displays.by_token(token)
    if display is not None:
        displays.record_seen(display)
    return display


@never_cache
@ensure_csrf_cookie
def page(request: HttpRequest, token: str) -> HttpResponse:
    display = _display(token)
    if display is None:
        return _not_paired(request)
    context = _context(display, token)
    context["etag"] = displays.etag(display)
    response = render(request, "reservations/display/page.html", context)
    response["Referrer-Policy"] = "no-referrer"
    return response


def _state_etag(request: HttpRequest, token: str) -> str | None:
    display = _display(token)
    request._display = display
    return displays.etag(display) if display is not None else None


@require_safe
@condition(etag_func=_state_etag)
def state(request: HttpRequest, token: str) -> HttpResponse:
    """The poll: the state fragment, or 304 when nothing changed (``If-None-Match``)."""
    display = getattr(request, "_display", None) or _display(token)
    if display is None:
        response = _not_paired(request)
        response["HX-Refresh"] = "true"  # the page reloads and says it is not paired
        return response
    response = render(request, "reservations/display/_state.html", _context(display, token))
    response["Cache-Control"] = "no-cache"
    return response


def _act(request: HttpRequest, token: str, action) -> HttpResponse:
    display = _display(token)
    if display is None:
        return _not_paired(request)
    try:
        message, error = action(display, request.POST), False
    except services.BookingError as exc:
        message, error = exc.message, True
    context = _context(display, token, message=message, error=error)
    if request.headers.get("HX-Request"):
        context["oob"] = True  # the message goes to the page's own message line
        response = render(request, "reservations/display/_state.html", context)
    else:
        context["etag"] = displays.etag(display)
        response = render(
            request, "reservations/display/page.html", context, status=409 if error else 200
        )
    response["Cache-Control"] = "no-store"
    return response


@require_POST
def book(request: HttpRequest, token: str) -> HttpResponse:
    return _act(request, token, lambda d, data: displays.book_now(d, data.get("minutes")))


@require_POST
def check_in(request: HttpRequest, token: str) -> HttpResponse:
    return _act(request, token, lambda d, data: displays.check_in(d, data.get("reservation")))


@require_POST
def end(request: HttpRequest, token: str) -> HttpResponse:
    return _act(request, token, lambda d, data: displays.end_early(d, data.get("reservation")))


@require_POST
def extend(request: HttpRequest, token: str) -> HttpResponse:
    return _act(
        request,
        token,
        lambda d, data: displays.extend(d, data.get("reservation"), data.get("minutes")),
    )
