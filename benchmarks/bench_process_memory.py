"""Memory of process pipelines streaming big items: Arrow record batches through three stages,
and numpy arrays through two stages with every setting at its default.

Run: ``python -m pytest benchmarks/bench_process_memory.py --benchmark-only -q -s``
(the full size: ``MPIPE_BENCH_STREAM_MIB=2048``; the default streams 256 MiB so that
the module finishes in a minute or two).

*Arrays, defaults*: a generator in the parent makes 8 MiB arrays (``MPIPE_BENCH_BATCH_MIB``)
lazily; ``scale`` (``2 a``, new bytes) and ``total`` (its sum) run in worker processes; no
option is set, so every pipe holds its default 1,000 items or 64 MiB, whichever fills first,
and the arena starts at its default size and grows as it needs. Goals: the parent's peak RSS
at most 512 MiB over its own at the start, and the whole process tree's peak PSS at most 1 GiB
over the warm pool's, reported against the pipes' bounds in bytes.

*Memory given back*: a ``MPIPE_BENCH_BIG_MIB`` (default 256; the goal's figure: 1024) array
through an identity process stage and back on a warm executor; the parent's RSS and the
tree's PSS before the pool starts, with the pool warm, right after the run (result dropped),
once the pool has trimmed the arena (a second later), and after the executor closed.

*Record batches*:
The parent generates record batches of ``MPIPE_BENCH_BATCH_MIB`` (8 MiB: two int64 columns)
lazily; three process stages add a column, rewrite it, and reduce each batch to two numbers,
so that nothing accumulates at the sink. Every pipe, the entry pipe included, holds
``PIPE_ITEMS`` items. While the stream runs, a thread samples the resident memory of the parent
and every worker (psutil); at the end the arena's high-water mark is read from the backend's
allocator statistics. The figures are reported against the stream's total size and against the
pipes' capacity (pipe slots times the largest batch). Bounded means: they stay near the pipes'
capacity however long the stream; run it at 256 MiB and at 2 GiB to see.

The anchor is the same three stages chained through ``multiprocess.Pool.imap`` (the stream
tools of the standard pool), which has no backpressure: its task feeder takes input as fast as
the generator gives it. The pool is warm in both cases (started before timing; not measured).
"""

from __future__ import annotations

import asyncio
import itertools
import os
from collections.abc import Iterator
from typing import Any

import multiprocess
import numpy as np
import pyarrow as pa
import pytest
from _anchors import (
    MemorySampler,
    WarmExecutor,
    add_column,
    cores,
    line_graph,
    print_now,
    scale,
    scale_column,
    summarize,
    total,
)

from mpipe._model._pipe import DEFAULT_MAX_BYTES

pytestmark = pytest.mark.timeout(3600)

MiB = 1 << 20
TOTAL = int(os.environ.get("MPIPE_BENCH_STREAM_MIB", "256")) * MiB
BATCH = int(os.environ.get("MPIPE_BENCH_BATCH_MIB", "8")) * MiB
ROWS = BATCH // 16  # two int64 columns
N_BATCHES = max(1, TOTAL // BATCH)
PIPE_ITEMS = 4
# The arena faulted in up front (it grows beyond it as payloads need). ``0``: the executor's
# default (64 MiB).
ARENA_MIB = int(os.environ.get("MPIPE_BENCH_ARENA_MIB", "0"))
ARENA = {"arena_size": ARENA_MIB * MiB} if ARENA_MIB else {}
# The anchor is slow (no zero-copy): one timed round at the full size.
ROUNDS = 3 if TOTAL // MiB <= 512 else 1
GROUP = f"process: 3-stage stream of {TOTAL // MiB} MiB of record batches (per MiB)"
_fresh = itertools.count(1)
FIGURES: dict[str, dict[str, float]] = {}


def batches(seed: int) -> Iterator[pa.RecordBatch]:
    """``N_BATCHES`` fresh record batches, made one at a time as they are pulled."""
    for i in range(N_BATCHES):
        a = np.arange(ROWS, dtype=np.int64) + seed + i
        yield pa.record_batch({"a": a, "b": a[::-1].copy()})


def _expected_rows() -> int:
    return N_BATCHES * ROWS


BIG = int(os.environ.get("MPIPE_BENCH_BIG_MIB", "256")) * MiB
GIVEN_BACK: list[tuple[str, int, int]] = []


def test_memory_given_back_after_a_big_run(benchmark: Any) -> None:
    from mpipe._backends._process._backend import TRIM_DELAY

    sampler = MemorySampler()

    def note(when: str) -> None:
        rss = sampler._me.memory_info().rss
        GIVEN_BACK.append((when, rss, sampler._sample()[1]))

    def body() -> None:  # once: the figures are memory, not time
        note("before the pool starts")
        graph = line_graph([lambda x: x], execution="process")
        with WarmExecutor(graph, max_workers=1) as warm:
            warm.run(warm.ex.execute({"s0": 1}))
            note("pool warm")
            out = warm.run(warm.ex.execute({"s0": np.full(BIG // 8, 1.0)}))["s0:output"]
            assert out.nbytes == BIG
            del out
            note(f"after the {BIG // MiB} MiB run, result dropped")
            warm.run(asyncio.sleep(TRIM_DELAY + 0.5))  # the pool's idle trim
            note("a second later (trimmed)")
        note("after the executor closed")

    benchmark.pedantic(body, rounds=1, iterations=1)


ARRAYS = f"process: 2-stage stream of {TOTAL // MiB} MiB of numpy arrays, defaults (per MiB)"
ARRAY_FIGURES: dict[str, float] = {}


def arrays(seed: int) -> Iterator[np.ndarray]:
    """``N_BATCHES`` fresh arrays of ``BATCH`` bytes, made one at a time as they are pulled."""
    for i in range(N_BATCHES):
        yield np.full(BATCH // 8, float(seed + i))


def test_array_stream_defaults_mpipe(record: Any) -> None:
    graph = line_graph([scale, total], execution="process")
    for lane in (graph.get_processor("s0").input_pipes["input"], *graph.pipes.values()):
        lane.max_size = 1000  # line_graph's own setting: back to the defaults
        assert lane.max_bytes == DEFAULT_MAX_BYTES
    with MemorySampler() as sampler, WarmExecutor(graph, max_workers=cores()) as warm:
        ex = warm.ex
        warm.run(ex.execute_stream({"s0": itertools.islice(arrays(0), 1)}))
        sampler.mark_warm()

        async def consume(seed: int) -> float:
            got = 0.0
            async for _key, value in ex.stream({"s0": arrays(seed)}):
                got += value
            return got

        def body(seed: int) -> None:
            want = sum(2.0 * (seed + i) * (BATCH // 8) for i in range(N_BATCHES))
            assert warm.run(consume(seed)) == want

        record(ARRAYS, "mpipe", body, lambda: next(_fresh), TOTAL // MiB, ROUNDS)
        ARRAY_FIGURES["arena_peak"] = warm.backend._arena.stats()["peak_used_bytes"]
        peaks = [
            p.get_metrics()["peak_bytes"]
            for p in (graph.get_processor("s0").input_pipes["input"], *graph.pipes.values())
        ]
        ARRAY_FIGURES["pipe_peak"] = max(peaks)
    ARRAY_FIGURES.update(
        parent_base=sampler.base_parent_rss,
        parent_peak=sampler.peak_parent_rss,
        warm_pss=sampler.warm_pss,
        peak_pss=sampler.peak_pss,
    )


def _report(name: str, sampler: MemorySampler, arena_peak: int = 0) -> None:
    FIGURES[name] = {
        "base_pss": sampler.base_pss,
        "warm_pss": sampler.warm_pss,
        "peak_pss": sampler.peak_pss,
        "peak_rss": sampler.peak_rss,
        "arena_peak": arena_peak,
        "samples": sampler.samples,
    }


def test_stream_memory_mpipe(record: Any) -> None:
    graph = line_graph([add_column, scale_column, summarize], pipe_size=PIPE_ITEMS)
    with (
        MemorySampler() as sampler,
        WarmExecutor(graph, backend="process", max_workers=cores(), **ARENA) as warm,
    ):
        ex = warm.ex
        one = itertools.islice(batches(0), 1)
        warm.run(ex.execute_stream({"s0": one}))  # the workers import pyarrow
        sampler.mark_warm()

        async def consume(seed: int) -> int:
            rows = 0
            async for _key, (n, _total) in ex.stream({"s0": batches(seed)}):
                rows += n
            return rows

        def body(seed: int) -> None:
            assert warm.run(consume(seed)) == _expected_rows()

        record(GROUP, "mpipe", body, lambda: next(_fresh), TOTAL // MiB, ROUNDS)
        arena_peak = int(warm.backend._arena.stats()["peak_used_bytes"])
    _report("mpipe", sampler, arena_peak)


def test_stream_memory_multiprocess_imap(record: Any) -> None:
    with MemorySampler() as sampler, multiprocess.Pool(cores()) as pool:
        pool.map(add_column, itertools.islice(batches(0), 1))  # the workers import pyarrow
        sampler.mark_warm()

        def body(seed: int) -> None:
            s0 = pool.imap(add_column, batches(seed), chunksize=1)
            s1 = pool.imap(scale_column, s0, chunksize=1)
            rows = sum(n for n, _ in pool.imap(summarize, s1, chunksize=1))
            assert rows == _expected_rows()

        record(GROUP, "multiprocess.Pool.imap x3", body, lambda: next(_fresh), TOTAL // MiB, ROUNDS)
    _report("multiprocess.Pool.imap x3", sampler)


@pytest.fixture(scope="module", autouse=True)
def report(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if GIVEN_BACK:
        print_now(
            request,
            "\n".join(
                [f"\nmemory around a {BIG // MiB} MiB round trip (parent RSS, tree PSS):"]
                + [f"  {w:45s} {r / MiB:7.0f} MiB {p / MiB:7.0f} MiB" for w, r, p in GIVEN_BACK]
            ),
        )
    if ARRAY_FIGURES:
        _report_arrays(request)
    if not FIGURES:
        return
    # Largest item: a batch after stage 1 (three int64 columns). Each process stage also has
    # up to two firings per worker in flight, each holding its input and its output.
    largest = ROWS * 8 * 3
    pipes = 3 * PIPE_ITEMS * largest
    in_flight = 3 * 2 * cores() * 2 * largest
    lines = [
        f"\n{GROUP}: {N_BATCHES} batches of {BATCH // MiB} MiB, {cores()} workers, arena "
        f"{ARENA_MIB or 64} MiB; pipes hold "
        f"{PIPE_ITEMS} items each: 3 pipes x {PIPE_ITEMS} x {largest / MiB:.0f} MiB = "
        f"{pipes / MiB:.0f} MiB, plus up to {in_flight / MiB:.0f} MiB in flight in firings; "
        f"load average {', '.join(f'{x:.2f}' for x in os.getloadavg())}",
    ]
    for name, f in FIGURES.items():
        grown = f["peak_pss"] - f["warm_pss"]
        lines.append(
            f"  {name:26s} peak PSS (parent + workers) {f['peak_pss'] / MiB:6.0f} MiB "
            f"(parent alone {f['base_pss'] / MiB:.0f}, warm pool {f['warm_pss'] / MiB:.0f}), "
            f"+{grown / MiB:.0f} MiB over the warm pool: {grown / TOTAL:.2f}x the "
            f"stream, {grown / pipes:.2f}x the pipes; RSS sum {f['peak_rss'] / MiB:.0f} MiB; "
            f"arena high-water {f['arena_peak'] / MiB:.0f} MiB "
            f"({f['arena_peak'] / pipes:.2f}x the pipes); {f['samples']:.0f} samples"
        )
    print_now(request, "\n".join(lines))


def _report_arrays(request: pytest.FixtureRequest) -> None:
    f = ARRAY_FIGURES
    # Two pipes hold arrays (the entry pipe and the one between the stages; the sink gets
    # floats), each bounded at 64 MiB plus one item; each stage has up to two firings per
    # worker in flight, holding an input and an output.
    pipes = 2 * (DEFAULT_MAX_BYTES + BATCH)
    in_flight = 2 * 2 * cores() * 2 * BATCH
    parent = f["parent_peak"] - f["parent_base"]
    tree = f["peak_pss"] - f["warm_pss"]
    lines = [
        f"\n{ARRAYS}: {N_BATCHES} arrays of {BATCH // MiB} MiB, {cores()} workers; pipes bound "
        f"{pipes / MiB:.0f} MiB, up to {in_flight / MiB:.0f} MiB more in firings in flight; "
        f"load average {os.getloadavg()[0]:.2f}",
        f"  {'met' if parent <= 512 * MiB else 'NOT met':8s} parent peak RSS +{parent / MiB:.0f} "
        f"MiB over its start (goal <= +512 MiB): {parent / pipes:.2f}x the pipes' bound",
        f"  {'met' if tree <= 1024 * MiB else 'NOT met':8s} process tree peak PSS "
        f"+{tree / MiB:.0f} MiB over the warm pool (goal <= +1 GiB): {tree / pipes:.2f}x the "
        f"pipes' bound; the fullest pipe held {f['pipe_peak'] / MiB:.0f} MiB, the arena "
        f"{f['arena_peak'] / MiB:.0f} MiB at most",
    ]
    print_now(request, "\n".join(lines))
