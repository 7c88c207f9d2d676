"""The Insights page's figures, from the rollup tables alone.

``Filters`` is the page's form (location, floor, kind of space, space, period); ``build``
answers it with aggregate queries whatever the number of spaces and days. The whole months of
the period are read from the monthly rollup (``SpaceMonthStats``, a row per space, month and
weekday) and the days around them from the daily one (``SpaceDayStats``), so a year of 1,000
spaces sums about 110,000 rows instead of 365,000 (``bench/insights.py``). From each table
read: one query grouped by weekday (the summary and the weekday x hour heatmap), one grouped
by space (the busiest and least used spaces) and one grouped by source; then one for the
spaces' names. The same figures feed the page's tables, its SVG charts (``charts``) and its
CSV downloads.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

from django import forms
from django.db.models import Q, QuerySet, Sum
from django.utils import timezone

from ..models import (
    HOUR_FIELDS,
    Location,
    Source,
    Space,
    SpaceDaySource,
    SpaceDayStats,
    SpaceKind,
    SpaceMonthSource,
    SpaceMonthStats,
    Weekday,
    source_words,
)
from .rollup import month_of, next_month

DEFAULT_DAYS = 28  # the last four weeks
MAX_DAYS = 366 * 2
RANKED = 5  # the busiest and least used spaces shown


def split_period(
    start: date, end: date
) -> tuple[tuple[date, date] | None, list[tuple[date, date]]]:
    """[start, end] as the whole months in it (the first days of the first and the last, or
    None) and the one or two runs of days before and after them."""
    first = start if start.day == 1 else next_month(start)
    after = next_month(end)  # the first day after the last whole month ...
    if (after - timedelta(days=1)) != end:
        after = month_of(end)  # ... which is end's own month when end is not its last day
    if first >= after:
        return None, [(start, end)]
    days = []
    if start < first:
        days.append((start, first - timedelta(days=1)))
    if after <= end:
        days.append((after, end))
    return (first, month_of(after - timedelta(days=1))), days


class Filters(forms.Form):
    location = forms.ModelChoiceField(
        queryset=Location.objects.all(), required=False, empty_label="All locations"
    )
    floor = forms.ChoiceField(required=False)
    kind = forms.ChoiceField(
        required=False, choices=[("", "All kinds"), *SpaceKind.choices], label="Kind of space"
    )
    space = forms.ModelChoiceField(
        queryset=Space.objects.all(),
        required=False,
        empty_label="All spaces",
    )
    start = forms.DateField(label="From", widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(label="To", widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, data=None, *, today: date | None = None) -> None:
        today = today or timezone.localdate()
        defaults = {
            "start": (today - timedelta(days=DEFAULT_DAYS)).isoformat(),
            "end": (today - timedelta(days=1)).isoformat(),
        }
        merged = {**defaults, **{k: v for k, v in (data or {}).items() if v not in ("", None)}}
        super().__init__(merged)
        floors = Space.objects.exclude(floor="").values_list("floor", flat=True).distinct()
        self.fields["floor"].choices = [("", "All floors")] + [(f, f) for f in sorted(set(floors))]

    def clean(self) -> dict:
        data = super().clean()
        start, end = data.get("start"), data.get("end")
        if start and end:
            if end < start:
                self.add_error("end", "The last day is before the first day.")
            elif (end - start).days >= MAX_DAYS:
                self.add_error("end", f"Choose at most {MAX_DAYS} days.")
        space, location = data.get("space"), data.get("location")
        if space and location and space.location_id != location.pk:
            self.add_error("space", "This space is in another location.")
        return data

    def scope(self) -> dict:
        """The cleaned place filters as lookups on any rollup table (all have ``space``)."""
        data = self.cleaned_data
        found = {}
        if data.get("location"):
            found["space__location"] = data["location"]
        if data.get("floor"):
            found["space__floor"] = data["floor"]
        if data.get("kind"):
            found["space__kind"] = data["kind"]
        if data.get("space"):
            found["space"] = data["space"]
        return found

    def parts(self) -> tuple[tuple[date, date] | None, list[tuple[date, date]]]:
        """The period as (first and last whole month, or None) and the days outside them."""
        return split_period(self.cleaned_data["start"], self.cleaned_data["end"])

    def space_options(self) -> list[tuple[int, str, bool]]:
        """(id, label, selected) for the space filter, drawn by the template: Django's widget
        renders each of a thousand options through a template and costs more than the
        figures (bench/insights.py)."""
        chosen = self.data.get("space")
        rows = Space.objects.order_by("location__name", "name").values_list(
            "pk", "name", "location__name"
        )
        return [(pk, f"{name} ({where})", str(pk) == str(chosen)) for pk, name, where in rows]


@dataclass
class SpaceFigure:
    space_id: int
    name: str
    location: str
    available_minutes: int
    booked_minutes: int
    bookings: int

    @property
    def utilisation(self) -> float:
        return self.booked_minutes / self.available_minutes if self.available_minutes else 0.0

    @property
    def percent(self) -> str:
        return f"{self.utilisation:.0%}"

    @property
    def booked_hours(self) -> str:
        return f"{self.booked_minutes / 60:.1f}"

    @property
    def available_hours(self) -> str:
        return f"{self.available_minutes / 60:.1f}"


@dataclass
class Report:
    available_minutes: int = 0
    booked_minutes: int = 0
    bookings: int = 0
    booking_minutes: int = 0
    lead_minutes: int = 0
    check_in_bookings: int = 0
    checked_in: int = 0
    released: int = 0
    released_minutes: int = 0
    # weekday (0 = Monday) -> 24 booked minutes
    heatmap: list[list[int]] = field(default_factory=lambda: [[0] * 24 for _ in range(7)])
    spaces: list[SpaceFigure] = field(default_factory=list)
    sources: list[tuple[str, str, int]] = field(default_factory=list)  # value, label, count

    @property
    def utilisation(self) -> float | None:
        return self.booked_minutes / self.available_minutes if self.available_minutes else None

    @property
    def check_in_rate(self) -> float | None:
        decided = self.checked_in + self.released
        return self.checked_in / decided if decided else None

    @property
    def no_show_rate(self) -> float | None:
        decided = self.checked_in + self.released
        return self.released / decided if decided else None

    @property
    def average_booking_minutes(self) -> float | None:
        return self.booking_minutes / self.bookings if self.bookings else None

    @property
    def average_lead_minutes(self) -> float | None:
        return self.lead_minutes / self.bookings if self.bookings else None

    @property
    def ranked(self) -> list[SpaceFigure]:
        """Spaces that were bookable in the period, busiest first."""
        bookable = [s for s in self.spaces if s.available_minutes]
        return sorted(bookable, key=lambda s: (-s.utilisation, -s.booked_minutes, s.name))

    @property
    def busiest(self) -> list[SpaceFigure]:
        return self.ranked[:RANKED]

    @property
    def least_used(self) -> list[SpaceFigure]:
        return list(reversed(self.ranked[-RANKED:]))


SUMMED = (
    "available_minutes",
    "booked_minutes",
    "bookings",
    "booking_minutes",
    "lead_minutes",
    "checked_in",
    "released",
    "released_minutes",
)


def source_labels() -> dict[str, str]:
    """Read from the choices now, so a source added later (e.g. displays) is named too; in
    the portal's words (``models.source_words``)."""
    return {value: source_words(value) for value in Source.values}


def _tables(filters: Filters) -> list[tuple[QuerySet, QuerySet, Sum]]:
    """(figures, sources, check-in bookings) querysets for each rollup table the period needs:
    the monthly rows for its whole months, the daily rows for the days around them."""
    scope = filters.scope()
    months, days = filters.parts()
    tables = []
    if months:
        when = {"month__gte": months[0], "month__lte": months[1]}
        tables.append(
            (
                SpaceMonthStats.objects.filter(**scope, **when),
                SpaceMonthSource.objects.filter(**scope, **when),
                Sum("check_in_bookings"),
            )
        )
    if days:
        when = Q()
        for first, last in days:
            when |= Q(day__gte=first, day__lte=last)
        tables.append(
            (
                SpaceDayStats.objects.filter(when, **scope),
                SpaceDaySource.objects.filter(when, **scope),
                Sum("bookings", filter=Q(check_in_required=True)),
            )
        )
    return tables


def build(filters: Filters) -> Report:
    """The figures for valid ``filters``: per rollup table read (see ``_tables``), three
    aggregate queries (by weekday, by space, by source); and one for the spaces' names."""
    report = Report()
    by_space: dict[int, list[int]] = {}  # space id -> [available, booked, bookings]
    found: dict[str, int] = {}
    for rows, sources, check_in_bookings in _tables(filters):
        by_weekday = rows.values("weekday").annotate(
            **{f"sum_{name}": Sum(name) for name in (*SUMMED, *HOUR_FIELDS)},
            sum_check_in_bookings=check_in_bookings,
        )
        for row in by_weekday.order_by("weekday"):
            for name in SUMMED:
                setattr(report, name, getattr(report, name) + (row[f"sum_{name}"] or 0))
            report.check_in_bookings += row["sum_check_in_bookings"] or 0
            hours = report.heatmap[row["weekday"]]
            for hour, name in enumerate(HOUR_FIELDS):
                hours[hour] += row[f"sum_{name}"] or 0
        # Grouped by the space's id alone (no join, no text in the grouping); names after.
        for r in (
            rows.values("space_id")
            .annotate(available=Sum("available_minutes"), booked=Sum("booked_minutes"))
            .annotate(n=Sum("bookings"))
            .order_by()
        ):
            totals = by_space.setdefault(r["space_id"], [0, 0, 0])
            totals[0] += r["available"] or 0
            totals[1] += r["booked"] or 0
            totals[2] += r["n"] or 0
        for r in sources.values("source").annotate(n=Sum("bookings")).order_by():
            found[r["source"]] = found.get(r["source"], 0) + (r["n"] or 0)
    names = {
        pk: (name, where)
        for pk, name, where in Space.objects.filter(pk__in=list(by_space)).values_list(
            "pk", "name", "location__name"
        )
    }
    report.spaces = sorted(
        (SpaceFigure(pk, *names.get(pk, ("?", "?")), *totals) for pk, totals in by_space.items()),
        key=lambda s: (s.location, s.name),
    )
    labels = source_labels()
    report.sources = sorted(
        ((value, labels.get(value, value), n) for value, n in found.items() if n),
        key=lambda s: (-s[2], s[1]),
    )
    return report


WEEKDAYS = [str(label) for _value, label in Weekday.choices]


def percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0%}"


def minutes_text(value: float | None) -> str:
    if value is None:
        return "n/a"
    if abs(value) >= 48 * 60:
        return f"{value / 1440:.1f} days"
    if abs(value) >= 120:
        return f"{value / 60:.1f} h"
    return f"{value:.0f} min"


def summary(report: Report) -> list[tuple[str, str, str, str]]:
    """(id, label, value, note) for each figure of the summary card."""
    return [
        ("utilisation", "Utilisation", percent(report.utilisation),
         f"{report.booked_minutes / 60:.1f} booked hours of {report.available_minutes / 60:.1f} "
         "open hours"),
        ("bookings", "Bookings", str(report.bookings), "made for the period"),
        ("checked-in", "Checked in", percent(report.check_in_rate),
         f"{report.checked_in} of {report.checked_in + report.released} decided, "
         f"{report.check_in_bookings} bookings in check-in spaces"),
        ("released", "No-shows released", percent(report.no_show_rate),
         f"{report.released} bookings, {report.released_minutes / 60:.1f} hours given back"),
        ("average-length", "Average booking", minutes_text(report.average_booking_minutes), ""),
        ("average-lead", "Average lead time", minutes_text(report.average_lead_minutes),
         "from booking to start"),
    ]  # fmt: skip
