"""The Celery app of the test workers (``sync_worker`` in conftest.py): every task the worker
sends itself (a push's room check, a resume's pushes, an email) goes to its private queue,
like the tasks the test process sends, never to the shared ``sync`` / ``default`` queues.

With ``RESERVA_TEST_BUSY_DIR`` set, the process names the task it is running in
``<dir>/<pid>`` (removed when the task ends), so a test can SIGKILL it mid-task; SIGUSR1
writes every thread's stack to its output first (where the task was when it was killed)."""

import faulthandler
import os
import signal
from pathlib import Path

from celery.signals import task_postrun, task_prerun

from config.celery import app

queue = os.environ["RESERVA_TEST_QUEUE"]
app.conf.task_default_queue = queue
app.conf.task_routes = {"*": {"queue": queue}}  # instead of the queues tasks name

BUSY_DIR = os.environ.get("RESERVA_TEST_BUSY_DIR")
if BUSY_DIR:
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    # Imported now, not by the first task: on a loaded machine msal's and Google's imports
    # take seconds, and the run's operations would be over before the first push.
    import integrations.google.client
    import integrations.microsoft.client  # noqa: F401


@task_prerun.connect
def _busy(task_id=None, task=None, args=None, **_) -> None:
    if BUSY_DIR:
        Path(BUSY_DIR, str(os.getpid())).write_text(f"{task.name}{list(args or ())}[{task_id}]")


@task_postrun.connect
def _idle(**_) -> None:
    if BUSY_DIR:
        Path(BUSY_DIR, str(os.getpid())).unlink(missing_ok=True)


__all__ = ["app"]
