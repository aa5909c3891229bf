"""Executor checkpoints and resume: only what did not complete runs again."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mpipe import (
    CheckpointError,
    CheckpointManager,
    ConfigurationError,
    ExecutionError,
    GraphExecutor,
    ProcessingGraph,
    SimpleProcessor,
)
from mpipe._engine import _scheduler

from ._graphs import chain


class _Calls:
    """Counts calls per processor; ``broken`` processors raise."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.broken: set[str] = set()

    def step(self, pid: str, fn: Any) -> Any:
        def call(x: Any) -> Any:
            self.calls[pid] += 1
            if pid in self.broken:
                raise RuntimeError(f"{pid} is broken")
            return fn(x)

        return call


def _diamond(calls: _Calls) -> ProcessingGraph:
    graph = ProcessingGraph("diamond")
    procs = {
        "src": SimpleProcessor(calls.step("src", lambda x: x + 1), "src"),
        "left": SimpleProcessor(calls.step("left", lambda x: x * 10), "left"),
        "right": SimpleProcessor(calls.step("right", lambda x: np.full(3, x)), "right"),
        "join": SimpleProcessor(calls.step("join", lambda d: d["a"] + int(d["b"].sum())), "join"),
    }
    procs["src"].create_default_pipes()
    procs["left"].create_default_pipes()
    procs["right"].create_default_pipes()
    procs["join"].create_default_pipes(["a", "b"], ["output"])
    for p in procs.values():
        graph.add_processor(p)
    graph.connect("src", "output", "left", "input")
    graph.connect("src", "output", "right", "input")
    graph.connect("left", "output", "join", "a")
    graph.connect("right", "output", "join", "b")
    return graph


def test_resume_reruns_only_what_did_not_complete(run: Any, tmp_path: Path) -> None:
    calls = _Calls()
    calls.broken.add("join")
    ex = GraphExecutor(_diamond(calls), checkpoint_manager=CheckpointManager(tmp_path))
    with pytest.raises(ExecutionError, match="join is broken"):
        run(ex.execute(1))
    run_id = ex.get_execution_status()["run_id"]
    assert calls.calls == {"src": 1, "left": 1, "right": 1, "join": 1}
    calls.broken.clear()
    # a fresh executor and manager on the same folder: the checkpoints are on disk
    again = GraphExecutor(_diamond(calls), checkpoint_manager=CheckpointManager(tmp_path))
    assert run(again.execute(1, resume=run_id)) == {"join:output": 20 + 6}
    assert calls.calls == {"src": 1, "left": 1, "right": 1, "join": 2}
    assert again.get_execution_status()["run_id"] == run_id
    # everything completed now: a second resume runs nothing at all
    assert run(again.execute(1, resume=run_id)) == {"join:output": 26}
    assert calls.calls == {"src": 1, "left": 1, "right": 1, "join": 2}


def test_streams_and_multi_output_processors_replay_in_order(
    run: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # "split" must take all 30 items, and so complete, before "merge" first fails and halts
    # the run. The scheduler gives way to other processors once a time slice is spent: on a
    # slow host the slice could end mid-stream and "merge" fail first (then "split", not
    # completed, reruns on resume with the batch input, None). No slice ends in this test.
    monkeypatch.setattr(_scheduler, "SLICE", 60.0)
    calls = _Calls()
    graph = ProcessingGraph("split")
    split = SimpleProcessor(
        calls.step("split", lambda x: {"even": x * 2, "odd": x * 2 + 1}), "split"
    )
    split.create_default_pipes(["input"], ["even", "odd"])
    merge = SimpleProcessor(calls.step("merge", lambda d: (d["e"], d["o"])), "merge")
    merge.create_default_pipes(["e", "o"], ["output"])
    graph.add_processor(split)
    graph.add_processor(merge)
    graph.connect("split", "even", "merge", "e")
    graph.connect("split", "odd", "merge", "o")
    calls.broken.add("merge")
    manager = CheckpointManager()
    ex = GraphExecutor(graph, checkpoint_manager=manager)
    with pytest.raises(ExecutionError):
        run(ex.execute_stream({"split": range(30)}))
    run_id = ex.get_execution_status()["run_id"]
    calls.broken.clear()
    out = run(ex.execute(None, resume=run_id))
    assert out == {"merge:output": [(2 * i, 2 * i + 1) for i in range(30)]}
    assert calls.calls["split"] == 30
    saved = [c for c in manager.list_checkpoints("split") if c["metadata"]["run_id"] == run_id]
    assert len(saved) == 1 and saved[0]["metadata"]["kind"] == "processor_outputs"
    assert manager.restore_checkpoint(saved[0]["checkpoint_id"])["even"][:3] == [0, 2, 4]


def test_completed_runs_save_every_processor(run: Any) -> None:
    manager = CheckpointManager()
    ex = GraphExecutor(
        chain(("a", lambda x: x + 1), ("b", lambda x: x * 2)), checkpoint_manager=manager
    )
    assert run(ex.execute(3)) == {"b:output": 8}
    run_id = ex.get_execution_status()["run_id"]
    by_proc = {c["processor_id"]: c for c in manager.list_checkpoints()}
    assert set(by_proc) == {"<run>", "a", "b"}
    assert by_proc["a"]["metadata"] == {
        "kind": "processor_outputs",
        "run_id": run_id,
        "graph_id": "chain",
        "firings": 1,
    }
    assert manager.restore_checkpoint(by_proc["b"]["checkpoint_id"]) == {"output": [8]}


def test_resume_errors(run: Any) -> None:
    graph = chain(("a", lambda x: x))
    with pytest.raises(ConfigurationError, match="needs an executor with a checkpoint_manager"):
        run(GraphExecutor(graph).execute(1, resume="abc"))
    manager = CheckpointManager()
    ex = GraphExecutor(graph, checkpoint_manager=manager)
    with pytest.raises(CheckpointError, match="holds no run with that id"):
        run(ex.execute(1, resume="no-such-run"))
    run(ex.execute(1))
    other = GraphExecutor(chain(("a", lambda x: x), graph_id="other"), checkpoint_manager=manager)
    with pytest.raises(CheckpointError, match="it ran graph 'chain', not 'other'"):
        run(other.execute(1, resume=ex.get_execution_status()["run_id"]))
    with pytest.raises(ConfigurationError, match="must be a CheckpointManager"):
        GraphExecutor(graph, checkpoint_manager="folder")  # type: ignore[arg-type]


def test_unstorable_outputs_do_not_break_the_run(
    run: Any, caplog: pytest.LogCaptureFixture
) -> None:
    calls = _Calls()
    calls.broken.add("b")
    manager = CheckpointManager()
    graph = chain(("obj", calls.step("obj", lambda x: object())), ("b", calls.step("b", repr)))
    ex = GraphExecutor(graph, checkpoint_manager=manager)
    with pytest.raises(ExecutionError):
        run(ex.execute(1))
    assert "checkpoint of 'obj'" in caplog.text and "allow_pickle" in caplog.text
    calls.broken.clear()
    run(ex.execute(1, resume=ex.get_execution_status()["run_id"]))
    assert calls.calls == {"obj": 2, "b": 2}  # obj had no checkpoint, so it ran again


def test_long_streams_replay_through_completed_chains(run: Any) -> None:
    """a and b completed, c failed: a's replay must not wait on b's (never drained) input."""
    calls = _Calls()
    last = {"fail": True}

    def c(x: int) -> int:
        if x == 100 and last["fail"]:
            raise RuntimeError("c fails on the last item")
        return x - 1

    graph = chain(
        ("a", calls.step("a", lambda x: x + 1)),
        ("b", calls.step("b", lambda x: x * 2)),
        ("c", calls.step("c", c)),
    )
    graph.pipes["a:output->b:input"].max_size = 4
    ex = GraphExecutor(graph, checkpoint_manager=CheckpointManager())
    with pytest.raises(ExecutionError):
        run(ex.execute_stream({"a": range(50)}))
    last["fail"] = False
    before = dict(calls.calls)
    assert before == {"a": 50, "b": 50, "c": 50}
    out = run(ex.execute(None, resume=ex.get_execution_status()["run_id"]))
    assert out == {"c:output": [(i + 1) * 2 - 1 for i in range(50)]}
    assert calls.calls["a"] == before["a"] and calls.calls["b"] == before["b"]
    assert calls.calls["c"] == before["c"] + 50
