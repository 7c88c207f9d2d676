"""One admin per model (issue 17, item 6): each model is registered once, the reservation admin
once, composed of both apps' columns and actions, and the admin site is set up by the apps'
``ready()``, not by importing the URLs.

Registrations are counted in a fresh process: ``AdminSite.register`` and ``unregister`` are
spied on before ``django.setup()``, so every call the apps make (autodiscovery, ``ready()``)
is seen, and every admin module is then imported again to show nothing registers twice.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter

import pytest
from django.contrib import admin
from django.test import RequestFactory
from django.urls import reverse

from calendars.admin.conflicts import ConflictFilter
from calendars.admin.reservation import SyncedReservationAdmin
from reservations.admin import DayFilter
from reservations.models import Reservation
from tests.conftest import ROOT, subprocess_env

# Registers every call on any AdminSite, then sets Django up, then imports every admin module
# (and the URLs, which used to change the site) a second time.
SPY = """
import importlib, json, sys
from django.contrib.admin import sites
from django.db.models.base import ModelBase

calls = []

def spy(kind, original):
    def method(self, model_or_iterable, *args, **kwargs):
        if isinstance(model_or_iterable, ModelBase):
            models = [model_or_iterable]
        else:
            models = list(model_or_iterable)
        admin_class = args[0] if args else kwargs.get("admin_class")
        named = f"{admin_class.__module__}.{admin_class.__qualname__}" if admin_class else None
        calls.extend([kind, model._meta.label, named] for model in models)
        return original(self, model_or_iterable, *args, **kwargs)
    return method

sites.AdminSite.register = spy("register", sites.AdminSite.register)
sites.AdminSite.unregister = spy("unregister", sites.AdminSite.unregister)

import django
django.setup()
from django.contrib import admin

def site_settings():
    return {
        "urls_imported": "config.urls" in sys.modules,
        "site_header": admin.site.site_header,
        "site_title": admin.site.site_title,
        "index_title": str(admin.site.index_title),
        "index_template": admin.site.index_template,
        "login_form": admin.site.login_form.__name__ if admin.site.login_form else None,
        "enable_nav_sidebar": admin.site.enable_nav_sidebar,
    }

at_setup = len(calls)
site = site_settings()
admin.autodiscover()
for name in json.loads(sys.argv[1]):
    importlib.import_module(name)
importlib.import_module("config.urls")
site_after_urls = site_settings()
print(json.dumps({
    "calls": calls, "at_setup": at_setup, "site": site, "site_after_urls": site_after_urls
}))
"""


def _admin_modules() -> list[str]:
    """Every admin module of the project's apps: ``admin.py``, ``admin_*.py``, ``admin/``."""
    names = []
    for app in ("reservations", "calendars", "integrations"):
        for path in sorted((ROOT / app).rglob("admin*.py")) + sorted(
            (ROOT / app).rglob("admin/*.py")
        ):
            if "migrations" in path.parts:
                continue
            module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            names.append(module.removesuffix(".__init__"))
    return sorted(set(names))


@pytest.fixture(scope="module")
def registrations() -> dict:
    modules = _admin_modules()
    assert "calendars.admin.reservation" in modules and "reservations.admin" in modules
    done = subprocess.run(
        [sys.executable, "-c", SPY, json.dumps(modules)],
        cwd=ROOT,
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_each_model_is_registered_once(registrations):
    calls = registrations["calls"]
    registered = Counter(label for kind, label, _ in calls if kind == "register")
    unregistered = sorted(label for kind, label, _ in calls if kind == "unregister")
    # The one model registered twice is Django's own User, replaced by ours (deactivation).
    assert {label: n for label, n in registered.items() if n != 1} == {"auth.User": 2}
    assert [c[2] for c in calls if c[:2] == ["register", "auth.User"]] == [
        "django.contrib.auth.admin.UserAdmin",
        "reservations.admin.ReservaUserAdmin",
    ]
    # Unregistered: that User, and allauth's pages that would show a plaintext secret.
    assert unregistered == ["auth.User", "socialaccount.SocialApp", "socialaccount.SocialToken"]
    for label in ("reservations.Space", "calendars.SpaceCalendar", "calendars.SyncJob"):
        assert registered[label] == 1


def test_the_reservation_admin_is_registered_once_by_calendars(registrations):
    calls = [c for c in registrations["calls"] if c[1] == "reservations.Reservation"]
    assert calls == [
        [
            "register",
            "reservations.Reservation",
            "calendars.admin.reservation.SyncedReservationAdmin",
        ]
    ]


def test_importing_the_admin_modules_again_registers_nothing(registrations):
    assert registrations["calls"][registrations["at_setup"] :] == []


def test_the_admin_site_is_set_up_before_the_urls_are_imported(registrations):
    set_up = {
        "site_header": "Reserva administration",
        "site_title": "Reserva admin",
        "index_title": "Site administration",  # Django's; the home is templates/admin/index.html
        "index_template": None,
        "login_form": "WebServiceAwareAdminLoginForm",
        "enable_nav_sidebar": False,
    }
    assert registrations["site"] == {"urls_imported": False, **set_up}
    # Importing the URLs routes and changes nothing on the site.
    assert registrations["site_after_urls"] == {"urls_imported": True, **set_up}


@pytest.fixture
def superuser_request(make_user):
    request = RequestFactory().get("/admin/reservations/reservation/")
    request.user = make_user(is_staff=True, is_superuser=True)
    return request


@pytest.mark.django_db
def test_the_reservation_admin_has_both_apps_columns_and_actions(superuser_request):
    model_admin = admin.site._registry[Reservation]
    assert type(model_admin) is SyncedReservationAdmin
    assert model_admin.get_list_display(superuser_request) == (
        # reservations
        "space",
        "local_time",
        "title",
        "person",
        "status_shown",
        "source",
        # calendars
        "sync_state",
        "clashes_with",
    )
    assert sorted(model_admin.get_actions(superuser_request)) == [
        "approve_selected",  # reservations
        "cancel_remote_event",  # calendars
        "cancel_selected",  # reservations
        "decline_selected",  # reservations
        "retry_conflict",  # calendars
    ]
    filters = model_admin.get_list_filter(superuser_request)
    assert ConflictFilter in filters and DayFilter in filters and "status" in filters
    readonly = model_admin.get_readonly_fields(superuser_request)
    assert "calendar_sync" in readonly and "version" in readonly


@pytest.mark.django_db
def test_the_reservation_list_shows_both_apps_columns(client, make_user, make_reservation):
    make_reservation()
    client.force_login(make_user(is_staff=True, is_superuser=True))
    page = client.get(reverse("admin:reservations_reservation_changelist")).content.decode()
    for header in ("When (location time)", "Person", "Status", "Sync", "Clashes with"):
        assert f">{header}</a>" in page or f">{header}</span>" in page, header
    assert "?conflicts=yes" in page  # the conflicts filter
    assert "?day=today" in page  # the reservations app's day filter
    for action in ("cancel_selected", "approve_selected", "cancel_remote_event", "retry_conflict"):
        assert f'value="{action}"' in page


def test_importing_the_admin_modules_again_keeps_the_same_admins():
    import importlib

    before = dict(admin.site._registry)
    admin.autodiscover()
    for name in _admin_modules():
        importlib.import_module(name)
    assert admin.site._registry == before
    assert all(admin.site._registry[model] is before[model] for model in before)
