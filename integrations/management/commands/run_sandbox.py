"""``python manage.py run_sandbox [--port] [--state-dir] [--config]``: the provider sandbox.

A thin wrapper around ``integrations.sandbox.__main__`` so the sandbox starts the same way
with or without Django; the sandbox itself imports nothing from Reserva.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from integrations.sandbox.__main__ import add_arguments, serve


class Command(BaseCommand):
    help = "Run the local HTTPS emulator of Microsoft Graph / identity and Google Calendar."

    def add_arguments(self, parser: CommandParser) -> None:
        add_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
        serve(options["port"], options["state_dir"], options["config"], out=self.stdout)
