"""``race``: one process per user booking a space, all released at once, for the
concurrency and buffer tests."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta

from tests.conftest import ROOT, local, next_weekday, subprocess_env

PROCESSES = 20


RACER = """
import os, sys, time
from datetime import datetime
import django
django.setup()
from django.contrib.auth import get_user_model
from django.db import IntegrityError
from reservations import services
from reservations.models import Reservation, Space
space = Space.objects.get(pk=int(sys.argv[1]))
user = get_user_model().objects.get(pk=int(sys.argv[2]))
start = datetime.fromisoformat(sys.argv[3])
end = datetime.fromisoformat(sys.argv[4])
go, mode = sys.argv[5], sys.argv[6]
print("ready", flush=True)
while not os.path.exists(go):
    time.sleep(0.005)
try:
    if mode == "service":
        services.book(actor=user, space=space, start=start, end=end)
    else:  # straight to the table: no lock, no check; only the constraint stands in the way
        Reservation.objects.create(space=space, requested_for=user, start=start, end=end)
    print("booked", flush=True)
except services.Conflict as exc:
    print("conflict", exc.message, flush=True)
except IntegrityError as exc:
    print("refused", str(exc).splitlines()[0], flush=True)
"""


def race(space, users, tmp_path, *, length: timedelta, mode: str = "service") -> list[str]:
    """One process per user books ``space`` for ``length``, each a minute after the previous,
    all released at once; what each printed ("booked", "conflict ...", "refused ...").
    ``mode`` "service" books through the booking service, "raw" writes the row directly."""
    base = local(space.location, next_weekday(1), 10)
    go = tmp_path / "go"
    racers = []
    for i, user in enumerate(users):
        start = base + timedelta(minutes=i)
        argv = [str(space.pk), str(user.pk), start.isoformat(), (start + length).isoformat()]
        racers.append(
            subprocess.Popen(
                [sys.executable, "-c", RACER, *argv, str(go), mode],
                cwd=ROOT,
                env=subprocess_env(),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    for racer in racers:  # wait until all have Django loaded, then start them together
        assert racer.stdout.readline().strip() == "ready", racer.stderr.read()
    go.touch()
    outcomes = []
    for racer in racers:
        out, err = racer.communicate(timeout=120)
        assert racer.returncode == 0, err
        outcomes.append(out.strip())
    return outcomes
