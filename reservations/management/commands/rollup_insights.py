"""``manage.py rollup_insights --from 2026-01-01 --to 2026-03-31 [--location NAME]``: rebuild
the Insights rollup (``SpaceDayStats``) for a period, e.g. after importing old bookings or
changing opening hours. Idempotent: each day of each location is deleted and inserted again
in one transaction. Without dates: yesterday and today, as the beat task does."""

from __future__ import annotations

from datetime import date, timedelta

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from reservations.insights import rollup
from reservations.models import Location

MAX_DAYS = 3660  # ten years: a typo in a year should not start a rebuild of centuries


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise CommandError(f"{value!r} is not a date (YYYY-MM-DD).") from exc


class Command(BaseCommand):
    help = "Rebuild the occupancy insights rollup for a period (idempotent)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--from", dest="first", help="First day, YYYY-MM-DD (local).")
        parser.add_argument("--to", dest="last", help="Last day included, YYYY-MM-DD.")
        parser.add_argument("--location", help="Only this location (its name).")

    def handle(self, *args, **options) -> None:
        locations = Location.objects.prefetch_related("opening_hours")
        if options["location"]:
            locations = locations.filter(name=options["location"])
            if not locations.exists():
                raise CommandError(f"No location is named {options['location']!r}.")
        if not options["first"] and not options["last"]:
            written = 0
            for location in locations:
                today = timezone.now().astimezone(location.zone).date()
                written += rollup.rebuild(today - timedelta(days=1), today, [location])
            self.stdout.write(f"Rolled up yesterday and today: {written} rows.")
            return
        if not options["first"] or not options["last"]:
            raise CommandError("Give both --from and --to (or neither: yesterday and today).")
        first, last = _date(options["first"]), _date(options["last"])
        if last < first:
            raise CommandError("--to is before --from.")
        if (last - first).days >= MAX_DAYS:
            raise CommandError(f"At most {MAX_DAYS} days at a time.")
        written = rollup.rebuild(first, last, locations)
        self.stdout.write(f"Rolled up {first} to {last}: {written} rows.")
