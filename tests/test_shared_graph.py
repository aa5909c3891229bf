"""Executors sharing one graph run at once, each with its own correct results.

A run's state lives in the lanes and nodes of its executor's plan, never in the user's graph,
processors or pipes; so two executors of one graph, driven at once with ``asyncio.gather``,
each get their full result, in order, whatever the backend. Taps on the shared pipes see the
items of both runs.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from mpipe import ExecutionError, GraphExecutor, ProcessingGraph, SimpleProcessor


def inc(x: int) -> int:
    return x + 1


def double(x: int) -> int:
    return 2 * x


def chain() -> ProcessingGraph:
    g = ProcessingGraph("shared")
    for pid, fn in (("a", inc), ("b", double)):
        p = SimpleProcessor(fn, pid)
        p.create_default_pipes()
        g.add_processor(p)
    g.connect("a", "output", "b", "input")
    return g


async def both(g: ProcessingGraph, backend: str) -> tuple[Any, Any, Any, Any]:
    async with (
        GraphExecutor(g, backend=backend, max_workers=1) as one,
        GraphExecutor(g, backend=backend, max_workers=1) as two,
    ):
        streams = await asyncio.gather(
            one.execute_stream({"a": range(40)}), two.execute_stream({"a": range(100, 140)})
        )
        batches = await asyncio.gather(one.execute(1), two.execute(2))
    return (*streams, *batches)


@pytest.mark.parametrize(
    "backend", ["inline", "thread", pytest.param("process", marks=pytest.mark.slow)]
)
def test_two_executors_of_one_graph_run_at_once(backend: str) -> None:
    g = chain()
    taps: list[int] = []
    g.get_processor("b").output_pipes["output"].add_tap("t", taps.append)
    s1, s2, b1, b2 = asyncio.run(both(g, backend))
    assert s1 == {"b:output": [2 * (x + 1) for x in range(40)]}
    assert s2 == {"b:output": [2 * (x + 1) for x in range(100, 140)]}
    assert (b1, b2) == ({"b:output": 4}, {"b:output": 6})
    assert sorted(taps) == sorted([*s1["b:output"], *s2["b:output"], 4, 6])


def test_a_failing_run_does_not_disturb_the_other_executor_of_its_graph() -> None:
    g = chain()

    async def main() -> tuple[Any, Any]:
        one, two = GraphExecutor(g), GraphExecutor(g)
        return tuple(  # type: ignore[return-value]
            await asyncio.gather(
                one.execute_stream({"a": [1, "x", 3]}),
                two.execute_stream({"a": range(5)}),
                return_exceptions=True,
            )
        )

    bad, good = asyncio.run(main())
    assert isinstance(bad, ExecutionError) and bad.item_index == 1
    assert good == {"b:output": [2, 4, 6, 8, 10]}
