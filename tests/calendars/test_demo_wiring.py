"""``seed_demo`` wires the demo to the provider sandbox: aliases, providers, bindings, sign-in,
and one bulk export per bound space, so the demo week reaches the sandbox rooms.

The bindings are checked against a running sandbox with the real msal and google-auth (and,
for Berlin's Exchange Server room, exchangelib through Test connection), using the credentials
exactly as the seed stored them (decrypted from the database).
"""

from __future__ import annotations

import io
import json
import socket
from pathlib import Path

import msal
import pytest
import requests
from django.core.management import call_command
from django.db import connection
from django.test import override_settings
from django.utils import timezone
from google.auth.transport.requests import Request as GoogleRequest
from google.oauth2 import service_account

from calendars.demo import EWS_BINDINGS, GOOGLE_BINDINGS, MICROSOFT_BINDINGS
from calendars.models import (
    BindingStatus,
    CalendarProvider,
    ConnectionAlias,
    CredentialAlias,
    JobKind,
    JobStatus,
    LinkState,
    ProviderKind,
    SpaceCalendar,
    SyncJob,
    SyncLink,
    SyncSettings,
)
from calendars.views import run_connection_test
from integrations.sandbox.config import DEMO_CLIENT_SECRET, default_config, merge
from integrations.sandbox.testing import SandboxHandle, start_sandbox
from reservations.models import Reservation
from tests.calendars.conftest import control, remote_events

CALENDAR_SCOPE = "https://www.googleapis.com/auth/calendar"


def seed(state_dir: Path, sandbox_port: int = 8443, portal_port: int = 8000) -> None:
    call_command(
        "seed_demo",
        sandbox_port=sandbox_port,
        sandbox_state_dir=str(state_dir),
        portal_port=portal_port,
        verbosity=0,
        history_weeks=0,  # the past weeks never reach the sandbox: not needed here
    )


@pytest.mark.django_db
def test_seeding_says_when_the_allowlist_does_not_name_the_sandbox(tmp_path, settings):
    """make run allows the sandbox; anyone seeding the demo otherwise is told what to add."""
    seed(tmp_path)
    said = io.StringIO()
    call_command("seed_demo_calendars", sandbox_state_dir=str(tmp_path), verbosity=0, stderr=said)
    assert "PROVIDER_ENDPOINT_ALLOWLIST does not name the sandbox" in said.getvalue()
    assert "https://127.0.0.1:8443 is added there" in said.getvalue()
    settings.PROVIDER_ENDPOINT_ALLOWLIST = ["https://127.0.0.1:8443"]
    said = io.StringIO()
    call_command("seed_demo_calendars", sandbox_state_dir=str(tmp_path), verbosity=0, stderr=said)
    assert said.getvalue() == ""


def room_events(handle: SandboxHandle, binding: SpaceCalendar) -> list[dict]:
    """The live events in a bound room's calendar, whichever sandbox service holds it."""
    kind = binding.provider.kind
    if kind == ProviderKind.EWS:
        items = control(handle, "GET", f"ews/mailboxes/{binding.resource_email}/items")["value"]
        return [item for item in items if not item["is_cancelled"]]
    calendar = binding.resource_email if kind == ProviderKind.MICROSOFT else binding.calendar_id
    return remote_events(handle, kind, calendar)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def counts() -> tuple[int, ...]:
    return tuple(
        model.objects.count()
        for model in (
            ConnectionAlias,
            CredentialAlias,
            CalendarProvider,
            SpaceCalendar,
            SyncSettings,
        )
    )


@pytest.mark.django_db
def test_seed_demo_creates_the_wiring_once(tmp_path):
    seed(tmp_path)
    first = counts()
    seed(tmp_path)
    assert counts() == first == (3, 3, 3, 7, 1)

    microsoft = CalendarProvider.objects.get(kind=ProviderKind.MICROSOFT)
    google = CalendarProvider.objects.get(kind=ProviderKind.GOOGLE)
    assert microsoft.is_active and google.is_active
    assert microsoft.sign_in_enabled and google.sign_in_enabled
    # Berlin's room is an on-premises Exchange Server's, reached over EWS by the sandbox's
    # service account with the impersonation role; Exchange Server offers no sign-in.
    ews = CalendarProvider.objects.get(kind=ProviderKind.EWS)
    assert ews.is_active and not ews.sign_in_enabled
    assert ews.connection.api_base_url == "https://127.0.0.1:8443/EWS/Exchange.asmx"
    assert ews.connection.ca_bundle == microsoft.connection.ca_bundle
    assert (ews.credential.auth_method, ews.credential.username, ews.credential.access_type) == (
        "ntlm",
        "CONTOSO\\svc-reserva",
        "impersonation",
    )
    ews.credential.full_clean()
    (spree,) = SpaceCalendar.objects.filter(provider=ews).select_related("space__location")
    assert (spree.space.name, spree.resource_email, spree.calendar_id) == (
        "Spree",
        "spree@contoso.test",
        "",
    )
    assert spree.space.location.time_zone == "Europe/Berlin"
    assert microsoft.connection.endpoint("api_base_url") == "https://127.0.0.1:8443/v1.0"
    assert microsoft.connection.ca_bundle == str(tmp_path.resolve() / "ca.pem")
    # Some spaces of each location, to rooms the sandbox has, authorized by the admin.
    bindings = SpaceCalendar.objects.select_related("space__location", "authorized_by")
    by_location = {}
    for binding in bindings:
        by_location.setdefault(binding.space.location.name, set()).add(binding.provider.kind)
        assert binding.status == BindingStatus.OK and binding.enabled
        assert binding.authorized_by.username == "admin" and binding.authorized_at
    assert by_location == {
        "London HQ": {"microsoft"},
        "New York Office": {"google"},
        "Berlin Office": {"ews"},
    }
    sandbox_rooms = {room["email"] for room in default_config()["microsoft"]["tenants"][0]["rooms"]}
    assert {b.resource_email for b in bindings if b.provider == microsoft} == sandbox_rooms
    ews_rooms = {room["email"] for room in default_config()["ews"]["rooms"]}
    assert {email for *_, email in EWS_BINDINGS} <= ews_rooms


@pytest.mark.django_db
def test_seeded_secrets_are_encrypted_at_rest(tmp_path):
    seed(tmp_path)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT client_secret, service_account_key, password FROM calendars_credentialalias"
        )
        rows = cursor.fetchall()
    raw = json.dumps(rows)
    assert DEMO_CLIENT_SECRET not in raw
    ews_password = CredentialAlias.objects.get(kind=ProviderKind.EWS).password
    assert ews_password and ews_password not in raw
    assert "GOCSPX" not in raw and "PRIVATE KEY" not in raw
    assert all(value.startswith("fernet:") for row in rows for value in row if value)
    google = CredentialAlias.objects.get(kind=ProviderKind.GOOGLE)
    assert google.service_account_key["type"] == "service_account"


@pytest.mark.django_db
def test_the_demo_users_sign_in_addresses_are_the_sandboxs(tmp_path):
    from allauth.account.models import EmailAddress

    seed(tmp_path)
    seed(tmp_path)
    addresses = set(EmailAddress.objects.values_list("user__username", "email", "verified"))
    assert addresses == {
        ("alice", "alice@contoso.test", True),
        ("alice", "alice@northwind.test", True),
        ("bob", "bob@contoso.test", True),
        ("bob", "bob@northwind.test", True),
    }


@pytest.mark.django_db
def test_the_seeded_bindings_work_against_the_sandbox(tmp_path):
    """Seed first (as make run does), then start the sandbox on the seeded port and config."""
    port = free_port()
    seed(tmp_path, sandbox_port=port, portal_port=8123)
    stored_key = CredentialAlias.objects.get(kind=ProviderKind.GOOGLE).service_account_key
    override = json.loads((tmp_path / "demo-config.json").read_text())
    handle = start_sandbox(tmp_path, merge(default_config(), override), port=port)
    try:
        http = requests.Session()
        http.trust_env = False
        # The sandbox kept the key the seed stored.
        written = json.loads((tmp_path / "google" / "reserva-sync.json").read_text())
        assert written["private_key_id"] == stored_key["private_key_id"]

        microsoft = CalendarProvider.objects.get(kind=ProviderKind.MICROSOFT)
        http.verify = microsoft.connection.ca_bundle
        credential = microsoft.credential
        app = msal.ConfidentialClientApplication(
            credential.client_id,
            client_credential=credential.client_secret,
            authority=f"{microsoft.connection.endpoint('authority_url')}/{credential.tenant_id}",
            instance_discovery=False,
            http_client=http,
        )
        token = app.acquire_token_for_client(["https://graph.microsoft.com/.default"])
        assert "access_token" in token, token
        api = microsoft.connection.endpoint("api_base_url")
        for *_, room in MICROSOFT_BINDINGS:
            answer = http.get(
                f"{api}/users/{room}/calendar",
                headers={"Authorization": f"Bearer {token['access_token']}"},
            )
            assert answer.status_code == 200, (room, answer.text)

        google = CalendarProvider.objects.get(kind=ProviderKind.GOOGLE)
        creds = service_account.Credentials.from_service_account_info(
            google.credential.service_account_key,
            scopes=[CALENDAR_SCOPE],
            subject=google.delegated_user_email,
        )
        creds.refresh(GoogleRequest(http))
        api = google.connection.endpoint("api_base_url")
        for binding in SpaceCalendar.objects.filter(provider=google):
            assert binding.resource_email in {email for *_, email in GOOGLE_BINDINGS}
            answer = http.get(
                f"{api}/calendars/{binding.calendar_id}/events",
                params={"maxResults": 1},
                headers={"Authorization": f"Bearer {creds.token}"},
            )
            assert answer.status_code == 200, (binding.calendar_id, answer.text)

        # Berlin's room through the admin's Test connection: NTLM as the service account,
        # impersonating the room mailbox (with make run's allowlist: the sandbox alone).
        ews = CalendarProvider.objects.get(kind=ProviderKind.EWS)
        with override_settings(PROVIDER_ENDPOINT_ALLOWLIST=[handle.base_url]):
            for binding in SpaceCalendar.objects.filter(provider=ews):
                ok, text = run_connection_test(ews, binding.resource_email)
                assert ok, text

        # The sandbox accepts the portal's sign-in redirect URI on the seeded portal port.
        for provider_id, path in (
            ("microsoft", f"/{microsoft.credential.tenant_id}/oauth2/v2.0/authorize"),
            ("google", "/google/o/oauth2/v2/auth"),
        ):
            client_id = CalendarProvider.objects.get(kind=provider_id).credential.client_id
            page = http.get(
                f"{handle.base_url}{path}",
                params={
                    "client_id": client_id,
                    "response_type": "code",
                    "scope": "openid email profile",
                    "redirect_uri": f"http://127.0.0.1:8123/accounts/oidc/{provider_id}/login/callback/",
                },
                allow_redirects=False,
            )
            assert page.status_code == 200, page.text[:300]  # the account page, not an error
    finally:
        handle.stop()


@pytest.mark.django_db
def test_a_sandbox_that_started_first_keeps_its_key(tmp_path):
    handle = start_sandbox(tmp_path)
    try:
        written = json.loads((tmp_path / "google" / "reserva-sync.json").read_text())
        seed(tmp_path, sandbox_port=handle.port)
        stored = CredentialAlias.objects.get(kind=ProviderKind.GOOGLE).service_account_key
        assert stored["private_key"] == written["private_key"]
        assert stored["token_uri"] == f"{handle.base_url}/google/oauth2/token"
    finally:
        handle.stop()


@pytest.mark.django_db
def test_seed_demo_queues_one_export_of_the_demo_week_per_bound_space(tmp_path):
    seed(tmp_path)
    seed(tmp_path)  # again: nothing queued twice
    jobs = SyncJob.objects.filter(kind=JobKind.EXPORT)
    waiting = {
        b.pk: Reservation.objects.filter(space=b.space, end__gt=timezone.now()).count()
        for b in SpaceCalendar.objects.all()
    }
    assert sum(waiting.values()) > 0, "the demo week booked nothing in the bound rooms"
    assert sorted(jobs.values_list("binding_id", flat=True)) == sorted(
        pk for pk, count in waiting.items() if count
    )
    assert {job.binding_id: job.total for job in jobs} == {
        pk: count for pk, count in waiting.items() if count
    }
    assert {job.status for job in jobs} == {JobStatus.QUEUED}
    # The worker may run them before the sandbox ever started: its CA is there already.
    for provider in CalendarProvider.objects.all():
        assert Path(provider.connection.ca_bundle).is_file()


@pytest.mark.django_db(transaction=True)
def test_the_demo_week_reaches_the_sandbox_rooms(tmp_path, settings):
    """As in make run: the exports seed_demo queues run in the worker (eagerly here, once
    their job is committed) against the sandbox, and every future demo booking of a bound
    space is an event in its room. The bookings are made before the spaces are bound, so
    only the exports can send them."""
    handle = start_sandbox(tmp_path)
    settings.PROVIDER_ENDPOINT_ALLOWLIST = [handle.base_url]  # as make run sets it
    try:
        seed(tmp_path, sandbox_port=handle.port)
        bindings = list(SpaceCalendar.objects.select_related("provider", "space"))
        assert {b.provider.kind for b in bindings} == {"microsoft", "google", "ews"}
        for binding in bindings:
            booked = sorted(
                Reservation.objects.filter(space=binding.space, end__gt=timezone.now()).values_list(
                    "pk", flat=True
                )
            )
            events = room_events(handle, binding)
            assert len(events) == len(booked), (binding, events)
            assert (
                sorted(
                    SyncLink.objects.filter(binding=binding, state=LinkState.SYNCED).values_list(
                        "reservation_id", flat=True
                    )
                )
                == booked
            )
        assert (
            sum(SyncJob.objects.filter(kind=JobKind.EXPORT).values_list("created_count", flat=True))
            == Reservation.objects.filter(
                space__calendar__isnull=False, end__gt=timezone.now()
            ).count()
            > 0
        )
    finally:
        handle.stop()


@pytest.mark.django_db(transaction=True)
def test_a_second_make_run_fills_the_new_empty_sandbox(tmp_path, settings):
    """The sandbox keeps its calendars in memory: a second ``make run`` starts it empty. The
    links Reserva kept said "synced", so nothing was exported again, and the rooms stayed
    empty until the daily reconciliation (found trying make run twice). Now seed_demo forgets
    the previous sandbox, and the new one gets the bookings again; a pull takes none of them
    for a deletion made in the room."""
    from calendars.sync import pull

    first = start_sandbox(tmp_path)
    settings.PROVIDER_ENDPOINT_ALLOWLIST = [first.base_url]  # as make run sets it
    try:
        seed(tmp_path, sandbox_port=first.port)
    finally:
        first.stop()
    second = start_sandbox(tmp_path)
    settings.PROVIDER_ENDPOINT_ALLOWLIST = [second.base_url]
    try:
        seed(tmp_path, sandbox_port=second.port)
        for binding in SpaceCalendar.objects.select_related("provider", "space"):
            future = Reservation.objects.filter(space=binding.space, end__gt=timezone.now())
            assert len(room_events(second, binding)) == future.count()
            assert pull.pull_binding(binding.pk).cancelled == 0
            assert future.filter(status="cancelled").count() == 0
    finally:
        second.stop()
