"""A script's first run: a new executor (worker start included) against warm pools, and where
the first run's time goes.

Run: ``python -m pytest benchmarks/bench_process_cold.py --benchmark-only -q -s -p no:randomly``
(sizes: ``MPIPE_BENCH_COLD_ITEMS`` arrays of ``MPIPE_BENCH_ITEM_MIB`` MiB, default 64 of 8 MiB,
and a ``MPIPE_BENCH_BIG_MIB`` round trip, default 256 MiB; ``MPIPE_BENCH_PHASE_ROUNDS`` rounds
of the first-run phases, default 5; ``MPIPE_BENCH_COLD_ARENA_MIB``: the ``arena_size`` of the
phases' round-trip executor, default the executor's own).

A script that runs one graph once pays for starting the pool, shipping its functions, growing
the shared memory and faulting it in; the other benchmarks time warm pools only. Here, with
the executor's defaults:

- *cold*: a new executor (or pool) per round: start it, run the work, stop it; timed whole.
  The work is a stream of arrays through two process stages (``scale``: ``2 a``, then
  ``total``: its sum), and one big array through an identity stage and back. Anchors:
  ``ProcessPoolExecutor`` and joblib (its reusable loky executor shut down before each round),
  each started cold in the same run, chaining the two stages through the parent.
- *warm*: the same work on pools started before timing.
- *where the first run goes* (mpipe only, printed): on fresh executors, the pool's start
  (``await executor.start()``: interpreters up and ready), a first one-item run through the two
  stages (the functions shipped to the workers, the first calls), the first full stream (fresh
  memory faulted in: the source's arrays in the parent, the work's results in the workers, the
  arena past its floor), a second full stream (warm), the parent's kernel time in each, and the
  stop; on a third, the parent's peak RSS in a first and a second stream; on a fourth, the big
  round trip's first run and a warm one. Beside them, the same work in one fresh plain
  interpreter (no pool): numpy's import, a first and second serial pass, and the big payload
  copied into fresh memory and again, the part of a first run that any tool pays. The goal: a
  first run costs no more than the pool's start plus 1.5 times a warm run.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import numpy as np
import psutil
import pytest
from _anchors import WarmExecutor, cores, identity, line_graph, print_now, scale, total
from _knobs import rounds
from joblib import Parallel, delayed
from joblib.externals.loky import get_reusable_executor

from mpipe import GraphExecutor

pytestmark = pytest.mark.timeout(3600)

MiB = 1 << 20
N_CORES = cores()
ITEMS = int(os.environ.get("MPIPE_BENCH_COLD_ITEMS", "64"))
ITEM = int(os.environ.get("MPIPE_BENCH_ITEM_MIB", "8")) * MiB
BIG = int(os.environ.get("MPIPE_BENCH_BIG_MIB", "256")) * MiB
ROUNDS = 3
#: Rounds of the first-run phases: a first run's page faults move with the host's memory (one
#: round in several pays for fresh huge pages), so its median takes more rounds.
PHASE_ROUNDS = rounds(int(os.environ.get("MPIPE_BENCH_PHASE_ROUNDS", "5")))
#: ``arena_size`` of the executor whose big round trips the phases time (MiB; 0: the default).
ROUND_TRIP_ARENA = int(os.environ.get("MPIPE_BENCH_COLD_ARENA_MIB", "0")) * MiB
STREAM = f"{ITEMS} x {ITEM // MiB} MiB arrays through two process stages"
ROUND_TRIP = f"a {BIG // MiB} MiB array through an identity process stage and back"
COLD_STREAM = f"cold (start, run, stop): {STREAM}"
WARM_STREAM = f"warm: {STREAM}"
COLD_BIG = f"cold (start, run, stop): {ROUND_TRIP}"
WARM_BIG = f"warm: {ROUND_TRIP}"
_fresh = itertools.count(1)
PHASES: dict[str, list[float]] = {}


def arrays(seed: int) -> Iterator[np.ndarray]:
    """The stream: fresh arrays, made one at a time as they are pulled."""
    for i in range(ITEMS):
        yield np.full(ITEM // 8, float(seed + i))


def expected(seed: int) -> float:
    return sum(2.0 * (seed + i) * (ITEM // 8) for i in range(ITEMS))


def big_array() -> np.ndarray:
    return np.full(BIG // 8, float(next(_fresh)))


def two_stage_graph() -> Any:
    return line_graph([scale, total], execution="process")


async def _stream(ex: GraphExecutor, seed: int) -> float:
    out = await ex.execute_stream({"s0": arrays(seed)})
    return float(sum(out["s1:output"]))


# -- cold ----------------------------------------------------------------------------------------


def test_cold_stream_mpipe(record: Any) -> None:
    def body(seed: int) -> None:
        async def main() -> float:
            async with GraphExecutor(two_stage_graph(), max_workers=N_CORES) as ex:
                return await _stream(ex, seed)

        assert asyncio.run(main()) == expected(seed)

    record(COLD_STREAM, "mpipe", body, lambda: next(_fresh), 1, ROUNDS)


def test_cold_stream_process_pool_executor(record: Any) -> None:
    def body(seed: int) -> None:
        with ProcessPoolExecutor(N_CORES) as pool:
            scaled = pool.map(scale, arrays(seed))
            assert sum(pool.map(total, scaled)) == expected(seed)

    record(COLD_STREAM, "ProcessPoolExecutor", body, lambda: next(_fresh), 1, ROUNDS)


def test_cold_stream_joblib(record: Any) -> None:
    def setup() -> int:
        get_reusable_executor().shutdown(wait=True)  # the next Parallel starts its workers
        return next(_fresh)

    def body(seed: int) -> None:
        with Parallel(n_jobs=N_CORES) as parallel:
            scaled = parallel(delayed(scale)(a) for a in arrays(seed))
            assert sum(parallel(delayed(total)(a) for a in scaled)) == expected(seed)

    record(COLD_STREAM, "joblib Parallel", body, setup, 1, ROUNDS)


def test_cold_round_trip_mpipe(record: Any) -> None:
    def body(x: np.ndarray) -> None:
        graph = line_graph([identity], execution="process")
        out = GraphExecutor(graph, max_workers=N_CORES).run({"s0": x})["s0:output"]
        assert out.nbytes == BIG and out[-1] == x[-1]

    record(COLD_BIG, "mpipe", body, big_array, 1, ROUNDS)


def test_cold_round_trip_process_pool_executor(record: Any) -> None:
    def body(x: np.ndarray) -> None:
        with ProcessPoolExecutor(N_CORES) as pool:
            assert pool.submit(identity, x).result()[-1] == x[-1]

    record(COLD_BIG, "ProcessPoolExecutor", body, big_array, 1, ROUNDS)


def test_cold_round_trip_joblib(record: Any) -> None:
    def setup() -> np.ndarray:
        get_reusable_executor().shutdown(wait=True)
        return big_array()

    def body(x: np.ndarray) -> None:
        assert Parallel(n_jobs=N_CORES)([delayed(identity)(x)])[0][-1] == x[-1]

    record(COLD_BIG, "joblib Parallel", body, setup, 1, ROUNDS)


# -- warm ----------------------------------------------------------------------------------------


def test_warm_stream_mpipe(record: Any) -> None:
    with WarmExecutor(two_stage_graph(), max_workers=N_CORES) as warm:
        warm.run(_stream(warm.ex, 0))

        def body(seed: int) -> None:
            assert warm.run(_stream(warm.ex, seed)) == expected(seed)

        record(WARM_STREAM, "mpipe", body, lambda: next(_fresh), 1, ROUNDS)


def test_warm_stream_process_pool_executor(record: Any) -> None:
    with ProcessPoolExecutor(N_CORES) as pool:
        list(pool.map(total, [np.zeros(1)] * N_CORES))

        def body(seed: int) -> None:
            assert sum(pool.map(total, pool.map(scale, arrays(seed)))) == expected(seed)

        record(WARM_STREAM, "ProcessPoolExecutor", body, lambda: next(_fresh), 1, ROUNDS)


def test_warm_round_trip_mpipe(record: Any) -> None:
    with WarmExecutor(line_graph([identity], execution="process"), max_workers=N_CORES) as warm:
        warm.run(warm.ex.execute({"s0": big_array()}))

        def body(x: np.ndarray) -> None:
            assert warm.run(warm.ex.execute({"s0": x}))["s0:output"][-1] == x[-1]

        record(WARM_BIG, "mpipe", body, big_array, 1, ROUNDS)


# -- where a first run's time goes ------------------------------------------------------------


def _phase(name: str, seconds: float) -> None:
    PHASES.setdefault(name, []).append(seconds)


def test_first_run_phases(benchmark: Any) -> None:
    """On fresh executors, each step timed apart (not a pytest-benchmark entry: printed at the
    end). One executor: its start, a first full stream, a second (warm) one, its stop. Another:
    its start, a one-item run first (the functions shipped, the workers' first calls), then the
    full stream, which then pays only for the arena's growth and page faults. A third: the
    parent's peak RSS in its first and second streams. A fourth: the big round trip, first
    and warm."""

    async def streams(seed: int) -> None:
        async with GraphExecutor(two_stage_graph(), max_workers=N_CORES) as ex:
            t0 = time.perf_counter()
            await ex.start()
            t1, sys1 = time.perf_counter(), os.times().system
            assert await _stream(ex, seed) == expected(seed)
            t2, sys2 = time.perf_counter(), os.times().system
            heap = ex._backends["process"]._arena.stats()["heap_bytes"]  # type: ignore[attr-defined]
            assert await _stream(ex, seed + 1) == expected(seed + 1)
            t3, sys3 = time.perf_counter(), os.times().system
        t4 = time.perf_counter()
        _phase("pool start (workers up and ready)", t1 - t0)
        _phase("first full stream", t2 - t1)
        _phase("second full stream (warm)", t3 - t2)
        _phase("stop", t4 - t3)
        _phase("arena heap after the first stream, MiB", heap / MiB)
        # The parent's kernel time: page faults of the memory the source's arrays take.
        _phase("parent's system time in the first full stream", sys2 - sys1)
        _phase("parent's system time in the second (warm)", sys3 - sys2)

    async def shipped_first(seed: int) -> None:
        async with GraphExecutor(two_stage_graph(), max_workers=N_CORES) as ex:
            t0 = time.perf_counter()
            await ex.start()
            t1 = time.perf_counter()
            assert await ex.execute_stream({"s0": [np.ones(1)]}) == {"s1:output": [2.0]}
            t2 = time.perf_counter()
            assert await _stream(ex, seed) == expected(seed)
            t3 = time.perf_counter()
        _phase("pool start (workers up and ready)", t1 - t0)
        _phase("one-item first run (functions shipped, first calls)", t2 - t1)
        _phase("full stream after it (fresh memory faulted in)", t3 - t2)

    async def parent_memory(seed: int) -> None:
        # A fresh executor again, its parent's RSS sampled in a thread (apart from the timed
        # streams above): a first stream whose workers are slow to take the first items leaves
        # the source's arrays waiting in the first pipe, up to its bounds.
        async with GraphExecutor(two_stage_graph(), max_workers=N_CORES) as ex:
            await ex.start()
            for name, offset in (("first", 0), ("second (warm)", 1)):
                with ParentPeak() as peak:
                    assert await _stream(ex, seed + offset) == expected(seed + offset)
                _phase(f"parent's peak RSS over its start, {name} full stream, MiB", peak.mib)

    async def round_trips() -> None:
        # The big round trip on a fresh executor: its first run grows the arena past its floor
        # by the payload's size, and every page of that growth is faulted in for the first time.
        graph = line_graph([identity], execution="process")
        arena = {"arena_size": ROUND_TRIP_ARENA} if ROUND_TRIP_ARENA else {}
        async with GraphExecutor(graph, max_workers=N_CORES, **arena) as ex:
            t0 = time.perf_counter()
            await ex.start()
            _phase("pool start for the round trips", time.perf_counter() - t0)
            for name in ("first", "second (warm)"):
                x = big_array()
                t0, sys0 = time.perf_counter(), os.times().system
                out = (await ex.execute({"s0": x}))["s0:output"]
                t1, sys1 = time.perf_counter(), os.times().system
                assert out[-1] == x[-1]
                del out, x
                _phase(f"{name} {BIG // MiB} MiB round trip", t1 - t0)
                _phase(f"parent's system time in the {name} round trip", sys1 - sys0)

    def body() -> None:
        asyncio.run(streams(next(_fresh)))
        asyncio.run(shipped_first(next(_fresh)))
        asyncio.run(parent_memory(next(_fresh)))
        asyncio.run(round_trips())
        _plain_process_passes()

    benchmark.pedantic(body, rounds=PHASE_ROUNDS, iterations=1, warmup_rounds=0)


class ParentPeak:
    """This process's peak RSS over its RSS on entry, sampled every 2 ms in a thread."""

    def __init__(self) -> None:
        self._me = psutil.Process()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="parent-peak", daemon=True)
        self.base = self.peak = 0

    def _loop(self) -> None:
        while not self._stop.wait(0.002):
            self.peak = max(self.peak, self._me.memory_info().rss)

    @property
    def mib(self) -> float:
        return (self.peak - self.base) / MiB

    def __enter__(self) -> ParentPeak:
        self.base = self.peak = self._me.memory_info().rss
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._me.memory_info().rss)


# The same work in one fresh interpreter, no pool: what any tool's first run pays on this host
# (numpy's import, and the first touch of the memory the arrays and the work's results take:
# fresh pages, and on hosts whose transparent huge pages defragment on demand, the compaction
# numpy's huge-page advice asks for). Serial: an upper bound of what falls on a pool's critical path.
_PLAIN = """
import sys, time
t0 = time.perf_counter()
import numpy as np
t1 = time.perf_counter()
from _work import scale, total
items, size, big = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
passes = []
for seed in (1, 2):
    t = time.perf_counter()
    sum(total(scale(np.full(size // 8, float(seed + i)))) for i in range(items))
    passes.append(time.perf_counter() - t)
# The big payload copied into fresh memory of this process (numpy asks for huge pages), then
# into the same memory again: what a first touch of that many bytes costs outside the arena.
x = np.full(big // 8, 1.0)
copies = []
for _ in range(2):
    t = time.perf_counter()
    y = np.empty_like(x) if not copies else y
    np.copyto(y, x)
    copies.append(time.perf_counter() - t)
print(t1 - t0, *passes, *copies)
"""


def _plain_process_passes() -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    out = subprocess.run(
        [sys.executable, "-c", _PLAIN, str(ITEMS), str(ITEM), str(BIG)],
        cwd=here,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    imported, first, again, big_first, big_again = (float(x) for x in out.split())
    _phase("plain process: import numpy", imported)
    _phase("plain process: the stream's work serially, first pass", first)
    _phase("plain process: the same, second pass", again)
    _phase(f"plain process: {BIG // MiB} MiB copied into fresh memory", big_first)
    _phase(f"plain process: {BIG // MiB} MiB copied into the same memory again", big_again)


@pytest.fixture(scope="module", autouse=True)
def report(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if not PHASES:
        return
    median = {name: statistics.median(values) for name, values in PHASES.items()}
    lines = [f"\nfirst runs on {N_CORES} cores (load average {os.getloadavg()[0]:.2f}):"]
    for name, value in median.items():
        unit = "" if name.endswith("MiB") else " s"
        lines.append(f"  {name:55s} median {value:8.3f}{unit}")
    first, warm = median["first full stream"], median["second full stream (warm)"]
    verdict = "met" if first <= 1.5 * warm else "NOT met"
    lines.append(
        f"  {verdict:8s} first run <= pool start + 1.5 x a warm run: the first stream took "
        f"{first:.3f} s past the pool's start, {first / warm:.2f}x the warm one ({warm:.3f} s)"
    )
    first_big = median[f"first {BIG // MiB} MiB round trip"]
    warm_big = median[f"second (warm) {BIG // MiB} MiB round trip"]
    verdict = "met" if first_big <= 1.5 * warm_big else "NOT met"
    lines.append(
        f"  {verdict:8s} the same for the {BIG // MiB} MiB round trip: the first took "
        f"{first_big:.3f} s past the pool's start, {first_big / warm_big:.2f}x the warm one "
        f"({warm_big:.3f} s)"
    )
    plain = (
        median["plain process: import numpy"]
        + median["plain process: the stream's work serially, first pass"]
        - median["plain process: the same, second pass"]
    )
    lines.append(
        f"  the first stream's extra over a warm one: {first - warm:.3f} s; the same work's own "
        f"first-run extra in one plain process (numpy's import, first touch): {plain:.3f} s"
    )
    print_now(request, "\n".join(lines))
