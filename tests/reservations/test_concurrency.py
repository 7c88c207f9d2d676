"""Twenty separate processes race for one space: exactly one wins, on SQLite and PostgreSQL.
On PostgreSQL the exclusion constraint also refuses an overlapping row written without the
service."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import IntegrityError, connection, transaction

from reservations import services
from reservations.models import Reservation, Source
from tests.conftest import wait_for
from tests.support.concurrency import PROCESSES, race


@pytest.mark.django_db(transaction=True)
def test_twenty_processes_booking_overlapping_slots_exactly_one_wins(
    make_user, make_space, tmp_path
):
    space = make_space(name="Contested")
    users = [make_user() for _ in range(PROCESSES)]
    outcomes = race(space, users, tmp_path, length=timedelta(hours=1))  # all overlap
    assert sum(o == "booked" for o in outcomes) == 1, outcomes
    conflicts = [o for o in outcomes if o.startswith("conflict")]
    assert len(conflicts) == PROCESSES - 1
    assert all(
        "Contested is already booked" in o or "taken a moment ago" in o for o in conflicts
    ), conflicts
    assert Reservation.objects.filter(space=space).count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_postgres_exclusion_constraint_refuses_overlap_written_without_the_service(
    make_reservation, make_user
):
    existing = make_reservation()
    with pytest.raises(IntegrityError, match="reservation_no_overlap"), transaction.atomic():
        Reservation.objects.create(
            space=existing.space,
            requested_for=make_user(),
            start=existing.start + timedelta(minutes=30),
            end=existing.end + timedelta(minutes=30),
        )
    # A cancelled row may overlap: only pending and confirmed hold the slot.
    Reservation.objects.create(
        space=existing.space, start=existing.start, end=existing.end, status="cancelled"
    )
    assert Reservation.objects.filter(space=existing.space).count() == 2


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_portal_change_and_a_pull_writing_one_space_wait_instead_of_deadlocking(
    make_reservation, make_user
):
    """A pull applies several remote changes of one room in one transaction (a cancel, then a
    move); meanwhile someone edits one of those bookings in the portal. Every write locks the
    space before its reservations, so the portal's change waits for the pull rather than hold
    the reservation the pull needs next (PostgreSQL then aborted one of the two: a deadlock,
    found by the convergence run)."""
    owner = make_user()
    first = make_reservation(user=owner)
    second = make_reservation(space=first.space, start=first.start + timedelta(hours=2))
    outcome: list[str] = []

    def portal() -> None:
        try:
            services.change(actor=owner, reservation=first, title="Edited in the portal")
            outcome.append("changed")
        except Exception as exc:  # reported in the assertions below
            outcome.append(repr(exc))
        finally:
            connection.close()

    def waiting_on_a_lock() -> bool:
        with connection.cursor() as cursor:
            # pg_locks, not pg_stat_activity: the latter is a snapshot within a transaction.
            cursor.execute("SELECT count(*) FROM pg_locks WHERE NOT granted")
            return cursor.fetchone()[0] > 0

    thread = threading.Thread(target=portal)
    with transaction.atomic():  # the pull's transaction
        services.cancel(actor=None, reservation=second, source=Source.EXCHANGE)
        thread.start()
        assert wait_for(waiting_on_a_lock, 10), f"the portal did not wait for the pull: {outcome}"
        later = first.start + timedelta(hours=4)
        services.change(
            actor=None, reservation=first, start=later, end=later + timedelta(hours=1),
            source=Source.EXCHANGE,
        )  # fmt: skip
    thread.join(timeout=30)
    assert outcome == ["changed"]
    first.refresh_from_db()
    assert (first.start, first.title, first.version) == (later, "Edited in the portal", 3)
