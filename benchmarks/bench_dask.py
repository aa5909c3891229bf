"""The same CPU-heavy graph on the process backend, on the Dask backend, and as hand-written
``client.submit`` code, over one ``LocalCluster`` (2 single-threaded worker processes).

Run: ``python -m pytest benchmarks/bench_dask.py --benchmark-only -q``

The graph: ``make`` (a seed -> a list of numbers), ``crunch`` (pure-Python arithmetic, about
60 ms of one core per item), ``total`` (a float): 32 items a round, streamed. The hand-written
anchor submits the same three functions per item with futures feeding futures and gathers the
sinks, which is what a Dask user would write; the goal is to stay within 10% of it. Every round
gets fresh seeds, and each contender keeps its pool or client between rounds (one event loop).
"""

from __future__ import annotations

import asyncio
import itertools
import statistics
import time
from collections.abc import Iterator
from typing import Any

import pytest
from _knobs import rounds as timed_rounds
from _knobs import scaled

from mpipe import GraphExecutor, create_simple_pipeline

distributed = pytest.importorskip("distributed")

ITEMS = scaled(32, 2)
#: Inner loop length of ``crunch``: about 60 ms of CPU per item.
WORK = scaled(1_000_000, 1_000)
_seeds = itertools.count(1)


def make(seed: int) -> list[int]:
    return [seed * 7 + i for i in range(64)]


def crunch(values: list[int]) -> list[int]:
    out = []
    for v in values:
        acc = v
        for i in range(WORK // len(values)):
            acc = (acc * 31 + i) % 1_000_003
        out.append(acc)
    return out


def total(values: list[int]) -> float:
    return float(sum(values))


def _fresh_seeds() -> list[int]:
    start = next(_seeds) * ITEMS
    return list(range(start, start + ITEMS))


def _expected(seeds: list[int]) -> list[float]:
    return [total(crunch(make(s))) for s in seeds[:1]]


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
    ) as c:
        yield c


def _graph() -> Any:
    return create_simple_pipeline([("make", make), ("crunch", crunch), ("total", total)])


def _bench_mpipe(record: Any, name: str, executor: GraphExecutor) -> None:
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(executor.__aenter__())

        def run(seeds: list[int]) -> Any:
            out = loop.run_until_complete(executor.execute_stream({"make": seeds}))
            assert out["total:output"][:1] == _expected(seeds)
            return out

        record(f"cpu-heavy 3 stages x {ITEMS} items", name, run, _fresh_seeds, ITEMS, rounds=7)
    finally:
        loop.run_until_complete(executor.__aexit__(None, None, None))
        loop.close()


def test_mpipe_dask(record: Any, cluster: Any) -> None:
    ex = GraphExecutor(_graph(), backend="dask", dask_address=cluster.scheduler_address)
    _bench_mpipe(record, "mpipe dask backend", ex)


def test_mpipe_process(record: Any) -> None:
    _bench_mpipe(record, "mpipe process backend", GraphExecutor(_graph(), backend="process"))


def test_hand_written_dask(record: Any, cluster: Any) -> None:
    with distributed.Client(cluster.scheduler_address) as client:

        def run(seeds: list[int]) -> Any:
            futures = []
            for s in seeds:
                a = client.submit(make, s, pure=False)
                b = client.submit(crunch, a, pure=False)
                futures.append(client.submit(total, b, pure=False))
            out = client.gather(futures)
            assert out[:1] == _expected(seeds)
            return out

        record(
            f"cpu-heavy 3 stages x {ITEMS} items",
            "dask client.submit",
            run,
            _fresh_seeds,
            ITEMS,
            rounds=7,
        )


def test_interleaved_dask_vs_hand_written(benchmark: Any, cluster: Any, capsys: Any) -> None:
    """Both contenders in alternate rounds, so that a busy machine slows both alike: the
    median per-round ratio of mpipe's Dask backend to hand-written ``client.submit`` code."""
    ex = GraphExecutor(_graph(), backend="dask", dask_address=cluster.scheduler_address)
    loop = asyncio.new_event_loop()
    times: dict[str, list[float]] = {"mpipe": [], "hand": []}
    try:
        loop.run_until_complete(ex.__aenter__())
        with distributed.Client(cluster.scheduler_address) as client:

            def hand(seeds: list[int]) -> list[float]:
                futures = [
                    client.submit(
                        total,
                        client.submit(crunch, client.submit(make, s, pure=False), pure=False),
                        pure=False,
                    )
                    for s in seeds
                ]
                return list(client.gather(futures))

            def rounds() -> float:
                for _ in range(timed_rounds(6)):
                    for name in ("mpipe", "hand"):
                        seeds = _fresh_seeds()
                        start = time.perf_counter()
                        if name == "mpipe":
                            loop.run_until_complete(ex.execute_stream({"make": seeds}))
                        else:
                            hand(seeds)
                        times[name].append(time.perf_counter() - start)
                ratios = sorted(m / h for m, h in zip(times["mpipe"], times["hand"], strict=True))
                return ratios[len(ratios) // 2]

            benchmark.group = "interleaved"
            ratio = benchmark.pedantic(rounds, rounds=1, iterations=1)
    finally:
        loop.run_until_complete(ex.__aexit__(None, None, None))
        loop.close()
    benchmark.extra_info["median_ratio_mpipe_over_hand"] = ratio
    with capsys.disabled():
        print(
            f"\ninterleaved, {ITEMS} items a round: mpipe dask backend / hand-written dask = "
            f"{ratio:.3f} (median of 6 paired rounds; mpipe rounds "
            f"{statistics.median(times['mpipe']):.3f} s, hand-written "
            f"{statistics.median(times['hand']):.3f} s)"
        )
