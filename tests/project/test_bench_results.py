"""``bench/results.json`` (written by ``make bench``): its shape, never its numbers."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from bench import results

COMMITTED = Path(results.__file__).with_name("results.json")
BENCHMARKS = {
    "booking", "export", "export-ews", "insights", "portal_pages", "pull", "scale", "webhook"
}  # fmt: skip


def test_the_committed_results_have_the_right_shape_and_every_benchmark():
    data = json.loads(COMMITTED.read_text())
    assert results.problems(data) == []
    assert set(data["benchmarks"]) == BENCHMARKS
    for entry in data["benchmarks"].values():
        assert any(figure["target"] is not None for figure in entry["figures"])


def test_record_writes_a_valid_file_and_keeps_the_other_benchmarks(tmp_path):
    path = tmp_path / "results.json"
    results.record(
        path, "one", [results.Figure("p95", 12.5, "ms", 20)], arguments={"n": 3}, quick=True
    )
    results.record(
        path,
        "two",
        [results.Figure("rate", 900, "events/s", 1000, "higher"), results.Figure("x", 1, "s")],
        arguments={"path": Path("/srv/data")},
        quick=False,
    )
    data = json.loads(path.read_text())
    assert results.problems(data) == []
    assert list(data["benchmarks"]) == ["one", "two"]
    one, two = data["benchmarks"]["one"], data["benchmarks"]["two"]
    assert one["figures"] == [
        {"name": "p95", "value": 12.5, "unit": "ms", "target": 20, "better": "lower", "met": True}
    ]
    assert [f["met"] for f in two["figures"]] == [False, None]
    assert two["arguments"] == {"path": "/srv/data"} and two["quick"] is False


def _valid() -> dict:
    return {
        "schema": 1,
        "machine": {"cpus": 2, "platform": "Linux", "python": "3.11.7"},
        "benchmarks": {
            "b": {
                "measured_at": "2026-12-06T14:30:00+00:00",
                "quick": True,
                "arguments": {},
                "figures": [
                    {"name": "p95", "value": 3, "unit": "ms", "target": 5, "better": "lower",
                     "met": True},
                ],
            }
        },
    }  # fmt: skip


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda d: d.update(schema=2), "schema is 2"),
        (lambda d: d["machine"].pop("cpus"), "machine must be"),
        (lambda d: d["benchmarks"]["b"].update(measured_at="yesterday"), "measured_at"),
        (lambda d: d["benchmarks"]["b"].update(figures=[]), "non-empty list"),
        (lambda d: d["benchmarks"]["b"]["figures"][0].pop("unit"), "unit must be"),
        (lambda d: d["benchmarks"]["b"]["figures"][0].update(value="3"), "value must be"),
        (lambda d: d["benchmarks"]["b"]["figures"][0].update(better="less"), "better must be"),
        (lambda d: d["benchmarks"]["b"]["figures"][0].update(met=False), "met is False"),
        (lambda d: d["benchmarks"]["b"]["figures"][0].update(target=None), "met must be null"),
    ],
)
def test_problems_names_what_is_wrong(change, problem):
    assert results.problems(_valid()) == []
    data = copy.deepcopy(_valid())
    change(data)
    found = results.problems(data)
    assert any(problem in p for p in found), found


def test_a_broken_file_is_replaced_not_merged(tmp_path):
    path = tmp_path / "results.json"
    path.write_text('{"schema": 1, "benchmarks": "oops"}')
    results.record(path, "one", [results.Figure("x", 1, "s", 2)], arguments={}, quick=True)
    data = json.loads(path.read_text())
    assert results.problems(data) == [] and list(data["benchmarks"]) == ["one"]
