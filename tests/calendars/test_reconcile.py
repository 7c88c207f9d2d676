"""The daily reconciliation (calendars/sync/reconcile.py): the pure comparison's rules, then
drift made behind Reserva's back through the sandbox's control API (an event deleted, one
moved, a tagged orphan, an unknown event, a provider-made event moved) on both providers,
repaired and recorded on a SyncJob; a clean binding records zero repairs; above the threshold
the admins get one email; a running pull makes it wait."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.core import mail

from calendars.models import JobKind, SyncJob, SyncLink
from calendars.sync import pull, reconcile
from calendars.sync.reconcile import (
    LinkFacts,
    ReservationFacts,
    plan_reconcile,
)
from integrations.base import RemoteEvent
from integrations.google import mapping as google_mapping
from integrations.microsoft import mapping as microsoft_mapping
from reservations.models import Reservation, ReservationStatus, Source
from tests.calendars.conftest import ROOMS, binding_for, remote_events
from tests.support.pull import Remote, at
from tests.support.reconcile import book, run, settle


@pytest.fixture
def binding(kind, request):
    return binding_for(kind, request)


# -- the pure comparison ---------------------------------------------------------------------

T0 = datetime(2031, 3, 4, 9, tzinfo=UTC)
WINDOW = (T0 - timedelta(days=7), T0 + timedelta(days=30))


def ours(rid: int, hour: int = 9, subject: str = "Ada", **kw) -> ReservationFacts:
    start = T0.replace(hour=hour)
    end = start + timedelta(hours=1)
    return ReservationFacts(rid, start, end, "confirmed", subject, False, **kw)


def event(eid: str, hour: int = 9, subject: str = "Ada", **kw) -> RemoteEvent:
    start = T0.replace(hour=hour)
    return RemoteEvent(id=eid, start=start, end=start + timedelta(hours=1), subject=subject, **kw)


def fixes(plan) -> list[tuple[str, str, int | None]]:
    return sorted((str(r.drift), str(r.fix), r.reservation_id) for r in plan.repairs)


def test_plan_in_step_is_empty():
    plan = plan_reconcile(
        [event("e1", reservation_id=1)], [LinkFacts(1, "e1")], [ours(1)], window=WINDOW
    )
    assert (plan.repairs, plan.in_step) == ([], 1)


def test_plan_names_each_kind_of_drift():
    remote_made = ReservationFacts(
        5, T0.replace(hour=14), T0.replace(hour=15), "confirmed", "Walk-in", True
    )
    plan = plan_reconcile(
        [
            event("e2", hour=11, reservation_id=2),  # Reserva-made, moved remotely
            event("e3", reservation_id=3),  # tagged, its reservation cancelled
            event("e4", hour=16, reservation_id=404),  # tagged, reservation gone
            event("new", hour=18, subject="Visitor"),  # untagged, unknown
            event("e5", hour=15, subject="Walk-in"),  # provider-made, moved
            event("e1", reservation_id=1, removed=True),  # deleted remotely
        ],
        [LinkFacts(1, "e1"), LinkFacts(2, "e2"), LinkFacts(3, "e3"), LinkFacts(5, "e5")],
        [
            ours(1),
            ours(2, hour=10),
            ReservationFacts(3, T0, T0 + timedelta(hours=1), "cancelled", "Ada", False),
            remote_made,
        ],
        window=WINDOW,
    )
    assert fixes(plan) == [
        ("divergent", "apply", 5),
        ("divergent", "push", 2),
        ("extra", "delete", 3),
        ("extra", "delete", 404),
        ("extra", "import", None),
        ("missing", "push", 1),
    ]


def test_plan_a_provider_made_booking_whose_event_is_gone_is_cancelled():
    gone = ReservationFacts(7, T0, T0 + timedelta(hours=1), "confirmed", "Walk-in", True)
    plan = plan_reconcile([], [LinkFacts(7, "e7")], [gone], window=WINDOW)
    assert fixes(plan) == [("missing", "cancel", 7)]


def test_plan_leaves_recent_owed_conflicted_and_elsewhere_alone():
    plan = plan_reconcile(
        [event("e2", hour=12, reservation_id=2), event("e3", hour=13, reservation_id=3)],
        [LinkFacts(1, "e1", push_owed=True), LinkFacts(2, "e2"), LinkFacts(4, "x", in_room=False)],
        [
            ours(1),  # its push is owed
            ours(2, recent=True),  # changed a moment ago
            ReservationFacts(3, T0, T0 + timedelta(hours=1), "conflicted", "X", True),
            ours(4, hour=15),  # personal mode: its event lives in the person's calendar
            ours(6, hour=17, in_room=False),
        ],
        window=WINDOW,
    )
    assert plan.repairs == []


def test_plan_a_second_event_of_one_reservation_is_deleted():
    plan = plan_reconcile(
        [event("e1", reservation_id=1), event("dup", reservation_id=1)],
        [LinkFacts(1, "e1")],
        [ours(1)],
        window=WINDOW,
    )
    assert fixes(plan) == [("extra", "delete", 1)]
    assert plan.repairs[0].event.id == "dup"


# -- against the sandbox ---------------------------------------------------------------------

KINDS = ["microsoft", "google", "ews"]
EWS_READY = True


@pytest.fixture
def remote(sandbox, kind) -> Remote:
    return Remote(sandbox, kind)


def room(kind: str) -> str:
    return ROOMS[kind]


def tagged(kind: str, reservation_id: int) -> dict:
    """The body part that carries our tag, as Reserva writes it (on EWS, ``Remote.create``
    saves it over EWS)."""
    if kind == "ews":
        return {"reservation_tag": reservation_id}
    if kind == "microsoft":
        prop = microsoft_mapping.RESERVATION_PROPERTY
        return {"singleValueExtendedProperties": [{"id": prop, "value": str(reservation_id)}]}
    key = google_mapping.RESERVATION_PROPERTY
    return {"extendedProperties": {"private": {key: str(reservation_id)}}}


def event_times(kind: str, item: dict) -> tuple[datetime, datetime]:
    def parse(value: dict | str) -> datetime:
        text = (value if kind == "ews" else value["dateTime"]).replace("Z", "+00:00")
        moment = datetime.fromisoformat(text)
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)

    return parse(item["start"]), parse(item["end"])


def test_a_clean_binding_records_zero_repairs(
    binding, remote, kind, make_user, django_capture_on_commit_callbacks
):
    user = make_user()
    book(binding, user, 0, 9, django_capture_on_commit_callbacks)
    book(binding, user, 1, 9, django_capture_on_commit_callbacks)
    remote.create("Walk-in", at(0, 14), at(0, 15))
    assert pull.pull_binding(binding.pk).created == 1
    settle()
    mail.outbox.clear()  # the booking confirmations

    result = run(binding.pk, django_capture_on_commit_callbacks)

    assert (result.status, result.repairs, result.push, result.events) == ("succeeded", [], [], 3)
    job = SyncJob.objects.get(kind=JobKind.RECONCILE, binding=binding)
    assert job.status == "succeeded" and job.errors == []
    assert (job.created_count, job.updated_count, job.deleted_count, job.failed_count) == (
        0,
        0,
        0,
        0,
    )
    assert mail.outbox == []


def test_drift_behind_reservas_back_is_repaired_and_recorded(
    binding, remote, kind, make_user, django_capture_on_commit_callbacks, settings
):
    settings.RECONCILE_ALERT_THRESHOLD = 10
    user = make_user(first_name="Ada", last_name="Lovelace")
    lost = book(binding, user, 0, 9, django_capture_on_commit_callbacks)
    moved = book(binding, user, 1, 9, django_capture_on_commit_callbacks)
    stale = book(binding, user, 2, 9, django_capture_on_commit_callbacks)
    walk_in = remote.create("Walk-in", at(0, 14), at(0, 15))
    pull.pull_binding(binding.pk)
    (provider_made,) = Reservation.objects.filter(source__in=(Source.EXCHANGE, Source.GOOGLE))

    remote.delete(SyncLink.objects.get(reservation=lost).external_id)
    remote.move(SyncLink.objects.get(reservation=moved).external_id, at(1, 11), at(1, 12))
    # Cancelled here, but its delete never reached the calendar (a lost push).
    Reservation.objects.filter(pk=stale.pk).update(status=ReservationStatus.CANCELLED)
    orphan = remote.create("Ada Lovelace", at(3, 9), at(3, 10), **tagged(kind, 987654))
    remote.create("Visitor", at(4, 13), at(4, 14))
    remote.move(walk_in, at(0, 16), at(0, 17))
    settle()

    result = run(binding.pk, django_capture_on_commit_callbacks)

    done = sorted((str(r.drift), str(r.fix), r.reservation_id) for r in result.repairs)
    assert done == sorted(
        [
            ("missing", "push", lost.pk),
            ("divergent", "push", moved.pk),
            ("extra", "delete", stale.pk),
            ("extra", "delete", 987654),
            ("extra", "import", None),
            ("divergent", "apply", provider_made.pk),
        ]
    ), result.notes
    job = SyncJob.objects.get(kind=JobKind.RECONCILE, binding=binding)
    assert job.status == "succeeded"
    assert (job.created_count, job.updated_count, job.deleted_count) == (2, 2, 2)
    assert len(job.errors) == 6 and all("done" in note and note["reason"] for note in job.errors)

    # The calendar and Reserva agree again.
    live = {e["id"]: e for e in remote_events(remote.sandbox, kind, room(kind))}
    assert orphan not in live
    for row in (lost, moved):
        link = SyncLink.objects.get(reservation=row)
        assert event_times(kind, live[link.external_id]) == (row.start, row.end)
    assert SyncLink.objects.get(reservation=stale).external_id not in live
    provider_made.refresh_from_db()
    assert (provider_made.start, provider_made.end) == (at(0, 16), at(0, 17))
    visitor = Reservation.objects.get(title="Visitor")
    assert visitor.status == ReservationStatus.CONFIRMED and visitor.start == at(4, 13)
    linked = {SyncLink.objects.get(reservation=row).external_id for row in (lost, moved)}
    linked |= {SyncLink.objects.get(reservation=r).external_id for r in (provider_made, visitor)}
    assert set(live) == linked  # the four bookings, each with its one event, and nothing else

    settle()
    again = run(binding.pk, django_capture_on_commit_callbacks)
    assert again.repairs == [] and again.status == "succeeded", again.notes


def test_above_the_threshold_the_admins_get_one_email(
    binding, remote, kind, make_user, django_capture_on_commit_callbacks, settings
):
    settings.RECONCILE_ALERT_THRESHOLD = 2
    make_user(username="root", email="root@example.com", is_superuser=True)
    user = make_user()
    rows = [book(binding, user, day, 9, django_capture_on_commit_callbacks) for day in range(3)]
    for row in rows:
        remote.delete(SyncLink.objects.get(reservation=row).external_id)
    settle()
    mail.outbox.clear()

    result = run(binding.pk, django_capture_on_commit_callbacks)

    assert len(result.repairs) == 3 and result.alerted
    (alert,) = mail.outbox
    assert alert.to == ["root@example.com"]
    assert "repaired 3 differences" in alert.subject and binding.space.name in alert.subject
    assert all(f"reservation {row.pk}" in alert.body for row in rows)
    assert len(remote_events(remote.sandbox, kind, room(kind))) == 3

    settle()
    mail.outbox.clear()
    assert run(binding.pk, django_capture_on_commit_callbacks).repairs == []
    assert mail.outbox == []


def test_at_the_threshold_nobody_is_emailed(
    binding, make_user, django_capture_on_commit_callbacks, settings, remote
):
    settings.RECONCILE_ALERT_THRESHOLD = 1
    make_user(username="root", email="root@example.com", is_superuser=True)
    row = book(binding, make_user(), 0, 9, django_capture_on_commit_callbacks)
    remote.delete(SyncLink.objects.get(reservation=row).external_id)
    settle()
    mail.outbox.clear()
    result = run(binding.pk, django_capture_on_commit_callbacks)
    assert len(result.repairs) == 1 and not result.alerted and mail.outbox == []


def test_it_waits_for_a_running_pull_of_the_binding(
    binding, remote, make_user, django_capture_on_commit_callbacks
):
    row = book(binding, make_user(), 0, 9, django_capture_on_commit_callbacks)
    remote.delete(SyncLink.objects.get(reservation=row).external_id)
    settle()
    claim = pull.acquire(binding.pk)
    assert claim
    try:
        busy = reconcile.reconcile_binding(binding.pk)
    finally:
        pull.release(binding.pk, claim)
    assert busy.status == "busy" and busy.repairs == []
    assert not SyncJob.objects.filter(kind=JobKind.RECONCILE).exists()
    assert len(run(binding.pk, django_capture_on_commit_callbacks).repairs) == 1


def test_each_binding_is_due_once_a_day_from_its_own_slot(ms_binding, google_binding, settings):
    """Beat's tick queues a room once its slot (the hour plus its own offset within the
    spread) has come and it has no reconciliation since: nothing waits in the broker."""
    settings.RECONCILE_HOUR, settings.RECONCILE_SPREAD_MINUTES = 3, 60
    day = datetime(2030, 1, 7, tzinfo=UTC)
    slots = {pk: reconcile.reconcile_slot(pk, day + timedelta(hours=5)) for pk in
             (ms_binding.pk, google_binding.pk)}  # fmt: skip
    for slot in slots.values():
        assert day + timedelta(hours=3) <= slot < day + timedelta(hours=4)
    assert len(set(slots.values())) == 2  # spread apart
    first, second = sorted(slots, key=slots.get)

    between = slots[first] + (slots[second] - slots[first]) / 2
    # Before a room's slot today, its slot is yesterday's: due, as nothing ran since.
    assert dict(reconcile.due_for_reconcile(between)) == {
        first: slots[first],
        second: slots[second] - timedelta(days=1),
    }
    SyncJob.objects.create(
        kind=JobKind.RECONCILE, binding_id=first, status="succeeded", started_at=between
    )
    SyncJob.objects.create(
        kind=JobKind.RECONCILE, binding_id=second, status="succeeded", started_at=between
    )
    assert reconcile.due_for_reconcile(between) == []
    after = slots[second] + timedelta(minutes=1)
    assert reconcile.due_for_reconcile(after) == [(second, slots[second])]
    assert reconcile.reconciled_since(first, slots[first])
    assert not reconcile.reconciled_since(second, slots[second])
    google_binding.enabled = False
    google_binding.save()
    assert google_binding.pk not in dict(reconcile.due_for_reconcile(after))


def test_the_task_queues_the_pushes_it_asks_for(
    binding, remote, kind, make_user, django_capture_on_commit_callbacks
):
    from calendars import tasks

    row = book(binding, make_user(), 0, 9, django_capture_on_commit_callbacks)
    remote.delete(SyncLink.objects.get(reservation=row).external_id)
    settle()

    with django_capture_on_commit_callbacks(execute=True):  # a worker runs no transaction
        assert tasks.reconcile_binding.delay(binding.pk).get() == "succeeded"  # eager here

    link = SyncLink.objects.get(reservation=row)
    (again,) = remote_events(remote.sandbox, kind, room(kind))
    assert again["id"] == link.external_id and link.state == "synced"


def test_plan_the_provider_wins_for_its_own_bookings_even_on_a_lost_event_id():
    walk_in = ReservationFacts(5, T0, T0 + timedelta(hours=1), "confirmed", "Walk-in", True)
    plan = plan_reconcile(
        [event("e5", subject="Walk-in", ical_uid="uid-5")],
        [LinkFacts(5, "", "uid-5")],
        [walk_in],
        window=WINDOW,
    )
    assert fixes(plan) == [("divergent", "apply", 5)]  # never pushed over the provider's


def test_a_provider_made_event_moved_onto_a_booking_becomes_a_conflict(
    binding, remote, make_user, django_capture_on_commit_callbacks
):
    booked = book(binding, make_user(), 0, 9, django_capture_on_commit_callbacks)
    walk_in = remote.create("Walk-in", at(0, 14), at(0, 15))
    pull.pull_binding(binding.pk)
    (provider_made,) = Reservation.objects.exclude(pk=booked.pk)
    remote.move(walk_in, at(0, 9), at(0, 10))
    settle()

    result = run(binding.pk, django_capture_on_commit_callbacks)

    assert [(str(r.fix), r.reservation_id) for r in result.repairs] == [("apply", provider_made.pk)]
    assert result.notes[0]["done"] == "moved onto a taken slot: now a conflict"
    provider_made.refresh_from_db()
    booked.refresh_from_db()
    assert provider_made.status == ReservationStatus.CONFLICTED
    assert (provider_made.start, booked.status) == (at(0, 9), ReservationStatus.CONFIRMED)
    settle()
    assert run(binding.pk, django_capture_on_commit_callbacks).repairs == []


def test_beat_runs_the_fan_out_daily_at_the_configured_hour(settings):
    from calendars import tasks
    from config.celery import app

    entry = settings.CELERY_BEAT_SCHEDULE["reconcile-bindings"]
    assert app.tasks[entry["task"]].name == tasks.reconcile_bindings.name == entry["task"]
    assert entry["schedule"] <= 600  # a tick: the rooms' slots come through the day's hour
