"""Fusion: a CPU-heavy diamond and a chain on the process pool, fused, unfused and by hand.

Run: ``python -m pytest benchmarks/bench_fusion.py --benchmark-only -q -s``

48 items. The diamond: load a 1 MiB array -> two branches of about 5 ms of numpy work each ->
a join of the two; the chain: load -> work -> work (three stages, the last array comes back).
Each round runs the same items through every entry in turn, all pools warm (interleaved, as in
``bench_process_interleaved.py``, so that each sees the same load on average):

- mpipe, fused (the default: one worker call per item);
- mpipe with ``fuse=False`` (every stage a call of its own, through the parent);
- the same work fused by hand into one function per item, run by ``ProcessPoolExecutor.map``,
  with its defaults, and with one thread per numeric library in each worker (what mpipe, loky
  and Dask's nannies set: with the defaults each worker's OpenBLAS threads busy-wait beside
  the other workers after every BLAS call);
- Dask's multiprocessing scheduler on the same task graph (a task per stage and item);
- Dask distributed (a ``LocalCluster`` of one-thread worker processes) on that graph.

Reported: each entry's median seconds per item, and its time over mpipe fused's, rotation by
rotation (paired: both saw the same minute of the machine).
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
import statistics
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from typing import Any

import numpy as np
import pytest
from _anchors import WarmExecutor, cores, dask_client, print_now
from _fusion_work import (
    VALUES,
    calibrate,
    chain_item,
    diamond_item,
    join,
    join_two,
    load,
    other_work,
    work,
)
from _knobs import SCALE, rounds, scaled
from _work import one_thread_per_library

from mpipe import ProcessingGraph, SimpleProcessor

N_CORES = cores()
ITEMS = scaled(48, least=4)
STAGE_SECONDS = 0.005 * SCALE
ARRAY_VALUES = max(1024, round(VALUES * SCALE))
ROTATIONS = rounds(5)
_fresh = itertools.count(1)
TIMES: dict[str, dict[str, list[float]]] = {}


def diamond_graph(reps: int) -> ProcessingGraph:
    """load -> (left, right) -> join, every processor on the process pool."""
    g = ProcessingGraph()
    stages: list[tuple[str, Any]] = [
        ("load", partial(load, values=ARRAY_VALUES)),
        ("left", partial(work, reps=reps)),
        ("right", partial(other_work, reps=reps)),
    ]
    for pid, fn in stages:
        p = SimpleProcessor(fn, pid, execution="process")
        p.create_default_pipes()
        g.add_processor(p)
    j = SimpleProcessor(join, "join", execution="process")
    j.create_default_pipes(inputs=["left", "right"])
    g.add_processor(j)
    g.connect("load", "output", "left", "input")
    g.connect("load", "output", "right", "input")
    g.connect("left", "output", "join", "left")
    g.connect("right", "output", "join", "right")
    return g


def chain_graph(reps: int) -> ProcessingGraph:
    """load -> work -> work, every processor on the process pool."""
    g = ProcessingGraph()
    stages: list[tuple[str, Any]] = [
        ("load", partial(load, values=ARRAY_VALUES)),
        ("first", partial(work, reps=reps)),
        ("second", partial(work, reps=reps)),
    ]
    for pid, fn in stages:
        p = SimpleProcessor(fn, pid, execution="process")
        p.create_default_pipes()
        g.add_processor(p)
    g.connect("load", "output", "first", "input")
    g.connect("first", "output", "second", "input")
    return g


def diamond_tasks(seeds: list[int], reps: int) -> tuple[dict[Any, Any], list[Any]]:
    """The diamond as a Dask task graph: four tasks per item; the joins' keys."""
    dsk: dict[Any, Any] = {}
    for s in seeds:
        dsk[("load", s)] = (load, s, ARRAY_VALUES)
        dsk[("left", s)] = (work, ("load", s), reps)
        dsk[("right", s)] = (other_work, ("load", s), reps)
        dsk[("join", s)] = (join_two, ("left", s), ("right", s))
    return dsk, [("join", s) for s in seeds]


def chain_tasks(seeds: list[int], reps: int) -> tuple[dict[Any, Any], list[Any]]:
    """The chain as a Dask task graph: three tasks per item; the last ones' keys."""
    dsk: dict[Any, Any] = {}
    for s in seeds:
        dsk[("load", s)] = (load, s, ARRAY_VALUES)
        dsk[("first", s)] = (work, ("load", s), reps)
        dsk[("second", s)] = (work, ("first", s), reps)
    return dsk, [("second", s) for s in seeds]


SHAPES: dict[str, tuple[Callable[[int], ProcessingGraph], Any, Any, str, str]] = {
    # shape: (graph, task graph, by-hand function, source id, sink key)
    "diamond": (diamond_graph, diamond_tasks, diamond_item, "load", "join:output"),
    "chain": (chain_graph, chain_tasks, chain_item, "load", "second:output"),
}


def _same(a: Any, b: Any) -> bool:
    return bool(np.allclose(a, b))


@pytest.mark.parametrize("shape", list(SHAPES))
def test_fusion_interleaved(record: Any, shape: str) -> None:
    import dask.multiprocessing

    make_graph, make_tasks, by_hand, source, sink = SHAPES[shape]
    reps = calibrate(STAGE_SECONDS, ARRAY_VALUES)
    group = (
        f"process: cpu-heavy {shape} of {ITEMS} items ({ARRAY_VALUES * 8 // 1024} KiB arrays, "
        f"~{STAGE_SECONDS * 1e3:.2g} ms per stage) on {N_CORES} cores, interleaved"
    )
    times = TIMES.setdefault(group, {})
    spawn = multiprocessing.get_context("spawn")
    with (
        WarmExecutor(make_graph(reps), backend="process", max_workers=N_CORES) as fused,
        WarmExecutor(
            make_graph(reps), backend="process", max_workers=N_CORES, fuse=False
        ) as unfused,
        ProcessPoolExecutor(N_CORES, mp_context=spawn) as ppe,
        ProcessPoolExecutor(
            N_CORES, mp_context=spawn, initializer=one_thread_per_library
        ) as ppe_one_thread,
        ProcessPoolExecutor(N_CORES, mp_context=spawn) as dask_pool,
        dask_client(N_CORES) as client,
    ):
        warm = [0] * N_CORES
        for ex in (fused, unfused):
            ex.run(ex.ex.execute_stream({source: warm}))
        for pool in (ppe, ppe_one_thread):
            list(pool.map(by_hand, [(0, 1, ARRAY_VALUES)] * N_CORES))
        dsk, keys = make_tasks(list(range(N_CORES)), 1)
        dask.multiprocessing.get(dsk, keys, num_workers=N_CORES, pool=dask_pool)
        client.get(dsk, keys)

        def run_mpipe(ex: WarmExecutor, seeds: list[int]) -> list[Any]:
            return list(ex.run(ex.ex.execute_stream({source: seeds}))[sink])

        def run_dask_mp(seeds: list[int]) -> list[Any]:
            dsk, keys = make_tasks(seeds, reps)
            return list(dask.multiprocessing.get(dsk, keys, num_workers=N_CORES, pool=dask_pool))

        def run_distributed(seeds: list[int]) -> list[Any]:
            dsk, keys = make_tasks(seeds, reps)
            return list(client.get(dsk, keys))

        entries: dict[str, Callable[[list[int]], list[Any]]] = {
            "mpipe (fused)": partial(run_mpipe, fused),
            "mpipe fuse=False": partial(run_mpipe, unfused),
            "ProcessPoolExecutor.map (fused by hand)": lambda seeds: list(
                ppe.map(by_hand, [(s, reps, ARRAY_VALUES) for s in seeds])
            ),
            "ProcessPoolExecutor.map (fused by hand, one BLAS thread)": lambda seeds: list(
                ppe_one_thread.map(by_hand, [(s, reps, ARRAY_VALUES) for s in seeds])
            ),
            "dask multiprocessing scheduler": run_dask_mp,
            "dask distributed LocalCluster": run_distributed,
        }
        assert fused.ex.get_execution_status()["fused"], "the mpipe entry must run fused"

        def rotation(base: int) -> None:
            seeds = [base + i for i in range(ITEMS)]
            expected = by_hand((seeds[-1], reps, ARRAY_VALUES))
            for name, run in entries.items():
                start = time.perf_counter()
                out = run(seeds)
                times.setdefault(name, []).append(time.perf_counter() - start)
                assert len(out) == ITEMS and _same(out[-1], expected), name

        record(f"{group}: whole rotations", "every entry in turn", rotation, _seed, 1, ROTATIONS)
    for name, series in times.items():
        record.add(group, name, statistics.median(series[1:] or series), ITEMS)


def _seed() -> int:
    return next(_fresh) * 1000


@pytest.fixture(scope="module", autouse=True)
def report(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    load_avg = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    lines = []
    for group, entries in TIMES.items():
        runs = {name: series[1:] or series for name, series in entries.items()}
        base = runs.get("mpipe (fused)")
        if not base:
            continue
        lines.append(f"\n{group} ({len(base)} rotations; load average {load_avg}):")
        for name, series in sorted(runs.items(), key=lambda kv: statistics.median(kv[1])):
            paired = [t / b for t, b in zip(series, base, strict=True)]
            lines.append(
                f"  {name:42s} {statistics.median(series) / ITEMS * 1e3:8.2f} ms per item, "
                f"time / mpipe fused's: median {statistics.median(paired):.3f}"
            )
    if lines:
        print_now(request, "\n".join(lines))
