"""The CPU-bound benchmark with its entries interleaved, for a machine shared with other work.

Run: ``python -m pytest benchmarks/bench_process_interleaved.py --benchmark-only -q -s``

``bench_process.py`` times each pool in its own test, one after the other; when other work
comes and goes on the machine, a pool measured in a busy minute looks slower than one measured
in a quiet minute. Here every round runs the same sixteen ~0.2 s firings (eight per core)
through each pool in turn (serial in the parent, mpipe, ``ProcessPoolExecutor``,
``multiprocess.Pool``, joblib), all pools warm and alive together (idle pools sleep), so each
pool sees the same load on average. Reported: the median seconds per firing of each, each
one's speedup over serial in the same rounds, and mpipe's time over the best anchor's,
rotation by rotation (a paired comparison: both saw the same minute of the machine).
"""

from __future__ import annotations

import itertools
import os
import statistics
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import multiprocess
import pytest
from _anchors import WarmExecutor, burn, calibrate_burn, cores, inc, line_graph, print_now
from _knobs import SCALE, rounds
from joblib import Parallel, delayed

N_CORES = cores()
CPU_N = 8 * N_CORES
CPU_SECONDS = 0.2 * SCALE
GROUP = (
    f"process: {CPU_N} CPU-bound firings of ~{CPU_SECONDS:.3g} s on {N_CORES} cores, interleaved"
)
_fresh = itertools.count(1)
TIMES: dict[str, list[float]] = {}
#: Rotations timed (after pytest-benchmark's warm-up one); each runs every entry once.
ROTATIONS = rounds(5)


def test_cpu_interleaved(record: Any) -> None:
    steps = calibrate_burn(CPU_SECONDS)
    with (
        WarmExecutor(line_graph([burn]), backend="process", max_workers=N_CORES) as warm,
        ProcessPoolExecutor(N_CORES) as ppe,
        multiprocess.Pool(N_CORES) as mp_pool,
        Parallel(n_jobs=N_CORES) as parallel,
    ):
        list(ppe.map(inc, range(N_CORES)))
        warm.run(warm.ex.execute_stream({"s0": [(0, 1)] * N_CORES}))
        entries: dict[str, Callable[[list[tuple[int, int]]], list[int]]] = {
            "serial (in the parent)": lambda s: [burn(x) for x in s],
            "mpipe": lambda s: warm.run(warm.ex.execute_stream({"s0": s}))["s0:output"],
            "ProcessPoolExecutor.map": lambda s: list(ppe.map(burn, s)),
            "multiprocess.Pool.map(chunksize=1)": lambda s: mp_pool.map(burn, s, chunksize=1),
            "joblib Parallel": lambda s: parallel(delayed(burn)(x) for x in s),
        }

        def rotation(base: int) -> None:
            for name, run in entries.items():
                specs = [(base + i, steps) for i in range(CPU_N)]
                start = time.perf_counter()
                out = run(specs)
                TIMES.setdefault(name, []).append(time.perf_counter() - start)
                assert len(out) == CPU_N and out[-1] == burn(specs[-1])

        record(
            f"{GROUP}: whole rotations",
            "every pool in turn",
            rotation,
            lambda: next(_fresh) * 1000,
            1,
            ROTATIONS,
        )
    # Each pool's median over the rotations (the first, pytest-benchmark's warm-up, left out),
    # filed per firing like the other benchmarks' figures.
    for name, times in TIMES.items():
        record.add(GROUP, name, statistics.median(times[1:] or times), CPU_N)


@pytest.fixture(scope="module", autouse=True)
def report(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "serial (in the parent)" not in TIMES:
        return
    # The first rotation is pytest-benchmark's warm-up round: left out.
    runs = {name: times[1:] or times for name, times in TIMES.items()}
    serial = statistics.median(runs["serial (in the parent)"])
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    lines = [f"\n{GROUP} ({len(runs['mpipe'])} rotations; load average {load}):"]
    for name, times in sorted(runs.items(), key=lambda kv: statistics.median(kv[1])):
        median = statistics.median(times)
        lines.append(
            f"  {name:36s} {median / CPU_N * 1e3:8.1f} ms per firing, "
            f"speedup {serial / median:5.2f} (goal {0.95 * N_CORES:.2f})"
        )
    # Paired, rotation by rotation: mpipe against the best anchor of the same rotation, which
    # saw the same load (medians of different entries can come from different minutes).
    anchors = [n for n in runs if n not in ("mpipe", "serial (in the parent)")]
    paired = [
        runs["mpipe"][i] / min(runs[n][i] for n in anchors) for i in range(len(runs["mpipe"]))
    ]
    lines.append(
        f"  mpipe's time / the best anchor's, rotation by rotation: median "
        f"{statistics.median(paired):.3f} ({', '.join(f'{r:.3f}' for r in paired)})"
    )
    print_now(request, "\n".join(lines))
