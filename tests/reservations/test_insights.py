"""The Insights rollup (``reservations.insights.rollup``): its rows equal a hand count of a
small office (booked minutes per hour, a closure, check-ins and no-shows, sources, lead
times), a rebuild gives the same rows, the beat task and the command fill it, and the page's
number of queries does not grow with the number of spaces or days."""

from __future__ import annotations

import io
import itertools
from datetime import date, datetime, timedelta
from datetime import time as clock
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from reservations import services, tasks
from reservations.insights import report, rollup
from reservations.models import HOUR_FIELDS, Space, SpaceDaySource, SpaceDayStats
from tests.reservations.insights_data import D1, D2, EXPECTED, build

pytestmark = pytest.mark.django_db


@pytest.fixture
def office(make_location, make_space, make_user):
    return build(make_location, make_space, make_user)


def snapshot() -> list[tuple]:
    """Every rollup row and its sources, without ids (a rebuild makes new ones)."""
    fields = [f.name for f in SpaceDayStats._meta.concrete_fields if f.name not in ("id", "space")]
    rows = []
    for row in SpaceDayStats.objects.select_related("space").order_by("space__name", "day"):
        sources = sorted(row.sources.values_list("source", "bookings"))
        rows.append((row.space.name, *[getattr(row, f) for f in fields], tuple(sources)))
    return rows


def test_the_rollup_equals_the_hand_count(office):
    written = rollup.rebuild(D1, D2, [office.location])
    assert written == 6  # three spaces, two days
    spaces = office.by_name()
    for (name, day), expected in EXPECTED.items():
        row = SpaceDayStats.objects.get(space=spaces[name], day=day)
        for field, value in expected.items():
            if field == "hours":
                by_hour = {h: getattr(row, f) for h, f in enumerate(HOUR_FIELDS) if getattr(row, f)}
                assert by_hour == value, (name, day)
            elif field == "sources":
                assert dict(row.sources.values_list("source", "bookings")) == value, (name, day)
            else:
                assert getattr(row, field) == value, (name, day, field)
        assert row.weekday == day.weekday()


def test_a_rebuild_gives_the_same_rows(office):
    rollup.rebuild(D1, D2)
    first = snapshot()
    rollup.rebuild(D1, D2)
    call_command("rollup_insights", "--from", str(D1), "--to", str(D2), stdout=io.StringIO())
    assert snapshot() == first
    assert SpaceDayStats.objects.count() == 6 + 2  # and Paris's room on both days
    assert SpaceDaySource.objects.filter(stats__space=office.p).count() == 1


def test_a_rebuild_follows_a_change_of_the_bookings(office):
    rollup.rebuild(D1, D1, [office.location])
    office.c.reservations.update(status="cancelled")  # e.g. a cancellation pulled late
    rollup.rebuild(D1, D1, [office.location])
    row = SpaceDayStats.objects.get(space=office.c, day=D1)
    assert (row.bookings, row.booked_minutes, row.available_minutes) == (0, 0, 600)
    assert not row.sources.exists()


def test_the_command_checks_its_dates():
    with pytest.raises(CommandError, match="not a date"):
        call_command("rollup_insights", "--from", "2026-02-30", "--to", "2026-03-01")
    with pytest.raises(CommandError, match="before"):
        call_command("rollup_insights", "--from", "2026-03-02", "--to", "2026-03-01")
    with pytest.raises(CommandError, match="both"):
        call_command("rollup_insights", "--from", "2026-03-02")
    with pytest.raises(CommandError, match="No location"):
        call_command("rollup_insights", "--location", "Atlantis")


def test_the_beat_task_rolls_up_yesterday_and_today(make_location, make_space, make_user):
    assert (
        settings.CELERY_BEAT_SCHEDULE["rollup-insights"]["task"] == "reservations.rollup_insights"
    )
    location = make_location("Tokyo", time_zone="Asia/Tokyo")
    room = make_space(location)
    today = datetime.now(location.zone).date()
    start = datetime.combine(today, clock(0, 30), tzinfo=location.zone)
    services.book(
        actor=make_user(), space=room, start=start, end=start + timedelta(minutes=30),
        now=start - timedelta(hours=1),
    )  # fmt: skip
    assert tasks.rollup_insights.delay().get() == 2  # one space, yesterday and today
    rows = dict(SpaceDayStats.objects.filter(space=room).values_list("day", "bookings"))
    assert rows == {today - timedelta(days=1): 0, today: 1}


def test_the_hours_of_a_day_when_clocks_change():
    zone = ZoneInfo("Europe/London")
    spring = rollup.hour_bounds(date(2026, 3, 29), zone)  # 01:00 -> 02:00 skipped
    autumn = rollup.hour_bounds(date(2026, 10, 25), zone)  # 01:00 twice
    assert (spring[24] - spring[0]) == timedelta(hours=23)
    assert (autumn[24] - autumn[0]) == timedelta(hours=25)
    assert all(b >= a for a, b in itertools.pairwise(spring))
    assert autumn[2] - autumn[1] == timedelta(hours=2)


def _fill(spaces: int, days: int) -> report.Filters:
    """Rollup rows for ``spaces`` new spaces over ``days`` days, and filters selecting them."""
    from reservations.models import Location

    location = Location.objects.create(name=f"Bulk {spaces}x{days}", time_zone="UTC")
    made = Space.objects.bulk_create(
        Space(location=location, name=f"Space {i}", floor=str(i % 3)) for i in range(spaces)
    )
    first = date(2025, 1, 1)
    stats = SpaceDayStats.objects.bulk_create(
        SpaceDayStats(
            space=space,
            day=first + timedelta(days=d),
            weekday=(first + timedelta(days=d)).weekday(),
            available_minutes=600,
            booked_minutes=60 * (i % 5),
            bookings=i % 5,
            h10=60 * (i % 5),
        )
        for i, space in enumerate(made)
        for d in range(days)
    )
    SpaceDaySource.objects.bulk_create(
        SpaceDaySource(
            stats=row, space_id=row.space_id, day=row.day, source="portal", bookings=row.bookings
        )
        for row in stats
    )
    end = first + timedelta(days=days - 1)
    filters = report.Filters({"location": location.pk, "start": str(first), "end": str(end)})
    assert filters.is_valid(), filters.errors
    return filters


def _queries(filters: report.Filters) -> tuple[int, report.Report]:
    with CaptureQueriesContext(connection) as captured:
        built = report.build(filters)
    return len(captured.captured_queries), built


def test_the_figures_take_the_same_few_queries_for_any_number_of_spaces_and_days():
    few, _small = _queries(_fill(2, 2))
    many, large = _queries(_fill(40, 30))
    assert few == many <= 4
    assert large.bookings == sum(i % 5 for i in range(40)) * 30
    assert len(large.spaces) == 40 and large.heatmap[2][10] > 0


def test_the_page_takes_the_same_queries_for_any_number_of_spaces_and_days(client, make_user):
    client.force_login(make_user(perms=("reservations.view_insights",)))
    counts = []
    for filters in (_fill(2, 2), _fill(40, 30)):
        params = {k: str(v.pk if hasattr(v, "pk") else v) for k, v in filters.data.items()}
        with CaptureQueriesContext(connection) as captured:
            assert client.get("/insights/", params).status_code == 200
        counts.append(len(captured.captured_queries))
    assert counts[0] == counts[1]
