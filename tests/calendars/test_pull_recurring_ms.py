"""Pull of a Microsoft recurring series, against the sandbox over real HTTPS: each occurrence
becomes its own reservation linked by its own id; an exception (an occurrence moved in
Outlook) moves that one reservation, a deleted occurrence cancels that one, a renamed master
renames the rest, a deleted master cancels them all; and, end to end, a series with one
exception reaches the reservations through a real Celery worker."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from calendars import tasks
from calendars.models import SpaceCalendar, SyncLink
from calendars.sync import pull
from reservations.models import Reservation, ReservationStatus, Source
from tests.calendars.conftest import MS_ROOM, control, sync_worker
from tests.conftest import local, next_weekday, wait_for
from tests.support.pull import Remote, at

EVENTS = f"microsoft/mailboxes/{MS_ROOM}/events"


def daily(start: datetime, count: int) -> dict:
    return {
        "pattern": {"type": "daily", "interval": 1},
        "range": {
            "type": "numbered",
            "startDate": start.date().isoformat(),
            "numberOfOccurrences": count,
        },
    }


def occurrences(sandbox, master_id: str) -> list[dict]:
    """The series' live occurrences and exceptions as the sandbox holds them, in order."""
    items = control(sandbox, "GET", EVENTS)["value"]
    return [e for e in items if e["seriesMasterId"] == master_id]


def rows(binding: SpaceCalendar) -> list[Reservation]:
    return list(
        Reservation.objects.filter(space=binding.space)
        .select_related("sync_link")
        .order_by("start", "pk")
    )


def test_a_series_with_an_exception_and_a_deleted_occurrence(ms_binding, sandbox):
    remote = Remote(sandbox, "microsoft")
    assert pull.pull_binding(ms_binding.pk).full  # the first pull reads the whole window
    start = at(0, 9)
    master = remote.create(
        "Team sync", start, start + timedelta(hours=1), recurrence=daily(start, 3)
    )
    first, second, third = occurrences(sandbox, master)

    created = pull.pull_binding(ms_binding.pk)
    assert (created.status, created.full, created.created) == ("succeeded", False, 3)
    made = rows(ms_binding)
    assert [(r.start, r.end) for r in made] == [
        (start + timedelta(days=n), start + timedelta(days=n, hours=1)) for n in range(3)
    ]
    assert {(r.title, r.status, r.source) for r in made} == {
        ("Team sync", ReservationStatus.CONFIRMED, Source.EXCHANGE)
    }
    # Each reservation is linked to its own occurrence, none to the master.
    assert [r.sync_link.external_id for r in made] == [first["id"], second["id"], third["id"]]
    assert not SyncLink.objects.filter(external_id=master).exists()
    ids = [r.pk for r in made]

    # In Outlook: the second occurrence moves to 14:00 (an exception), the third is deleted.
    remote.move(second["id"], at(1, 14), at(1, 15))
    remote.delete(third["id"])
    changed = pull.pull_binding(ms_binding.pk)
    assert (changed.created, changed.updated, changed.cancelled) == (0, 1, 1)
    after = {r.pk: r for r in rows(ms_binding)}
    assert sorted(after) == sorted(ids)  # nothing new, nothing duplicated
    one, two, three = (after[pk] for pk in ids)
    assert (one.start, one.status) == (start, ReservationStatus.CONFIRMED)
    assert (two.start, two.end, two.status) == (at(1, 14), at(1, 15), ReservationStatus.CONFIRMED)
    assert two.sync_link.external_id == second["id"]
    assert three.status == ReservationStatus.CANCELLED
    assert pull.pull_binding(ms_binding.pk).created == 0  # a quiet round changes nothing

    # The series is renamed: the remaining occurrence and the exception follow; the exception
    # keeps its own time.
    remote.rename(master, "Team sync (room 2)")
    renamed = pull.pull_binding(ms_binding.pk)
    assert (renamed.created, renamed.updated, renamed.cancelled) == (0, 2, 0)
    after = {r.pk: r for r in rows(ms_binding)}
    assert sorted(after) == sorted(ids)
    assert [after[pk].title for pk in ids[:2]] == ["Team sync (room 2)"] * 2
    assert after[ids[1]].start == at(1, 14)
    assert after[ids[2]].status == ReservationStatus.CANCELLED

    # The whole series is deleted: every reservation still standing is cancelled.
    remote.delete(master)
    gone = pull.pull_binding(ms_binding.pk)
    assert (gone.created, gone.cancelled) == (0, 2)
    assert {r.status for r in rows(ms_binding)} == {ReservationStatus.CANCELLED}


def test_a_full_resync_matches_occurrences_by_their_ids(ms_binding, sandbox):
    """An expired delta link means one full read: the series' occurrences are matched to
    their reservations by id, so nothing is created twice."""
    remote = Remote(sandbox, "microsoft")
    pull.pull_binding(ms_binding.pk)
    start = at(0, 9)
    master = remote.create(
        "Daily", start, start + timedelta(minutes=30), recurrence=daily(start, 3)
    )
    assert pull.pull_binding(ms_binding.pk).created == 3
    remote.move(occurrences(sandbox, master)[0]["id"], at(0, 7), at(0, 8))
    remote.expire_cursor()
    result = pull.pull_binding(ms_binding.pk)
    assert (result.full, result.created, result.updated) == (True, 0, 1)
    assert [r.start for r in rows(ms_binding)] == [at(0, 7), at(1, 9), at(2, 9)]


@pytest.mark.worker
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_series_with_an_exception_reaches_the_reservations_through_a_worker(ms_binding, sandbox):
    with sync_worker("test-rec"):
        start = local(ms_binding.space.location, next_weekday(1), 9).astimezone(UTC)
        remote = Remote(sandbox, "microsoft")
        master = remote.create(
            "Planning", start, start + timedelta(hours=1), recurrence=daily(start, 3)
        )
        first, second, third = occurrences(sandbox, master)
        moved = start + timedelta(days=1, hours=5)
        remote.move(second["id"], moved, moved + timedelta(hours=1))

        assert tasks.queue_due_pulls() == 1  # never pulled: due
        ready = wait_for(
            lambda: Reservation.objects.filter(space=ms_binding.space).count() == 3, 60
        )
        assert ready, "the worker did not bring the three occurrences within 60 s"
        made = rows(ms_binding)
        assert [r.start for r in made] == [start, moved, start + timedelta(days=2)]
        assert [r.sync_link.external_id for r in made] == [first["id"], second["id"], third["id"]]
        assert {r.title for r in made} == {"Planning"}
