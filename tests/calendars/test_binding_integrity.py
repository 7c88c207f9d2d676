"""Never invent a booking (issue 12): a room calendar syncs with one space (a database
constraint on the enabled bindings, and an admin form that names the other space); a binding
that stops reading a calendar asks what becomes of the bookings it pulled from there (keep as
local bookings, or cancel with a notice), in the admin's change form, its delete page and the
setup page's "Remove authorization"; a binding that starts reading a calendar really queues
the bulk export of its space's future bookings.

Pulled bookings are made the way a person makes them: an event in the sandbox room, pulled.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.db import IntegrityError, transaction
from django.urls import reverse

from calendars.models import JobKind, JobStatus, SpaceCalendar, SyncJob, SyncLink
from calendars.sync import pull
from reservations.models import Reservation, ReservationStatus, Source
from tests.calendars.conftest import (
    GOOGLE_ROOM,
    GOOGLE_ROOM2,
    MS_ROOM,
    MS_ROOM2,
    bind,
    remote_events,
)
from tests.conftest import endpoints_allowed, local, next_weekday
from tests.support.pull import Remote, at

pytestmark = pytest.mark.django_db


@pytest.fixture
def sandbox(tmp_path):
    """The conftest's sandbox, with the portal's redirect URIs registered (the setup pages
    below sign in at the provider, as tests/calendars/test_admin_flows.py does)."""
    from integrations.sandbox.testing import start_sandbox
    from tests.calendars.conftest import _clear_client_caches
    from tests.support.admin_flows import sandbox_settings

    _clear_client_caches()
    handle = start_sandbox(tmp_path / "sandbox", sandbox_settings())
    try:
        with endpoints_allowed(handle.base_url):
            yield handle
    finally:
        handle.stop()
        _clear_client_caches()


@pytest.fixture
def admin_client(client, make_user):
    client.force_login(make_user("ada", is_staff=True, is_superuser=True))
    return client


def form_data(binding: SpaceCalendar, **changes) -> dict:
    data = {
        "space": binding.space_id,
        "provider": binding.provider_id,
        "resource_email": binding.resource_email,
        "calendar_id": binding.calendar_id,
        "calendar_name": binding.calendar_name,
        "enabled": "on" if binding.enabled else "",
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v != ""}


def pulled_booking(binding: SpaceCalendar, sandbox, kind: str, title="Walk-in") -> Reservation:
    """An event a person put in the room's calendar, pulled into Reserva."""
    pull.pull_binding(binding.pk)
    organizer = (
        {"organizer": {"emailAddress": {"name": "Olga", "address": "olga@outside.test"}}}
        if kind == "microsoft"
        else {"organizer": {"email": "olga@outside.test", "displayName": "Olga"}}
    )
    Remote(sandbox, kind).create(title, at(0, 9), at(0, 10), **organizer)
    assert pull.pull_binding(binding.pk).created == 1
    row = Reservation.objects.get(space=binding.space, title=title)
    assert row.source in (Source.EXCHANGE, Source.GOOGLE) and row.sync_link.binding == binding
    return row


# -- one space per room calendar ------------------------------------------------------------


def test_the_database_refuses_a_second_enabled_binding_of_a_room_mailbox(ms_binding, make_space):
    with pytest.raises(IntegrityError), transaction.atomic():
        bind(make_space(), ms_binding.provider, MS_ROOM.upper())  # the same mailbox, any case
    # A disabled binding may name it (it reads nothing); and another mailbox is fine.
    bind(make_space(), ms_binding.provider, MS_ROOM, enabled=False)
    bind(make_space(), ms_binding.provider, MS_ROOM2)
    with pytest.raises(IntegrityError), transaction.atomic():
        SpaceCalendar.objects.filter(resource_email=MS_ROOM, enabled=False).update(enabled=True)


def test_the_database_refuses_a_google_calendar_reached_through_another_address(
    google_binding, make_space
):
    # The resource calendar shared with the authorizing account: same calendar id.
    with pytest.raises(IntegrityError), transaction.atomic():
        bind(
            make_space(),
            google_binding.provider,
            "alice@northwind.test",
            calendar_id=GOOGLE_ROOM,
        )
    bind(make_space(), google_binding.provider, GOOGLE_ROOM2, calendar_id=GOOGLE_ROOM2)


def test_the_admin_refuses_a_second_space_for_a_bound_mailbox_and_names_it(
    admin_client, ms_binding, make_space
):
    second = make_space(name="Borealis")
    answer = admin_client.post(
        reverse("admin:calendars_spacecalendar_add"),
        form_data(ms_binding, space=second.pk, resource_email="Atlas@Contoso.test"),
    )
    assert answer.status_code == 200
    text = answer.content.decode()
    assert f"is already bound to Atlas ({ms_binding.space.location.name})" in text
    # The mailbox is named, not only its calendar's name ("Calendar" is every mailbox's).
    assert f"{ms_binding.resource_email} (" in text or f"{ms_binding.resource_email} is" in text
    assert SpaceCalendar.objects.count() == 1


def test_the_admin_refuses_the_same_google_calendar_under_another_address(
    admin_client, google_binding, make_space
):
    answer = admin_client.post(
        reverse("admin:calendars_spacecalendar_add"),
        form_data(google_binding, space=make_space().pk, resource_email="alice@northwind.test"),
    )
    assert answer.status_code == 200
    assert "is already bound to Atlas NY" in answer.content.decode()
    assert SpaceCalendar.objects.count() == 1
    # Google with no calendar picked reads the resource's own calendar: the same one.
    answer = admin_client.post(
        reverse("admin:calendars_spacecalendar_add"),
        form_data(google_binding, space=make_space().pk, calendar_id=""),
    )
    assert "is already bound to Atlas NY" in answer.content.decode()
    assert SpaceCalendar.objects.count() == 1


def test_switching_on_a_second_binding_of_a_bound_mailbox_is_refused(
    admin_client, ms_binding, make_space
):
    spare = bind(make_space(name="Spare"), ms_binding.provider, MS_ROOM, enabled=False)
    answer = admin_client.post(
        reverse("admin:calendars_spacecalendar_change", args=[spare.pk]),
        form_data(spare, enabled="on"),
    )
    assert answer.status_code == 200
    assert "is already bound to Atlas" in answer.content.decode()
    spare.refresh_from_db()
    assert not spare.enabled


# -- what becomes of the pulled bookings ----------------------------------------------------


def test_retargeting_in_the_admin_asks_then_keeps_the_pulled_bookings_as_local_ones(
    admin_client, ms_binding, sandbox, django_capture_on_commit_callbacks
):
    row = pulled_booking(ms_binding, sandbox, "microsoft")
    url = reverse("admin:calendars_spacecalendar_change", args=[ms_binding.pk])
    assert "Bookings pulled from this calendar" in admin_client.get(url).content.decode()

    asked = admin_client.post(url, form_data(ms_binding, resource_email=MS_ROOM2))
    assert asked.status_code == 200
    assert f"1 booking(s) came from {MS_ROOM}" in asked.content.decode()
    ms_binding.refresh_from_db()
    assert ms_binding.resource_email == MS_ROOM  # nothing saved

    with django_capture_on_commit_callbacks(execute=True):
        saved = admin_client.post(
            url, form_data(ms_binding, resource_email=MS_ROOM2, pulled_bookings="keep")
        )
    assert saved.status_code == 302
    ms_binding.refresh_from_db()
    assert ms_binding.resource_email == MS_ROOM2 and ms_binding.sync_token == ""
    row.refresh_from_db()
    assert row.status == ReservationStatus.CONFIRMED and row.source == Source.ADMIN
    assert row.sync_link.mailbox.lower() == MS_ROOM2  # its old link was dropped
    assert mail.outbox == []  # kept: nothing to tell anyone
    # The Outlook event stays in the old room; the kept booking goes to the new room.
    assert [e["subject"] for e in remote_events(sandbox, "microsoft", MS_ROOM)] == ["Walk-in"]
    assert len(remote_events(sandbox, "microsoft", MS_ROOM2)) == 1
    # The next pull reads the new room, not the old one: no phantom comes back.
    pull.pull_binding(ms_binding.pk)
    assert list(Reservation.objects.filter(space=ms_binding.space)) == [row]


def test_deleting_a_binding_in_the_admin_asks_then_cancels_with_a_notice(
    admin_client, ms_binding, sandbox, django_capture_on_commit_callbacks
):
    location = ms_binding.space.location
    location.pull_organizer_details = True
    location.save()
    row = pulled_booking(ms_binding, sandbox, "microsoft")
    url = reverse("admin:calendars_spacecalendar_delete", args=[ms_binding.pk])
    page = admin_client.get(url).content.decode()
    assert f"1 booking pulled from {MS_ROOM}" in page
    assert 'name="pulled_bookings" value="cancel"' in page

    refused = admin_client.post(url, {"post": "yes"})
    assert refused.status_code == 302 and refused["Location"] == url
    assert SpaceCalendar.objects.filter(pk=ms_binding.pk).exists()

    with django_capture_on_commit_callbacks(execute=True):
        done = admin_client.post(url, {"post": "yes", "pulled_bookings": "cancel"})
    assert done.status_code == 302
    assert not SpaceCalendar.objects.filter(pk=ms_binding.pk).exists()
    row.refresh_from_db()
    assert row.status == ReservationStatus.CANCELLED
    assert "no longer syncs with" in row.cancel_reason
    # The organizer is not a Reserva user: told at the address the calendar gave.
    assert [m.to for m in mail.outbox] == [["olga@outside.test"]]
    assert "cancel" in mail.outbox[0].subject.lower()
    # The event made in Outlook is left alone.
    assert [e["subject"] for e in remote_events(sandbox, "microsoft", MS_ROOM)] == ["Walk-in"]


def test_the_bulk_delete_action_is_not_offered(admin_client, ms_binding):
    page = admin_client.get(reverse("admin:calendars_spacecalendar_changelist"))
    assert "delete_selected" not in page.content.decode()


def test_remove_authorization_asks_then_cancels_the_phantoms(
    admin_client, google_binding, sandbox, django_capture_on_commit_callbacks
):
    row = pulled_booking(google_binding, sandbox, "google")
    setup = reverse("calendars:space_sync", args=[google_binding.space_id])
    remove = reverse("calendars:space_remove", args=[google_binding.space_id])
    assert f'href="{remove}"' in admin_client.get(setup).content.decode()  # a link, not a form
    page = admin_client.get(remove).content.decode()  # the confirmation page asks
    assert f"1 booking came from {GOOGLE_ROOM}" in page and 'value="keep"' in page
    google_binding.refresh_from_db()
    assert google_binding.enabled  # asking changed nothing

    refused = admin_client.post(remove)
    assert refused.status_code == 302
    google_binding.refresh_from_db()
    assert google_binding.enabled
    row.refresh_from_db()
    assert row.status == ReservationStatus.CONFIRMED

    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(remove, {"pulled_bookings": "cancel"})
    google_binding.refresh_from_db()
    row.refresh_from_db()
    assert not google_binding.enabled
    assert row.status == ReservationStatus.CANCELLED
    assert not SyncLink.objects.filter(reservation=row).exists()
    assert [e["summary"] for e in remote_events(sandbox, "google", GOOGLE_ROOM)] == ["Walk-in"]


def test_a_change_that_keeps_the_calendar_asks_nothing(admin_client, ms_binding, sandbox):
    row = pulled_booking(ms_binding, sandbox, "microsoft")
    answer = admin_client.post(
        reverse("admin:calendars_spacecalendar_change", args=[ms_binding.pk]),
        form_data(ms_binding, calendar_name="Renamed", resource_email=MS_ROOM.upper()),
    )
    assert answer.status_code == 302
    row.refresh_from_db()
    assert row.source == Source.EXCHANGE and row.sync_link.binding == ms_binding


# -- binding a space queues its export ------------------------------------------------------


def book(space, make_user, day_offset: int = 0, hour: int = 10) -> Reservation:
    from reservations import services

    start = local(space.location, next_weekday(2) + timedelta(days=day_offset), hour)
    return services.book(
        actor=make_user(), space=space, start=start, end=start + timedelta(hours=1)
    ).reservations[0]


def export_jobs(binding) -> list[SyncJob]:
    return list(SyncJob.objects.filter(kind=JobKind.EXPORT, binding=binding))


def test_binding_a_space_in_the_admin_sends_its_future_bookings(
    admin_client, ms_provider, make_space, make_user, sandbox, django_capture_on_commit_callbacks
):
    space = make_space(name="Cosmos")
    booked = [book(space, make_user, day) for day in range(3)]
    with django_capture_on_commit_callbacks(execute=True):
        answer = admin_client.post(
            reverse("admin:calendars_spacecalendar_add"),
            {
                "space": space.pk,
                "provider": ms_provider.pk,
                "resource_email": MS_ROOM,
                "calendar_name": "Calendar",
                "enabled": "on",
            },
        )
    assert answer.status_code == 302
    binding = SpaceCalendar.objects.get(space=space)
    (job,) = export_jobs(binding)
    assert job.status == JobStatus.SUCCEEDED and job.created_count == 3
    assert len(remote_events(sandbox, "microsoft", MS_ROOM)) == len(booked)


def test_switching_on_or_retargeting_queues_one_export_never_a_second(
    ms_provider, make_space, make_user, sandbox, django_capture_on_commit_callbacks
):
    space = make_space()
    binding = bind(space, ms_provider, MS_ROOM, enabled=False)
    book(space, make_user)
    binding.enabled = True
    with django_capture_on_commit_callbacks(execute=True):
        binding.save()
    assert [j.created_count for j in export_jobs(binding)] == [1]
    assert len(remote_events(sandbox, "microsoft", MS_ROOM)) == 1

    # Retargeted while an export of it is still running: that one sends; no second job.
    book(space, make_user, hour=14)
    running = SyncJob.objects.create(kind=JobKind.EXPORT, binding=binding, status=JobStatus.RUNNING)
    binding.resource_email = MS_ROOM2
    with django_capture_on_commit_callbacks(execute=True):
        binding.save()
    assert SyncJob.objects.filter(kind=JobKind.EXPORT, binding=binding).count() == 2
    running.delete()

    # A save that changes nothing it reads queues nothing.
    binding.calendar_name = "Renamed"
    with django_capture_on_commit_callbacks(execute=True):
        binding.save()
    assert SyncJob.objects.filter(kind=JobKind.EXPORT, binding=binding).count() == 1


# -- the setup pages (authorize, pick the calendar) -------------------------------------------


@pytest.fixture
def alice_admin(client, make_user, settings):
    from tests.support.admin_flows import MS_ALICE, PORTAL

    settings.PUBLIC_BASE_URL = PORTAL  # the address the sandbox knows for the callbacks
    admin = make_user("alice", email=MS_ALICE, is_staff=True, is_superuser=True)
    client.force_login(admin)
    return client


def pick_calendar(client, sandbox, space, provider, resource: str, **extra):
    """Authorize, load the resource's calendars, and save its first one (with ``extra``)."""
    from tests.support.admin_flows import authorize

    back = client.get(authorize(client, sandbox, space, provider))
    loaded = client.post(back["Location"], {"resource_email": resource, "load": "1"})
    choices = [value for value, _ in loaded.context["form"].fields["calendar"].choices if value]
    return client.post(
        back["Location"],
        {"resource_email": resource, "calendar": choices[0], "save": "1", **extra},
    )


def test_the_setup_page_refuses_a_second_space_for_a_bound_room(
    alice_admin, ms_binding, sandbox, make_space
):
    second = make_space(name="Borealis")
    answer = pick_calendar(alice_admin, sandbox, second, ms_binding.provider, MS_ROOM)
    assert answer.status_code == 200
    assert "is already bound to Atlas" in answer.content.decode()
    assert not SpaceCalendar.objects.filter(space=second).exists()


def test_the_setup_page_asks_before_pointing_a_space_at_another_room(
    alice_admin, ms_binding, sandbox, django_capture_on_commit_callbacks
):
    row = pulled_booking(ms_binding, sandbox, "microsoft")
    provider = ms_binding.provider
    asked = pick_calendar(alice_admin, sandbox, ms_binding.space, provider, MS_ROOM2)
    assert asked.status_code == 200
    assert f"These bookings came from {MS_ROOM}" in asked.content.decode()
    ms_binding.refresh_from_db()
    assert ms_binding.resource_email == MS_ROOM

    with django_capture_on_commit_callbacks(execute=True):
        saved = pick_calendar(
            alice_admin, sandbox, ms_binding.space, provider, MS_ROOM2, pulled_bookings="cancel"
        )
    assert saved.status_code == 302
    ms_binding.refresh_from_db()
    row.refresh_from_db()
    assert ms_binding.resource_email == MS_ROOM2
    assert row.status == ReservationStatus.CANCELLED and row.source == Source.ADMIN


def test_switching_a_binding_off_in_the_admin_asks_too(admin_client, google_binding, sandbox):
    row = pulled_booking(google_binding, sandbox, "google")
    url = reverse("admin:calendars_spacecalendar_change", args=[google_binding.pk])
    asked = admin_client.post(url, form_data(google_binding, enabled=""))
    assert asked.status_code == 200
    assert f"1 booking(s) came from {GOOGLE_ROOM}" in asked.content.decode()
    google_binding.refresh_from_db()
    assert google_binding.enabled

    saved = admin_client.post(url, form_data(google_binding, enabled="", pulled_bookings="keep"))
    assert saved.status_code == 302
    google_binding.refresh_from_db()
    row.refresh_from_db()
    assert not google_binding.enabled
    assert row.status == ReservationStatus.CONFIRMED and row.source == Source.ADMIN
    assert not SyncLink.objects.filter(reservation=row).exists()
