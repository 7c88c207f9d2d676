"""Pull of a Google recurring series with exceptions, against the sandbox over real HTTPS
(Reserva reads ``singleEvents=true`` with a ``syncToken``): each occurrence becomes its own
reservation linked by its instance id; an instance moved in Google Calendar moves that one
reservation, a deleted instance cancels that one, and nothing is created twice, also across a
full resync or when the series is deleted after an exception; and, end to end, a series with
one exception reaches the reservations through a real Celery worker."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from calendars import tasks
from calendars.models import SpaceCalendar
from calendars.sync import pull
from reservations.models import Reservation, ReservationStatus, Source
from tests.calendars.conftest import GOOGLE_ROOM, control, sync_worker
from tests.conftest import wait_for
from tests.support.pull import Remote, at

EVENTS = f"google/calendars/{GOOGLE_ROOM}/events"


def utc(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def create_series(sandbox, summary: str, start: datetime, count: int) -> str:
    """A daily series of ``count`` half-hour occurrences, made as a person in Google Calendar
    (a recurring event must name its time zone)."""
    body = {
        "summary": summary,
        "start": {"dateTime": utc(start), "timeZone": "UTC"},
        "end": {"dateTime": utc(start + timedelta(minutes=30)), "timeZone": "UTC"},
        "recurrence": [f"RRULE:FREQ=DAILY;COUNT={count}"],
    }
    return control(sandbox, "POST", EVENTS, json=body)["id"]


def instance_id(series: str, original_start: datetime) -> str:
    """Google's id of one occurrence: the series id and the original start in UTC."""
    return f"{series}_{original_start.astimezone(UTC):%Y%m%dT%H%M%SZ}"


def rows(binding: SpaceCalendar) -> list[Reservation]:
    return list(
        Reservation.objects.filter(space=binding.space)
        .select_related("sync_link")
        .order_by("start", "pk")
    )


def test_moving_one_instance_and_deleting_another_changes_only_those(google_binding, sandbox):
    remote = Remote(sandbox, "google")
    start = at(0, 9)
    series = create_series(sandbox, "Stand-up", start, 3)
    days = [start + timedelta(days=n) for n in range(3)]
    ids = [instance_id(series, day) for day in days]

    first = pull.pull_binding(google_binding.pk)  # no cursor yet: a full read of the window
    assert (first.status, first.full, first.created) == ("succeeded", True, 3)
    made = rows(google_binding)
    assert [(r.start, r.end) for r in made] == [(d, d + timedelta(minutes=30)) for d in days]
    assert [r.sync_link.external_id for r in made] == ids
    assert {(r.source, r.title, r.status) for r in made} == {
        (Source.GOOGLE, "Stand-up", ReservationStatus.CONFIRMED)
    }
    before = {r.pk: (r.start, r.end, r.status, r.version) for r in made}

    moved_to = at(1, 14)
    remote.move(ids[1], moved_to, moved_to + timedelta(hours=1))  # "this event" only
    remote.delete(ids[2])

    result = pull.pull_binding(google_binding.pk)
    assert (result.status, result.full) == ("succeeded", False)
    assert (result.created, result.updated, result.cancelled, result.conflicts) == (0, 1, 1, 0)
    after = rows(google_binding)
    assert [r.pk for r in after] == [r.pk for r in made]  # the same three, none added
    unchanged, moved, cancelled = after
    assert (unchanged.start, unchanged.end, unchanged.status, unchanged.version) == before[
        unchanged.pk
    ]
    assert (moved.start, moved.end, moved.status) == (
        moved_to,
        moved_to + timedelta(hours=1),
        ReservationStatus.CONFIRMED,
    )
    assert moved.sync_link.external_id == ids[1]  # still linked by its instance id
    assert cancelled.status == ReservationStatus.CANCELLED
    assert cancelled.start == days[2] and cancelled.sync_link.external_id == ids[2]

    quiet = pull.pull_binding(google_binding.pk)
    assert (quiet.created, quiet.updated, quiet.cancelled, quiet.full) == (0, 0, 0, False)

    # A lost cursor: one full read, matched by instance id; nothing created or changed again.
    remote.expire_cursor()
    again = pull.pull_binding(google_binding.pk)
    assert (again.full, again.created, again.updated, again.cancelled) == (True, 0, 0, 0)
    assert [(r.pk, r.start, r.status) for r in rows(google_binding)] == [
        (r.pk, r.start, r.status) for r in after
    ]


def test_renaming_one_instance_renames_that_reservation_only(google_binding, sandbox):
    remote = Remote(sandbox, "google")
    start = at(0, 9)
    series = create_series(sandbox, "Stand-up", start, 3)
    pull.pull_binding(google_binding.pk)
    remote.rename(instance_id(series, start + timedelta(days=1)), "Retro")
    assert pull.pull_binding(google_binding.pk).updated == 1
    assert [r.title for r in rows(google_binding)] == ["Stand-up", "Retro", "Stand-up"]


def test_deleting_a_series_with_an_exception_cancels_every_occurrence(google_binding, sandbox):
    remote = Remote(sandbox, "google")
    start = at(0, 9)
    series = create_series(sandbox, "Stand-up", start, 3)
    pull.pull_binding(google_binding.pk)
    moved_to = at(1, 15)
    remote.move(
        instance_id(series, start + timedelta(days=1)), moved_to, moved_to + timedelta(hours=1)
    )
    assert pull.pull_binding(google_binding.pk).updated == 1

    remote.delete(series)
    result = pull.pull_binding(google_binding.pk)
    assert (result.created, result.cancelled) == (0, 3)
    after = rows(google_binding)
    assert len(after) == 3
    assert {r.status for r in after} == {ReservationStatus.CANCELLED}


@pytest.mark.worker
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_series_with_one_exception_reaches_the_reservations_through_a_worker(
    google_binding, sandbox
):
    remote = Remote(sandbox, "google")
    start = at(1, 9)
    series = create_series(sandbox, "Planning", start, 3)
    days = [start + timedelta(days=n) for n in range(3)]
    ids = [instance_id(series, day) for day in days]
    moved_to = at(2, 13)
    remote.move(ids[1], moved_to, moved_to + timedelta(minutes=30))  # the exception

    with sync_worker("test-grec"):
        assert tasks.queue_due_pulls() == 1  # never pulled: due
        made = wait_for(lambda: len(rows(google_binding)) == 3 and rows(google_binding), 60)
        assert made, "the worker did not pull the series within 60 s"
        assert [r.start for r in made] == [days[0], moved_to, days[2]]
        assert [r.sync_link.external_id for r in made] == ids
        assert {r.status for r in made} == {ReservationStatus.CONFIRMED}

        remote.delete(ids[2])
        SpaceCalendar.objects.filter(pk=google_binding.pk).update(next_pull_at=None)  # due again
        assert tasks.queue_due_pulls() == 1
        gone = wait_for(
            lambda: Reservation.objects.filter(
                pk=made[2].pk, status=ReservationStatus.CANCELLED
            ).exists(),
            60,
        )
        assert gone, "the deleted instance did not cancel its reservation"
        final = rows(google_binding)
        assert [(r.pk, r.start, r.status) for r in final] == [
            (made[0].pk, days[0], ReservationStatus.CONFIRMED),
            (made[1].pk, moved_to, ReservationStatus.CONFIRMED),
            (made[2].pk, days[2], ReservationStatus.CANCELLED),
        ]
