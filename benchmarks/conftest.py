"""Benchmark suite plumbing: collect each benchmark's median and print ratios per group.

Every benchmark in a group measures the same work; the group's ``baseline`` entry is mpipe, and
the table shows how many times longer each anchor takes (``> 1`` means mpipe is ahead). The
table is printed at the end of the run and written as JSON to ``benchmarks/results/`` (not
committed), or to the file ``MPIPE_BENCH_JSON`` names (``benchmarks/report.py`` reads it there).
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from _knobs import SCALE
from _knobs import rounds as timed_rounds

_RESULTS: dict[str, dict[str, dict[str, float]]] = {}


class Recorder:
    """Records one benchmark's per-unit time under ``group`` / ``name``."""

    def __init__(self, benchmark: Any) -> None:
        self.benchmark = benchmark

    def __call__(
        self,
        group: str,
        name: str,
        fn: Callable[[Any], Any],
        setup: Callable[[], Any],
        units: int,
        rounds: int = 5,
    ) -> Any:
        """Time ``fn(setup())`` over fresh inputs each round; record seconds per unit."""
        self.benchmark.group = group
        self.benchmark.extra_info["units"] = units
        result = self.benchmark.pedantic(
            fn,
            setup=lambda: ((setup(),), {}),
            rounds=timed_rounds(rounds),
            iterations=1,
            warmup_rounds=1,
        )
        stats = self.benchmark.stats.stats
        self.add(group, name, stats.median, units, stats.min)
        return result

    @staticmethod
    def add(group: str, name: str, median_s: float, units: int, min_s: float | None = None) -> None:
        """File a figure timed by the benchmark itself (``median_s`` for ``units`` units)."""
        _RESULTS.setdefault(group, {})[name] = {
            "median_s": median_s,
            "min_s": median_s if min_s is None else min_s,
            "per_unit_us": median_s / units * 1e6,
            "units": units,
        }


@pytest.fixture
def record(benchmark: Any) -> Recorder:
    """Time a body and file it under a comparison group."""
    return Recorder(benchmark)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _RESULTS:
        return
    tr = terminalreporter
    tr.section("mpipe vs anchors (median per unit; ratio = anchor / mpipe)")
    for group, entries in sorted(_RESULTS.items()):
        base = next((v for k, v in entries.items() if k.startswith("mpipe")), None)
        tr.write_line(f"{group}")
        for name, v in sorted(entries.items(), key=lambda kv: kv[1]["per_unit_us"]):
            ratio = f"{v['per_unit_us'] / base['per_unit_us']:6.2f}x" if base else "   -"
            tr.write_line(f"    {name:<34} {v['per_unit_us']:10.2f} us/unit   {ratio}")
    named = os.environ.get("MPIPE_BENCH_JSON")
    if named:
        path = Path(named)
    else:
        out = Path(__file__).parent / "results"
        out.mkdir(exist_ok=True)
        path = out / f"bench-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(
        json.dumps(
            {
                "machine": {
                    "cpus": os.cpu_count(),
                    "usable_cpus": len(os.sched_getaffinity(0)),
                    "python": platform.python_version(),
                    "system": platform.platform(),
                    "load_average_at_end": os.getloadavg(),
                },
                "scale": SCALE,
                "results": _RESULTS,
            },
            indent=2,
        )
    )
    tr.write_line(
        f"written to {path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}"
    )
