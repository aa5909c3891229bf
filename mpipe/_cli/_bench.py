"""``mpipe bench``: a quick pass of the engine benchmarks, mpipe against Dask's local schedulers.

The shapes are those of the benchmark suite (``benchmarks/``): independent chains, a wide
fan-in, and a stream through a line of stages, all made of a tiny ``inc`` so that what is
measured is scheduling overhead. Anchors: ``dask.get`` (synchronous) and ``dask.threaded.get``,
running the equivalent task graph. Every round uses distinct inputs; the best of the rounds is
reported, and the ratio is the anchor's time over mpipe's (above 1: mpipe is ahead), as in the
benchmark suite's report.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .._engine._executor import GraphExecutor
from .._model._graph import ProcessingGraph
from .._model._processors import SimpleProcessor

__all__ = ["BenchResult", "bench_lines", "run_bench"]


def inc(x: int) -> int:
    """The tiny firing that makes the graph's overhead visible."""
    return x + 1


def total(d: dict[str, int]) -> int:
    """Sum a fan-in's inputs."""
    return sum(d.values())


def _proc(fn: Callable[..., Any], pid: str, inputs: list[str] | None = None) -> SimpleProcessor:
    p = SimpleProcessor(fn, pid)
    p.create_default_pipes(inputs, ["output"])
    return p


def chains_graph(n_chains: int, length: int) -> ProcessingGraph:
    """``n_chains`` independent chains of ``length`` ``inc`` processors."""
    graph = ProcessingGraph(f"chains_{n_chains}x{length}")
    for c in range(n_chains):
        for i in range(length):
            graph.add_processor(_proc(inc, f"c{c}_{i}"))
            if i:
                graph.connect(f"c{c}_{i - 1}", "output", f"c{c}_{i}", "input")
    return graph


def chains_dask(n_chains: int, length: int, offset: int) -> tuple[dict[str, Any], list[str]]:
    """The chains as a Dask task graph, and its sink keys."""
    dsk: dict[str, Any] = {}
    for c in range(n_chains):
        for i in range(length):
            dsk[f"c{c}_{i}"] = (inc, c + offset) if i == 0 else (inc, f"c{c}_{i - 1}")
    return dsk, [f"c{c}_{length - 1}" for c in range(n_chains)]


def fan_in_graph(n_leaves: int) -> ProcessingGraph:
    """``n_leaves`` ``inc`` sources feeding one summing sink."""
    graph = ProcessingGraph(f"fan_in_{n_leaves}")
    graph.add_processor(_proc(total, "sum", [f"in{i}" for i in range(n_leaves)]))
    for i in range(n_leaves):
        graph.add_processor(_proc(inc, f"leaf{i}"))
        graph.connect(f"leaf{i}", "output", "sum", f"in{i}")
    return graph


def fan_in_dask(n_leaves: int, offset: int) -> tuple[dict[str, Any], list[str]]:
    """The fan-in as a Dask task graph, and its sink key."""
    dsk: dict[str, Any] = {f"leaf{i}": (inc, i + offset) for i in range(n_leaves)}
    dsk["sum"] = (sum, [f"leaf{i}" for i in range(n_leaves)])
    return dsk, ["sum"]


def stages_graph(n_stages: int) -> ProcessingGraph:
    """A line of ``n_stages`` ``inc`` stages, fed a stream at ``s0``."""
    graph = ProcessingGraph(f"stages_{n_stages}")
    for i in range(n_stages):
        graph.add_processor(_proc(inc, f"s{i}"))
        if i:
            graph.connect(f"s{i - 1}", "output", f"s{i}", "input")
    return graph


def stages_dask(n_stages: int, n_items: int, offset: int) -> tuple[dict[str, Any], list[str]]:
    """The stream as Dask sees it: one task per item per stage."""
    dsk: dict[str, Any] = {}
    for j in range(n_items):
        for i in range(n_stages):
            dsk[f"s{i}_{j}"] = (inc, j + offset) if i == 0 else (inc, f"s{i - 1}_{j}")
    return dsk, [f"s{n_stages - 1}_{j}" for j in range(n_items)]


@dataclass
class _Case:
    name: str
    graph: ProcessingGraph
    inputs: Callable[[int], Any]
    streaming: bool
    dask_graph: Callable[[int], tuple[dict[str, Any], list[str]]]


def _cases(scale: float) -> list[_Case]:
    n = max(2, int(10 * scale))
    leaves = max(2, int(200 * scale))
    stages, items = 4, max(2, int(500 * scale))
    return [
        _Case(
            f"chains {n}x{n} ({n * n} firings)",
            chains_graph(n, n),
            lambda off: {f"c{c}_0": c + off for c in range(n)},
            False,
            lambda off: chains_dask(n, n, off),
        ),
        _Case(
            f"fan-in {leaves} leaves",
            fan_in_graph(leaves),
            lambda off: {f"leaf{i}": i + off for i in range(leaves)},
            False,
            lambda off: fan_in_dask(leaves, off),
        ),
        _Case(
            f"stream {items} items x {stages} stages",
            stages_graph(stages),
            lambda off: {"s0": range(off, off + items)},
            True,
            lambda off: stages_dask(stages, items, off),
        ),
    ]


@dataclass
class BenchResult:
    """Best seconds per runner for one shape."""

    name: str
    seconds: dict[str, float]

    def ratio(self, anchor: str) -> float | None:
        """``anchor``'s time over mpipe's (above 1: mpipe is ahead; None when the anchor did
        not run)."""
        other = self.seconds.get(anchor)
        mine = self.seconds["mpipe"]
        return other / mine if other and mine > 0 else None


async def _time_mpipe(case: _Case, rounds: int) -> float:
    best = float("inf")
    async with GraphExecutor(case.graph) as executor:
        for r in range(rounds):
            data = case.inputs(r * 1000)
            start = time.perf_counter()
            if case.streaming:
                await executor.execute_stream(data)
            else:
                await executor.execute(data)
            best = min(best, time.perf_counter() - start)
    return best


def _time_dask(get: Callable[..., Any], case: _Case, rounds: int) -> float:
    best = float("inf")
    for r in range(rounds):
        dsk, keys = case.dask_graph(r * 1000)
        start = time.perf_counter()
        get(dsk, keys)
        best = min(best, time.perf_counter() - start)
    return best


def _anchors() -> dict[str, Callable[..., Any]]:
    try:
        import dask.local
        import dask.threaded
    except ImportError:
        return {}
    return {"dask-sync": dask.local.get_sync, "dask-threads": dask.threaded.get}


def run_bench(rounds: int = 5, scale: float = 1.0) -> list[BenchResult]:
    """Time every shape through mpipe (inline backend) and through each anchor.

    Args:
        rounds: Runs per shape and runner; the best counts.
        scale: Size of the shapes (1.0: the quick default).
    """
    anchors = _anchors()
    out = []
    for case in _cases(scale):
        seconds = {"mpipe": asyncio.run(_time_mpipe(case, rounds))}
        for name, get in anchors.items():
            seconds[name] = _time_dask(get, case, rounds)
        out.append(BenchResult(case.name, seconds))
    return out


def bench_lines(results: list[BenchResult]) -> list[str]:
    """A table of times and ratios."""
    anchors = [k for k in (results[0].seconds if results else {}) if k != "mpipe"]
    width = max([len(r.name) for r in results] + [5])
    head = f"{'shape':<{width}}  {'mpipe':>9}" + "".join(f"  {a:>12}" for a in anchors)
    head += "".join(f"  {'vs ' + a:>15}" for a in anchors)
    lines = [head]
    for r in results:
        row = f"{r.name:<{width}}  {r.seconds['mpipe'] * 1e3:>7.2f}ms"
        row += "".join(f"  {r.seconds[a] * 1e3:>10.2f}ms" for a in anchors)
        row += "".join(f"  {r.ratio(a) or 0:>14.2f}x" for a in anchors)
        lines.append(row)
    lines.append("")
    if anchors:
        lines.append("ratio = anchor time / mpipe time (above 1: mpipe is ahead); best of rounds")
    else:
        lines.append("dask is not installed: no anchors to compare with (pip install dask)")
    return lines
