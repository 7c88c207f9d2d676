"""What a pull of many changed events costs in database queries (issue 18: at most 5 per
changed event), and that the batch writes of the booking service it uses
(``reservations.batch``) answer what one call of ``services`` after another would.

Query counts are deterministic, so they are measured here (never times). The count includes
what runs after the commit (the signals' receivers, and the pushes they would queue, which
run in this process: Celery is eager in the tests), as ``bench/pull.py`` counts it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from calendars.models import LinkState, SyncJob, SyncLink
from calendars.sync import pull
from reservations import batch, services
from reservations.models import Closure, Reservation, ReservationStatus, Source
from tests.support.pull import Remote, at

PER_EVENT = 5  # the budget per changed event
CONSTANT = 40  # lock, cursor, plan reads, the batch's few statements, the job row
N = 20  # events of each kind in the measured pull


@pytest.fixture
def binding(db, kind, request):
    return request.getfixturevalue("ms_binding" if kind == "microsoft" else "google_binding")


def test_a_pull_of_many_changes_stays_within_its_query_budget(
    binding, sandbox, kind, django_capture_on_commit_callbacks
):
    remote = Remote(sandbox, kind)
    pull.pull_binding(binding.pk)  # the first, full read: the cursor
    kept = []
    for n in range(2 * N):
        start = at(0, 0) + timedelta(minutes=30 * n)
        kept.append(remote.create(f"Kept {n}", start, start + timedelta(minutes=30)))
    with django_capture_on_commit_callbacks(execute=True):
        assert pull.pull_binding(binding.pk).created == 2 * N
    moving, deleting = kept[:N], kept[N:]
    for n, event_id in enumerate(moving):
        start = at(2, 0) + timedelta(minutes=30 * n)
        remote.move(event_id, start, start + timedelta(minutes=30))
    for event_id in deleting:
        remote.delete(event_id)
    for n in range(N):
        start = at(4, 0) + timedelta(minutes=30 * n)
        remote.create(f"New {n}", start, start + timedelta(minutes=30))

    with (
        CaptureQueriesContext(connection) as queries,
        django_capture_on_commit_callbacks(execute=True),
    ):
        result = pull.pull_binding(binding.pk)

    assert (result.created, result.updated, result.cancelled, result.conflicts) == (N, N, N, 0)
    changed = 3 * N
    assert len(queries) <= PER_EVENT * changed + CONSTANT, (
        f"{len(queries)} queries for {changed} changed events "
        f"({len(queries) / changed:.1f} each; the budget is {PER_EVENT} + {CONSTANT} in all)"
    )
    # And the pull did what it says: the rows moved, cancelled and made, their links in step
    # (so no push was owed, and none ran for them).
    rows = Reservation.objects.filter(space=binding.space)
    moved = rows.filter(title__startswith="Kept", status=ReservationStatus.CONFIRMED)
    assert sorted(r.start for r in moved) == [
        at(2, 0) + timedelta(minutes=30 * n) for n in range(N)
    ]
    assert rows.filter(title__startswith="Kept", status=ReservationStatus.CANCELLED).count() == N
    assert rows.filter(title__startswith="New", status=ReservationStatus.CONFIRMED).count() == N
    for row in rows.select_related("sync_link"):
        assert row.sync_link.pushed_version == row.version
        assert row.sync_link.state == (
            LinkState.REMOVED if row.status == ReservationStatus.CANCELLED else LinkState.SYNCED
        )
    assert not SyncJob.objects.filter(kind="push").exists()
    history = Reservation.history.filter(space_id=binding.space_id)
    assert history.count() == 2 * N + N + N + N  # made, then moved, cancelled, made
    assert set(history.values_list("change_source", flat=True)) == {
        Source.EXCHANGE if kind == "microsoft" else Source.GOOGLE
    }
    assert SyncLink.objects.filter(binding=binding).count() == 3 * N


# -- the batch writes answer what one service call after another would ----------------------


def test_batch_booking_refuses_as_book_would(make_space, make_reservation):
    space = make_space(cleanup_minutes=15)
    start = at(0, 10)
    taken = make_reservation(space, start=start, minutes=60)
    Closure.objects.create(
        location=space.location, space=space, start_date=at(1, 0).date(),
        end_date=at(1, 0).date(), reason="Painting",
    )  # fmt: skip
    items = [
        batch.NewBooking(start + timedelta(minutes=30), start + timedelta(minutes=90)),  # taken
        batch.NewBooking(start + timedelta(hours=1), start + timedelta(hours=2)),  # its cleanup
        batch.NewBooking(start + timedelta(hours=3), start + timedelta(hours=4), "Free"),
        batch.NewBooking(start + timedelta(hours=3, minutes=30), start + timedelta(hours=5)),
        batch.NewBooking(at(1, 10), at(1, 11)),  # closed
        batch.NewBooking(start + timedelta(hours=6), start + timedelta(hours=5)),  # backwards
    ]
    expected = {}
    for n in (0, 1, 4, 5):  # what services.book answers each, one call at a time
        with pytest.raises(services.BookingError) as refused:
            services.book(
                actor=None, space=space, start=items[n].start, end=items[n].end,
                source=Source.GOOGLE,
            )  # fmt: skip
        expected[n] = refused.value

    outcomes = batch.book_remote(space, items, source=Source.GOOGLE)

    for n, error in expected.items():
        assert (type(outcomes[n]), outcomes[n].message) == (type(error), error.message), n
    assert [c.reservation_id for c in outcomes[0].clashes] == [taken.pk]
    assert isinstance(outcomes[4], services.Closed)
    row = outcomes[2]
    assert isinstance(row, Reservation) and row.title == "Free"
    # The one after it sees it, as a second call of services.book would.
    assert [c.reservation_id for c in outcomes[3].clashes] == [row.pk]
    row.refresh_from_db()
    assert (row.status, row.source, row.buffered_end) == (
        ReservationStatus.CONFIRMED, Source.GOOGLE, row.end + timedelta(minutes=15),
    )  # fmt: skip
    assert row.history.get().change_source == Source.GOOGLE


def test_batch_moves_see_the_moves_before_them(make_space):
    space = make_space()
    first, second = (
        services.book(actor=None, space=space, start=at(0, h), end=at(0, h + 1),
                      source=Source.EXCHANGE).reservations[0]
        for h in (9, 10)
    )  # fmt: skip
    # The second moves away first, then the first takes its old slot; then a third move onto
    # the first's new slot is refused, naming it.
    outcomes = batch.change_remote(
        space,
        [
            batch.Move(second, at(0, 14), at(0, 15)),
            batch.Move(first, at(0, 10), at(0, 11), title="Moved"),
            batch.Move(second, at(0, 10), at(0, 11)),
        ],
        source=Source.EXCHANGE,
    )
    assert isinstance(outcomes[0], Reservation) and isinstance(outcomes[1], Reservation)
    assert isinstance(outcomes[2], services.Conflict)
    assert [c.reservation_id for c in outcomes[2].clashes] == [first.pk]
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.start, first.title, first.version) == (at(0, 10), "Moved", 2)
    assert (second.start, second.version) == (at(0, 14), 2)


def test_batch_cancel_refuses_what_no_longer_holds_its_slot(make_space):
    space = make_space()
    row = services.book(
        actor=None, space=space, start=at(0, 9), end=at(0, 10), source=Source.EXCHANGE
    ).reservations[0]
    other = services.book(
        actor=None, space=space, start=at(0, 11), end=at(0, 12), source=Source.EXCHANGE
    ).reservations[0]
    services.cancel(actor=None, reservation=other, source=Source.EXCHANGE)
    outcomes = batch.cancel_remote(
        space, [row, other], source=Source.EXCHANGE, reasons=["Deleted (Outlook).", "Again."]
    )
    assert isinstance(outcomes[0], Reservation)
    assert isinstance(outcomes[1], services.BookingError)
    assert "cancelled" in outcomes[1].message.lower()
    row.refresh_from_db()
    assert (row.status, row.cancel_reason, row.version) == (
        ReservationStatus.CANCELLED, "Deleted (Outlook).", 2,
    )  # fmt: skip
    latest = row.history.latest()
    assert (latest.history_change_reason, latest.change_source) == (
        "Deleted (Outlook).", Source.EXCHANGE,
    )  # fmt: skip


# -- the re-read under the lock decides a race ------------------------------------------------


def test_a_slot_taken_after_the_plan_is_seen_by_the_batch(
    binding, sandbox, kind, make_user, monkeypatch
):
    """The plan is made from what was read before the lock; a booking made in the portal
    between that read and the pull's lock takes the slot first. The batch re-reads the room's
    bookings under the lock, so the remote event becomes conflicted (never a double booking),
    and an event moved onto the taken slot is kept as conflicted too."""
    remote = Remote(sandbox, kind)
    pull.pull_binding(binding.pk)
    moving = remote.create("Moving", at(0, 8), at(0, 9))
    assert pull.pull_binding(binding.pk).created == 1
    remote.create("Walk-in", at(0, 10), at(0, 11))
    remote.move(moving, at(0, 12), at(0, 13))
    person = make_user()
    planned = pull.apply.plan_pull
    portal: list[Reservation] = []

    def plan_then_portal_books(*args, **kwargs):
        plan = planned(*args, **kwargs)
        assert [c.event.subject for c in plan.create] == ["Walk-in"] and len(plan.update) == 1
        for start, end in ((at(0, 10), at(0, 11)), (at(0, 12), at(0, 13))):
            portal.extend(
                services.book(
                    actor=person, space=binding.space, start=start, end=end, title="Portal"
                ).reservations
            )
        return plan

    monkeypatch.setattr(pull.apply, "plan_pull", plan_then_portal_books)
    result = pull.pull_binding(binding.pk)

    assert (result.created, result.updated, result.conflicts) == (0, 0, 2)
    holders = Reservation.objects.filter(
        space=binding.space, status__in=[ReservationStatus.CONFIRMED, ReservationStatus.PENDING]
    )
    assert sorted(r.pk for r in holders) == sorted(r.pk for r in portal)
    conflicted = Reservation.objects.filter(
        space=binding.space, status=ReservationStatus.CONFLICTED
    ).order_by("start")
    assert [(r.title, r.start) for r in conflicted] == [
        ("Walk-in", at(0, 10)), ("Moving", at(0, 12)),
    ]  # fmt: skip
