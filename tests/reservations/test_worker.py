"""A real Celery worker process, over Redis, sends the booking email after commit."""

from __future__ import annotations

import subprocess
import sys
import uuid
from datetime import timedelta
from email import message_from_string

import pytest
from django.conf import settings

from reservations import services
from tests.conftest import ROOT, local, next_weekday, subprocess_env, wait_for


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_real_worker_sends_the_booking_email(make_user, make_space, tmp_path):
    from config.celery import app

    queue = f"test-{uuid.uuid4().hex[:8]}"  # nothing else consumes it, nothing stale in it
    mail_dir = tmp_path / "mail"
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "--pool=solo",
            "--loglevel=WARNING",
            "-Q",
            queue,
            "--without-heartbeat",
            "--without-mingle",
            "--without-gossip",
        ],
        cwd=ROOT,
        env=subprocess_env(
            REDIS_URL=settings.REDIS_URL, EMAIL_URL="filemail://", EMAIL_FILE_PATH=str(mail_dir)
        ),
        stdout=subprocess.DEVNULL,  # a pipe nobody reads blocks the worker once it is full
        stderr=subprocess.STDOUT,
        text=True,
    )
    app.conf.task_always_eager = False
    app.conf.task_default_queue = queue
    try:
        user, space = make_user("worker-test"), make_space(name="Worker room")
        start = local(space.location, next_weekday(1), 10)
        services.book(
            actor=user,
            space=space,
            start=start,
            end=start + timedelta(hours=1),
            title="Sent by a worker",
        )
        files = wait_for(lambda: list(mail_dir.glob("*.log")), timeout=60)
        assert files, "the worker sent no email within 60 s"
        message = message_from_string(files[0].read_text())
        assert message["To"] == "worker-test@example.com"
        assert message["Subject"].startswith("Booked: Worker room")
        assert "text/calendar" in files[0].read_text()
    finally:
        app.conf.task_default_queue = settings.CELERY_TASK_DEFAULT_QUEUE
        worker.terminate()
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()  # reaped: gone before the next test starts
