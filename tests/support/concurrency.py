"""``race``: one process per user booking a space, all released at once, for the
concurrency and buffer tests."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta

from tests.conftest import ROOT, local, next_weekday, subprocess_env

PROCESSES = 20


# One interpreter loads Django once and forks a racer per booking before anything has opened a
# database connection, so each racer opens its own, as separate processes do; it saves the
# racers an interpreter start and django.setup() each (about 0.6 s of CPU apiece, 20 of them a
# race). Each racer reads its space and person, says "ready" down its pipe, waits for the go
# file, books, and writes what happened; the parent prints "ready" once all are, then their
# outcomes as one JSON list, in order.
RACER = r"""
import json, os, sys, time, traceback
from datetime import datetime
import django
django.setup()
from django.contrib.auth import get_user_model
from django.db import IntegrityError, connections
from reservations import services
from reservations.models import Reservation, Space

jobs, go, mode = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
assert not any(c.connection for c in connections.all()), "a connection before the fork"


def run(space_pk, user_pk, start, end):
    space = Space.objects.get(pk=space_pk)
    user = get_user_model().objects.get(pk=user_pk)
    start, end = datetime.fromisoformat(start), datetime.fromisoformat(end)
    yield "ready"
    while not os.path.exists(go):
        if os.getppid() != parent:  # the race was called off (another racer failed)
            os._exit(2)
        time.sleep(0.005)
    try:
        if mode == "service":
            services.book(actor=user, space=space, start=start, end=end)
        else:  # straight to the table: no lock, no check; only the constraint stands in the way
            Reservation.objects.create(space=space, requested_for=user, start=start, end=end)
        yield "booked"
    except services.Conflict as exc:
        yield "conflict " + exc.message
    except IntegrityError as exc:
        yield "refused " + str(exc).splitlines()[0]


parent, racers = os.getpid(), []
for job in jobs:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the racer
        os.close(read)
        with os.fdopen(write, "w") as out:
            try:
                for line in run(*job):
                    out.write(line.replace("\n", " ") + "\n")
                    out.flush()
                code = 0
            except BaseException:
                out.write("error " + traceback.format_exc().replace("\n", " | ") + "\n")
                code = 1
        os._exit(code)
    os.close(write)
    racers.append((pid, os.fdopen(read)))
for _, pipe in racers:
    line = pipe.readline().strip()
    assert line == "ready", line
print("ready", flush=True)
outcomes = []
for pid, pipe in racers:
    outcomes.append(pipe.readline().strip())
    _, status = os.waitpid(pid, 0)
    assert status == 0, outcomes[-1]
print(json.dumps(outcomes), flush=True)
"""


def race(space, users, tmp_path, *, length: timedelta, mode: str = "service") -> list[str]:
    """One process per user books ``space`` for ``length``, each a minute after the previous,
    all released at once; what each printed ("booked", "conflict ...", "refused ...").
    ``mode`` "service" books through the booking service, "raw" writes the row directly."""
    base = local(space.location, next_weekday(1), 10)
    go = tmp_path / "go"
    jobs = []
    for i, user in enumerate(users):
        start = base + timedelta(minutes=i)
        jobs.append([space.pk, user.pk, start.isoformat(), (start + length).isoformat()])
    parent = subprocess.Popen(
        [sys.executable, "-c", RACER, json.dumps(jobs), str(go), mode],
        cwd=ROOT,
        env=subprocess_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # Wait until every racer has its rows and its connection, then start them together.
    assert parent.stdout.readline().strip() == "ready", parent.stderr.read()
    go.touch()
    out, err = parent.communicate(timeout=120)
    assert parent.returncode == 0, err
    return json.loads(out)
