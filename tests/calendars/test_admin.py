"""Calendars admin: pages render, a container cannot be bound, kinds must match."""

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from calendars.models import (
    CalendarProvider,
    ConnectionAlias,
    ProviderKind,
    SpaceCalendar,
    SyncSettings,
)
from reservations.models import SpaceKind

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, make_user):
    client.force_login(make_user(is_staff=True, is_superuser=True))
    return client


def test_pages_render(admin_client, provider, make_space):
    SpaceCalendar.objects.create(
        space=make_space(), provider=provider, resource_email="room@example.com"
    )
    SyncSettings.load()
    for model in (
        "connectionalias",
        "credentialalias",
        "calendarprovider",
        "syncsettings",
        "spacecalendar",
        "usertoken",
    ):
        url = reverse(f"admin:calendars_{model}_changelist")
        assert admin_client.get(url, follow=True).status_code == 200
    assert admin_client.get(reverse("admin:calendars_spacecalendar_add")).status_code == 200


def test_a_container_space_cannot_be_bound(admin_client, provider, make_space):
    hall = make_space(kind=SpaceKind.CONTAINER)
    response = admin_client.post(
        reverse("admin:calendars_spacecalendar_add"),
        {
            "space": hall.pk,
            "provider": provider.pk,
            "resource_email": "hall@example.com",
            "calendar_id": "",
            "calendar_name": "",
            "enabled": "on",
        },
    )
    assert response.status_code == 200
    assert "A container space cannot sync; bind its seats instead." in response.content.decode()
    assert not SpaceCalendar.objects.exists()


def test_provider_refuses_aliases_of_another_kind(admin_client, provider):
    google_connection = ConnectionAlias.objects.create(name="gcal", kind=ProviderKind.GOOGLE)
    response = admin_client.post(
        reverse("admin:calendars_calendarprovider_add"),
        {
            "name": "Mixed",
            "kind": "microsoft",
            "is_active": "on",
            "connection": google_connection.pk,
            "credential": provider.credential_id,
            "delegated_user_email": "",
        },
    )
    # The form offers only Microsoft aliases for a Microsoft provider; the model says why
    # when the choice comes from elsewhere.
    assert "Select a valid choice" in response.content.decode()
    assert CalendarProvider.objects.count() == 1
    mixed = CalendarProvider(
        name="Mixed",
        kind=ProviderKind.MICROSOFT,
        connection=google_connection,
        credential=provider.credential,
    )
    with pytest.raises(ValidationError, match="This connection alias is for another provider"):
        mixed.full_clean()


def test_sync_settings_is_a_single_row():
    first = SyncSettings.load()
    SyncSettings(mode="strict").save()
    assert SyncSettings.objects.count() == 1
    first.refresh_from_db()
    assert first.mode == "strict"


def test_connection_alias_defaults_to_the_public_endpoints():
    graph = ConnectionAlias.objects.create(name="g", kind=ProviderKind.MICROSOFT)
    google = ConnectionAlias(
        name="x", kind=ProviderKind.GOOGLE, api_base_url="https://127.0.0.1:9443/calendar/v3/"
    )
    assert graph.endpoint("api_base_url") == "https://graph.microsoft.com/v1.0"
    assert google.endpoint("api_base_url") == "https://127.0.0.1:9443/calendar/v3"
    assert google.endpoint("authority_url") == "https://oauth2.googleapis.com/token"


def test_space_admin_page_links_to_its_calendar_sync_setup(admin_client, make_space):
    space = make_space()
    page = admin_client.get(reverse("admin:reservations_space_change", args=[space.pk]))
    setup = reverse("calendars:space_sync", args=[space.pk])
    assert setup in page.content.decode()
    assert admin_client.get(setup).status_code == 200
