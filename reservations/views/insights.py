"""Occupancy insights (``/insights/``), for people with ``reservations.view_insights``.

The page reads the daily rollup only (``reservations.insights``): utilisation, check-in and
no-show rates, the weekday x hour heatmap, the busiest and least used spaces, average
booking length and lead time, and bookings by source. Each chart is an SVG drawn on the
server with its numbers in a table and a CSV download (``/insights/export.csv?...``, the same
filters and ``table=summary|heatmap|spaces|sources``).
"""

from __future__ import annotations

import csv
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import render

from ..insights import charts, report
from ..models import HOUR_FIELDS

PERMISSION = "reservations.view_insights"
TABLES = ("summary", "heatmap", "spaces", "sources")


def _allowed(request: HttpRequest) -> None:
    if not request.user.has_perm(PERMISSION):
        raise PermissionDenied("Insights are for people with the view insights permission.")


@login_required
def page(request: HttpRequest) -> HttpResponse:
    _allowed(request)
    filters = report.Filters(request.GET)
    context: dict = {"filters": filters, "tables": TABLES, "spaces": filters.space_options()}
    if filters.is_valid():
        figures = report.build(filters)
        context.update(
            report=figures,
            heatmap=charts.heatmap(figures),
            busiest=charts.spaces(figures.busiest),
            least_used=charts.spaces(figures.least_used),
            sources=charts.sources(figures),
            summary=report.summary(figures),
            heatmap_rows=list(zip(report.WEEKDAYS, figures.heatmap, strict=True)),
            hours=[f"{h:02d}" for h in range(24)],
            query=_query(filters),
        )
    return render(request, "reservations/insights.html", context)


def _query(filters: report.Filters) -> str:
    """The cleaned filters as a query string, for the CSV links."""
    data = filters.cleaned_data
    params = {
        "location": data["location"].pk if data.get("location") else "",
        "floor": data.get("floor") or "",
        "kind": data.get("kind") or "",
        "space": data["space"].pk if data.get("space") else "",
        "start": data["start"].isoformat(),
        "end": data["end"].isoformat(),
    }
    return urlencode({k: v for k, v in params.items() if v != ""})


def _cell(text: str) -> str:
    """A name as a spreadsheet shows it, never as a formula (a space named "=HYPERLINK(...)")."""
    return f"'{text}" if text[:1] in ("=", "+", "-", "@") else text


def _ratio(value: float | None, digits: int = 4) -> str:
    return "" if value is None else f"{value:.{digits}f}"


@login_required
def export(request: HttpRequest) -> HttpResponse:
    _allowed(request)
    table = request.GET.get("table", "summary")
    if table not in TABLES:
        return HttpResponseBadRequest(f"table must be one of: {', '.join(TABLES)}.")
    filters = report.Filters(request.GET)
    if not filters.is_valid():
        problems = "; ".join(
            f"{name}: {' '.join(errors)}" for name, errors in filters.errors.items()
        )
        return HttpResponseBadRequest(f"Bad filters: {problems}")
    figures = report.build(filters)
    data = filters.cleaned_data
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    name = f"insights-{table}-{data['start']:%Y%m%d}-{data['end']:%Y%m%d}.csv"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    writer = csv.writer(response)
    if table == "summary":
        writer.writerow(["figure", "value"])
        for label, value in (
            ("available_hours", f"{figures.available_minutes / 60:.2f}"),
            ("booked_hours", f"{figures.booked_minutes / 60:.2f}"),
            ("utilisation", _ratio(figures.utilisation)),
            ("bookings", figures.bookings),
            ("bookings_in_check_in_spaces", figures.check_in_bookings),
            ("checked_in", figures.checked_in),
            ("released_no_shows", figures.released),
            ("check_in_rate", _ratio(figures.check_in_rate)),
            ("no_show_rate", _ratio(figures.no_show_rate)),
            ("released_hours", f"{figures.released_minutes / 60:.2f}"),
            ("average_booking_minutes", _ratio(figures.average_booking_minutes, 1)),
            ("average_lead_minutes", _ratio(figures.average_lead_minutes, 1)),
        ):
            writer.writerow([label, value])
    elif table == "heatmap":
        writer.writerow(["weekday", *[f"{h[1:]}:00" for h in HOUR_FIELDS]])
        for day, row in zip(report.WEEKDAYS, figures.heatmap, strict=True):
            writer.writerow([day, *row])
    elif table == "spaces":
        writer.writerow(
            ["location", "space", "bookings", "booked_hours", "available_hours", "utilisation"]
        )
        for space in figures.ranked + [s for s in figures.spaces if not s.available_minutes]:
            writer.writerow([
                _cell(space.location), _cell(space.name), space.bookings,
                f"{space.booked_minutes / 60:.2f}", f"{space.available_minutes / 60:.2f}",
                _ratio(space.utilisation if space.available_minutes else None),
            ])  # fmt: skip
    else:
        writer.writerow(["source", "label", "bookings"])
        for value, label, n in figures.sources:
            writer.writerow([value, label, n])
    return response
