"""Plans outlive their executors; pipes count every run.

A graph is compiled once per version and settings: an executor that is dropped leaves its plan
for the next executor of the same graph, which runs it on its own backends. A lane counts its
traffic over all the runs of its plan, a pipe's metrics add up the lanes of every plan alive and
what dropped plans handed over, and a monitor still sees each run's own traffic.
"""

from __future__ import annotations

import asyncio
import gc
from typing import Any

import pytest

import mpipe._engine._executor as executor_module
from mpipe import GraphExecutor, Monitor, ProcessingGraph, SimpleProcessor


def inc(x: int) -> int:
    return x + 1


def double(x: int) -> int:
    return 2 * x


def chain() -> ProcessingGraph:
    g = ProcessingGraph("reuse")
    for pid, fn in (("a", inc), ("b", double)):
        p = SimpleProcessor(fn, pid)
        p.create_default_pipes()
        g.add_processor(p)
    g.connect("a", "output", "b", "input")
    return g


@pytest.fixture
def compiles(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The graph ids compiled from now on."""
    seen: list[str] = []
    real = executor_module.compile_plan

    def counting(graph: ProcessingGraph, *args: Any, **kwargs: Any) -> Any:
        seen.append(graph.graph_id)
        return real(graph, *args, **kwargs)

    monkeypatch.setattr(executor_module, "compile_plan", counting)
    return seen


def test_a_new_executor_of_the_same_graph_takes_the_dropped_executors_plan(
    compiles: list[str],
) -> None:
    g = chain()
    for x in range(5):
        assert GraphExecutor(g).run(x) == {"b:output": 2 * (x + 1)}
    assert compiles == ["reuse"]


def test_a_fused_plan_is_taken_while_its_fusion_holds(compiles: list[str]) -> None:
    g = chain()
    for pid in ("a", "b"):
        g.get_processor(pid).execution = "process"  # type: ignore[attr-defined]

    async def run(x: int) -> Any:
        async with GraphExecutor(g, max_workers=1) as ex:
            out = await ex.execute(x)
            return out, ex.get_execution_status().get("fused")

    first, fused = asyncio.run(run(1))
    assert first == {"b:output": 4} and fused
    assert asyncio.run(run(2))[0] == {"b:output": 6}
    assert compiles == ["reuse"]
    # A tap on the pipe between them: fusion steps aside, so the kept plan is not taken.
    seen: list[int] = []
    next(iter(g.pipes.values())).add_tap("t", seen.append)
    assert asyncio.run(run(3)) == ({"b:output": 8}, [])
    assert seen == [4] and compiles == ["reuse", "reuse"]


def test_executors_alive_at_once_each_compile_their_own(compiles: list[str]) -> None:
    g = chain()

    async def main() -> tuple[Any, Any]:
        one, two = GraphExecutor(g), GraphExecutor(g)
        return tuple(  # type: ignore[return-value]
            await asyncio.gather(
                one.execute_stream({"a": range(30)}), two.execute_stream({"a": range(50, 80)})
            )
        )

    first, second = asyncio.run(main())
    assert first == {"b:output": [2 * (x + 1) for x in range(30)]}
    assert second == {"b:output": [2 * (x + 1) for x in range(50, 80)]}
    assert compiles == ["reuse", "reuse"]


def test_a_changed_graph_or_other_settings_compile_afresh(compiles: list[str]) -> None:
    g = chain()
    assert GraphExecutor(g).run(1) == {"b:output": 4}
    assert GraphExecutor(g, backend="thread").run(1) == {"b:output": 4}
    p = SimpleProcessor(inc, "c")
    p.create_default_pipes()
    g.add_processor(p)
    g.connect("b", "output", "c", "input")
    assert GraphExecutor(g).run(1) == {"c:output": 5}
    assert compiles == ["reuse", "reuse", "reuse"]


def test_a_taken_plan_runs_on_the_new_executors_pool() -> None:
    # (b alone on the pool: nothing to fuse; a fused plan is taken the same way.)
    g = chain()
    g.get_processor("b").execution = "process"  # type: ignore[attr-defined]

    async def main() -> tuple[Any, Any]:
        async with GraphExecutor(g, max_workers=1) as first:
            one = await first.execute(1)
            first_pids = set(first._backends["process"].worker_pids())
        async with GraphExecutor(g, max_workers=1) as second:
            two = await second.execute(2)
            pool = second._backends["process"]
            assert second._compiled is not None
            assert all(
                n.backend is not first._backends.get(n.placement) for n in second._compiled.nodes
            )
            assert set(pool.worker_pids()) != first_pids
        return one, two

    assert asyncio.run(main()) == ({"b:output": 4}, {"b:output": 6})


def test_pipe_metrics_count_every_run_of_live_and_dropped_executors() -> None:
    g = chain()
    pipe = next(iter(g.pipes.values()))  # the connection a -> b
    kept = GraphExecutor(g)
    asyncio.run(kept.execute_stream({"a": range(10)}))
    asyncio.run(kept.execute_stream({"a": range(5)}))
    assert pipe.get_metrics()["items_in"] == 15
    dropped = GraphExecutor(g)  # a second plan while the first lives
    asyncio.run(dropped.execute_stream({"a": range(7)}))
    assert pipe.get_metrics()["items_in"] == 22
    del dropped
    gc.collect()  # its plan is kept for the next executor or freed: counted either way
    assert pipe.get_metrics()["items_in"] == 22
    del kept
    gc.collect()
    metrics = pipe.get_metrics()
    assert (metrics["items_in"], metrics["items_out"], metrics["size"]) == (22, 22, 0)
    assert metrics["peak_size"] >= 1
    pipe.reset()
    assert pipe.get_metrics()["items_in"] == 0


def test_a_monitor_sees_each_runs_own_traffic() -> None:
    g = chain()
    monitor = Monitor()
    ex = GraphExecutor(g, monitor=monitor)
    seen = []
    for n in (10, 4):
        asyncio.run(ex.execute_stream({"a": range(n)}))
        series = monitor.series
        assert series is not None and series.lane_metrics is not None
        seen.append(sorted(m["items_in"] for m in series.lane_metrics))
    assert seen[0][-1] == 10 and seen[1][-1] == 4
    assert all(n in (0, 10) for n in seen[0]) and all(n in (0, 4) for n in seen[1])


def test_a_monitor_counts_a_batch_runs_input_in_its_first_run_and_the_next() -> None:
    g = chain()
    monitor = Monitor()
    ex = GraphExecutor(g, monitor=monitor)
    for x in (1, 2):
        assert asyncio.run(ex.execute(x)) == {"b:output": 2 * (x + 1)}
        series = monitor.series
        assert series is not None and series.lane_metrics is not None
        # The entry lane, the lane between a and b, b's result lane: one item each.
        assert [m["items_in"] for m in series.lane_metrics] == [1, 1, 1]
        assert [m["items_out"] for m in series.lane_metrics] == [1, 1, 1]
