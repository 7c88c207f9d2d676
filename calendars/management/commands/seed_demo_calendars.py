"""``manage.py seed_demo_calendars``: bind demo spaces to the provider sandbox (idempotent).

``seed_demo`` runs it after the demo locations and users exist; ``make run`` passes the ports
it starts the portal and the sandbox on. See ``calendars.demo``.

The demo week was booked before its spaces were bound, so nothing pushed it: each bound space
gets one bulk export of its future bookings, queued for the worker ``make run`` starts (none
when one is already queued or running). The sandbox keeps its calendars in memory, so on a
second ``make run`` it starts empty: what Reserva recorded about the previous one is
forgotten first (``calendars.demo.forget_previous_sandbox``) and the bookings sent again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser

from calendars.bindings import queue_export
from calendars.demo import forget_previous_sandbox, wire_sandbox
from calendars.endpoints import refusal
from calendars.sync.export import running_export


class Command(BaseCommand):
    help = "Create calendar providers pointing at the local sandbox and bind demo spaces."

    def add_arguments(self, parser: CommandParser) -> None:
        add_sandbox_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        base_url = f"https://127.0.0.1:{options['sandbox_port']}"
        state_dir = Path(options["sandbox_state_dir"])
        if not state_dir.is_absolute():
            state_dir = Path(settings.BASE_DIR) / state_dir
        port = options["portal_port"]
        portal_urls = [f"http://127.0.0.1:{port}", f"http://localhost:{port}"]
        admin = get_user_model().objects.filter(username="admin").first()
        forget_previous_sandbox()  # make run starts the sandbox empty: send it everything again
        wiring = wire_sandbox(
            base_url=base_url, state_dir=state_dir, portal_urls=portal_urls, admin=admin
        )
        for binding in wiring.bindings:
            queue_export(binding.pk, admin)  # one per binding: none if saving it queued one
        exports = [b for b in wiring.bindings if running_export(b) is not None]
        if options["verbosity"]:
            self.stdout.write(
                f"Calendar sandbox wiring: {len(wiring.providers)} providers at {base_url}, "
                f"{len(wiring.bindings)} spaces bound; run_sandbox --config {wiring.config_file}"
            )
            if exports:
                self.stdout.write(
                    f"{len(exports)} bulk export(s) of the demo week queued: the worker sends "
                    "them to the sandbox rooms."
                )
        if refusal(base_url):
            # make run allows it; anyone else who seeds the demo is told what to add.
            self.stderr.write(
                f"PROVIDER_ENDPOINT_ALLOWLIST does not name the sandbox: nothing reaches it "
                f"until {base_url} is added there (make run adds it)."
            )


def add_sandbox_arguments(parser: CommandParser) -> None:
    """The options ``seed_demo`` shares with this command (defaults match ``make run``)."""
    parser.add_argument("--sandbox-port", type=int, default=8443)
    parser.add_argument(
        "--sandbox-state-dir",
        default="var/sandbox",
        help="run_sandbox's --state-dir (relative to the project); its CA and keys live there.",
    )
    parser.add_argument(
        "--portal-port", type=int, default=8000, help="The port the portal runs on (redirect URIs)."
    )
