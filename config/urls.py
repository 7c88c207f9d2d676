"""Top-level URLs."""

from django.contrib import admin
from django.urls import include, path

from calendars import signin
from reservations.accounts import WebServiceAwareAdminLoginForm

from . import views

admin.site.site_header = "Reserva administration"
admin.site.site_title = "Reserva admin"
admin.site.login_form = WebServiceAwareAdminLoginForm  # integration users never sign in
# The home page is the map (sections by use, calendars/admin_home.py); the side menu would
# take 300 px from every list, whose key columns must fit a 1,366 px screen.
admin.site.enable_nav_sidebar = False
signin.hide_plaintext_secret_admin()  # sign-in apps come from aliases or the environment

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
