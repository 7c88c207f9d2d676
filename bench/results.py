"""``bench/results.json``: the figures of the benchmarks' last run, each beside its target.

Every benchmark takes ``--results FILE`` and, when given it, records its figures there under
its own name (``record``), leaving the other benchmarks' entries as they were; ``make bench``
runs the quick version of each with ``--results bench/results.json``. The file says where it
was measured (``machine``) and, per benchmark, when, with which arguments, and each figure
with its unit, its target and whether it met it. The numbers are whatever the machine gave;
``problems`` checks only the shape (``tests/project/test_bench_results.py``), never a figure.

    {"schema": 1,
     "machine": {"cpus": 2, "platform": "...", "python": "3.11.7", "postgresql": "15.19"},
     "benchmarks": {
       "insights": {"measured_at": "2026-12-06T14:30:00+00:00", "quick": true,
                    "arguments": {"spaces": 100, ...},
                    "figures": [{"name": "whole year p95", "value": 41.2, "unit": "ms",
                                 "target": 200, "better": "lower", "met": true}]}}}
"""

from __future__ import annotations

import json
import os
import platform
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

SCHEMA = 1
DEFAULT_PATH = Path(__file__).with_name("results.json")
BETTER = ("lower", "higher")


@dataclass(frozen=True)
class Figure:
    """One measured figure; ``target`` None: reported, not judged."""

    name: str
    value: float
    unit: str
    target: float | None = None
    better: str = "lower"

    @property
    def met(self) -> bool | None:
        if self.target is None:
            return None
        return self.value <= self.target if self.better == "lower" else self.value >= self.target

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "value": round(self.value, 3), "met": self.met}


def add_argument(parser: Any) -> None:
    """``--results FILE`` on a benchmark's argument parser."""
    parser.add_argument(
        "--results",
        type=Path,
        default=None,
        help="also record the figures in this JSON file (make bench: bench/results.json)",
    )


def machine() -> dict[str, Any]:
    """What the figures were measured on: CPUs, OS, Python and, when Django is set up on
    PostgreSQL, the server's version."""
    found: dict[str, Any] = {
        "cpus": os.cpu_count() or 0,
        "platform": platform.platform(),
        "python": platform.python_version(),
    }
    try:
        from django.db import connection

        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SHOW server_version")
                found["postgresql"] = cursor.fetchone()[0].split()[0]
    except Exception:  # noqa: S110 - Django not set up (a launcher process): no database figure
        pass
    return found


def record(
    path: Path | None,
    bench: str,
    figures: list[Figure],
    *,
    arguments: dict[str, Any],
    quick: bool,
) -> None:
    """Write ``bench``'s figures into ``path`` (nothing when None), keeping the others'."""
    if path is None:
        return
    data: dict[str, Any] = {"schema": SCHEMA, "machine": {}, "benchmarks": {}}
    if path.exists():
        try:
            old = json.loads(path.read_text())
        except ValueError:
            old = None
        if isinstance(old, dict) and not problems(old):
            data = old
    data["machine"] = machine()
    data["benchmarks"][bench] = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": quick,
        "arguments": {
            k: v if isinstance(v, int | float | bool) else str(v) for k, v in arguments.items()
        },
        "figures": [figure.as_json() for figure in figures],
    }
    data["benchmarks"] = dict(sorted(data["benchmarks"].items()))
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(data, indent=2) + "\n")
    temporary.replace(path)
    print(f"\nrecorded {len(figures)} figures of {bench!r} in {path}")


def problems(data: Any) -> list[str]:
    """What is wrong with the shape of a results file (empty: nothing)."""
    found: list[str] = []
    if not isinstance(data, dict):
        return ["the file is not a JSON object"]
    if data.get("schema") != SCHEMA:
        found.append(f"schema is {data.get('schema')!r}, not {SCHEMA}")
    machine_info = data.get("machine")
    if not isinstance(machine_info, dict) or not isinstance(machine_info.get("cpus"), int):
        found.append("machine must be an object with cpus (an integer)")
    benchmarks = data.get("benchmarks")
    if not isinstance(benchmarks, dict):
        return [*found, "benchmarks must be an object"]
    for name, entry in benchmarks.items():
        found += [f"{name}: {p}" for p in _entry_problems(entry)]
    return found


def _entry_problems(entry: Any) -> list[str]:
    if not isinstance(entry, dict):
        return ["not an object"]
    found = []
    try:
        datetime.fromisoformat(entry.get("measured_at", ""))
    except (TypeError, ValueError):
        found.append("measured_at is not an ISO date and time")
    if not isinstance(entry.get("quick"), bool):
        found.append("quick must be true or false")
    if not isinstance(entry.get("arguments"), dict):
        found.append("arguments must be an object")
    figures = entry.get("figures")
    if not isinstance(figures, list) or not figures:
        return [*found, "figures must be a non-empty list"]
    for i, figure in enumerate(figures):
        found += [f"figure {i}: {p}" for p in _figure_problems(figure)]
    return found


def _figure_problems(figure: Any) -> list[str]:
    if not isinstance(figure, dict):
        return ["not an object"]
    found = []
    for key in ("name", "unit"):
        if not isinstance(figure.get(key), str) or not figure.get(key):
            found.append(f"{key} must be a non-empty string")
    number = (int, float)
    value, target = figure.get("value"), figure.get("target")
    if not isinstance(value, number) or isinstance(value, bool):
        found.append("value must be a number")
    if target is not None and (not isinstance(target, number) or isinstance(target, bool)):
        found.append("target must be a number or null")
    if figure.get("better") not in BETTER:
        found.append(f"better must be one of {BETTER}")
    met = figure.get("met")
    if target is None:
        if met is not None:
            found.append("met must be null without a target")
    elif not found:
        expected = Figure(figure["name"], value, figure["unit"], target, figure["better"]).met
        if met is not expected:
            found.append(f"met is {met!r} but the value says {expected!r}")
    return found
