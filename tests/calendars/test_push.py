"""Push: the pure planner, then reservations pushed to the sandbox over real HTTPS (Microsoft
Graph and Google Calendar) through the booking service and its signals (Celery is eager)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from calendars import tasks
from calendars.models import JobKind, JobStatus, LinkState, ProviderKind, SyncJob, SyncLink
from calendars.sync import push
from calendars.sync.plan import LinkSnapshot as Link
from calendars.sync.plan import Op, Place, ReservationState, plan
from reservations import services
from reservations.models import EventTitle
from tests.calendars.conftest import MS_ROOM, ROOMS, remote_events
from tests.conftest import local, next_weekday

ROOM = Place(1, "atlas@contoso.test", "")
OTHER_ROOM = Place(1, "borealis@contoso.test", "")


# -- the planner (pure) -----------------------------------------------------------------------


def state(version=1, active=True, target=ROOM, space_id=10) -> ReservationState:
    return ReservationState(version=version, active=active, space_id=space_id, target=target)


def link(external_id="ev1", place=ROOM, pushed=1, space_id=10, enabled=True, uncertain=False):
    return Link(
        external_id=external_id,
        place=place,
        pushed_version=pushed,
        binding_space_id=space_id,
        binding_enabled=enabled,
        uncertain=uncertain,
    )


@pytest.mark.parametrize(
    ("reservation", "known", "op", "lookup"),
    [
        (state(), None, Op.CREATE, False),
        (state(active=False), None, Op.NOOP, False),
        (state(version=2), link(pushed=1), Op.UPDATE, False),
        (state(version=2), link(pushed=2), Op.NOOP, False),  # a duplicate task
        (state(version=2), link(pushed=3), Op.NOOP, False),  # an older queued task
        (state(version=3, active=False), link(pushed=2), Op.DELETE, False),
        (state(version=3, active=False), link(pushed=3), Op.NOOP, False),  # deleted already
        (state(version=2, target=OTHER_ROOM), link(pushed=1), Op.MOVE, False),
        (state(version=2, target=None), link(pushed=1), Op.NOOP, False),  # sync switched off
        (state(version=2, target=None, space_id=11), link(pushed=1), Op.DELETE, False),
        (state(version=2, target=None, space_id=11), link(enabled=False), Op.NOOP, False),
        (state(), link(external_id="", pushed=0, uncertain=True), Op.CREATE, True),
        (state(active=False), link(external_id="", pushed=0, uncertain=True), Op.DELETE, True),
        (state(), link(external_id="", pushed=0, uncertain=False), Op.CREATE, False),
    ],
)
def test_plan(reservation, known, op, lookup):
    action = plan(reservation, known)
    assert (action.op, action.lookup) == (op, lookup), action.reason
    assert action.reason


def test_place_comparison_ignores_the_case_of_addresses():
    assert Place(1, "Atlas@Contoso.test", "").same_as(ROOM)
    assert not Place(2, "atlas@contoso.test", "").same_as(ROOM)


# -- against the sandbox ----------------------------------------------------------------------


def _room(binding) -> str:
    return ROOMS[binding.provider.kind]


def _times(event: dict, kind: str) -> tuple[datetime, datetime]:
    """Aware UTC start and end (Graph answers naive UTC, Google an offset, the EWS control
    routes a UTC string)."""

    def read(value: dict | str) -> datetime:
        if kind == ProviderKind.EWS:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)
        if kind == ProviderKind.MICROSOFT:
            return datetime.fromisoformat(value["dateTime"][:19]).replace(tzinfo=UTC)
        return datetime.fromisoformat(value["dateTime"]).astimezone(UTC)

    return read(event["start"]), read(event["end"])


def _subject(event: dict, kind: str) -> str:
    return event["summary"] if kind == ProviderKind.GOOGLE else event["subject"]


def _body(event: dict, kind: str) -> str:
    if kind == ProviderKind.EWS:
        return event["body"] or ""
    return event.get("body", {}).get("content") or event.get("description")


def _book(make_user, space, hour=10, **kwargs):
    user = kwargs.pop("user", None) or make_user()
    start = local(space.location, next_weekday(2), hour)
    return services.book(
        actor=user, space=space, start=start, end=start + timedelta(hours=1), **kwargs
    ).reservations[0]


@pytest.fixture(params=["ms", "google", "ews"])
def binding(request):
    return request.getfixturevalue(f"{request.param}_binding")


@pytest.mark.django_db(transaction=True)
def test_create_move_rename_and_cancel_follow_in_the_room_calendar(binding, sandbox, make_user):
    kind, room = binding.provider.kind, _room(binding)
    location = binding.space.location
    location.event_title = EventTitle.PUBLIC_NICKNAME
    location.save()
    reservation = _book(make_user, binding.space, public_nickname="Board meeting")

    (event,) = remote_events(sandbox, kind, room)
    link = SyncLink.objects.get(reservation=reservation)
    assert link.state == LinkState.SYNCED and link.pushed_version == 1
    assert link.external_id and link.ical_uid and link.remote_version
    assert _subject(event, kind) == "Board meeting"
    assert _times(event, kind) == (reservation.start, reservation.end)
    assert "Booked in Reserva" in _body(event, kind)

    moved = services.change(
        actor=reservation.requested_for,
        reservation=reservation,
        start=reservation.start + timedelta(hours=2),
        end=reservation.end + timedelta(hours=2),
    )[0]
    services.change(
        actor=reservation.requested_for, reservation=moved, public_nickname="Budget review"
    )
    (event,) = remote_events(sandbox, kind, room)
    assert _subject(event, kind) == "Budget review"
    assert _times(event, kind) == (moved.start, moved.end)
    link.refresh_from_db()
    assert link.pushed_version == 3 and link.external_id == event["id"]

    services.cancel(actor=reservation.requested_for, reservation=moved)
    assert remote_events(sandbox, kind, room) == []
    jobs = SyncJob.objects.filter(kind=JobKind.PUSH, reservation=reservation)
    assert jobs.count() == 4
    assert set(jobs.values_list("status", flat=True)) == {JobStatus.SUCCEEDED}
    assert sum(j.created_count + j.updated_count + j.deleted_count for j in jobs) == 4


def _requests(sandbox, service: str) -> list[dict]:
    from tests.calendars.conftest import control

    return control(sandbox, "GET", "log", params={"service": service, "limit": "2000"})["value"]


@pytest.mark.django_db(transaction=True)
def test_a_duplicate_task_makes_no_second_event(binding, sandbox, make_user):
    kind, room = binding.provider.kind, _room(binding)
    reservation = _book(make_user, binding.space)
    assert tasks.push_reservation.delay(reservation.pk).get() == "noop"
    push.push_reservation(reservation.pk)
    assert len(remote_events(sandbox, kind, room)) == 1
    assert SyncJob.objects.filter(reservation=reservation, created_count=1).count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_push_that_crashed_after_creating_finds_the_event_by_its_tag(
    binding, sandbox, make_user, monkeypatch
):
    kind, room = binding.provider.kind, _room(binding)
    real = push.apply_remote_result

    def crash(*args, **kwargs):
        raise RuntimeError("worker lost after the provider answered")

    monkeypatch.setattr(push, "apply_remote_result", crash)
    reservation = _book(make_user, binding.space)  # the push created the event, then "died"
    assert len(remote_events(sandbox, kind, room)) == 1
    link = SyncLink.objects.get(reservation=reservation)
    assert link.external_id == "" and link.state == LinkState.FAILED
    assert SyncJob.objects.get(reservation=reservation).status == JobStatus.FAILED

    monkeypatch.setattr(push, "apply_remote_result", real)
    assert push.push_reservation(reservation.pk).op == Op.CREATE
    (event,) = remote_events(sandbox, kind, room)
    link.refresh_from_db()
    assert link.external_id == event["id"] and link.state == LinkState.SYNCED


@pytest.mark.django_db(transaction=True)
def test_an_older_queued_push_is_superseded_by_the_newest(binding, sandbox, make_user, monkeypatch):
    kind, room = binding.provider.kind, _room(binding)
    queued: list[int] = []
    monkeypatch.setattr(tasks.push_reservation, "delay", queued.append)
    reservation = _book(make_user, binding.space)
    user = reservation.requested_for
    reservation = services.change(actor=user, reservation=reservation, title="Second")[0]
    reservation = services.change(
        actor=user,
        reservation=reservation,
        start=reservation.start + timedelta(hours=1),
        end=reservation.end + timedelta(hours=1),
    )[0]
    assert queued == [reservation.pk] * 3
    outcomes = [push.push_reservation(pk).op for pk in queued]  # the worker runs them late
    assert outcomes == [Op.CREATE, Op.NOOP, Op.NOOP]
    (event,) = remote_events(sandbox, kind, room)
    assert _times(event, kind) == (reservation.start, reservation.end)
    assert SyncLink.objects.get(reservation=reservation).pushed_version == 3


@pytest.mark.django_db(transaction=True)
def test_sync_off_leaves_remote_events_and_on_again_makes_no_duplicate(binding, sandbox, make_user):
    kind, room = binding.provider.kind, _room(binding)
    reservation = _book(make_user, binding.space)
    (before,) = remote_events(sandbox, kind, room)

    binding.enabled = False
    binding.save()
    moved = services.change(
        actor=reservation.requested_for,
        reservation=reservation,
        start=reservation.start + timedelta(hours=3),
        end=reservation.end + timedelta(hours=3),
    )[0]
    (still,) = remote_events(sandbox, kind, room)
    assert still["id"] == before["id"]
    assert _times(still, kind) == (reservation.start, reservation.end)  # left alone

    binding.enabled = True
    binding.save()  # switching it on queues what changed meanwhile
    (after,) = remote_events(sandbox, kind, room)
    assert after["id"] == before["id"]
    assert _times(after, kind) == (moved.start, moved.end)


@pytest.mark.django_db(transaction=True)
def test_moving_to_another_synced_room_moves_the_event(ms_binding, sandbox, make_user, make_space):
    from tests.calendars.conftest import MS_ROOM2, bind

    other = bind(make_space(location=ms_binding.space.location), ms_binding.provider, MS_ROOM2)
    reservation = _book(make_user, ms_binding.space)
    services.change(actor=reservation.requested_for, reservation=reservation, space=other.space)
    assert remote_events(sandbox, "microsoft", MS_ROOM) == []
    (event,) = remote_events(sandbox, "microsoft", MS_ROOM2)
    link = SyncLink.objects.get(reservation=reservation)
    assert (link.binding, link.mailbox, link.external_id) == (other, MS_ROOM2, event["id"])


@pytest.mark.django_db(transaction=True)
def test_a_space_without_an_enabled_binding_is_not_pushed(make_user, make_space):
    reservation = _book(make_user, make_space())
    assert push.push_reservation(reservation.pk).op == Op.NOOP
    assert not SyncLink.objects.exists() and not SyncJob.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_details_page_and_admin_show_the_sync_status_and_id(ms_binding, sandbox, make_user, client):
    reservation = _book(make_user, ms_binding.space)
    link = SyncLink.objects.get(reservation=reservation)
    client.force_login(reservation.requested_for)
    page = client.get(f"/reservations/{reservation.pk}/").content.decode()
    assert "In the calendar" in page and link.external_id[:20] in page

    admin = make_user("root", is_staff=True, is_superuser=True)
    client.force_login(admin)
    change = client.get(f"/admin/reservations/reservation/{reservation.pk}/change/")
    assert link.external_id in change.content.decode()
    listing = client.get("/admin/calendars/syncjob/?kind__exact=push").content.decode()
    assert "Retry failed" in listing and "Sync now" in listing
    assert client.get("/admin/reservations/reservation/").status_code == 200
    assert client.get("/admin/calendars/synclink/").status_code == 200


@pytest.mark.django_db(transaction=True)
def test_staff_see_a_banner_while_a_room_is_paused(ms_binding, make_user, client):
    ms_binding.status, ms_binding.last_error = "paused", "The client secret is wrong."
    ms_binding.save()
    admin = make_user("root", is_staff=True, is_superuser=True)
    client.force_login(admin)
    assert "Calendar sync is paused for 1 room" in client.get("/").content.decode()
    client.force_login(make_user())
    assert "Calendar sync is paused" not in client.get("/").content.decode()
