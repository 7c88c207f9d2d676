"""The admin as an operations console (issue 19): the home page's counts follow the
permissions, Sync settings is one page, removing an authorization asks first."""

from __future__ import annotations

import pytest
from django.urls import reverse

from calendars.admin import home as admin_home
from calendars.models import SyncSettings
from reservations.models import Reservation, ReservationStatus

pytestmark = pytest.mark.django_db


def test_sync_settings_is_a_single_page(client, make_user):
    client.force_login(make_user(is_staff=True, is_superuser=True))
    response = client.get(reverse("admin:calendars_syncsettings_changelist"))
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:calendars_syncsettings_change", args=[1])
    page = client.get(response["Location"])
    assert page.status_code == 200 and "Add sync settings" not in page.content.decode()
    assert SyncSettings.objects.count() == 1
    assert client.get(reverse("admin:calendars_syncsettings_add")).status_code == 403


def test_sync_settings_need_a_permission(client, make_user):
    client.force_login(make_user(is_staff=True))
    assert client.get(reverse("admin:calendars_syncsettings_changelist")).status_code == 403


def test_the_home_counts_only_what_the_person_may_see(client, make_user, make_reservation):
    booking = make_reservation()
    Reservation.objects.filter(pk=booking.pk).update(status=ReservationStatus.CONFLICTED)
    clerk = make_user(is_staff=True, perms=("reservations.view_reservation",))
    labels = [item.label for item in admin_home.attention(clerk)]
    assert labels[0].startswith("Conflicts") and not any("push" in label for label in labels)
    assert admin_home.attention(clerk)[0].count == 1

    client.force_login(clerk)
    page = client.get(reverse("admin:index")).content.decode()
    assert "?conflicts=yes" in page and "Failed pushes" not in page


def test_the_home_lists_sections_in_order_of_use(client, make_user):
    client.force_login(make_user(is_staff=True, is_superuser=True))
    page = client.get(reverse("admin:index")).content.decode()
    positions = [
        page.index(f'<span class="section">{name}</span>')
        for name in (
            "Reservations",
            "Spaces and locations",
            "Calendar sync",
            "People and access",
            "API",
        )
    ]
    assert positions == sorted(positions)
    assert page.index("Integration accounts") > page.index('<span class="section">API</span>')
