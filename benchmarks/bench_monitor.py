"""Monitoring on vs off, over the engine's benchmark shapes.

Shapes (from ``_graphs.py``): 100 chains of 100 processors, a 10,000-leaf fan-in, and a stream
of tiny items through 4 inline stages. Each shape runs with no observer and with a
:class:`mpipe.Monitor` (events, per-firing spans, psutil sampling: everything on), rounds
interleaved so that both see the same machine; the report is the time per firing (best round)
and the monitor's overhead per firing, in microseconds and in percent (goal: under 20 %), with
the overhead of the median rounds beside it. The monitor defers work to its readers (folding
spans into statistics, making processor events); the last columns show what the first read
after all the rounds cost, in total and per monitored firing.

Run as a script for the table::

    PYTHONPATH=. python benchmarks/bench_monitor.py [--rounds 7] [--json results.json] [--dashboard]

``--dashboard`` adds a third mode: monitoring with a live dashboard open (a thread fetching its
data every second, as a page does), reported against monitoring alone (goal: within 10%).

or through pytest-benchmark (one benchmark per shape and mode)::

    PYTHONPATH=. python -m pytest benchmarks/bench_monitor.py --benchmark-only
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _graphs import chains_graph, fan_in_graph, stages_graph
from _knobs import scaled

from mpipe import GraphExecutor, Monitor, ProcessingGraph

STREAM_ITEMS = scaled(20_000, 10)
CHAIN = scaled(100, 2)
LEAVES = scaled(10_000, 2)


class Shape:
    """A benchmark shape: a graph, how to feed it (distinct input per round), and its firings."""

    def __init__(
        self,
        name: str,
        graph: ProcessingGraph,
        firings: int,
        feed: Callable[[int], Any],
        stream: bool,
    ) -> None:
        self.name = name
        self.graph = graph
        self.firings = firings
        self.feed = feed
        self.stream = stream

    def run(self, monitor: Monitor | None, round_no: int) -> float:
        """One run; returns its wall time in seconds.

        Each mode keeps one executor (and one monitor) across rounds: a graph that runs again
        and again, the steady state a user sees; the plan is compiled in the warm-up round.
        """
        data = self.feed(round_no)
        executors = self.__dict__.setdefault("_executors", {})
        key = id(monitor) if monitor is not None else None
        if key not in executors:
            executors[key] = GraphExecutor(self.graph, monitor)
        executor = executors[key]
        call = executor.execute_stream if self.stream else executor.execute
        start = time.perf_counter()
        asyncio.run(call(data))
        return time.perf_counter() - start


def shapes() -> list[Shape]:
    """The three shapes of the engine benchmarks."""
    chains, chain_inputs = chains_graph(CHAIN, CHAIN)
    fan, fan_inputs = fan_in_graph(LEAVES)
    return [
        Shape(
            f"chains {CHAIN}x{CHAIN}",
            chains,
            CHAIN * CHAIN,
            lambda r: {k: v + r for k, v in chain_inputs.items()},
            False,
        ),
        Shape(
            f"fan-in {LEAVES:,}",
            fan,
            LEAVES + 1,
            lambda r: {k: v + r for k, v in fan_inputs.items()},
            False,
        ),
        Shape(
            "stream 4 stages",
            stages_graph(4),
            4 * STREAM_ITEMS,
            lambda r: {"s0": range(r, r + STREAM_ITEMS)},
            True,
        ),
    ]


class _Watcher:
    """An open dashboard page, as far as the run can tell: ``data.json`` fetched every second
    from another thread."""

    def __init__(self, monitor: Monitor) -> None:
        import threading
        import urllib.request

        self.dashboard = monitor.open_dashboard()
        self.stop = threading.Event()
        self.fetches = 0

        def poll() -> None:
            while not self.stop.wait(self.dashboard.interval):
                try:
                    with urllib.request.urlopen(self.dashboard.url + "data.json", timeout=30) as r:
                        r.read()
                    self.fetches += 1
                except OSError:  # no run yet
                    pass

        self.thread = threading.Thread(target=poll, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.stop.set()
        self.thread.join()
        self.dashboard.close()


def measure(shape: Shape, rounds: int, dashboard: bool = False) -> dict[str, Any]:
    """Interleaved rounds off / on (and on with a watched dashboard); per firing, the best round
    of each (the least disturbed by other load on the machine) and the median."""
    off: list[float] = []
    on: list[float] = []
    watched: list[float] = []
    monitor = Monitor()
    shape.run(None, -1)  # warm up (imports, caches, compiled plans)
    shape.run(monitor, -1)
    watched_monitor = Monitor() if dashboard else None
    watcher = _Watcher(watched_monitor) if watched_monitor is not None else None
    if watched_monitor is not None:
        shape.run(watched_monitor, -1)
    for r in range(rounds):
        gc.collect()
        off.append(shape.run(None, r))
        gc.collect()
        on.append(shape.run(monitor, r))
        if watched_monitor is not None:
            gc.collect()
            watched.append(shape.run(watched_monitor, r))
    if watcher is not None:
        watcher.close()
    # What the deferred work costs once: the first read of the summary and the events after
    # all the rounds folds every run's spans, applies its processor states and makes its
    # events. Reported apart, per firing of every monitored run.
    gc.collect()
    start = time.perf_counter()
    monitor.get_metrics_summary()
    monitor.get_recent_events(100)
    read = time.perf_counter() - start
    off_us = min(off) / shape.firings * 1e6
    on_us = min(on) / shape.firings * 1e6
    off_med = statistics.median(off) / shape.firings * 1e6
    on_med = statistics.median(on) / shape.firings * 1e6
    extra: dict[str, Any] = {}
    if watched:
        dash_us = min(watched) / shape.firings * 1e6
        extra = {
            "dashboard_us_per_firing": dash_us,
            "dashboard_over_monitor_percent": (dash_us / on_us - 1) * 100,
            "dashboard_fetches": watcher.fetches if watcher is not None else 0,
        }
    return {
        **extra,
        "shape": shape.name,
        "firings": shape.firings,
        "off_us_per_firing": off_us,
        "on_us_per_firing": on_us,
        "overhead_us_per_firing": on_us - off_us,
        "overhead_percent": (on_us / off_us - 1) * 100,
        "median_overhead_percent": (on_med / off_med - 1) * 100,
        "read_ms": read * 1e3,
        "read_us_per_firing": read / (shape.firings * (rounds + 1)) * 1e6,
    }


def main(argv: list[str] | None = None) -> int:
    """Print (and optionally write) the on/off table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument(
        "--dashboard",
        action="store_true",
        help="also run each shape with a live dashboard whose data a thread fetches every second",
    )
    args = parser.parse_args(argv)
    rows = [measure(shape, args.rounds, args.dashboard) for shape in shapes()]
    print(
        f"{'shape':<18}{'firings':>9}{'off us':>10}{'on us':>10}{'+us':>8}{'overhead':>10}"
        f"{'(median)':>10}{'read ms':>9}{'+us':>7}"
    )
    for row in rows:
        print(
            f"{row['shape']:<18}{row['firings']:>9}{row['off_us_per_firing']:>10.2f}"
            f"{row['on_us_per_firing']:>10.2f}{row['overhead_us_per_firing']:>8.2f}"
            f"{row['overhead_percent']:>9.1f}%{row['median_overhead_percent']:>9.1f}%"
            f"{row['read_ms']:>9.1f}{row['read_us_per_firing']:>7.2f}"
        )
    print(
        "us: microseconds per firing, best round; goal: overhead under 20%.\n"
        "read: the first summary and events read after every round (folds all the runs'\n"
        "spans and events), in ms and per monitored firing."
    )
    if args.dashboard:
        print(f"\n{'shape':<18}{'dashboard us':>14}{'over monitor':>14}{'fetches':>9}")
        for row in rows:
            print(
                f"{row['shape']:<18}{row['dashboard_us_per_firing']:>14.2f}"
                f"{row['dashboard_over_monitor_percent']:>13.1f}%{row['dashboard_fetches']:>9}"
            )
        print("dashboard: monitoring with a dashboard page open; goal: within 10% of monitoring.")
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


# -- pytest-benchmark ---------------------------------------------------------------------------

_SHAPES = {s.name: s for s in shapes()} if "pytest" in sys.modules else {}


@pytest.mark.parametrize("monitored", [False, True], ids=["off", "on"])
@pytest.mark.parametrize("name", list(_SHAPES))
def test_monitor_overhead(benchmark: Any, name: str, monitored: bool) -> None:
    """One shape, with or without a monitor (compare the off/on pairs in the table)."""
    shape = _SHAPES[name]
    rounds = iter(range(10**6))

    def setup() -> tuple[tuple[Any, ...], dict[str, Any]]:
        r = next(rounds)
        executor = GraphExecutor(shape.graph, Monitor() if monitored else None)
        call = executor.execute_stream if shape.stream else executor.execute
        return (call, shape.feed(r)), {}

    def body(call: Callable[[Any], Any], data: Any) -> None:
        asyncio.run(call(data))

    benchmark.extra_info["firings"] = shape.firings
    benchmark.pedantic(body, setup=setup, rounds=5, warmup_rounds=1)


if __name__ == "__main__":
    sys.exit(main())
