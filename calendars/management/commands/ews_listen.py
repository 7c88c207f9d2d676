"""``manage.py ews_listen``: keep Exchange Server notification streams open and turn each
change into a pull request (``calendars/streams.py``). Run one or more, beside the Celery
workers; SIGTERM or Ctrl+C stops it, a kill -9 only delays its rooms until its locks expire."""

from __future__ import annotations

import signal
import threading
from typing import Any

from django.core.management.base import BaseCommand

from calendars.streams import Listener


class Command(BaseCommand):
    help = (
        "Listen to Exchange Server (EWS) streaming notifications and request a pull of each "
        "room that changed. Run one or more; they share the rooms through locks."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        stop = threading.Event()

        def ask_to_stop(signum: int, frame: Any) -> None:
            stop.set()

        signal.signal(signal.SIGTERM, ask_to_stop)
        signal.signal(signal.SIGINT, ask_to_stop)
        self.stdout.write("Listening to Exchange Server notifications (Ctrl+C to stop).")
        Listener(stop).run()
        self.stdout.write("Stopped.")
