"""Where the garbage collector comes into a new graph's first run.

Run: ``python benchmarks/first_run_gc.py [--rounds N]``

For 100 chains of 100 processors and a fan-in of 10,000 leaves: a new graph's first run
(compiling included) timed whole, and the time spent in garbage collections during it (through
``gc.callbacks``), with the compiled plan's objects moved to the oldest generation (the
default) and without (``PROMOTE_AT`` raised past the graph's size), alternated. Per processor,
median of the rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import sys
import time
from typing import Any

from _graphs import chains_graph, fan_in_graph

import mpipe._engine._plan as plan_module
from mpipe import GraphExecutor

SHAPES: dict[str, Any] = {
    "chains 100x100": lambda: chains_graph(100, 100),
    "fan-in 10000": lambda: fan_in_graph(10_000),
}


def first_run(make: Any, promote: bool) -> tuple[float, float, int]:
    """Seconds per processor of a first run, of them in collections, and how many ran."""
    graph, inputs = make()
    n = len(graph.nodes)
    spent = [0.0, 0]
    began = [0.0]

    def watch(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            began[0] = time.perf_counter()
        else:
            spent[0] += time.perf_counter() - began[0]
            spent[1] += 1

    saved = plan_module.PROMOTE_AT
    plan_module.PROMOTE_AT = saved if promote else sys.maxsize
    gc.callbacks.append(watch)
    try:
        start = time.perf_counter()
        asyncio.run(GraphExecutor(graph).execute(inputs))
        total = time.perf_counter() - start
    finally:
        gc.callbacks.remove(watch)
        plan_module.PROMOTE_AT = saved
    return total / n, spent[0] / n, int(spent[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    rounds = parser.parse_args().rounds
    first_run(lambda: chains_graph(2, 2), True)  # imports and first-use costs
    for name, make in SHAPES.items():
        rows: dict[bool, list[tuple[float, float, int]]] = {True: [], False: []}
        for _ in range(rounds):
            for promote in (True, False):
                rows[promote].append(first_run(make, promote))
        for promote, label in ((True, "moved to the oldest generation"), (False, "left young")):
            total = statistics.median(r[0] for r in rows[promote]) * 1e6
            in_gc = statistics.median(r[1] for r in rows[promote]) * 1e6
            count = statistics.median(r[2] for r in rows[promote])
            print(
                f"{name:15s} plan's objects {label:31s} first run {total:6.1f} us/processor, "
                f"{in_gc:5.1f} of them in {count:.0f} collections"
            )


if __name__ == "__main__":
    main()
