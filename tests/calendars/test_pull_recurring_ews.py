"""Pull of an Exchange Server recurring series, against the EWS sandbox over real HTTPS, as
Graph's (test_pull_recurring_ms.py): each occurrence becomes its own reservation linked by its
own id; an exception (an occurrence moved in Outlook) moves that one reservation, a deleted
occurrence cancels that one, a renamed master renames the rest, a deleted master cancels
them all. SyncFolderItems reports only the master, so the client reads its occurrences with
a CalendarView, and the pull learns of a deleted occurrence from the master's list."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from exchangelib import CalendarItem, EWSDateTime
from exchangelib.items import SEND_TO_NONE
from exchangelib.recurrence import DailyPattern, Recurrence

from calendars import remote, tasks
from calendars.models import SpaceCalendar, SyncLink
from calendars.sync import pull
from reservations.models import Reservation, ReservationStatus, Source
from tests.calendars.conftest import EWS_ROOM, sync_worker
from tests.conftest import local, next_weekday, wait_for
from tests.support.ews_sandbox import account
from tests.support.pull import Remote, at


def ews_time(value: datetime) -> EWSDateTime:
    return EWSDateTime.from_datetime(value.astimezone(UTC))


class Outlook:
    """The room's calendar edited over EWS, as Outlook would (the sync user impersonating
    the room, no invitations)."""

    def __init__(self, sandbox, binding: SpaceCalendar) -> None:
        # The binding's client installs the transport that trusts the sandbox's CA.
        remote.room_calendar(binding)
        self.room = account(sandbox, EWS_ROOM, "svc-reserva@contoso.test", impersonate=True)

    def series(self, subject: str, start: datetime, end: datetime, count: int) -> CalendarItem:
        master = CalendarItem(
            account=self.room,
            folder=self.room.calendar,
            subject=subject,
            start=ews_time(start),
            end=ews_time(end),
            recurrence=Recurrence(
                pattern=DailyPattern(interval=1), start=start.date(), number=count
            ),
        )
        master.save(send_meeting_invitations=SEND_TO_NONE)
        return master

    def occurrences(self, start: datetime, days: int = 7) -> list[CalendarItem]:
        view = self.room.calendar.view(
            start=ews_time(start - timedelta(days=1)), end=ews_time(start + timedelta(days=days))
        )
        return list(view)

    def move(self, occurrence: CalendarItem, start: datetime, end: datetime) -> None:
        occurrence.start, occurrence.end = ews_time(start), ews_time(end)
        occurrence.save(update_fields=["start", "end"])

    def rename(self, master: CalendarItem, subject: str) -> None:
        master.refresh()
        master.subject = subject
        master.save(update_fields=["subject"])


def rows(binding: SpaceCalendar) -> list[Reservation]:
    return list(
        Reservation.objects.filter(space=binding.space)
        .select_related("sync_link")
        .order_by("start", "pk")
    )


def test_a_series_with_an_exception_and_a_deleted_occurrence(ews_binding, sandbox):
    outlook = Outlook(sandbox, ews_binding)
    assert pull.pull_binding(ews_binding.pk).full  # the first pull reads the whole window
    start = at(0, 9)
    master = outlook.series("Team sync", start, start + timedelta(hours=1), 3)
    first, second, third = outlook.occurrences(start)

    created = pull.pull_binding(ews_binding.pk)
    assert (created.status, created.full, created.created) == ("succeeded", False, 3)
    made = rows(ews_binding)
    assert [(r.start, r.end) for r in made] == [
        (start + timedelta(days=n), start + timedelta(days=n, hours=1)) for n in range(3)
    ]
    assert {(r.title, r.status, r.source) for r in made} == {
        ("Team sync", ReservationStatus.CONFIRMED, Source.EXCHANGE)
    }
    # Each reservation is linked to its own occurrence, none to the master.
    assert [r.sync_link.external_id for r in made] == [first.id, second.id, third.id]
    assert not SyncLink.objects.filter(external_id=master.id).exists()
    ids = [r.pk for r in made]

    # In Outlook: the second occurrence moves to 14:00 (an exception), the third is deleted.
    outlook.move(second, at(1, 14), at(1, 15))
    third.delete()
    changed = pull.pull_binding(ews_binding.pk)
    assert (changed.created, changed.updated, changed.cancelled) == (0, 1, 1)
    after = {r.pk: r for r in rows(ews_binding)}
    assert sorted(after) == sorted(ids)  # nothing new, nothing duplicated
    one, two, three = (after[pk] for pk in ids)
    assert (one.start, one.status) == (start, ReservationStatus.CONFIRMED)
    assert (two.start, two.end, two.status) == (at(1, 14), at(1, 15), ReservationStatus.CONFIRMED)
    assert two.sync_link.external_id == second.id
    assert three.status == ReservationStatus.CANCELLED
    assert pull.pull_binding(ews_binding.pk).created == 0  # a quiet round changes nothing

    # The series is renamed: the remaining occurrence and the exception follow; the exception
    # keeps its own time.
    outlook.rename(master, "Team sync (room 2)")
    renamed = pull.pull_binding(ews_binding.pk)
    assert (renamed.created, renamed.updated, renamed.cancelled) == (0, 2, 0)
    after = {r.pk: r for r in rows(ews_binding)}
    assert sorted(after) == sorted(ids)
    assert [after[pk].title for pk in ids[:2]] == ["Team sync (room 2)"] * 2
    assert after[ids[1]].start == at(1, 14)
    assert after[ids[2]].status == ReservationStatus.CANCELLED

    # The whole series is deleted: every reservation still standing is cancelled.
    master.delete()
    gone = pull.pull_binding(ews_binding.pk)
    assert (gone.created, gone.cancelled) == (0, 2)
    assert {r.status for r in rows(ews_binding)} == {ReservationStatus.CANCELLED}


def test_a_full_resync_matches_occurrences_by_their_ids(ews_binding, sandbox):
    """A rejected sync state means one full read: the series' occurrences are matched to
    their reservations by id, so nothing is created twice."""
    outlook = Outlook(sandbox, ews_binding)
    pull.pull_binding(ews_binding.pk)
    start = at(0, 9)
    outlook.series("Daily", start, start + timedelta(minutes=30), 3)
    assert pull.pull_binding(ews_binding.pk).created == 3
    outlook.move(outlook.occurrences(start)[0], at(0, 7), at(0, 8))
    Remote(sandbox, "ews").expire_cursor()
    result = pull.pull_binding(ews_binding.pk)
    assert (result.full, result.created, result.updated) == (True, 0, 1)
    assert [r.start for r in rows(ews_binding)] == [at(0, 7), at(1, 9), at(2, 9)]


@pytest.mark.worker
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_series_with_an_exception_reaches_the_reservations_through_a_worker(ews_binding, sandbox):
    with sync_worker("test-rec-ews"):
        start = local(ews_binding.space.location, next_weekday(1), 9).astimezone(UTC)
        outlook = Outlook(sandbox, ews_binding)
        outlook.series("Planning", start, start + timedelta(hours=1), 3)
        first, second, third = outlook.occurrences(start)
        moved = start + timedelta(days=1, hours=5)
        outlook.move(second, moved, moved + timedelta(hours=1))

        assert tasks.queue_due_pulls() == 1  # never pulled: due
        ready = wait_for(
            lambda: Reservation.objects.filter(space=ews_binding.space).count() == 3, 60
        )
        assert ready, "the worker did not bring the three occurrences within 60 s"
        made = rows(ews_binding)
        assert [r.start for r in made] == [start, moved, start + timedelta(days=2)]
        assert [r.sync_link.external_id for r in made] == [first.id, second.id, third.id]
        assert {r.title for r in made} == {"Planning"}
