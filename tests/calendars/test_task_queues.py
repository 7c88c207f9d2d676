"""Which queue each task is sent to: the ones that talk to calendar providers to ``sync``
(named on their decorators, read by ``config.celery.route``), the rest to the default queue."""

import pytest

from calendars import tasks
from config.celery import app

SYNC_TASKS = [
    tasks.push_reservation,
    tasks.check_room_response,
    tasks.resume_binding,
    tasks.resume_user,
    tasks.ensure_subscription,
    tasks.remove_subscriptions,
    tasks.renew_subscriptions,
    tasks.webhook_lifecycle,
    tasks.pull_binding,
    tasks.pull_due_bindings,
    tasks.reconcile_binding,
    tasks.reconcile_bindings,
]
DEFAULT_TASKS = [
    tasks.run_export,
    tasks.resume_stale_exports,
    tasks.check_user_tokens,
    tasks.reclaim_lost_pushes,
    tasks.retry_failed_pushes,
    tasks.prune_sync_jobs,
]


def queue_of(task) -> str:
    """The queue ``task.delay()`` would send to, as Celery's router works it out."""
    options = app.amqp.router.route({}, task.name, (), {}, task_type=task)
    return options["queue"].name


@pytest.mark.parametrize("task", SYNC_TASKS, ids=lambda t: t.name)
def test_provider_tasks_go_to_the_sync_queue(task):
    assert queue_of(task) == "sync"


@pytest.mark.parametrize("task", DEFAULT_TASKS, ids=lambda t: t.name)
def test_other_tasks_go_to_the_default_queue(task):
    assert queue_of(task) == "default"


def test_no_task_sets_celery_routing_attributes():
    """Routing options as task attributes are deprecated in Celery 5.7 (no effect in 6.0)."""
    for name, task in app.tasks.items():
        if name.startswith(("calendars.", "reservations.")):
            assert "queue" not in type(task).__dict__, name
