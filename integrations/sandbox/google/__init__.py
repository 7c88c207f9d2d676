"""The Google half of the sandbox: Google OAuth 2.0 and Google Calendar API v3.

Everything is mounted under ``/google`` on the sandbox's one HTTPS server, mirroring Google's
hosts so a client only swaps the origin:

==============================================  ============================================
Google                                          sandbox
==============================================  ============================================
``https://oauth2.googleapis.com/token``         ``{base}/google/oauth2/token``
``https://oauth2.googleapis.com/revoke``        ``{base}/google/oauth2/revoke``
``https://accounts.google.com/o/oauth2/v2/auth``  ``{base}/google/o/oauth2/v2/auth``
``https://www.googleapis.com/oauth2/v3/certs``  ``{base}/google/oauth2/v3/certs``
``https://openidconnect.googleapis.com/v1/userinfo``  ``{base}/google/v1/userinfo``
``https://www.googleapis.com/calendar/v3/...``  ``{base}/google/calendar/v3/...``
``https://www.googleapis.com/batch/calendar/v3``  ``{base}/google/batch/calendar/v3``
==============================================  ============================================

``register(router, sandbox)`` is called by the server at start; the state lives in
``sandbox.services["google"]`` (:class:`~.service.GoogleService`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..core import Request, Response, Router
from ..limits import LimitRule
from . import channels, control, events, freebusy, instances, oauth, rooms
from .api import SERVICE as CALENDAR
from .batch import batch
from .errors import format_framework_error
from .service import GoogleService
from .sync import events_list

if TYPE_CHECKING:
    from ..server import Sandbox

V3 = "/google/calendar/v3"
CALENDAR_ID = "(?P<calendarId>[^/]+)"
EVENT_ID = "(?P<eventId>[^/]+)"


def _oauth_error(status: int, code: str, message: str, request: Request | None) -> Response:
    """Faults on the token endpoint in the OAuth shape google-auth knows how to retry."""
    error = {500: "internal_failure", 503: "temporarily_unavailable"}.get(status, "invalid_request")
    return Response.json(status, {"error": error, "error_description": message})


def register(router: Router, sandbox: Sandbox) -> None:
    """Create the Google state, write key and client-secrets files, add the routes."""
    google = GoogleService(sandbox)
    sandbox.services["google"] = google
    google.directory.write_files(sandbox.state_dir / "google", sandbox.base_url)
    if "google" not in sandbox.limits.rules:
        # Per-user quota; no in-flight cap (Google publishes none for Calendar).
        rpm = google.settings["requests_per_minute"]
        sandbox.limits.rules["google"] = LimitRule(
            max_in_flight=None, max_requests=rpm, window_seconds=60
        )
    sandbox.error_formatters[CALENDAR] = format_framework_error
    sandbox.error_formatters[oauth.SERVICE] = _oauth_error
    sandbox.path_services.append(("/google", CALENDAR))
    oauth.register(router, sandbox)
    routes = [
        ("GET", f"{V3}/users/me/calendarList", events.calendar_list, "calendarList.list"),
        (
            "GET",
            f"{V3}/users/me/calendarList/{CALENDAR_ID}",
            events.calendar_list_get,
            "calendarList.get",
        ),
        ("GET", f"{V3}/calendars/{CALENDAR_ID}", events.calendars_get, "calendars.get"),
        ("GET", f"{V3}/calendars/{CALENDAR_ID}/events", events_list, "events.list"),
        ("POST", f"{V3}/calendars/{CALENDAR_ID}/events", events.insert, "events.insert"),
        ("POST", f"{V3}/calendars/{CALENDAR_ID}/events/watch", channels.watch, "events.watch"),
        ("GET", f"{V3}/calendars/{CALENDAR_ID}/events/{EVENT_ID}", events.get, "events.get"),
        (
            "GET",
            f"{V3}/calendars/{CALENDAR_ID}/events/{EVENT_ID}/instances",
            instances.instances,
            "events.instances",
        ),
        ("PUT", f"{V3}/calendars/{CALENDAR_ID}/events/{EVENT_ID}", events.update, "events.update"),
        ("PATCH", f"{V3}/calendars/{CALENDAR_ID}/events/{EVENT_ID}", events.patch, "events.patch"),
        (
            "DELETE",
            f"{V3}/calendars/{CALENDAR_ID}/events/{EVENT_ID}",
            events.delete,
            "events.delete",
        ),
        ("POST", f"{V3}/channels/stop", channels.stop, "channels.stop"),
        ("POST", f"{V3}/freeBusy", freebusy.query, "freebusy.query"),
        ("POST", "/google/batch/calendar/v3", batch, "batch"),
    ]
    for method, pattern, handler, name in routes:
        router.add(method, pattern, handler, service=CALENDAR, name=f"google {name}")
    control.register(router, sandbox)
    google.listeners.append(rooms.listener(google))
    google.listeners.append(channels.on_change(google))
    sandbox.page_sources.append(lambda day: control.page_calendars(google, day))
