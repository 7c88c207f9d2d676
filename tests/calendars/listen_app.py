"""``manage.py ews_listen`` as the real-process tests run it: the same command, with the test
workers' routing (``worker_app.py``: the pulls it requests go to the test's private queue, never
to the shared ``sync`` queue). ``python -m tests.calendars.listen_app``."""

import django
from django.core.management import call_command

from tests.calendars import worker_app  # noqa: F401  (routes this process's tasks)

if __name__ == "__main__":
    django.setup()
    call_command("ews_listen")
