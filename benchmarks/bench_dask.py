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
from collections.abc import Iterator
from typing import Any

import pytest

from mpipe import GraphExecutor, create_simple_pipeline

distributed = pytest.importorskip("distributed")

ITEMS = 32
#: Inner loop length of ``crunch``: about 60 ms of CPU per item.
WORK = 1_000_000
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
