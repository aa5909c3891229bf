"""Fusion: process-placed chains and diamonds run as one worker call per item.

Real worker processes throughout. Each test that is about fusion checks something an unfused
run does not do (one call per item, the plan's groups), so that it fails without fusion; the
others check that what a user sees (results, order, metrics, spans, error strategies, taps)
is what the same graph gives unfused.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mpipe import (
    ConfigurationError,
    ExecutionError,
    GraphExecutor,
    Monitor,
    ProcessingGraph,
    RetryStrategy,
    RunHooks,
    SimpleProcessor,
    SkipStrategy,
    visualize_graph,
)
from mpipe._backends._process._backend import ProcessBackend
from mpipe._engine._fused import FusedCall

pytestmark = pytest.mark.slow

N = 12


def inc(x: int) -> int:
    return x + 1


def double(x: int) -> int:
    return x * 2


def square(x: int) -> int:
    return x * x


def bad_three(x: int) -> int:
    if x == 3:  # item 2 after inc
        raise ValueError(f"bad value {x}")
    return x * 2


def total(inputs: dict[str, int]) -> int:
    return inputs["left"] * 1000 + inputs["right"]


def stream_of(x: int) -> Iterator[int]:
    yield x
    yield x


class FailsOnce:
    """Fails the first time it sees 3 (across worker processes: a marker file says so)."""

    def __init__(self, folder: str) -> None:
        self.folder = folder

    def __call__(self, x: int) -> int:
        if x == 3:
            try:
                os.close(os.open(os.path.join(self.folder, "failed"), os.O_CREAT | os.O_EXCL))
            except FileExistsError:
                return x * 2
            raise RuntimeError("fails once")
        return x * 2


def chain(middle: Any = double, strategy: Any = None) -> ProcessingGraph:
    """a (inc) -> b (``middle``) -> c (inc), all on the process pool."""
    g = ProcessingGraph()
    for pid, fn in (("a", inc), ("b", middle), ("c", inc)):
        p = SimpleProcessor(fn, pid, execution="process")
        p.create_default_pipes()
        g.add_processor(p)
    g.connect("a", "output", "b", "input")
    g.connect("b", "output", "c", "input")
    if strategy is not None:
        g.error_strategies["b"] = strategy
    return g


def diamond(right: Any = square, strategy: Any = None) -> ProcessingGraph:
    """a -> (l: double, r: ``right``) -> j zips them."""
    g = ProcessingGraph()
    for pid, fn in (("a", inc), ("l", double), ("r", right)):
        p = SimpleProcessor(fn, pid, execution="process")
        p.create_default_pipes()
        g.add_processor(p)
    j = SimpleProcessor(total, "j", execution="process")
    j.create_default_pipes(inputs=["left", "right"])
    g.add_processor(j)
    g.connect("a", "output", "l", "input")
    g.connect("a", "output", "r", "input")
    g.connect("l", "output", "j", "left")
    g.connect("r", "output", "j", "right")
    if strategy is not None:
        g.error_strategies["r"] = strategy
    return g


class Calls:
    """Counts the items the process pool is sent, call by call (patched into the pool)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.items = 0
        self.fused = 0
        submit, submit_batch = ProcessBackend.submit, ProcessBackend.submit_batch
        calls = self

        def counted(backend: Any, fn: Any, arg: Any, slot: Any) -> Any:
            calls.items += 1
            calls.fused += isinstance(fn, FusedCall)
            return submit(backend, fn, arg, slot)

        def counted_batch(backend: Any, fn: Any, args: list[Any], slot: Any) -> Any:
            calls.items += len(args)
            return submit_batch(backend, fn, args, slot)

        monkeypatch.setattr(ProcessBackend, "submit", counted)
        monkeypatch.setattr(ProcessBackend, "submit_batch", counted_batch)


def run(g: ProcessingGraph, items: list[Any], **kw: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """The graph over ``items`` fed to ``a``: its results, and the executor's status."""

    async def go() -> tuple[dict[str, Any], dict[str, Any]]:
        ex = GraphExecutor(g, max_workers=2, **kw)
        results = await ex.execute_stream({"a": items})
        return results, ex.get_execution_status()

    return asyncio.run(go())


# -- what fuses, and the same results --------------------------------------------------------------


def test_fused_chain_gives_the_results_and_order_of_unfused() -> None:
    fused, status = run(chain(), list(range(N)))
    plain, plain_status = run(chain(), list(range(N)), fuse=False)
    assert fused == plain == {"c:output": [(x + 1) * 2 + 1 for x in range(N)]}
    assert status["fused"] == [["a", "b", "c"]]
    assert status["processors"]["b"]["fused_with"] == ["a", "c"]
    assert status["processors"]["c"]["finished"]
    assert plain_status["fused"] == []


def test_fused_chain_is_one_worker_call_per_item(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = Calls(monkeypatch)
    run(chain(), list(range(N)))
    assert (calls.items, calls.fused) == (N, N)


def test_fuse_false_sends_every_processor_its_own_calls(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = Calls(monkeypatch)
    results, status = run(chain(), list(range(N)), fuse=False)
    assert results == {"c:output": [(x + 1) * 2 + 1 for x in range(N)]}
    assert (calls.items, calls.fused) == (3 * N, 0)
    assert status["fused"] == []


def test_fuse_must_be_a_bool() -> None:
    with pytest.raises(ConfigurationError, match="fuse must be True or False, got 'yes'"):
        GraphExecutor(chain(), fuse="yes")  # type: ignore[arg-type]


def test_fused_diamond_gives_the_results_of_unfused(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = Calls(monkeypatch)
    fused, status = run(diamond(), list(range(N)))
    assert (calls.items, calls.fused) == (N, N)
    plain, _ = run(diamond(), list(range(N)), fuse=False)
    assert fused == plain == {"j:output": [(x + 1) * 2 * 1000 + (x + 1) ** 2 for x in range(N)]}
    assert status["fused"] == [["a", "l", "r", "j"]]


def test_a_generator_processor_stays_out_of_the_chain() -> None:
    g = ProcessingGraph()
    for pid, fn in (("a", inc), ("b", double), ("c", stream_of)):
        p = SimpleProcessor(fn, pid, execution="process")
        p.create_default_pipes()
        g.add_processor(p)
    g.connect("a", "output", "b", "input")
    g.connect("b", "output", "c", "input")
    results, status = run(g, list(range(4)))
    assert results == {"c:output": [v for x in range(4) for v in ((x + 1) * 2,) * 2]}
    assert status["fused"] == [["a", "b"]]


# -- each processor keeps its own books -------------------------------------------------------------


class Heard(RunHooks):
    """Per-event observer: the processors of every firing start and end it hears."""

    def __init__(self) -> None:
        self.starts: list[tuple[str, int]] = []
        self.ends: list[tuple[str, int, float, float, str]] = []
        self.first: list[str] = []
        self.last: list[str] = []

    def firing_start(self, processor_id: str, index: int, start: float) -> None:
        self.starts.append((processor_id, index))

    def firing_end(
        self,
        processor_id: str,
        index: int,
        start: float,
        end: float,
        worker: str,
        error: BaseException | None,
    ) -> None:
        self.ends.append((processor_id, index, start, end, worker))

    def processor_start(self, processor_id: str) -> None:
        self.first.append(processor_id)

    def processor_end(self, processor_id: str, firings: int) -> None:
        self.last.append(processor_id)


def test_each_fused_processor_keeps_its_metrics_and_spans() -> None:
    g = chain()
    monitor = Monitor()
    heard = Heard()
    _, status = run(g, list(range(N)), monitor=monitor, hooks=[heard])
    assert status["fused"] == [["a", "b", "c"]]
    for pid in "abc":
        metrics = g.get_processor(pid).get_metrics()
        assert (metrics["firings"], metrics["errors"], metrics["items_out"]) == (N, 0, N)
        assert metrics["total_time"] > 0
    # The monitor's spans (from the run's timeline): N per processor, timed in the worker.
    spans = monitor.trace.spans
    for pid in "abc":
        mine = sorted((s for s in spans if s[0] == pid), key=lambda s: s[1])
        assert [s[1] for s in mine] == list(range(N))
        assert all(s[4].startswith("worker-") for s in mine)
    by = {(s[0], s[1]): s for s in spans}
    for i in range(N):  # the stages of one item ran in order, in one worker
        a, b, c = by[("a", i)], by[("b", i)], by[("c", i)]
        assert a[3] <= b[2] and b[3] <= c[2]
        assert a[4] == b[4] == c[4]
    # An observer called per event hears the same, processor by processor.
    assert sorted(heard.starts) == sorted((p, i) for p in "abc" for i in range(N))
    assert sorted(e[:2] for e in heard.ends) == sorted((p, i) for p in "abc" for i in range(N))
    assert sorted(heard.first) == sorted(heard.last) == ["a", "b", "c"]


# -- errors: the failed processor's own strategy ------------------------------------------------------


def test_a_failure_in_the_second_stage_names_it_and_halts(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = Calls(monkeypatch)
    with pytest.raises(ExecutionError) as info:
        run(chain(bad_three), list(range(N)))
    assert calls.fused and calls.fused == calls.items  # every call ran the whole chain
    assert info.value.failed_processors == ["b"]
    assert "processor 'b' failed: ValueError: bad value 3 (item 2" in str(info.value)
    assert isinstance(info.value.cause, ValueError)
    assert "bad_three" in str(info.value.cause.__cause__)  # the worker's traceback


def test_skip_of_the_second_stage_drops_that_item_only() -> None:
    g = chain(bad_three, SkipStrategy())
    monitor = Monitor()
    fused, status = run(g, list(range(N)), monitor=monitor)
    assert status["fused"] == [["a", "b", "c"]]
    expected = [(x + 1) * 2 + 1 for x in range(N) if x != 2]
    assert fused == {"c:output": expected}
    errors = {pid: g.get_processor(pid).get_metrics()["errors"] for pid in "abc"}
    assert errors == {"a": 0, "b": 1, "c": 0}
    assert g.get_processor("c").get_metrics()["firings"] == N - 1
    failed = [s for s in monitor.trace.spans if s[5] is not None]
    assert [(s[0], s[1]) for s in failed] == [("b", 2)]
    plain, _ = run(chain(bad_three, SkipStrategy()), list(range(N)), fuse=False)
    assert plain == fused


def test_retry_of_the_second_stage_runs_the_rest_from_there(tmp_path: Path) -> None:
    contexts: list[dict[str, Any]] = []

    class Watching(RetryStrategy):
        async def handle_error(self, error: Exception, processor_id: str, context: Any) -> Any:
            contexts.append({"processor_id": processor_id, **context})
            return await super().handle_error(error, processor_id, context)

    g = chain(FailsOnce(str(tmp_path)), Watching(max_retries=2, initial_delay=0))
    results, status = run(g, list(range(N)))
    assert status["fused"] == [["a", "b", "c"]]
    assert results == {"c:output": [(x + 1) * 2 + 1 for x in range(N)]}
    firings = {pid: g.get_processor(pid).get_metrics()["firings"] for pid in "abc"}
    assert firings == {"a": N, "b": N + 1, "c": N}  # a did not run again
    assert [(c["processor_id"], c["item_index"], c["input"], c["attempt"]) for c in contexts] == [
        ("b", 2, {"input": 3}, 1)
    ]


def test_retry_that_keeps_failing_halts_naming_the_stage(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = Calls(monkeypatch)
    g = chain(bad_three, RetryStrategy(max_retries=2, initial_delay=0))
    with pytest.raises(ExecutionError) as info:
        run(g, list(range(N)))
    assert calls.fused and calls.fused == calls.items
    assert info.value.failed_processors == ["b"]
    assert g.get_processor("b").get_metrics()["errors"] == 3
    assert g.get_processor("a").get_metrics()["errors"] == 0


def test_a_failed_branch_of_a_diamond_names_its_processor() -> None:
    with pytest.raises(ExecutionError) as info:
        run(diamond(bad_three), list(range(N)))
    assert info.value.failed_processors == ["r"]
    fused, _ = run(diamond(bad_three, SkipStrategy()), list(range(N)))
    assert fused == {"j:output": [(x + 1) * 2 * 1000 + (x + 1) * 2 for x in range(N) if x != 2]}


# -- where fusion steps aside -------------------------------------------------------------------------


def test_a_tap_on_an_inner_pipe_sees_every_item_fusion_steps_aside(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = Calls(monkeypatch)
    g = chain()
    seen: list[int] = []
    inner = g.get_processor("b").input_pipes["input"]

    async def go() -> list[Any]:
        statuses = []
        async with GraphExecutor(g, max_workers=2) as ex:
            await ex.execute_stream({"a": list(range(N))})
            statuses.append((ex.get_execution_status()["fused"], calls.items))
            inner.add_tap("seen", seen.append)  # between runs: the plan is made again
            await ex.execute_stream({"a": list(range(N))})
            statuses.append((ex.get_execution_status()["fused"], calls.items))
            inner.remove_tap("seen")
            await ex.execute_stream({"a": list(range(N))})
            statuses.append((ex.get_execution_status()["fused"], calls.items))
        return statuses

    statuses = asyncio.run(go())
    assert statuses[0] == ([["a", "b", "c"]], N)
    assert statuses[1][0] == [["b", "c"]]  # a's output is tapped: a runs alone
    assert sorted(seen) == [x + 1 for x in range(N)]
    assert statuses[2] == ([["a", "b", "c"]], statuses[1][1] + N)


def test_a_breakpoint_on_an_inner_processor_keeps_it_out() -> None:
    g = chain()

    async def go() -> list[Any]:
        async with GraphExecutor(g, max_workers=2) as ex:
            bp = ex.set_breakpoint("b", condition=lambda data: False)
            await ex.execute_stream({"a": [1, 2]})
            first = ex.get_execution_status()["fused"]
            ex.remove_breakpoint(bp)
            await ex.execute_stream({"a": [1, 2]})
            return [first, ex.get_execution_status()["fused"]]

    assert asyncio.run(go()) == [[], [["a", "b", "c"]]]


def test_callbacks_keep_a_processor_out() -> None:
    g = chain()
    seen: list[Any] = []
    g.get_processor("c").add_callback("complete", lambda proc, value: seen.append(value))
    results, status = run(g, list(range(4)))
    assert status["fused"] == [["a", "b"]]
    assert seen == results["c:output"]


# -- the plan shows it --------------------------------------------------------------------------------


def test_viz_marks_the_fused_group() -> None:
    g = chain()

    async def planned() -> Any:
        async with GraphExecutor(g, max_workers=2) as ex:
            await ex.start()
            return ex.get_execution_status()["fused"]

    groups = asyncio.run(planned())
    assert groups == [["a", "b", "c"]]
    text = visualize_graph(g, fused=groups)
    assert "fused (one worker call per item):\n    1: a -> b -> c" in text
    assert "a (SimpleProcessor, process, fused 1)" in text
    dot = visualize_graph(g, "dot", fused=groups)
    assert 'subgraph "cluster_fused_1"' in dot
    mermaid = visualize_graph(g, "mermaid", fused=groups)
    assert 'subgraph fused1 ["fused 1: one worker call per item"]' in mermaid
    assert "fused" not in visualize_graph(g)
    with pytest.raises(ConfigurationError, match="'zz'"):
        visualize_graph(g, fused=[["a", "zz"]])


CONFIG = """
graph_id: fused_config
executor: {backend: process, max_workers: 2%s}
processors:
  - {processor_id: a, processor_type: simple, parameters: {function: "test_fusion:inc"}}
  - {processor_id: b, processor_type: simple, parameters: {function: "test_fusion:double"}}
connections:
  - {from_processor: a, from_output: output, to_processor: b, to_input: input}
"""


@pytest.mark.parametrize(("option", "marked"), [("", True), (", fuse: false", False)])
def test_the_viz_command_marks_what_the_configs_executor_fuses(
    tmp_path: Path, option: str, marked: bool
) -> None:
    import io

    from mpipe._cli._main import main

    cfg = tmp_path / "fused.yaml"
    cfg.write_text(CONFIG % option)
    out, err = io.StringIO(), io.StringIO()
    assert main(["viz", str(cfg)], out, err) == 0, err.getvalue()
    assert ("1: a -> b" in out.getvalue()) is marked


def test_the_report_counts_a_fused_groups_outputs_as_its_last_processors() -> None:
    from mpipe._observe._report import report_data

    monitor = Monitor()
    _, status = run(chain(), list(range(N)), monitor=monitor)
    assert status["fused"] == [["a", "b", "c"]]
    assert monitor.series is not None
    data = report_data(monitor.series, monitor.trace.max_spans)
    summary = data["summary"]
    assert (summary["inputs"], summary["outputs"], summary["firings"]) == (N, N, 3 * N)
    rows = {r["processor"]: r for r in data["table"]}
    assert [rows[pid]["firings"] for pid in "abc"] == [N, N, N]
    assert rows["c"]["bytes_out"] > 0 and rows["a"]["bytes_out"] == 0
