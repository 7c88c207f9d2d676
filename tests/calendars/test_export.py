"""Bulk export, in process (eager tasks, the sandbox in a thread): what is sent, what is
skipped, idempotence, dry run, takeover of a stale job, pausing on a credential error, and
the admin's button, action and live progress page."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from calendars import tasks
from calendars.models import (
    BindingStatus,
    JobKind,
    JobStatus,
    LinkState,
    SpaceCalendar,
    SyncJob,
    SyncLink,
)
from calendars.remote import event_data, room_calendar
from calendars.sync import export
from reservations.models import ReservationStatus, SyncMailbox
from tests.support.export_helpers import (
    api,
    bulk_reservations,
    events_by_tag,
    graph_requests,
    make_binding,
    state_events,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def binding(ms_binding):
    return ms_binding


def _export(binding, django_capture_on_commit_callbacks, **kwargs) -> SyncJob:
    with django_capture_on_commit_callbacks(execute=True):
        job = tasks.start_export(binding, None, **kwargs)
    job.refresh_from_db()
    return job


def test_export_sends_every_future_unsynced_room_reservation_once(
    sandbox, binding, make_user, django_capture_on_commit_callbacks
):
    ada = make_user("ada", first_name="Ada", last_name="Lovelace")
    rows = bulk_reservations(binding.space, ada, 45)
    past = bulk_reservations(binding.space, ada, 1, first=timezone.now() - timedelta(days=3))[0]
    rows[0].status = ReservationStatus.CANCELLED
    rows[0].save()
    rows[1].sync_mailbox = SyncMailbox.USER  # personal mode: pushed on its own, not exported
    rows[1].save()
    wanted = rows[2:]

    assert export.has_unsynced(binding)
    job = _export(binding, django_capture_on_commit_callbacks)

    assert (job.status, job.total, job.done, job.created_count, job.failed_count) == (
        JobStatus.SUCCEEDED, 43, 43, 43, 0,
    )  # fmt: skip
    assert job.started_at and job.heartbeat_at and job.finished_at
    tags = events_by_tag(sandbox)
    assert set(tags) == {r.pk for r in wanted} and set(tags.values()) == {1}
    assert past.pk not in tags
    # 43 items: three $batch requests of at most 20 (plus token calls), nothing else.
    counters = graph_requests(sandbox)["endpoint"]
    assert counters["graph $batch"] == 3
    assert not export.has_unsynced(binding)
    remote = {e["tag"]: e for e in state_events(sandbox)}
    for reservation in wanted:
        link = SyncLink.objects.get(reservation=reservation)
        assert link.state == LinkState.SYNCED and link.external_id == remote[reservation.pk]["id"]
        assert link.pushed_version == reservation.version and link.remote_version
        assert link.ical_uid and link.mailbox == "atlas@contoso.test"
        assert remote[reservation.pk]["start"] == reservation.start
        assert remote[reservation.pk]["end"] == reservation.end
        assert remote[reservation.pk]["subject"] == "Ada Lovelace"


def test_running_it_twice_creates_nothing_twice(
    sandbox, binding, make_user, django_capture_on_commit_callbacks
):
    bulk_reservations(binding.space, make_user(), 25)
    first = _export(binding, django_capture_on_commit_callbacks)
    batches = graph_requests(sandbox)["endpoint"]["graph $batch"]
    second = _export(binding, django_capture_on_commit_callbacks)

    assert (first.created_count, second.total, second.created_count) == (25, 0, 0)
    assert second.status == JobStatus.SUCCEEDED
    assert graph_requests(sandbox)["endpoint"]["graph $batch"] == batches
    assert sum(events_by_tag(sandbox).values()) == 25


def test_an_uncertain_item_is_looked_up_by_our_tag_before_it_is_sent_again(
    sandbox, binding, make_user, django_capture_on_commit_callbacks
):
    rows = bulk_reservations(binding.space, make_user(), 3)
    # The first attempt landed but its answer was lost (the worker died): attempts=1, no id.
    landed = room_calendar(binding).create(event_data(rows[0], binding))
    SyncLink.objects.create(
        reservation=rows[0], binding=binding, provider=binding.provider,
        mailbox=binding.resource_email, attempts=1,
    )  # fmt: skip
    api(sandbox, "DELETE", "counters")

    job = _export(binding, django_capture_on_commit_callbacks)

    assert (job.done, job.created_count) == (3, 2)  # found, not created again
    assert SyncLink.objects.get(reservation=rows[0]).external_id == landed.id
    assert events_by_tag(sandbox) == {r.pk: 1 for r in rows}
    endpoints = graph_requests(sandbox)["endpoint"]
    # One look-up by our tag, then one $batch with the two others' creates only.
    assert endpoints["graph events list"] == 1 and endpoints["graph $batch"] == 1
    assert endpoints["graph event create"] == 2


def test_dry_run_builds_the_payloads_and_sends_nothing(
    sandbox, binding, make_user, django_capture_on_commit_callbacks
):
    bulk_reservations(binding.space, make_user(), 30)

    job = _export(binding, django_capture_on_commit_callbacks, dry_run=True)

    assert (job.status, job.dry_run, job.total, job.done, job.created_count) == (
        JobStatus.SUCCEEDED, True, 30, 30, 0,
    )  # fmt: skip
    assert graph_requests(sandbox)["service"] == {}
    assert not SyncLink.objects.exists()
    assert export.has_unsynced(binding)


def test_an_export_already_running_is_refused(binding, make_user):
    bulk_reservations(binding.space, make_user(), 2)
    SyncJob.objects.create(kind=JobKind.EXPORT, binding=binding, status=JobStatus.RUNNING)
    with pytest.raises(export.ExportRefused, match="already Running"):
        tasks.start_export(binding, None)


def test_a_wrong_secret_pauses_the_binding_and_the_job(
    sandbox, make_space, make_user, django_capture_on_commit_callbacks
):
    binding = make_binding(sandbox, make_space(), secret="not-the-secret")
    bulk_reservations(binding.space, make_user(), 5)

    job = _export(binding, django_capture_on_commit_callbacks)

    binding.refresh_from_db()
    assert job.status == JobStatus.PAUSED and binding.status == BindingStatus.PAUSED
    assert "secret" in binding.last_error and "not-the-secret" not in str(job.errors)
    assert set(SyncLink.objects.values_list("state", flat=True)) == {LinkState.PENDING}
    with pytest.raises(export.ExportRefused, match="paused"):
        tasks.start_export(binding, None)


def test_a_stale_job_is_claimed_once_and_its_old_worker_stops(
    sandbox, binding, make_user, settings
):
    settings.SYNC_EXPORT_STALE_SECONDS = 60
    bulk_reservations(binding.space, make_user(), 4)
    old = timezone.now() - timedelta(minutes=5)
    job = SyncJob.objects.create(
        kind=JobKind.EXPORT, binding=binding, status=JobStatus.RUNNING, claim="dead-worker",
        started_at=old, heartbeat_at=old, total=4,
    )  # fmt: skip
    fresh = SyncJob.objects.create(
        kind=JobKind.EXPORT, binding=binding, status=JobStatus.RUNNING, claim="alive",
        heartbeat_at=timezone.now(),
    )  # fmt: skip

    claimed = export.claim_stale_exports()
    assert [run.job_id for run in claimed] == [job.pk]
    assert export.claim_stale_exports() == []  # the heartbeat is fresh again
    assert export.run_export_job(job.pk, "dead-worker") is None  # not its job any more
    assert export.run_export_job(fresh.pk) is None  # running elsewhere

    finished = export.run_export_job(job.pk, claimed[0].claim)
    assert finished.status == JobStatus.SUCCEEDED and finished.created_count == 4
    assert sum(events_by_tag(sandbox).values()) == 4


def test_resume_task_hands_the_job_to_run_export(
    sandbox, binding, make_user, settings, django_capture_on_commit_callbacks
):
    settings.SYNC_EXPORT_STALE_SECONDS = 1
    bulk_reservations(binding.space, make_user(), 3)
    old = timezone.now() - timedelta(minutes=5)
    job = SyncJob.objects.create(
        kind=JobKind.EXPORT, binding=binding, status=JobStatus.QUEUED, total=3
    )
    SyncJob.objects.filter(pk=job.pk).update(created=old)  # its message was lost

    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.resume_stale_exports() == 1  # eager: runs the export right away
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED and job.created_count == 3


# -- admin -----------------------------------------------------------------------------------


@pytest.fixture
def staff(make_user):
    return make_user(
        "exporter", is_staff=True,
        perms=("calendars.change_spacecalendar", "calendars.view_spacecalendar"),
    )  # fmt: skip


def test_admin_button_starts_the_export_and_progress_updates(
    client, staff, sandbox, binding, make_user, django_capture_on_commit_callbacks
):
    bulk_reservations(binding.space, make_user(), 7)
    client.force_login(staff)
    change = client.get(reverse("admin:calendars_spacecalendar_change", args=[binding.pk]))
    assert b"Run the export" in change.content and b"Dry run" in change.content

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("admin:calendars_spacecalendar_export", args=[binding.pk]))
    job = SyncJob.objects.get(kind=JobKind.EXPORT)
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:calendars_export_progress", args=[job.pk])

    page = client.get(response["Location"])
    assert page.status_code == 200
    assert b'<progress id="export-bar"' in page.content and b"export_progress.js" in page.content
    data = client.get(reverse("admin:calendars_export_progress_json", args=[job.pk])).json()
    assert (data["status"], data["done"], data["total"], data["percent"]) == (
        "succeeded", 7, 7, 100,
    )  # fmt: skip
    assert data["finished"] and data["errors"] == []
    change = client.get(reverse("admin:calendars_spacecalendar_change", args=[binding.pk]))
    assert b"No future reservations waiting" in change.content


def test_admin_action_dry_run_and_refusal_message(
    client, staff, binding, make_user, django_capture_on_commit_callbacks
):
    bulk_reservations(binding.space, make_user(), 2)
    client.force_login(staff)
    url = reverse("admin:calendars_spacecalendar_changelist")
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url, {"action": "run_export_dry", "_selected_action": [binding.pk]})
    job = SyncJob.objects.get()
    assert job.dry_run and response.status_code == 302
    SyncJob.objects.filter(pk=job.pk).update(status=JobStatus.RUNNING)
    response = client.post(
        url, {"action": "run_export", "_selected_action": [binding.pk]}, follow=True
    )
    assert b"already Running" in response.content


def test_progress_json_shows_errors_without_secrets(client, staff, binding):
    job = SyncJob.objects.create(
        kind=JobKind.EXPORT, binding=binding, status=JobStatus.RUNNING, total=10, done=4,
        created_count=3, failed_count=1,
        errors=[{"reservation": 9, "start": "2030-01-01T09:00:00+00:00",
                 "error": "Microsoft Graph answered 400.", "code": "400", "final": True}],
    )  # fmt: skip
    client.force_login(staff)
    data = client.get(reverse("admin:calendars_export_progress_json", args=[job.pk])).json()
    assert (data["percent"], data["failed"], data["finished"]) == (40, 1, False)
    assert data["errors"] == [
        {"reservation": 9, "start": "2030-01-01T09:00:00+00:00",
         "error": "Microsoft Graph answered 400.", "code": "400"}
    ]  # fmt: skip


@pytest.mark.parametrize("who", ["anonymous", "not-staff", "staff-without-permission"])
def test_export_views_are_for_admins_only(client, make_user, binding, who):
    job = SyncJob.objects.create(kind=JobKind.EXPORT, binding=binding)
    if who == "not-staff":
        client.force_login(make_user(perms=("calendars.change_spacecalendar",)))
    elif who == "staff-without-permission":
        client.force_login(make_user(is_staff=True))
    json_url = reverse("admin:calendars_export_progress_json", args=[job.pk])
    assert client.get(json_url).status_code == 403
    page = client.get(reverse("admin:calendars_export_progress", args=[job.pk]))
    post = client.post(reverse("admin:calendars_spacecalendar_export", args=[binding.pk]))
    if who == "staff-without-permission":
        assert page.status_code == 403 and post.status_code == 403
    else:  # the admin sends people who are not staff to its login page
        assert page.status_code == 302 and post.status_code == 302
    assert not SyncJob.objects.exclude(pk=job.pk).exists()


def test_unknown_job_or_binding_is_404_and_get_is_refused(client, staff, binding):
    client.force_login(staff)
    assert client.get(reverse("admin:calendars_export_progress", args=[999])).status_code == 404
    assert (
        client.get(reverse("admin:calendars_export_progress_json", args=[999])).status_code == 404
    )
    assert (
        client.post(reverse("admin:calendars_spacecalendar_export", args=[999])).status_code == 404
    )
    get = client.get(reverse("admin:calendars_spacecalendar_export", args=[binding.pk]))
    assert get.status_code == 405 and not SyncJob.objects.exists()


def test_google_export_uses_batches_of_50(
    sandbox, google_binding, make_user, django_capture_on_commit_callbacks
):
    from tests.calendars.conftest import GOOGLE_ROOM, remote_events

    rows = bulk_reservations(google_binding.space, make_user(), 60)

    job = _export(google_binding, django_capture_on_commit_callbacks)

    assert (job.status, job.created_count, job.failed_count) == (JobStatus.SUCCEEDED, 60, 0)
    events = remote_events(sandbox, "google", GOOGLE_ROOM)
    tags = sorted(
        int(e["extendedProperties"]["private"]["reservation_id"])
        for e in events
        if "reservation_id" in e.get("extendedProperties", {}).get("private", {})
    )
    assert tags == sorted(r.pk for r in rows)
    batches = [k for k in graph_requests(sandbox)["endpoint"] if "batch" in k]
    assert sum(graph_requests(sandbox)["endpoint"][k] for k in batches) == 2  # 50 + 10


def test_one_unbuildable_reservation_is_listed_and_the_others_go(
    sandbox, binding, make_user, monkeypatch, django_capture_on_commit_callbacks
):
    from calendars import remote

    rows = bulk_reservations(binding.space, make_user(), 5)
    real = remote.event_data

    def broken(reservation, binding):
        if reservation.pk == rows[2].pk:
            raise ValueError("no")
        return real(reservation, binding)

    monkeypatch.setattr(remote, "event_data", broken)
    job = _export(binding, django_capture_on_commit_callbacks)

    assert (job.status, job.done, job.created_count, job.failed_count) == (
        JobStatus.PARTIAL, 5, 4, 1,
    )  # fmt: skip
    assert [e["reservation"] for e in job.errors] == [rows[2].pk]
    assert "ValueError" in job.errors[0]["error"]
    assert set(events_by_tag(sandbox)) == {r.pk for r in rows} - {rows[2].pk}
    assert SyncLink.objects.get(reservation=rows[2]).state == LinkState.FAILED


def test_a_batch_our_limiter_kept_back_is_sent_once_there_is_room(
    sandbox, binding, make_user, monkeypatch, django_capture_on_commit_callbacks
):
    """The mailbox's window used up (10,000 Graph items per 10 minutes): the limiter gives up
    waiting before the window has room; the export waits the rest and sends the batch then,
    and nothing fails."""
    from calendars import remote
    from integrations.base import Throttled

    rows = bulk_reservations(binding.space, make_user(), 25)
    real, calls = remote.RemoteCalendar.batch, []

    def held_back_once(calendar, ops):
        calls.append(len(ops))
        if len(calls) == 1:
            raise Throttled("Local limit is busy.", retry_after=0.2, code="local_limit")
        return real(calendar, ops)

    monkeypatch.setattr(remote.RemoteCalendar, "batch", held_back_once)
    job = _export(binding, django_capture_on_commit_callbacks)

    assert (job.status, job.created_count, job.failed_count) == (JobStatus.SUCCEEDED, 25, 0)
    assert calls == [20, 20, 5]  # the first batch again, then the second
    assert set(events_by_tag(sandbox)) == {r.pk for r in rows}
    assert all(link.attempts == 0 for link in SyncLink.objects.filter(reservation__in=rows))


def test_a_batch_is_read_in_one_query_and_its_payloads_are_those_of_a_full_read(
    binding, make_user, django_assert_num_queries
):
    """The exporter reads a batch's reservations with only the columns a payload needs, and
    takes their space from the binding: whatever the batch's size, one query, and every
    payload the same as ``event_data`` builds from the reservation read in full."""
    from reservations.models import Approval, EventTitle, Reservation

    location = binding.space.location
    location.event_title = EventTitle.PATRON_NAME_EMAIL
    location.save()
    ada = make_user("ada", first_name="Ada", last_name="Lovelace")
    rows = bulk_reservations(binding.space, ada, 20, description="Board meeting")
    Reservation.objects.filter(pk=rows[1].pk).update(
        requested_for=None, organizer_name="Grace", organizer_email="grace@example.com"
    )
    Reservation.objects.filter(pk=rows[2].pk).update(
        attendees=["bob@example.com"], approval=Approval.AWAITING, version=3
    )
    export._ensure_links(binding)
    SyncLink.objects.filter(reservation=rows[3]).update(external_id="AAMk-3", attempts=2)
    job = SyncJob.objects.create(kind=JobKind.EXPORT, binding=binding)
    run = export._Run(job, "claim", SpaceCalendar.objects.select_related("space__location").get())

    with django_assert_num_queries(1):
        batch = export._prepare(run, [r.pk for r in rows])

    assert batch is not None and set(batch.ops) == {r.pk for r in rows}
    for reservation in Reservation.objects.filter(space=binding.space).select_related(
        "space__location", "requested_for", "sync_link"
    ):
        op = batch.ops[reservation.pk]
        assert op.data == event_data(reservation, binding)
        assert batch.versions[reservation.pk] == reservation.version
        assert batch.links[reservation.pk].pk == reservation.sync_link.pk
        assert op.event_id == reservation.sync_link.external_id
    assert batch.ops[rows[1].pk].data.subject == "Grace (grace@example.com)"
    assert batch.ops[rows[2].pk].data.tentative and batch.versions[rows[2].pk] == 3
    assert batch.actions[rows[3].pk] == "update" and batch.uncertain == []
