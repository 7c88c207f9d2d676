"""The Celery app. Tasks live in each app's ``tasks.py`` and are found by autodiscovery."""

import os
from pathlib import Path
from typing import Any

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("reserva")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def route(name: str, args: Any, kwargs: Any, options: dict, task: Any = None, **_: Any) -> Any:
    """A task's queue is the one its decorator names: ``@shared_task(queue_name="sync")``;
    a task that names none goes to ``CELERY_TASK_DEFAULT_QUEUE``.

    A router (Celery's ``task_routes``) rather than the decorator's own ``queue`` option:
    Celery 5.7 warns that routing options set as task attributes are deprecated and will have
    no effect in 6.0 (celery/celery#8396, #10453), and names that settings would have to spell
    out again fall out of step with the code."""
    queue = getattr(task, "queue_name", None)
    return {"queue": queue} if queue else None


app.conf.task_routes = (route,)


@app.on_after_configure.connect
def make_broker_folders(sender: Celery, **kwargs) -> None:
    """The embedded filesystem broker's folders (``settings.py``, no ``REDIS_URL``), made when
    Celery first reads its settings in a process that will send or take tasks; kombu does not
    make the queue folder itself."""
    options = sender.conf.broker_transport_options or {}
    for key in ("data_folder_in", "data_folder_out", "control_folder"):
        if options.get(key):
            Path(options[key]).mkdir(parents=True, exist_ok=True)
