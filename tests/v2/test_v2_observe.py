"""The v2 observability names at work: taps on every declared pipe, PipeTap, Checkpoint,
Breakpoint, DebugSession and ErrorTracker."""

from __future__ import annotations

import asyncio
import pickle
import threading
from pathlib import Path
from typing import Any

import pytest

from processor_pipeline.v2.core.checkpoint import (
    Breakpoint,
    Checkpoint,
    CheckpointManager,
    DebugSession,
)
from processor_pipeline.v2.core.errors import ErrorTracker, ProcessorError
from processor_pipeline.v2.core.graph import GraphExecutor, ProcessingGraph
from processor_pipeline.v2.core.monitor import Monitor, PipeTap
from processor_pipeline.v2.core.pipe import Pipe
from processor_pipeline.v2.core.processor import SimpleProcessor
from processor_pipeline.v2.execution.strategies import SkipStrategy

from ._graphs import chain, double, inc

# -- taps ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "backend", ["inline", "thread", pytest.param("process", marks=pytest.mark.slow)]
)
def test_a_tap_on_each_declared_output_pipe_of_a_chain_sees_every_item(backend: str) -> None:
    graph = chain(("step1", inc), ("step2", double), ("step3", inc))
    monitor = Monitor()
    seen: dict[str, list[int]] = {}
    for pid, proc in graph.get_all_processors().items():
        out = proc.output_pipes["output"]
        if pid == "step2":  # one through the monitor, the others on the pipe itself
            monitor.tap_pipe(out, lambda item, pid=pid: seen.setdefault(pid, []).append(item))
        else:
            out.add_tap(f"tap-{pid}", lambda item, pid=pid: seen.setdefault(pid, []).append(item))
    out = asyncio.run(
        GraphExecutor(graph, monitor, backend=backend, max_workers=2).execute_stream(
            {"step1": [1, 2, 3]}
        )
    )
    assert out == {"step3:output": [5, 7, 9]}
    assert seen == {"step1": [2, 3, 4], "step2": [4, 6, 8], "step3": [5, 7, 9]}
    assert len(monitor.get_recent_events(100, "pipe_data_flow")) == 3


def test_taps_on_declared_input_pipes_see_their_items() -> None:
    graph = chain(("a", inc), ("b", inc))
    seen: dict[str, list[int]] = {"a": [], "b": []}
    for pid in ("a", "b"):
        graph.get_processor(pid).input_pipes["input"].add_tap("in", seen[pid].append)
    assert asyncio.run(GraphExecutor(graph).execute({"a": 1})) == {"b:output": 3}
    assert seen == {"a": [1], "b": [2]}


def _split(x: int) -> dict[str, int]:
    return {"even": x} if x % 2 == 0 else {"odd": x}


def test_a_tap_on_an_unconnected_output_of_a_middle_processor_sees_its_items() -> None:
    split = SimpleProcessor(_split, "split")
    split.create_default_pipes(["input"], ["even", "odd"])
    after = SimpleProcessor(double, "after")
    after.create_default_pipes(["input"], ["output"])
    graph = ProcessingGraph()
    for p in (split, after):
        graph.add_processor(p)
    graph.connect("split", "even", "after", "input")  # "odd" goes nowhere
    odd: list[int] = []
    split.output_pipes["odd"].add_tap("odd", odd.append)
    out = asyncio.run(GraphExecutor(graph).execute_stream({"split": range(6)}))
    assert out == {"after:output": [0, 4, 8]} and odd == [1, 3, 5]
    assert split.output_pipes["odd"].get_metrics()["items_in"] == 3


def test_pipe_tap_counts_and_swallows_errors(caplog: pytest.LogCaptureFixture) -> None:
    pipe = Pipe("p")
    got: list[Any] = []
    tap = PipeTap("t1", pipe, got.append)
    pipe.add_tap(tap.tap_id, tap.on_data)
    status = tap.get_status()
    assert set(status) == {"tap_id", "pipe_id", "created_at", "last_activity", "total_data_seen"}
    assert status["last_activity"] is None and status["pipe_id"] == "p"
    pipe.put("x")
    pipe.put("y")
    assert got == ["x", "y"] and tap.get_status()["total_data_seen"] == 2

    def broken(item: Any) -> None:
        raise RuntimeError("tap bug")

    bad = PipeTap("t2", pipe, broken)
    bad.on_data("z")  # swallowed (and logged)
    assert bad.total_data_seen == 1 and bad.last_activity is not None
    assert "tap bug" in caplog.text
    with pytest.raises(TypeError, match="needs a Pipe"):
        PipeTap("t3", "p", print)  # type: ignore[arg-type]


def test_monitor_taps_are_pipe_taps() -> None:
    monitor = Monitor()
    pipe = Pipe("p")
    tap_id = monitor.tap_pipe(pipe, lambda item: None)
    tap = monitor.pipe_taps[tap_id]
    assert isinstance(tap, PipeTap) and tap.pipe is pipe
    pipe.put(1)
    assert tap.get_status()["total_data_seen"] == 1
    monitor.untap_pipe(tap_id)
    assert tap_id not in monitor.pipe_taps and pipe.get_status()["active_taps"] == 0


# -- checkpoints ------------------------------------------------------------------------------------


def test_checkpoint_describes_a_value() -> None:
    cp = Checkpoint("c1", "first", "p", {"a": [1, 2]}, {"note": "x"})
    assert cp.size_bytes == len(pickle.dumps({"a": [1, 2]}))
    assert cp.to_dict() == {
        "checkpoint_id": "c1",
        "name": "first",
        "processor_id": "p",
        "created_at": cp.created_at,
        "size_bytes": cp.size_bytes,
        "metadata": {"note": "x"},
        "data_type": "dict",
    }
    lock = threading.Lock()  # does not pickle: the size falls back to its str
    assert Checkpoint("c2", "lock", "p", lock).size_bytes == len(str(lock))


def test_manager_gives_checkpoints_back_as_objects(tmp_path: Path) -> None:
    manager = CheckpointManager(tmp_path)
    cid = manager.create_checkpoint("state", "p", [1, 2, 3], {"step": 4})
    cp = manager.get_checkpoint(cid)
    assert isinstance(cp, Checkpoint) and cp.data == [1, 2, 3]
    assert (cp.checkpoint_id, cp.name, cp.processor_id, cp.metadata) == (
        cid,
        "state",
        "p",
        {"step": 4},
    )
    assert cp.size_bytes == manager.list_checkpoints()[0]["size_bytes"]


# -- breakpoints -----------------------------------------------------------------------------------


def test_breakpoint_counts_hits_up_to_its_cap() -> None:
    bp = Breakpoint("p", condition=lambda data: data["input"] > 0, hit_count=2)
    assert not bp.should_break({"input": -1})  # condition fails: no hit counted
    assert bp.total_hits == 0 and bp.last_hit is None
    assert [bp.should_break({"input": 1}) for _ in range(3)] == [True, True, False]
    assert bp.total_hits == 3 and bp.last_hit is not None
    bp.enabled = False
    assert not bp.should_break({"input": 1}) and bp.total_hits == 3
    assert set(bp.to_dict()) >= {
        "breakpoint_id",
        "processor_id",
        "enabled",
        "hit_count",
        "total_hits",
        "created_at",
        "last_hit",
        "has_condition",
    }
    unlimited = Breakpoint("p")
    assert all(unlimited.should_break({}) for _ in range(5))
    with pytest.raises(TypeError, match="hit_count"):
        Breakpoint("p", hit_count=-1)


def test_a_run_honours_the_managers_breakpoints_and_their_cap() -> None:
    manager = CheckpointManager()
    bp_id = manager.set_breakpoint("b", hit_count=1)
    ex = GraphExecutor(chain(("a", inc), ("b", double)), checkpoint_manager=manager)

    async def main() -> dict[str, Any]:
        task = asyncio.ensure_future(ex.execute_stream({"a": [1, 2, 3]}))
        hit = await manager.wait_for_break(timeout=10)
        assert (hit.processor_id, hit.index) == ("b", 0)
        hit.resume()
        return await task  # the cap is reached: b's later firings run on

    assert asyncio.run(main()) == {"b:output": [4, 6, 8]}
    (listed,) = manager.list_breakpoints()
    assert listed["breakpoint_id"] == bp_id and listed["total_hits"] == 3


def test_debug_session_steps_a_paused_run_one_firing_forward() -> None:
    manager = CheckpointManager()
    session = manager.create_debug_session("b")
    assert isinstance(session, DebugSession) and session.step_count == 0
    manager.set_breakpoint("b", hit_count=1)
    ex = GraphExecutor(chain(("a", inc), ("b", double), ("c", inc)), checkpoint_manager=manager)

    async def main() -> tuple[list[tuple[str, int]], dict[str, Any]]:
        task = asyncio.ensure_future(ex.execute_stream({"a": [1, 2]}))
        hits = [await session.wait_for_break(timeout=10)]
        for _ in range(2):
            assert session.step() is hits[-1]
            hits.append(await session.wait_for_break(timeout=10))
        assert [h.done for h in hits] == [True, True, False]
        hits[-1].resume()
        return [(h.processor_id, h.index) for h in hits], await task

    stops, out = asyncio.run(main())
    assert out == {"c:output": [5, 7]}
    assert stops[0] == ("b", 0) and session.step_count == 2
    # Each step paused at the very next firing, whichever processor's it was.
    assert len(set(stops)) == 3 and all(
        s in {("a", 1), ("b", 1), ("c", 0), ("c", 1)} for s in stops[1:]
    )


def test_debug_session_checkpoints(tmp_path: Path) -> None:
    manager = CheckpointManager(tmp_path)
    session = DebugSession(manager, "p")
    other = manager.create_debug_session("p")
    first = session.create_checkpoint("before", {"x": 1})
    session.step()
    second = session.create_checkpoint("after", {"x": 2})
    other.create_checkpoint("elsewhere", 0)
    mine = session.get_session_checkpoints()
    assert [c["checkpoint_id"] for c in mine] == [second, first]  # newest first
    assert mine[0]["name"] == f"debug_{session.session_id}_after"
    assert mine[0]["metadata"] == {"debug_session": session.session_id, "step": 1}
    assert mine[1]["metadata"]["step"] == 0
    assert manager.restore_checkpoint(second) == {"x": 2}
    assert len(list(tmp_path.glob("*.arrow"))) == 3
    assert session.step() is None  # nothing paused: the next firing of a run will pause
    with pytest.raises(TypeError, match="CheckpointManager"):
        DebugSession("folder", "p")  # type: ignore[arg-type]


# -- error tracking --------------------------------------------------------------------------------


def _bad_on_odd(x: int) -> int:
    if x % 2:
        raise ValueError(f"odd {x}")
    return x


def test_error_tracker_records_the_errors_of_a_run_it_is_given() -> None:
    tracker = ErrorTracker()
    graph = chain(("a", inc), ("b", _bad_on_odd))
    graph.set_error_strategy("b", SkipStrategy())
    ex = GraphExecutor(graph, hooks=[tracker])
    assert asyncio.run(ex.execute_stream({"a": range(4)})) == {"b:output": [2, 4]}
    summary = tracker.get_error_summary()
    assert summary["total_errors"] == 2
    assert summary["error_counts_by_type"] == {"ValueError": 2}
    assert [e["message"] for e in summary["errors_by_processor"]["b"]] == ["odd 1", "odd 3"]
    assert tracker.get_processor_error_rate("b") == 1.0
    assert not tracker.has_recurring_errors("b") and tracker.has_recurring_errors("b", 2)
    # One run given the tracker, through execute's observer argument.
    other = ErrorTracker()
    assert asyncio.run(GraphExecutor(graph).execute(0, monitor=other)) == {}
    assert other.get_error_summary()["errors_by_processor"]["b"][0]["error_type"] == "ValueError"


def test_error_tracker_by_hand() -> None:
    tracker = ErrorTracker()
    for i in range(12):
        tracker.record_error(ProcessorError(f"e{i}", "p" if i % 3 else "q"))
    tracker.record_error(KeyError("k"), processor_id="q")
    summary = tracker.get_error_summary()
    assert summary["total_errors"] == 13
    assert summary["error_counts_by_type"] == {"ProcessorError": 12, "KeyError": 1}
    assert len(summary["recent_errors"]) == 10
    assert summary["recent_errors"][-1]["error_type"] == "KeyError"
    entry = summary["errors_by_processor"]["p"][0]
    assert {"error_type", "message", "processor_id", "context", "timestamp", "cause"} <= set(entry)
    assert tracker.get_processor_error_rate("p") == 8 / 13
    assert tracker.has_recurring_errors("q") and tracker.get_processor_error_rate("zz") == 0.0
    tracker.clear_errors()
    assert tracker.get_error_summary()["total_errors"] == 0
    assert tracker.get_processor_error_rate("p") == 0.0
    with pytest.raises(TypeError, match="needs an exception"):
        tracker.record_error("oops")  # type: ignore[arg-type]
