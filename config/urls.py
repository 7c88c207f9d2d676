"""Top-level URLs."""

from django.contrib import admin
from django.urls import include, path

from calendars import signin

from . import views

# Routes only: the admin site is set up in ReservationsConfig.ready() and
# CalendarsConfig.ready(), its models registered by each app's admin module.

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("favicon.ico", views.favicon, name="favicon"),
    path("admin/", admin.site.urls),
    # Sign-in with Microsoft / Google: allauth's views, guarded so an unreachable provider is a
    # message on the sign-in page rather than an error page (same paths, so they win).
    path("accounts/oidc/<str:provider_id>/login/", signin.login),
    path("accounts/oidc/<str:provider_id>/login/callback/", signin.callback),
    path("accounts/", include("allauth.urls")),
    # OAuth connect/callback for calendars, "Connect my calendar", the admin's setup pages.
    path("calendars/", include("calendars.urls")),
    # REST API (/api/v1/, /api/schema/, /api/docs/), OAuth tokens (/o/), iCalendar feeds.
    path("", include("reservations.api.urls")),
    path("feeds/", include("reservations.feed_urls")),
    # Room displays: wall tablets paired with a code, no sign-in (reservations/displays.py).
    path("display/", include("reservations.display_urls")),
    path("", include("reservations.urls")),
]

# Under /api/ even Django's own error pages answer in the API's JSON error shape.
handler400 = "reservations.api.errors.bad_request"
handler403 = "reservations.api.errors.permission_denied"
handler404 = "reservations.api.errors.page_not_found"
handler500 = "reservations.api.errors.server_error"
