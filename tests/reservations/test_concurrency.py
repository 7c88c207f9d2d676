"""Twenty separate processes race for one space: exactly one wins, on SQLite and PostgreSQL.
On PostgreSQL the exclusion constraint also refuses an overlapping row written without the
service."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction

from reservations.models import Reservation
from tests.conftest import ROOT, local, next_weekday, subprocess_env

PROCESSES = 20

RACER = """
import os, sys, time
from datetime import datetime
import django
django.setup()
from django.contrib.auth import get_user_model
from reservations import services
from reservations.models import Space
space = Space.objects.get(pk=int(sys.argv[1]))
user = get_user_model().objects.get(pk=int(sys.argv[2]))
start = datetime.fromisoformat(sys.argv[3])
end = datetime.fromisoformat(sys.argv[4])
go = sys.argv[5]
print("ready", flush=True)
while not os.path.exists(go):
    time.sleep(0.005)
try:
    services.book(actor=user, space=space, start=start, end=end)
    print("booked", flush=True)
except services.Conflict as exc:
    print("conflict", exc.message, flush=True)
"""


@pytest.mark.django_db(transaction=True)
def test_twenty_processes_booking_overlapping_slots_exactly_one_wins(
    make_user, make_space, tmp_path
):
    space = make_space(name="Contested")
    users = [make_user() for _ in range(PROCESSES)]
    base = local(space.location, next_weekday(1), 10)
    go = tmp_path / "go"
    racers = []
    for i, user in enumerate(users):
        start = base + timedelta(minutes=i)  # every slot overlaps every other
        racers.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    RACER,
                    str(space.pk),
                    str(user.pk),
                    start.isoformat(),
                    (start + timedelta(hours=1)).isoformat(),
                    str(go),
                ],
                cwd=ROOT,
                env=subprocess_env(),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    for racer in racers:  # wait until all 20 have Django loaded, then start them together
        assert racer.stdout.readline().strip() == "ready", racer.stderr.read()
    go.touch()
    outcomes = []
    for racer in racers:
        out, err = racer.communicate(timeout=120)
        assert racer.returncode == 0, err
        outcomes.append(out.strip())
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
