"""The Celery app of the test workers (``sync_worker`` in conftest.py): every task the worker
sends itself (a push's room check, a resume's pushes, an email) goes to its private queue,
like the tasks the test process sends, never to the shared ``sync`` / ``default`` queues."""

import os

from django.conf import settings

from config.celery import app

queue = os.environ["RESERVA_TEST_QUEUE"]
app.conf.task_default_queue = queue
app.conf.task_routes = {name: {"queue": queue} for name in settings.CELERY_TASK_ROUTES}

__all__ = ["app"]
