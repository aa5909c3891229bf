"""Scheduler overhead per firing, and stream throughput, against Dask and hand-written asyncio.

Run: ``python -m pytest benchmarks/bench_engine.py --benchmark-only -q``

- 10,000 tiny firings as 100 chains of 100 and as a 10,000-leaf fan-in, through mpipe's inline
  scheduler (with a hook observer in place, as a monitor would be) against Dask's synchronous and
  threaded schedulers on the same graph. ``mpipe warm`` reuses its executor (the plan is compiled
  once, as when a graph runs repeatedly); ``mpipe cold`` builds a new executor every round on
  the same graph (it takes the plan the dropped executor left); ``mpipe first run`` builds a new
  graph every round, untimed, as Dask's rows build their task dict, and times a new executor's
  first run of it: compiling included, what a script that runs a graph once pays.
- 100,000 tiny items through 4 inline stream stages against a hand-written asyncio.Queue pipeline.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import dask
import dask.threaded
import pytest
from _graphs import chains_dask, chains_graph, fan_in_dask, fan_in_graph, inc, stages_graph
from _knobs import scaled

from mpipe import GraphExecutor, RunHooks

_offsets = itertools.count(1)


class CountingHooks(RunHooks):
    """A minimal observer: what monitoring costs at the least."""

    def __init__(self) -> None:
        self.started = 0
        self.ended = 0

    def firing_start(self, processor_id: str, index: int, start: float) -> None:
        self.started += 1

    def firing_end(
        self, processor_id: str, index: int, start: float, end: float, worker: str, error: Any
    ) -> None:
        self.ended += 1


CHAIN = scaled(100, 2)  # chains of CHAIN processors, CHAIN of them
LEAVES = scaled(10_000, 2)
SHAPES = {
    f"chains {CHAIN}x{CHAIN}": (
        lambda: chains_graph(CHAIN, CHAIN),
        lambda off: chains_dask(CHAIN, CHAIN, off),
        CHAIN * CHAIN,
    ),
    f"fan-in {LEAVES}": (
        lambda: fan_in_graph(LEAVES),
        lambda off: fan_in_dask(LEAVES, off),
        LEAVES + 1,
    ),
}


def _shift(inputs: dict[str, int]) -> dict[str, int]:
    off = next(_offsets)
    return {k: v + off for k, v in inputs.items()}


@pytest.mark.parametrize("shape", list(SHAPES))
def test_mpipe_warm(record: Any, shape: str) -> None:
    make, _, units = SHAPES[shape]
    graph, inputs = make()
    hooks = CountingHooks()
    ex = GraphExecutor(graph, hooks=[hooks])
    asyncio.run(ex.execute(inputs))  # compile the plan once
    record(
        f"overhead: {shape}",
        "mpipe warm",
        lambda i: asyncio.run(ex.execute(i)),
        lambda: _shift(inputs),
        units,
    )
    assert hooks.ended == hooks.started >= units


@pytest.mark.parametrize("shape", list(SHAPES))
def test_mpipe_cold(record: Any, shape: str) -> None:
    make, _, units = SHAPES[shape]
    graph, inputs = make()

    def run(i: dict[str, int]) -> Any:
        return asyncio.run(GraphExecutor(graph, hooks=[CountingHooks()]).execute(i))

    record(
        f"overhead: {shape}",
        "mpipe cold (new executor)",
        run,
        lambda: _shift(inputs),
        units,
        rounds=3,
    )


@pytest.mark.parametrize("shape", list(SHAPES))
def test_mpipe_first_run(record: Any, shape: str) -> None:
    make, _, units = SHAPES[shape]

    def setup() -> tuple[Any, dict[str, int]]:
        graph, inputs = make()
        return graph, _shift(inputs)

    def run(graph_inputs: tuple[Any, dict[str, int]]) -> Any:
        graph, inputs = graph_inputs
        return asyncio.run(GraphExecutor(graph, hooks=[CountingHooks()]).execute(inputs))

    record(
        f"overhead: {shape}",
        "mpipe first run (new graph)",
        run,
        setup,
        units,
        rounds=3,
    )


@pytest.mark.parametrize("shape", list(SHAPES))
def test_script_mpipe(record: Any, shape: str) -> None:
    """What a script that builds a graph and runs it once pays: the building too."""
    make, _, units = SHAPES[shape]

    def script(_: None) -> Any:
        graph, inputs = make()
        return asyncio.run(GraphExecutor(graph, hooks=[CountingHooks()]).execute(inputs))

    record(f"script: {shape} (build it, run it once)", "mpipe", script, lambda: None, units, 3)


@pytest.mark.parametrize("shape", list(SHAPES))
def test_script_dask(record: Any, shape: str) -> None:
    _, make_dask, units = SHAPES[shape]

    def script(_: None) -> Any:
        dsk, keys = make_dask(next(_offsets))
        return dask.get(dsk, keys)

    record(f"script: {shape} (build it, run it once)", "dask sync", script, lambda: None, units, 3)


@pytest.mark.parametrize("shape", list(SHAPES))
@pytest.mark.parametrize("scheduler", ["sync", "threads"])
def test_dask(record: Any, shape: str, scheduler: str) -> None:
    _, make_dask, units = SHAPES[shape]
    get = dask.get if scheduler == "sync" else dask.threaded.get

    def setup() -> tuple[dict[str, Any], Any]:
        dsk, keys = make_dask(next(_offsets))
        return dsk, keys

    record(f"overhead: {shape}", f"dask {scheduler}", lambda dk: get(dk[0], dk[1]), setup, units)


N_ITEMS = scaled(100_000, 10)


def test_stream_mpipe(record: Any) -> None:
    ex = GraphExecutor(stages_graph(4), hooks=[CountingHooks()])

    def run(start: int) -> Any:
        out = asyncio.run(ex.execute_stream({"s0": range(start, start + N_ITEMS)}))
        assert len(out["s3:output"]) == N_ITEMS

    record("stream: 4 stages, tiny items", "mpipe", run, lambda: next(_offsets), N_ITEMS)


async def _queue_pipeline(start: int, stages: int = 4, size: int = 1000) -> list[int]:
    queues: list[asyncio.Queue[Any]] = [asyncio.Queue(size) for _ in range(stages + 1)]
    done = object()

    async def stage(q_in: asyncio.Queue[Any], q_out: asyncio.Queue[Any]) -> None:
        while (item := await q_in.get()) is not done:
            await q_out.put(inc(item))
        await q_out.put(done)

    async def feed() -> None:
        for i in range(start, start + N_ITEMS):
            await queues[0].put(i)
        await queues[0].put(done)

    tasks = [asyncio.create_task(stage(queues[i], queues[i + 1])) for i in range(stages)]
    tasks.append(asyncio.create_task(feed()))
    out = []
    while (item := await queues[-1].get()) is not done:
        out.append(item)
    await asyncio.gather(*tasks)
    return out


def test_stream_asyncio_queues(record: Any) -> None:
    record(
        "stream: 4 stages, tiny items",
        "asyncio.Queue pipeline (by hand)",
        lambda s: asyncio.run(_queue_pipeline(s)),
        lambda: next(_offsets),
        N_ITEMS,
    )
