"""Top-level URLs."""

from django.contrib import admin
from django.urls import include, path

from . import views

admin.site.site_header = "Reserva administration"
admin.site.site_title = "Reserva admin"

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("accounts/", include("allauth.urls")),
    path("", include("reservations.urls")),
]
