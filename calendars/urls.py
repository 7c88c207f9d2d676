"""URLs of the calendars app (namespace ``calendars``), mounted at ``/calendars/``.

``oauth/<kind>/callback/`` is the redirect URI to register with Microsoft Entra and Google
Cloud (``PUBLIC_BASE_URL`` + this path); the setup pages are for staff with the calendars
permissions and link back into the Django admin.
"""

from django.urls import path

from . import views, webhooks

app_name = "calendars"

urlpatterns = [
    path("oauth/<str:kind>/callback/", views.oauth_callback, name="oauth_callback"),
    path("connect/", views.connect, name="connect"),
    path("connect/<int:provider_id>/", views.connect_start, name="connect_start"),
    path("connect/<int:provider_id>/disconnect/", views.disconnect, name="disconnect"),
    path("setup/providers/<int:provider_id>/test/", views.provider_test, name="provider_test"),
    path("setup/spaces/", views.space_pick, name="space_pick"),
    path("setup/spaces/<int:space_id>/", views.space_sync, name="space_sync"),
    path(
        "setup/spaces/<int:space_id>/authorize/<int:provider_id>/",
        views.space_authorize,
        name="space_authorize",
    ),
    path("setup/spaces/<int:space_id>/calendar/", views.space_calendar, name="space_calendar"),
    path("setup/spaces/<int:space_id>/remove/", views.space_remove, name="space_remove"),
    # Webhooks (calendars/webhooks.py): PUBLIC_BASE_URL + these must be reachable by the provider.
    path("webhooks/microsoft/", webhooks.microsoft, name="webhook_microsoft"),
    path(
        "webhooks/microsoft/lifecycle/",
        webhooks.microsoft_lifecycle,
        name="webhook_microsoft_lifecycle",
    ),
    path("webhooks/google/", webhooks.google, name="webhook_google"),
]
