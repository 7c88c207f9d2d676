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
from reservations.models import (
    HOUR_FIELDS,
    Location,
    Space,
    SpaceDaySource,
    SpaceDayStats,
    SpaceMonthSource,
    SpaceMonthStats,
)
from tests.support.insights_data import D1, D2, EXPECTED, build

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
    assert few == many <= 4  # days only: three aggregates and the names
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


@pytest.mark.parametrize(
    ("start", "end", "months", "days"),
    [
        # within one month: days only
        ("2026-02-10", "2026-02-11", None, [("2026-02-10", "2026-02-11")]),
        ("2026-02-01", "2026-02-27", None, [("2026-02-01", "2026-02-27")]),
        # exactly whole months: months only (February 2026 ends on the 28th, 2028 on the 29th)
        ("2026-02-01", "2026-02-28", ("2026-02-01", "2026-02-01"), []),
        ("2028-02-01", "2028-02-29", ("2028-02-01", "2028-02-01"), []),
        ("2026-01-01", "2026-12-31", ("2026-01-01", "2026-12-01"), []),
        # whole months with days on either side, across a year's end
        (
            "2025-12-06",
            "2026-12-05",
            ("2026-01-01", "2026-11-01"),
            [("2025-12-06", "2025-12-31"), ("2026-12-01", "2026-12-05")],
        ),
        (
            "2026-01-31",
            "2026-03-01",
            ("2026-02-01", "2026-02-01"),
            [("2026-01-31", "2026-01-31"), ("2026-03-01", "2026-03-01")],
        ),
        # two part-months and no whole one between them
        ("2026-01-15", "2026-02-10", None, [("2026-01-15", "2026-02-10")]),
    ],
)
def test_a_period_is_split_into_whole_months_and_the_days_around_them(start, end, months, days):
    as_date = date.fromisoformat
    found_months, found_days = report.split_period(as_date(start), as_date(end))
    assert found_months == (tuple(map(as_date, months)) if months else None)
    assert found_days == [(as_date(a), as_date(b)) for a, b in days]
    # the parts cover the period exactly once
    covered = [d for a, b in found_days for d in _days(a, b)]
    if found_months:
        covered += _days(found_months[0], rollup.next_month(found_months[1]) - timedelta(days=1))
    assert sorted(covered) == _days(as_date(start), as_date(end))


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def test_a_long_period_reads_whole_months_from_the_monthly_rows_and_agrees_with_the_days():
    """Daily rows with figures that vary by space and day (check-in required on some days,
    two sources), summed by rollup_month; the report of a period with whole months and edge
    days must equal the sums of the daily rows counted here in Python."""
    location = Location.objects.create(name="Months", time_zone="UTC")
    spaces = Space.objects.bulk_create(
        Space(location=location, name=f"Room {i}", floor="1") for i in range(3)
    )
    first, last = date(2026, 1, 20), date(2026, 4, 10)
    rows = []
    for i, space in enumerate(spaces):
        for n, day in enumerate(_days(first, last)):
            booked = (n * 7 + i * 13) % 300
            rows.append(
                SpaceDayStats(
                    space=space, day=day, weekday=day.weekday(), available_minutes=600,
                    booked_minutes=booked, bookings=(n + i) % 4,
                    check_in_required=(n + i) % 3 == 0, checked_in=(n + i) % 2,
                    released=(n * i) % 2, released_minutes=(n * i) % 2 * 15,
                    booking_minutes=booked, lead_minutes=n * 60 + i,
                    h09=booked // 2, h14=booked - booked // 2,
                )
            )  # fmt: skip
    stats = SpaceDayStats.objects.bulk_create(rows)
    SpaceDaySource.objects.bulk_create(
        SpaceDaySource(
            stats=row, space_id=row.space_id, day=row.day,
            source="portal" if row.day.day % 2 else "google", bookings=row.bookings,
        )
        for row in stats
        if row.bookings
    )  # fmt: skip
    month = date(2026, 1, 1)
    while month <= last:
        rollup.rollup_month(location, month)
        month = rollup.next_month(month)
    # three spaces x (Jan: 7 weekdays, Feb: 7, Mar: 7, Apr: 7 weekdays of its first ten days)
    assert SpaceMonthStats.objects.filter(space__location=location).count() == 3 * 4 * 7
    assert sum(SpaceMonthStats.objects.values_list("bookings", flat=True)) == sum(
        r.bookings for r in rows
    )

    start, end = date(2026, 1, 25), date(2026, 4, 3)  # February and March whole
    filters = report.Filters({"location": location.pk, "start": str(start), "end": str(end)})
    assert filters.is_valid(), filters.errors
    assert filters.parts()[0] == (date(2026, 2, 1), date(2026, 3, 1))
    count, built = _queries(filters)
    assert count == 7  # three aggregates per table read, and the names

    chosen = [r for r in rows if start <= r.day <= end]
    for name in report.SUMMED:
        assert getattr(built, name) == sum(getattr(r, name) for r in chosen), name
    assert built.check_in_bookings == sum(r.bookings for r in chosen if r.check_in_required)
    for weekday in range(7):
        on = [r for r in chosen if r.weekday == weekday]
        assert built.heatmap[weekday][9] == sum(r.h09 for r in on)
        assert built.heatmap[weekday][14] == sum(r.h14 for r in on)
    assert {s.name: s.booked_minutes for s in built.spaces} == {
        space.name: sum(r.booked_minutes for r in chosen if r.space_id == space.pk)
        for space in spaces
    }
    expected_sources = {}
    for r in chosen:
        if r.bookings:
            key = "portal" if r.day.day % 2 else "google"
            expected_sources[key] = expected_sources.get(key, 0) + r.bookings
    assert {value: n for value, _label, n in built.sources} == expected_sources


def test_a_rebuild_sums_its_months_again(office):
    rollup.rebuild(D1, D2, [office.location])
    row = SpaceMonthStats.objects.get(space=office.a, month=date(2026, 2, 1), weekday=D1.weekday())
    assert (row.bookings, row.booked_minutes, row.check_in_bookings) == (2, 105, 2)
    assert dict(
        SpaceMonthSource.objects.filter(space=office.a, month=date(2026, 2, 1)).values_list(
            "source", "bookings"
        )
    ) == {"portal": 2, "rest_api": 1}
    office.a.reservations.update(status="cancelled")
    rollup.rebuild(D1, D1, [office.location])
    row = SpaceMonthStats.objects.get(space=office.a, month=date(2026, 2, 1), weekday=D1.weekday())
    # the no-show still counts (its released_at stays): 13:00-13:15, from the REST API
    assert (row.bookings, row.booked_minutes, row.check_in_bookings) == (1, 15, 1)
    # D2 was not rebuilt: its daily row, and so its weekday's monthly row, still count it
    assert SpaceMonthStats.objects.get(space=office.a, weekday=D2.weekday()).bookings == 1
    assert dict(
        SpaceMonthSource.objects.filter(space=office.a).values_list("source", "bookings")
    ) == {"portal": 1, "rest_api": 1}
