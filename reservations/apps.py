"""App config: wires the notification receivers and sets up the admin site (its name, its
sign-in form, no side menu), once, rather than at some module's import."""

from django.apps import AppConfig
from django.contrib.admin import AdminSite


class ReservationsConfig(AppConfig):
    name = "reservations"
    verbose_name = "Reservations"

    def ready(self) -> None:
        from django.contrib import admin

        from . import receivers

        receivers.connect()
        _set_up_admin_site(admin.site)


def _set_up_admin_site(site: AdminSite) -> None:
    from .accounts import WebServiceAwareAdminLoginForm

    site.site_header = "Reserva administration"
    site.site_title = "Reserva admin"
    site.login_form = WebServiceAwareAdminLoginForm  # integration users never sign in
    # The home page is the map (sections by use: templates/admin/index.html); the side menu
    # would take 300 px from every list, whose key columns must fit a 1,366 px screen.
    site.enable_nav_sidebar = False
