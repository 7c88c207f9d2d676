"""Pull against the provider sandbox (Microsoft and Google): events created, moved, renamed
and deleted "as a person in Outlook / Google Calendar" through the sandbox's control API reach
the reservations; our own pushes do not come back; an expired cursor means one full resync
without duplicates; conflicts, all-day events, Windows zone names, a Google series; the beat
fan-out and the lock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core import mail
from django.utils import timezone

from calendars import remote as remote_calendar
from calendars.models import (
    BindingStatus,
    JobKind,
    LinkState,
    SpaceCalendar,
    SyncJob,
    SyncLink,
    SyncSettings,
)
from calendars.sync import pull
from calendars.sync.push import push_reservation
from integrations.base import TransientError
from reservations import services
from reservations.models import EventTitle, Reservation, ReservationStatus, Source
from tests.calendars.conftest import (
    GOOGLE_ROOM,
    MS_ROOM,
    ROOMS,
    bind,
    binding_for,
    control,
    remote_events,
)
from tests.conftest import local, next_weekday
from tests.support.pull import Remote, at

EWS_READY = True


@pytest.fixture
def binding(kind, request) -> SpaceCalendar:
    return binding_for(kind, request)


@pytest.fixture
def remote(sandbox, kind) -> Remote:
    return Remote(sandbox, kind)


def remote_rows(binding) -> list[Reservation]:
    return list(Reservation.objects.filter(space=binding.space).order_by("start", "pk"))


def test_create_move_rename_delete_follow(binding, remote, kind):
    first = pull.pull_binding(binding.pk)  # no cursor yet: a full read of the window
    assert first.status == "succeeded" and first.full and first.created == 0
    event_id = remote.create("Board", at(0, 9), at(0, 10))

    result = pull.pull_binding(binding.pk)
    assert (result.status, result.full, result.created) == ("succeeded", False, 1)
    (row,) = remote_rows(binding)
    assert row.source == (Source.GOOGLE if kind == "google" else Source.EXCHANGE)
    assert (row.start, row.end, row.title, row.status) == (
        at(0, 9),
        at(0, 10),
        "Board",
        "confirmed",
    )
    assert row.sync_link.external_id == event_id

    remote.move(event_id, at(0, 11), at(0, 12))
    assert pull.pull_binding(binding.pk).updated == 1
    row.refresh_from_db()
    assert (row.start, row.end) == (at(0, 11), at(0, 12))

    remote.rename(event_id, "Budget review")
    assert pull.pull_binding(binding.pk).updated == 1
    row.refresh_from_db()
    assert row.title == "Budget review"

    remote.delete(event_id)
    assert pull.pull_binding(binding.pk).cancelled == 1
    row.refresh_from_db()
    assert row.status == ReservationStatus.CANCELLED
    assert len(remote_rows(binding)) == 1

    quiet = pull.pull_binding(binding.pk)
    assert (quiet.created, quiet.updated, quiet.cancelled, quiet.full) == (0, 0, 0, False)
    binding.refresh_from_db()
    assert binding.last_synced_at and binding.last_error == "" and binding.sync_token
    jobs = SyncJob.objects.filter(binding=binding, kind=JobKind.PULL)
    assert jobs.count() == 6 and {j.status for j in jobs} == {"succeeded"}


def test_our_own_push_does_not_come_back(binding, make_user, django_capture_on_commit_callbacks):
    pull.pull_binding(binding.pk)
    user = make_user()
    start = local(binding.space.location, next_weekday(2), 10)
    with django_capture_on_commit_callbacks(execute=True):
        booked = services.book(
            actor=user, space=binding.space, start=start, end=start + timedelta(hours=1)
        ).reservations[0]
    push_reservation(booked.pk)  # as the push task does (idempotent if it already ran)
    link = SyncLink.objects.get(reservation=booked)
    assert link.external_id, "the push did not run"

    result = pull.pull_binding(binding.pk)
    assert (result.created, result.updated, result.cancelled, result.conflicts) == (0, 0, 0, 0)
    booked.refresh_from_db()
    assert booked.version == 1 and booked.status == ReservationStatus.CONFIRMED
    assert remote_rows(binding) == [booked]


def test_an_expired_cursor_means_one_full_resync_without_duplicates(binding, remote):
    pull.pull_binding(binding.pk)
    remote.create("One", at(0, 9), at(0, 10))
    assert pull.pull_binding(binding.pk).created == 1
    remote.expire_cursor()
    remote.create("Two", at(0, 11), at(0, 12))

    result = pull.pull_binding(binding.pk)
    assert result.full and result.created == 1 and result.status == "succeeded"
    assert [r.title for r in remote_rows(binding)] == ["One", "Two"]
    again = pull.pull_binding(binding.pk)
    assert not again.full and again.created == 0
    assert SyncLink.objects.filter(binding=binding).count() == 2


def test_a_colliding_remote_event_is_a_conflict_and_the_owner_is_told(
    binding, remote, make_user, django_capture_on_commit_callbacks
):
    pull.pull_binding(binding.pk)
    owner = make_user(email="owner@example.com")
    start = local(binding.space.location, next_weekday(2), 10)
    with django_capture_on_commit_callbacks(execute=True):
        booked = services.book(
            actor=owner, space=binding.space, start=start, end=start + timedelta(hours=1)
        ).reservations[0]
    push_reservation(booked.pk)
    pull.pull_binding(binding.pk)  # our own event comes back: nothing
    mail.outbox.clear()
    remote.create("Walk-in", start.astimezone(UTC), (start + timedelta(hours=1)).astimezone(UTC))

    with django_capture_on_commit_callbacks(execute=True):
        result = pull.pull_binding(binding.pk)
    assert result.conflicts == 1 and result.created == 0
    conflict = Reservation.objects.get(status=ReservationStatus.CONFLICTED)
    assert conflict.sync_link.external_id and conflict.title == "Walk-in"
    booked.refresh_from_db()
    assert booked.status == ReservationStatus.CONFIRMED and booked.version == 1
    assert [m.to for m in mail.outbox] == [["owner@example.com"]]
    assert "collides" in mail.outbox[0].body and binding.space.name in mail.outbox[0].body
    # On the shared template: the HTML part too, and the link is the booking's own page.
    [(html, _mimetype)] = mail.outbox[0].alternatives
    assert "collides" in html and f"/reservations/{booked.pk}/" in mail.outbox[0].body

    # Resolving: the booking is cancelled, the conflict is retried and takes the slot.
    assert not services.retry_conflict(reservation=conflict)
    services.cancel(actor=owner, reservation=booked)
    assert services.retry_conflict(reservation=conflict)
    conflict.refresh_from_db()
    assert conflict.status == ReservationStatus.CONFIRMED


def test_a_remote_move_and_cancel_of_a_portal_booking_email_its_owner(
    binding, make_user, django_capture_on_commit_callbacks, kind, sandbox
):
    pull.pull_binding(binding.pk)
    owner = make_user(email="mover@example.com")
    start = local(binding.space.location, next_weekday(3), 10)
    with django_capture_on_commit_callbacks(execute=True):
        booked = services.book(
            actor=owner, space=binding.space, start=start, end=start + timedelta(hours=1)
        ).reservations[0]
    push_reservation(booked.pk)
    booked.refresh_from_db()
    remote = Remote(sandbox, kind)
    event_id = booked.sync_link.external_id
    later = start + timedelta(hours=2)
    remote.move(event_id, later.astimezone(UTC), (later + timedelta(hours=1)).astimezone(UTC))
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        assert pull.pull_binding(binding.pk).updated == 1
    booked.refresh_from_db()
    assert booked.start == later
    assert [m.to for m in mail.outbox] == [["mover@example.com"]]
    assert mail.outbox[0].subject.startswith("Moved in")

    remote.delete(event_id)
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        assert pull.pull_binding(binding.pk).cancelled == 1
    booked.refresh_from_db()
    assert booked.status == ReservationStatus.CANCELLED
    assert [m.subject.split(":")[0] for m in mail.outbox] == [
        f"Cancelled in {binding.provider.get_kind_display()}"
    ]


@pytest.mark.parametrize("edit", ["rename", "move"])
def test_a_remote_edit_does_not_swallow_a_push_still_owed(
    binding, remote, make_user, django_capture_on_commit_callbacks, edit
):
    """A booking moved and renamed in the portal whose push waits for its retry (the provider
    failed it), then someone edits the same event in the calendar. The event's times are
    stale, not a remote move: the pull must neither move the booking back nor record the
    portal change as pushed (the retry would find nothing to do and the calendar would keep
    the old booking for ever). Reserva's booking wins, as when a push meets a remote edit.
    Found by the convergence run."""
    pull.pull_binding(binding.pk)
    location = binding.space.location
    location.event_title = EventTitle.PUBLIC_NICKNAME
    location.save(update_fields=["event_title"])
    owner = make_user()
    start = local(location, next_weekday(2), 10)
    with django_capture_on_commit_callbacks(execute=True):
        booked = services.book(
            actor=owner, space=binding.space, start=start, end=start + timedelta(hours=1),
            public_nickname="Standup",
        ).reservations[0]  # fmt: skip
    push_reservation(booked.pk)
    event_id = SyncLink.objects.get(reservation=booked).external_id
    later = start + timedelta(hours=2)
    # Committed, but its push not run: the state a failed push leaves until its retry.
    booked = services.change(
        actor=owner, reservation=booked, start=later, end=later + timedelta(hours=1),
        public_nickname="Planning",
    )[0]  # fmt: skip

    if edit == "rename":
        remote.rename(event_id, "Renamed in the calendar")
    else:
        remote.move(event_id, at(1, 15), at(1, 16))
    result = pull.pull_binding(binding.pk)
    assert (result.updated, result.cancelled, result.conflicts) == (0, 0, 0)
    booked.refresh_from_db()
    wanted = (later, later + timedelta(hours=1))
    assert (booked.start, booked.end, booked.version) == (*wanted, 2)
    link = SyncLink.objects.get(reservation=booked)
    assert link.pushed_version < booked.version, "the owed push was recorded as done"

    assert push_reservation(booked.pk).op == "update"  # the retry
    event = remote_calendar.room_calendar(binding).find(booked.pk)
    assert (event.subject, event.start, event.end) == ("Planning", *wanted)
    assert pull.pull_binding(binding.pk).updated == 0  # our write does not come back


def test_an_event_whose_create_answer_was_lost_is_not_taken_for_a_new_one(
    ms_binding, sandbox, make_user
):
    """A push's create lands but its answer is lost (the connection dropped after the write,
    the client's replay answered 500): the link has no event id. Graph's delta does not carry
    our tag, so the pull must look the pushes without an event id up by tag rather than take
    the event for a new one (a conflict with the booking, or a second booking of our own
    event once it moves). Found by the convergence run."""
    pull.pull_binding(ms_binding.pk)
    start = local(ms_binding.space.location, next_weekday(2), 10)
    booked = services.book(
        actor=make_user(), space=ms_binding.space, start=start, end=start + timedelta(hours=1)
    ).reservations[0]
    for kind, extra in (("drop", {"after_write": True}), ("500", {})):
        control(sandbox, "POST", "faults", json={"kind": kind, "method": "POST",
                "path": "/calendar/events$", "count": 1, **extra})  # fmt: skip
    with pytest.raises(TransientError):
        push_reservation(booked.pk)
    link = SyncLink.objects.get(reservation=booked)
    assert (link.external_id, link.state) == ("", LinkState.FAILED)
    (event,) = remote_events(sandbox, "microsoft", MS_ROOM)  # it landed all the same

    result = pull.pull_binding(ms_binding.pk)
    assert (result.created, result.conflicts) == (0, 0)
    assert remote_rows(ms_binding) == [booked]
    link.refresh_from_db()
    assert link.external_id == event["id"]  # the retry updates it, knowing its id

    assert push_reservation(booked.pk).op == "update"
    assert [e["id"] for e in remote_events(sandbox, "microsoft", MS_ROOM)] == [event["id"]]
    quiet = pull.pull_binding(ms_binding.pk)
    assert (quiet.created, quiet.updated, quiet.cancelled, quiet.conflicts) == (0, 0, 0, 0)


def test_an_all_day_event_runs_midnight_to_midnight_in_the_location_zone(binding, remote, kind):
    pull.pull_binding(binding.pk)
    day = next_weekday(4)
    if kind == "microsoft":
        midnight = datetime.combine(day, datetime.min.time(), tzinfo=UTC)
        remote.create("Offsite", midnight, midnight + timedelta(days=1), isAllDay=True)
    elif kind == "ews":
        remote.create_all_day("Offsite", day)
    else:
        control(
            remote.sandbox,
            "POST",
            f"google/calendars/{GOOGLE_ROOM}/events",
            json={
                "summary": "Offsite",
                "start": {"date": day.isoformat()},
                "end": {"date": (day + timedelta(days=1)).isoformat()},
            },
        )
    assert pull.pull_binding(binding.pk).created == 1
    (row,) = remote_rows(binding)
    zone = binding.space.location.zone
    assert row.start == datetime.combine(day, datetime.min.time(), tzinfo=zone)
    assert row.end == datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=zone)


def test_a_windows_time_zone_name(ms_binding, sandbox):
    pull.pull_binding(ms_binding.pk)
    remote = Remote(sandbox, "microsoft")
    day = next_weekday(2)
    nine = datetime.combine(day, datetime.min.time()).replace(hour=9)
    event = remote.create("Pacific", nine, nine + timedelta(hours=1))
    control(
        sandbox,
        "PATCH",
        f"microsoft/mailboxes/{MS_ROOM}/events/{event}",
        json=remote._times(nine, nine + timedelta(hours=1), "Pacific Standard Time"),
    )
    pull.pull_binding(ms_binding.pk)
    row = Reservation.objects.get(title="Pacific")
    assert row.start == nine.replace(tzinfo=ZoneInfo("America/Los_Angeles"))
    assert row.status == ReservationStatus.CONFIRMED


def test_organizer_details_and_requested_for(ms_binding, sandbox, make_user):
    location = ms_binding.space.location
    location.pull_organizer_details = True
    location.save()
    alice = make_user(email="alice@contoso.test", first_name="Alice")
    pull.pull_binding(ms_binding.pk)
    Remote(sandbox, "microsoft").create(
        "Sprint",
        at(0, 9),
        at(0, 10),
        organizer={"emailAddress": {"address": "alice@contoso.test", "name": "Alice"}},
    )
    pull.pull_binding(ms_binding.pk)
    (row,) = remote_rows(ms_binding)
    assert (row.organizer_email, row.requested_for) == ("alice@contoso.test", alice)


def test_a_google_recurring_series_becomes_one_reservation_per_occurrence(google_binding, sandbox):
    """The series, then its deletion; exceptions (one instance moved, renamed or deleted) are
    in test_pull_recurring_google.py."""
    pull.pull_binding(google_binding.pk)
    start = at(0, 9)
    series = control(
        sandbox,
        "POST",
        f"google/calendars/{GOOGLE_ROOM}/events",
        json={
            "summary": "Daily stand-up",
            "start": {"dateTime": start.isoformat().replace("+00:00", "Z"), "timeZone": "UTC"},
            "end": {
                "dateTime": (start + timedelta(minutes=15)).isoformat().replace("+00:00", "Z"),
                "timeZone": "UTC",
            },
            "recurrence": ["RRULE:FREQ=DAILY;COUNT=3"],
        },
    )["id"]
    assert pull.pull_binding(google_binding.pk).created == 3
    rows = remote_rows(google_binding)
    assert [r.start for r in rows] == [start + timedelta(days=n) for n in range(3)]
    assert len({r.sync_link.external_id for r in rows}) == 3

    control(sandbox, "DELETE", f"google/calendars/{GOOGLE_ROOM}/events/{series}")
    pull.pull_binding(google_binding.pk)
    statuses = {r.status for r in remote_rows(google_binding)}
    assert statuses == {ReservationStatus.CANCELLED}


def test_a_permanent_error_pauses_the_binding(ms_binding):
    ms_binding.resource_email = "nobody@contoso.test"
    ms_binding.save()
    result = pull.pull_binding(ms_binding.pk)
    assert result.status == "paused"
    ms_binding.refresh_from_db()
    assert ms_binding.status == BindingStatus.PAUSED
    assert SyncJob.objects.get(binding=ms_binding, kind=JobKind.PULL).status == "paused"
    assert pull.pull_binding(ms_binding.pk).status == "skipped"


# -- scheduling and the lock -------------------------------------------------------------------


def test_the_beat_fan_out_picks_due_bindings_only(
    ms_provider, make_space, monkeypatch, django_capture_on_commit_callbacks
):
    from calendars import tasks

    queued: list[int] = []
    monkeypatch.setattr(tasks.pull_binding, "delay", lambda pk: queued.append(pk))
    now = timezone.now()
    # One room per space: a room calendar syncs with one space (calendars.models).
    due = bind(make_space(), ms_provider, MS_ROOM, next_pull_at=now - timedelta(seconds=1))
    never = bind(make_space(), ms_provider, "room2@contoso.test")
    later = bind(
        make_space(), ms_provider, "room3@contoso.test", next_pull_at=now + timedelta(minutes=3)
    )
    bind(make_space(), ms_provider, MS_ROOM, enabled=False)
    bind(make_space(), ms_provider, "room4@contoso.test", status=BindingStatus.PAUSED)

    with_callbacks = django_capture_on_commit_callbacks
    with with_callbacks(execute=True):
        assert tasks.queue_due_pulls(now) == 2
    assert sorted(queued) == sorted([due.pk, never.pk])
    interval = SyncSettings.load().pull_interval_minutes * 60
    for row in SpaceCalendar.objects.filter(pk__in=[due.pk, never.pk]):
        assert 0.8 * interval - 1 <= (row.next_pull_at - now).total_seconds() <= 1.2 * interval
    assert SpaceCalendar.objects.get(pk=later.pk).next_pull_at == later.next_pull_at

    # The next minute: nothing is due, and a queued request is not queued twice.
    with with_callbacks(execute=True):
        assert tasks.queue_due_pulls(now + timedelta(minutes=1)) == 0
        assert tasks.request_pull(due.pk) is False
    assert len(queued) == 2


def test_two_pulls_of_one_binding_run_once(ms_binding, monkeypatch):
    calls: list[int] = []
    real = pull.read_changes

    def reading(*args, **kwargs):
        calls.append(1)
        # A second pull starting while this one reads finds the binding busy.
        assert pull.pull_binding(ms_binding.pk).status == "busy"
        return real(*args, **kwargs)

    monkeypatch.setattr(pull.fetch, "read_changes", reading)
    assert pull.pull_binding(ms_binding.pk).status == "succeeded"
    assert calls == [1]
    assert SyncJob.objects.filter(binding=ms_binding, kind=JobKind.PULL).count() == 1
    # The lock was given back: the next pull runs.
    monkeypatch.setattr(pull.fetch, "read_changes", real)
    assert pull.pull_binding(ms_binding.pk).status == "succeeded"


def test_request_pull_coalesces(ms_binding, monkeypatch, django_capture_on_commit_callbacks):
    from calendars import tasks

    queued: list[int] = []
    monkeypatch.setattr(tasks.pull_binding, "delay", lambda pk: queued.append(pk))
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.request_pull(ms_binding.pk) is True
        assert tasks.request_pull(ms_binding.pk) is False  # already queued
    assert queued == [ms_binding.pk] and pull.pull_owed(ms_binding.pk)
    claim = pull.acquire(ms_binding.pk)  # the queued pull starts
    assert claim and not pull.pull_owed(ms_binding.pk)
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.request_pull(ms_binding.pk) is True  # one more pull, after this one
        assert tasks.request_pull(ms_binding.pk) is False
    assert len(queued) == 2
    assert pull.acquire(ms_binding.pk) is None  # that one waits for the running pull
    pull.release(ms_binding.pk, claim)
    again = pull.acquire(ms_binding.pk)
    assert again
    pull.release(ms_binding.pk, again)


# -- conflicts in the admin --------------------------------------------------------------------


def _conflict(binding, remote, make_user):
    pull.pull_binding(binding.pk)
    owner = make_user()
    start = local(binding.space.location, next_weekday(2), 10)
    booked = services.book(
        actor=owner, space=binding.space, start=start, end=start + timedelta(hours=1)
    ).reservations[0]
    push_reservation(booked.pk)
    remote.create("Walk-in", start.astimezone(UTC), (start + timedelta(hours=1)).astimezone(UTC))
    assert pull.pull_binding(binding.pk).conflicts == 1
    return booked, Reservation.objects.get(status=ReservationStatus.CONFLICTED)


def test_the_admin_lists_conflicts_and_cancels_the_remote_event(
    binding, remote, make_user, client, sandbox, kind
):
    from tests.calendars.conftest import remote_events

    booked, conflict = _conflict(binding, remote, make_user)
    client.force_login(make_user(is_staff=True, is_superuser=True))
    url = "/admin/reservations/reservation/"
    page = client.get(url, {"conflicts": "yes"}).content.decode()
    assert f"#{booked.pk} " in page and "Clashes with" in page
    calendar = ROOMS[kind]
    assert len(remote_events(sandbox, kind, calendar)) == 2

    action = {"action": "cancel_remote_event", "_selected_action": [conflict.pk]}
    asked = client.post(url, action)  # a confirmation page first: nothing cancelled yet
    assert "Yes, cancel the remote events" in asked.content.decode()
    assert len(remote_events(sandbox, kind, calendar)) == 2
    response = client.post(url, {**action, "post": "yes"}, follow=True)
    assert response.status_code == 200
    conflict.refresh_from_db()
    assert conflict.status == ReservationStatus.CANCELLED
    (left,) = remote_events(sandbox, kind, calendar)
    assert left["id"] == booked.sync_link.external_id
    assert pull.pull_binding(binding.pk).cancelled == 0  # the deletion comes back: nothing
    booked.refresh_from_db()
    assert booked.status == ReservationStatus.CONFIRMED


def test_the_admin_retries_a_conflict_after_the_booking_moved(
    ms_binding, sandbox, make_user, client
):
    booked, conflict = _conflict(ms_binding, Remote(sandbox, "microsoft"), make_user)
    client.force_login(make_user(is_staff=True, is_superuser=True))
    url = "/admin/reservations/reservation/"
    client.post(url, {"action": "retry_conflict", "_selected_action": [conflict.pk]})
    conflict.refresh_from_db()
    assert conflict.status == ReservationStatus.CONFLICTED  # still taken
    services.change(
        actor=booked.requested_for,
        reservation=booked,
        start=booked.start + timedelta(hours=3),
        end=booked.end + timedelta(hours=3),
    )
    client.post(url, {"action": "retry_conflict", "_selected_action": [conflict.pk]})
    conflict.refresh_from_db()
    assert conflict.status == ReservationStatus.CONFIRMED
    assert conflict.sync_link.pushed_version == conflict.version


def test_a_good_pull_clears_a_transient_error(ms_binding):
    SpaceCalendar.objects.filter(pk=ms_binding.pk).update(
        status=BindingStatus.ERROR, last_error="Graph answered 503"
    )
    assert pull.pull_binding(ms_binding.pk).status == "succeeded"
    ms_binding.refresh_from_db()
    assert (ms_binding.status, ms_binding.last_error) == (BindingStatus.OK, "")
