"""The benchmarks' timing protocol (benchmarks/_report.py): the compared fits alternate."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from _report import alternating_times  # noqa: E402


def _recorder(order, name):
    def call():
        order.append(name)
        return len(order)

    return call


def test_calls_alternate_until_each_has_its_runs():
    order = []
    calls = {"ours": _recorder(order, "ours"), "baseline": _recorder(order, "baseline")}
    times, last = alternating_times(calls, repeat=3, min_seconds=0.0, max_rounds=25)
    assert order == ["ours", "baseline"] * 3
    assert {name: len(t) for name, t in times.items()} == {"ours": 3, "baseline": 3}
    assert last == {"ours": 5, "baseline": 6}


def test_earlier_times_count_and_short_calls_get_more_rounds():
    order = []
    calls = {"a": _recorder(order, "a"), "b": _recorder(order, "b")}
    # "a" already ran twice for 10 s; both still run together until both qualify
    times, _ = alternating_times(calls, 2, 1e-6, 25, first={"a": [5.0, 5.0]})
    assert len(times["a"]) == 2 + len(times["b"]) and len(times["b"]) >= 2
    assert order[:2] == ["a", "b"]
    # calls far shorter than min_seconds stop at max_rounds
    order.clear()
    times, _ = alternating_times(calls, 1, 3600.0, 4)
    assert order == ["a", "b"] * 4
