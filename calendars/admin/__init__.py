"""The calendars app's admin, one module per concern; the admin's autodiscovery imports this
package once, and each model is registered once, by the module named here.

- ``providers``: connection aliases, credential aliases, calendar providers ("Test
  connection");
- ``bindings``: space calendars, composed of their own pulled-bookings mixin, "Resume sync"
  (``sync.SyncResumeMixin``) and the bulk export (``export.ExportAdminMixin``);
- ``export``: the bulk export's actions, button and progress pages (a mixin, no model);
- ``sync``: sync jobs, sync links, sync settings, and the mixins above;
- ``conflicts``: the conflicts filter, column and actions of the reservation list (a mixin);
- ``tokens``: people's calendar tokens;
- ``reservation``: the one reservation admin. ``reservations`` defines the booking side
  (``reservations.admin.ReservationAdmin``, not registered there, since ``reservations`` never
  imports ``calendars``); ``reservation.SyncedReservationAdmin`` adds the sync and conflict
  mixins, names every column, filter and action they add, and registers the result;
- ``home``: the admin home's counts and sections (read by ``templates/admin/index.html``
  through the ``admin_home`` template tags; registers nothing).

The admin site itself (header, sign-in form, no side menu, allauth's secret pages hidden) is
set up in ``ReservationsConfig.ready()`` and ``CalendarsConfig.ready()``, not at import.
"""

from . import bindings, conflicts, export, home, providers, reservation, sync, tokens

__all__ = ["bindings", "conflicts", "export", "home", "providers", "reservation", "sync", "tokens"]
