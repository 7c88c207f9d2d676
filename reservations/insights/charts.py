"""Server-rendered SVG charts for the Insights page: the geometry is computed here and the
templates draw it with presentation attributes (``fill``, ``fill-opacity``, ``width``), which
the strict Content-Security-Policy allows (no inline style, no script, nothing vendored)."""

from __future__ import annotations

from dataclasses import dataclass

from .report import WEEKDAYS, Report, SpaceFigure

CELL_W, CELL_H, LABEL_W, HEAD_H = 30, 24, 44, 20
BAR_MAX, BAR_H, BAR_GAP, BAR_LABEL_W = 320, 20, 8, 180


@dataclass(frozen=True)
class Cell:
    x: int
    y: int
    opacity: str
    minutes: int
    title: str


def hours_text(minutes: int) -> str:
    return f"{minutes / 60:.1f} h"


def heatmap(report: Report) -> dict:
    peak = max((m for row in report.heatmap for m in row), default=0)
    cells = []
    for day, row in enumerate(report.heatmap):
        for hour, minutes in enumerate(row):
            share = minutes / peak if peak else 0
            cells.append(
                Cell(
                    x=LABEL_W + hour * CELL_W,
                    y=HEAD_H + day * CELL_H,
                    opacity=f"{0.08 + 0.92 * share:.2f}" if minutes else "0.04",
                    minutes=minutes,
                    title=f"{WEEKDAYS[day]} {hour:02d}:00: {hours_text(minutes)} booked",
                )
            )
    return {
        "width": LABEL_W + 24 * CELL_W,
        "height": HEAD_H + 7 * CELL_H,
        "cell_w": CELL_W - 2,
        "cell_h": CELL_H - 2,
        "cells": cells,
        "hours": [(LABEL_W + h * CELL_W + CELL_W // 2, f"{h:02d}") for h in range(0, 24, 3)],
        "days": [(HEAD_H + d * CELL_H + CELL_H // 2 + 4, WEEKDAYS[d][:3]) for d in range(7)],
        "peak": peak,
    }


@dataclass(frozen=True)
class Bar:
    y: int
    text_y: int
    width: int
    label: str
    value: str


def _bars(items: list[tuple[str, float, str]], scale: float) -> dict:
    bars = [
        Bar(
            y=i * (BAR_H + BAR_GAP),
            text_y=i * (BAR_H + BAR_GAP) + BAR_H - 6,
            width=max(1, round(min(value / scale, 1) * BAR_MAX)) if scale and value else 0,
            label=label,
            value=text,
        )
        for i, (label, value, text) in enumerate(items)
    ]
    return {
        "bars": bars,
        "height": max(1, len(bars)) * (BAR_H + BAR_GAP),
        "width": BAR_LABEL_W + BAR_MAX + 70,
        "label_w": BAR_LABEL_W,
        "bar_h": BAR_H,
        "value_x": BAR_LABEL_W + BAR_MAX + 6,
    }


def spaces(figures: list[SpaceFigure]) -> dict:
    return _bars([(f.name, f.utilisation, f"{f.utilisation:.0%}") for f in figures], 1.0)


def sources(report: Report) -> dict:
    peak = max((n for *_rest, n in report.sources), default=0)
    return _bars([(label, n, str(n)) for _value, label, n in report.sources], peak)
