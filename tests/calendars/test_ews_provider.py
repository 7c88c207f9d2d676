"""The Exchange Server (EWS) provider kind: its aliases' checks, the write-only password in the
admin, and Test connection through the admin's path against the EWS sandbox."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from calendars.models import (
    BindingStatus,
    CalendarProvider,
    ConnectionAlias,
    CredentialAlias,
    ProviderKind,
)
from calendars.remote import provider_config
from calendars.sync import pull
from calendars.sync.trouble import resume_binding
from calendars.views import run_connection_test
from reservations.models import Reservation
from tests.calendars.conftest import bind, control
from tests.conftest import endpoints_allowed
from tests.support.pull import at

pytestmark = pytest.mark.django_db

EWS_URL = "https://mail.contoso.test/EWS/Exchange.asmx"
PASSWORD = "Reserva-sandbox-1"


def connection(**fields) -> ConnectionAlias:
    values = {"name": "Exchange", "kind": ProviderKind.EWS, "api_base_url": EWS_URL, **fields}
    return ConnectionAlias(**values)


def credential(**fields) -> CredentialAlias:
    values = {
        "name": "Sync user",
        "kind": ProviderKind.EWS,
        "auth_method": "ntlm",
        "username": "CONTOSO\\svc-reserva",
        "password": PASSWORD,
        "account_email": "svc-reserva@contoso.test",
        "access_type": "impersonation",
        **fields,
    }
    return CredentialAlias(**values)


def errors_of(model) -> dict[str, list[str]]:
    with pytest.raises(ValidationError) as raised:
        model.full_clean()
    return raised.value.message_dict


def test_an_ews_connection_needs_an_ews_url_on_an_allowed_on_premises_host():
    with endpoints_allowed("mail.contoso.test", "http://mail.contoso.test"):
        connection().full_clean()
        connection(server_version="2019", calendar_folder="Reserva").full_clean()
        assert "Enter the EWS URL" in errors_of(connection(api_base_url=""))["api_base_url"][0]
        wrong_path = connection(api_base_url="https://mail.contoso.test/owa/")
        assert "ends in /EWS/Exchange.asmx" in errors_of(wrong_path)["api_base_url"][0]
    online = connection(api_base_url="https://outlook.office365.com/EWS/Exchange.asmx")
    assert "Microsoft 365 (Exchange Online) provider" in errors_of(online)["api_base_url"][0]
    graph = ConnectionAlias(name="Graph", kind=ProviderKind.MICROSOFT, server_version="2019")
    assert "Only Exchange Server has a version" in errors_of(graph)["server_version"][0]


def test_an_ews_credential_says_what_is_missing():
    credential().full_clean()
    credential(username="svc-reserva@contoso.test").full_clean()
    credential(auth_method="basic", username="svc-reserva").full_clean()
    assert "DOMAIN\\user or user@domain" in errors_of(credential(username="svc"))["username"][0]
    assert "password" in errors_of(credential(password=""))["password"][0]
    oauth = credential(auth_method="oauth", tenant_id="contoso.test", client_id="app")
    assert "client secret, resource URL" in errors_of(oauth)["auth_method"][0]
    credential(
        auth_method="oauth",
        tenant_id="contoso.test",
        client_id="app",
        client_secret="s",
        resource_url="https://mail.contoso.test",
    ).full_clean()
    nobody = errors_of(credential(account_email="", access_type=""))
    assert set(nobody) == {"account_email", "access_type"}


def test_basic_over_plain_http_is_refused():
    with endpoints_allowed("http://mail.contoso.test"):
        plain = connection(name="Plain", api_base_url="http://mail.contoso.test/EWS/Exchange.asmx")
        plain.save()
        basic = credential(name="Basic", auth_method="basic")
        basic.save()
        ntlm = credential(name="NTLM")
        ntlm.save()
        provider = CalendarProvider(name="EWS", kind="ews", connection=plain, credential=basic)
        assert "plain http" in errors_of(provider)["credential"][0]
        CalendarProvider(name="EWS", kind="ews", connection=plain, credential=ntlm).full_clean()


def test_the_password_is_encrypted_and_write_only_in_the_admin(client, make_user):
    client.force_login(make_user(is_staff=True, is_superuser=True))
    form = {
        "name": "Sync user",
        "kind": "ews",
        "tenant_id": "",
        "client_id": "",
        "scopes": "",
        "auth_method": "ntlm",
        "username": "CONTOSO\\svc-reserva",
        "resource_url": "",
        "account_email": "svc-reserva@contoso.test",
        "access_type": "impersonation",
        "new_client_secret": "",
        "new_service_account_key": "",
        "new_password": "",
    }
    response = client.post(reverse("admin:calendars_credentialalias_add"), form)
    assert "Enter the sync user" in response.content.decode()  # no password yet
    response = client.post(
        reverse("admin:calendars_credentialalias_add"), {**form, "new_password": PASSWORD}
    )
    assert response.status_code == 302
    stored = CredentialAlias.objects.get()
    assert stored.password == PASSWORD
    from django.db import connection as db

    with db.cursor() as cursor:
        cursor.execute("SELECT password FROM calendars_credentialalias")
        assert PASSWORD not in cursor.fetchone()[0]
    url = reverse("admin:calendars_credentialalias_change", args=[stored.pk])
    page = client.get(url).content.decode()
    assert PASSWORD not in page and "A password is stored; leave empty to keep it." in page
    assert client.post(url, form).status_code == 302
    assert CredentialAlias.objects.get().password == PASSWORD  # empty input keeps it
    changelist = client.get(reverse("admin:calendars_credentialalias_changelist"))
    assert "password set" in changelist.content.decode()


@pytest.fixture
def ews_provider(sandbox) -> CalendarProvider:
    conn = ConnectionAlias.objects.create(
        name="Sandbox EWS",
        kind=ProviderKind.EWS,
        api_base_url=f"{sandbox.base_url}/EWS/Exchange.asmx",
        ca_bundle=str(sandbox.ca_file),
        timeout_seconds=10,
    )
    cred = credential()
    cred.save()
    return CalendarProvider.objects.create(
        name="Exchange Server", kind=ProviderKind.EWS, connection=conn, credential=cred
    )


def test_provider_config_carries_the_ews_settings(ews_provider):
    config = provider_config(ews_provider)
    assert (config.kind, config.auth_method, config.username) == (
        "ews",
        "ntlm",
        "CONTOSO\\svc-reserva",
    )
    assert config.password == PASSWORD and PASSWORD not in repr(config)
    assert config.impersonation and config.api_base_url.endswith("/EWS/Exchange.asmx")


def test_connection_through_the_admin_path_in_plain_words(ews_provider):
    ok, text = run_connection_test(ews_provider, "atlas@contoso.test")
    assert ok, text
    ok, text = run_connection_test(ews_provider, "nobody@contoso.test")
    assert not ok and "No mailbox (nobody@contoso.test) exists" in text
    CredentialAlias.objects.filter(pk=ews_provider.credential_id).update(password="wrong")
    ews_provider.refresh_from_db()
    ok, text = run_connection_test(ews_provider, "atlas@contoso.test")
    assert not ok and "user name or password is wrong" in text


def test_an_ews_connection_alias_is_added_in_the_admin(client, make_user):
    client.force_login(make_user(is_staff=True, is_superuser=True))
    form = {
        "name": "Exchange",
        "kind": "ews",
        "authority_url": "",
        "authorization_url": "",
        "api_base_url": "https://outlook.office365.com/EWS/Exchange.asmx",
        "batch_url": "",
        "ca_bundle": "/etc/ssl/contoso-ca.pem",
        "timeout_seconds": "30",
        "server_version": "2019",
        "calendar_folder": "",
    }
    add = reverse("admin:calendars_connectionalias_add")
    refused = client.post(add, form).content.decode()
    assert "Microsoft 365 (Exchange Online) provider" in refused
    with endpoints_allowed("mail.contoso.test"):
        assert client.post(add, {**form, "api_base_url": EWS_URL}).status_code == 302
        saved = ConnectionAlias.objects.get()
        assert (saved.kind, saved.server_version, saved.api_base_url) == ("ews", "2019", EWS_URL)
        page = client.get(reverse("admin:calendars_connectionalias_change", args=[saved.pk]))
        assert "Exchange Server Subscription Edition" in page.content.decode()


def test_the_authority_is_checked_only_for_a_credential_that_gets_tokens_from_it(ews_provider):
    """NTLM and Basic never contact the connection's authority, so an allowlist naming only
    the Exchange server is enough; hybrid OAuth does, so there it must be allowed."""
    from django.test import override_settings

    from calendars.remote import checked_endpoints
    from integrations.base import EndpointRefused

    only_exchange = [ews_provider.connection.api_base_url.split("/EWS/")[0]]
    with override_settings(PROVIDER_ENDPOINT_ALLOWLIST=only_exchange):
        assert checked_endpoints(ews_provider)["authority_url"] == ""
        CredentialAlias.objects.filter(pk=ews_provider.credential_id).update(
            auth_method="oauth", tenant_id="contoso.test", client_id="c", client_secret="s"
        )
        ews_provider.refresh_from_db()
        with pytest.raises(EndpointRefused) as refused:
            checked_endpoints(ews_provider)
        assert "login.microsoftonline.com" in refused.value.message


def test_nobody_signs_in_to_exchange_server(ews_provider, client, make_user):
    """No sign-in, no personal connection and no Authorize for an EWS provider: the model
    refuses the sign-in box, the sign-in page and the connect page leave it out, and a space's
    Authorize says to bind the room in Space calendars."""
    from calendars import signin
    from reservations.models import Location, Space

    ews_provider.sign_in_enabled = True
    assert "Nobody signs in to Exchange Server" in errors_of(ews_provider)["sign_in_enabled"][0]
    CalendarProvider.objects.filter(pk=ews_provider.pk).update(sign_in_enabled=True)
    assert all(app.provider_id != "ews" for app in signin.configured_apps())

    admin = make_user(is_staff=True, is_superuser=True)
    client.force_login(admin)
    assert ews_provider.name not in client.get(reverse("calendars:connect")).content.decode()
    space = Space.objects.create(
        location=Location.objects.create(name="Berlin", time_zone="Europe/Berlin"), name="Spree"
    )
    page = client.get(reverse("calendars:space_sync", args=[space.pk])).content.decode()
    assert reverse("calendars:space_authorize", args=[space.pk, ews_provider.pk]) not in page
    response = client.post(
        reverse("calendars:space_authorize", args=[space.pk, ews_provider.pk]), follow=True
    )
    assert "bind Spree in Space calendars" in response.content.decode()


def test_a_calendar_folder_in_the_connection_alias_is_where_the_room_is_read(
    ews_provider, sandbox, make_space
):
    ConnectionAlias.objects.filter(pk=ews_provider.connection_id).update(calendar_folder="Bookings")
    ews_provider.refresh_from_db()
    binding = bind(make_space(name="Atlas Berlin"), ews_provider, "atlas@contoso.test")

    ok, text = run_connection_test(ews_provider, "atlas@contoso.test")
    missing = (
        "The mailbox atlas@contoso.test has no calendar folder named 'Bookings' under its calendar."
    )
    assert not ok and missing in text and "Traceback" not in text
    assert pull.pull_binding(binding.pk).status != "succeeded"
    binding.refresh_from_db()
    assert binding.status == BindingStatus.PAUSED and missing in binding.last_error

    mailbox = "ews/mailboxes/atlas@contoso.test"
    folder = control(sandbox, "POST", f"{mailbox}/calendar-folders", json={"name": "Bookings"})
    times = {"start": at(0, 9).isoformat(), "end": at(0, 10).isoformat()}
    into = {"folder": folder["id"]}
    control(sandbox, "POST", f"{mailbox}/items", params=into, json={"subject": "Booked", **times})
    times = {"start": at(0, 11).isoformat(), "end": at(0, 12).isoformat()}
    control(sandbox, "POST", f"{mailbox}/items", json={"subject": "In the calendar", **times})

    ok, text = run_connection_test(ews_provider, "atlas@contoso.test")
    assert ok, text
    resume_binding(binding.pk)  # the admin's Resume once the folder exists
    assert pull.pull_binding(binding.pk).status == "succeeded"
    titles = Reservation.objects.filter(space=binding.space).values_list("title", flat=True)
    assert list(titles) == ["Booked"]
