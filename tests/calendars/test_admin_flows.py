"""The administrator's calendar setup through the Django test client, against the sandbox over
real HTTPS: Test connection (success and each plain-words failure), authorizing a space with
Microsoft and Google (the provider's authorize page played with requests, auto-consent on),
picking the sync calendar, removing the authorization (nothing remote is deleted), and the
refusals along the way (forged state, cancelled consent, a reused answer, a container space).
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterator
from pathlib import Path

import certifi
import pytest
import responses

from calendars.models import (
    BindingStatus,
    CalendarProvider,
    ConnectionAlias,
    SpaceCalendar,
)
from integrations.google import auth as google_auth
from integrations.microsoft import auth as microsoft_auth
from integrations.sandbox.config import (
    DEMO_CLIENT_SECRET,
    DEMO_TENANT_ID,
)
from integrations.sandbox.testing import SandboxHandle, start_sandbox
from reservations.models import SpaceKind
from tests.conftest import endpoints_allowed
from tests.support.admin_flows import (
    G_ALICE,
    G_BLOCKER,
    MS_ALICE,
    PORTAL,
    UNCONSENTED_CLIENT_ID,
    UNCONSENTED_SECRET,
    authorize,
    control,
    make_google,
    make_microsoft,
    sandbox_settings,
    service_account_key,
    texts,
)


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxHandle]:
    handle = start_sandbox(tmp_path_factory.mktemp("admin-flows-sandbox"), sandbox_settings())
    try:
        with endpoints_allowed(handle.base_url):
            yield handle
    finally:
        handle.stop()


MS_ROOM = "atlas@contoso.test"
G_ROOM = "c_188a1f0e7d2b4c31@resource.calendar.google.com"
FIXTURES = Path(__file__).resolve().parents[1] / "integrations" / "fixtures" / "microsoft"


@pytest.fixture(autouse=True)
def _portal_address(settings) -> Iterator[None]:
    """Redirect URIs are built from the public base URL: the test client's host here."""
    settings.PUBLIC_BASE_URL = PORTAL
    microsoft_auth.clear_application_tokens()
    google_auth.clear_service_account_tokens()
    yield
    microsoft_auth.clear_application_tokens()
    google_auth.clear_service_account_tokens()


@pytest.fixture
def admin_client(client, make_user):
    admin = make_user("admin", email=MS_ALICE, is_staff=True, is_superuser=True)
    client.force_login(admin)
    client.user = admin
    return client


# -- Test connection -------------------------------------------------------------------------


def run_test(client, provider: CalendarProvider, target: str) -> tuple[bool, str]:
    """(succeeded, message) of the Test connection page for ``target``."""
    page = client.post(f"/calendars/setup/providers/{provider.pk}/test/", {"target": target})
    assert page.status_code == 200
    ok, message = page.context["result"]
    assert message in html.unescape(page.content.decode())  # shown on the page too
    return ok, message


@pytest.mark.django_db
def test_test_connection_page_offers_the_delegated_user_and_bound_rooms(
    sandbox, admin_client, make_space
):
    provider = make_microsoft(sandbox)
    SpaceCalendar.objects.create(space=make_space(), provider=provider, resource_email=MS_ROOM)
    page = admin_client.get(f"/calendars/setup/providers/{provider.pk}/test/")
    assert page.status_code == 200
    body = page.content.decode()
    assert 'value="reserva-blocker@contoso.test"' in body  # the default target
    assert f'<option value="{MS_ROOM}">' in body
    assert DEMO_CLIENT_SECRET not in body
    change = admin_client.get(f"/admin/calendars/calendarprovider/{provider.pk}/change/")
    assert f"/calendars/setup/providers/{provider.pk}/test/" in change.content.decode()


@pytest.mark.django_db
def test_test_connection_succeeds_against_a_room_mailbox(sandbox, admin_client):
    ok, message = run_test(admin_client, make_microsoft(sandbox), MS_ROOM)
    assert ok
    assert message == (
        f"Microsoft 365 (sandbox): connected. The app can read the calendars of {MS_ROOM}."
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("credential", "target", "expected"),
    [
        (
            {"client_secret": "not-the-secret"},
            MS_ROOM,
            "The client secret is wrong or expired",
        ),
        (
            {"client_id": UNCONSENTED_CLIENT_ID, "client_secret": UNCONSENTED_SECRET},
            MS_ROOM,
            "lacks the Calendars.ReadWrite permission or an administrator has not granted admin "
            "consent",
        ),
        (
            {"tenant_id": "0d4c3b2a-0000-4000-8000-000000000000"},
            MS_ROOM,
            "The tenant was not found",
        ),
        ({}, "nobody@contoso.test", "(nobody@contoso.test) was not found"),
    ],
    ids=["wrong-secret", "missing-admin-consent", "unknown-tenant", "mailbox-not-found"],
)
def test_test_connection_failures_are_plain_words(
    sandbox, admin_client, credential, target, expected
):
    provider = make_microsoft(sandbox, **credential)
    ok, message = run_test(admin_client, provider, target)
    assert not ok
    assert f"the test against {target} failed." in message
    assert expected in message
    assert "not-the-secret" not in message and DEMO_CLIENT_SECRET not in message


@pytest.mark.django_db
def test_test_connection_reports_an_untrusted_certificate(sandbox, admin_client):
    provider = make_microsoft(sandbox)
    # The public CAs do not know the sandbox's private CA: what a wrong CA bundle looks like.
    ConnectionAlias.objects.filter(pk=provider.connection_id).update(ca_bundle=certifi.where())
    provider.refresh_from_db()
    ok, message = run_test(admin_client, provider, MS_ROOM)
    assert not ok
    assert "is not trusted; check the connection alias's CA bundle" in message


@pytest.mark.django_db
def test_test_connection_reports_an_exchange_access_policy(sandbox, admin_client):
    """The sandbox has no application access policies; Microsoft's documented 403 body is
    replayed for the Graph call while the token still comes from the sandbox."""
    provider = make_microsoft(sandbox)
    body = json.loads((FIXTURES / "access_policy_denied.json").read_text())
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mocked:
        mocked.add_passthru(f"{sandbox.base_url}/{DEMO_TENANT_ID}")
        mocked.add(
            responses.GET,
            f"{sandbox.base_url}/v1.0/users/{MS_ROOM}/calendars",
            json=body,
            status=403,
        )
        ok, message = run_test(admin_client, provider, MS_ROOM)
    assert not ok
    assert "An Exchange Online application access policy does not let this app reach" in message
    assert "New-ApplicationAccessPolicy" in message


@pytest.mark.django_db
def test_google_test_connection_succeeds_and_explains_missing_delegation(sandbox, admin_client):
    provider = make_google(sandbox)
    ok, message = run_test(admin_client, provider, G_ROOM)
    assert ok
    assert message == (f"Google Workspace (sandbox): connected. {G_BLOCKER} can write to {G_ROOM}.")

    alias = provider.credential
    alias.service_account_key = service_account_key(sandbox, "no-delegation")
    alias.save()
    provider.refresh_from_db()
    ok, message = run_test(admin_client, provider, G_ROOM)
    assert not ok
    assert "has no domain-wide delegation for the Calendar scope" in message
    assert "Domain-wide delegation" in message


@pytest.mark.django_db
def test_test_connection_action_on_the_provider_list(sandbox, admin_client):
    good = make_microsoft(sandbox)
    page = admin_client.post(
        "/admin/calendars/calendarprovider/",
        {"action": "test_connection", "_selected_action": [good.pk]},
        follow=True,
    )
    assert page.status_code == 200
    assert "connected. The app can read the calendars of reserva-blocker@contoso.test" in (
        page.content.decode()
    )


@pytest.mark.django_db
def test_test_connection_refuses_garbage_and_outsiders(sandbox, admin_client, client, make_user):
    provider = make_microsoft(sandbox)
    page = admin_client.post(
        f"/calendars/setup/providers/{provider.pk}/test/", {"target": "not an address"}
    )
    assert page.status_code == 200
    assert "Enter an email address" in page.content.decode()
    assert admin_client.get("/calendars/setup/providers/999999/test/").status_code == 404

    staff_without_permission = make_user("clerk", is_staff=True)
    client.force_login(staff_without_permission)
    assert client.get(f"/calendars/setup/providers/{provider.pk}/test/").status_code == 403
    plain = make_user("plain")
    client.force_login(plain)
    answer = client.get(f"/calendars/setup/providers/{provider.pk}/test/")
    assert answer.status_code == 302 and "/admin/login/" in answer["Location"]


# -- Authorize a space -----------------------------------------------------------------------


@pytest.mark.django_db
def test_authorize_a_space_with_microsoft_pick_a_room_calendar_then_remove(
    sandbox, admin_client, make_space
):
    provider = make_microsoft(sandbox)
    space = make_space(name="Atlas")
    outlook_event = control(
        sandbox,
        "POST",
        f"microsoft/mailboxes/{MS_ROOM}/events",
        json={
            "subject": "Booked in Outlook",
            "start": {"dateTime": "2030-02-04T09:00:00", "timeZone": "UTC"},
            "end": {"dateTime": "2030-02-04T10:00:00", "timeZone": "UTC"},
        },
    )
    overview = admin_client.get(f"/calendars/setup/spaces/{space.pk}/")
    assert "Authorize with Microsoft" in overview.content.decode()

    callback = authorize(admin_client, sandbox, space, provider)
    back = admin_client.get(callback)
    assert back.status_code == 302
    assert back["Location"] == f"/calendars/setup/spaces/{space.pk}/calendar/"
    assert f"Authorized with Microsoft 365 (Exchange Online) as {MS_ALICE}" in texts(back)[0]

    # The sync resource defaults to the authorizing account, with its calendars listed.
    pick = admin_client.get(back["Location"])
    body = pick.content.decode()
    assert f'value="{MS_ALICE}"' in body
    assert "Calendar" in body and "<option" in body

    # The room's own mailbox instead: its calendars are loaded with the app's permissions.
    loaded = admin_client.post(back["Location"], {"resource_email": MS_ROOM, "load": "1"})
    choices = loaded.context["form"].fields["calendar"].choices
    room_calendars = [value for value, _ in choices if value]
    assert room_calendars, choices
    assert loaded.context["form"].initial["calendar"] == room_calendars[0]

    saved = admin_client.post(
        back["Location"],
        {"resource_email": MS_ROOM, "calendar": room_calendars[0], "save": "1"},
    )
    assert saved.status_code == 302
    binding = SpaceCalendar.objects.get(space=space)
    assert (binding.provider, binding.resource_email) == (provider, MS_ROOM)
    assert binding.calendar_id == room_calendars[0] and binding.calendar_name
    assert binding.enabled and binding.status == BindingStatus.OK
    assert binding.authorized_by == admin_client.user and binding.authorized_at
    assert f"{space.name} now syncs with" in texts(saved)[0]
    assert "Remove authorization" in admin_client.get(saved["Location"]).content.decode()

    removed = admin_client.post(f"/calendars/setup/spaces/{space.pk}/remove/")
    binding.refresh_from_db()
    assert not binding.enabled and binding.authorized_by is None
    assert "Events already in that calendar were left as they are." in texts(removed)[0]
    events = control(sandbox, "GET", f"microsoft/mailboxes/{MS_ROOM}/events")["value"]
    assert outlook_event["id"] in [e["id"] for e in events]


@pytest.mark.django_db
def test_authorize_a_space_with_google_and_pick_the_resource_calendar(
    sandbox, admin_client, make_space
):
    admin_client.user.email = G_ALICE
    admin_client.user.save()
    provider = make_google(sandbox)
    space = make_space(name="Borealis")

    back = admin_client.get(authorize(admin_client, sandbox, space, provider))
    assert back["Location"] == f"/calendars/setup/spaces/{space.pk}/calendar/"
    assert f"as {G_ALICE}" in texts(back)[0]

    # The resource calendars shared with the delegated user, seen by the service account.
    loaded = admin_client.post(back["Location"], {"resource_email": G_ROOM, "load": "1"})
    form = loaded.context["form"]
    assert G_ROOM in [value for value, _ in form.fields["calendar"].choices]
    assert form.initial["calendar"] == G_ROOM  # the resource's own calendar preselected

    saved = admin_client.post(
        back["Location"], {"resource_email": G_ROOM, "calendar": G_ROOM, "save": "1"}
    )
    assert saved.status_code == 302
    binding = SpaceCalendar.objects.get(space=space)
    assert (binding.provider, binding.resource_email, binding.calendar_id) == (
        provider,
        G_ROOM,
        G_ROOM,
    )
    assert binding.calendar_name and binding.authorized_by == admin_client.user


@pytest.mark.django_db
def test_forged_state_cancelled_consent_and_a_reused_answer_are_messages(
    sandbox, admin_client, make_space
):
    provider = make_microsoft(sandbox)
    space = make_space()

    callback = authorize(admin_client, sandbox, space, provider)
    forged = admin_client.get(callback.replace("state=", "state=forged"))
    assert forged.status_code == 302
    assert forged["Location"] == f"/calendars/setup/spaces/{space.pk}/"
    assert "state mismatch" in texts(forged)[0]

    start = admin_client.post(f"/calendars/setup/spaces/{space.pk}/authorize/{provider.pk}/")
    state = admin_client.session["calendars_oauth"]["state"]
    assert start.status_code == 302
    cancelled = admin_client.get(
        "/calendars/oauth/microsoft/callback/",
        {"error": "access_denied", "state": state, "error_description": "The user cancelled"},
    )
    assert "The sign-in was cancelled or refused" in texts(cancelled)[0]

    callback = authorize(admin_client, sandbox, space, provider)
    assert admin_client.get(callback)["Location"].endswith("/calendar/")
    replayed = admin_client.get(callback)
    assert replayed.status_code == 302
    assert "already used" in texts(replayed)[0]
    assert not SpaceCalendar.objects.filter(space=space).exists()

    # The wrong provider kind, garbage, and no pending flow at all: still a message.
    stray = admin_client.get("/calendars/oauth/google/callback/?code=x&state=y")
    assert stray.status_code == 302 and "already used" in texts(stray)[0]


@pytest.mark.django_db
def test_a_container_space_cannot_be_bound(sandbox, admin_client, make_space):
    provider = make_microsoft(sandbox)
    container = make_space(name="Open plan", kind=SpaceKind.CONTAINER)

    page = admin_client.get(f"/calendars/setup/spaces/{container.pk}/")
    assert "a container cannot sync with a calendar" in page.content.decode()
    assert "Authorize with" not in page.content.decode()

    refused = admin_client.post(f"/calendars/setup/spaces/{container.pk}/authorize/{provider.pk}/")
    assert refused["Location"] == f"/calendars/setup/spaces/{container.pk}/"
    assert "a container cannot sync with a calendar. Bind its seats instead." in (texts(refused)[0])
    picked = admin_client.post("/calendars/setup/spaces/", {"space": container.pk})
    assert picked.status_code == 200
    assert "a container cannot sync" in picked.content.decode()
    assert not SpaceCalendar.objects.exists()


@pytest.mark.django_db
def test_saving_needs_an_authorization_and_a_calendar(sandbox, admin_client, make_space):
    provider = make_microsoft(sandbox)
    space = make_space()
    not_yet = admin_client.get(f"/calendars/setup/spaces/{space.pk}/calendar/")
    assert not_yet["Location"] == f"/calendars/setup/spaces/{space.pk}/"
    assert "Authorize with the provider first" in texts(not_yet)[0]

    admin_client.get(authorize(admin_client, sandbox, space, provider))
    url = f"/calendars/setup/spaces/{space.pk}/calendar/"
    empty = admin_client.post(url, {"resource_email": MS_ROOM, "calendar": "", "save": "1"})
    assert "Pick the calendar to sync with." in empty.content.decode()
    forged = admin_client.post(
        url, {"resource_email": MS_ROOM, "calendar": "AAMk-evil", "save": "1"}
    )
    assert "Select a valid choice" in forged.content.decode()
    unknown = admin_client.post(url, {"resource_email": "ghost@contoso.test", "load": "1"})
    assert "The calendars of ghost@contoso.test could not be listed" in unknown.content.decode()
    assert not SpaceCalendar.objects.exists()


@pytest.mark.django_db
def test_binding_admin_links_to_the_setup_pages(sandbox, admin_client, make_space):
    provider = make_microsoft(sandbox)
    space = make_space()
    binding = SpaceCalendar.objects.create(space=space, provider=provider, resource_email=MS_ROOM)
    listing = admin_client.get("/admin/calendars/spacecalendar/").content.decode()
    assert "/calendars/setup/spaces/" in listing
    change = admin_client.get(f"/admin/calendars/spacecalendar/{binding.pk}/change/")
    assert f"/calendars/setup/spaces/{space.pk}/" in change.content.decode()
    picked = admin_client.post("/calendars/setup/spaces/", {"space": space.pk})
    assert picked["Location"] == f"/calendars/setup/spaces/{space.pk}/"
