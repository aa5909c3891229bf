"""Chrome trace export: valid JSON, one span per firing, spans on one track never overlap."""

from __future__ import annotations

import asyncio
import itertools
from collections import defaultdict
from pathlib import Path
from typing import Any

import orjson
import pytest

from mpipe import AsyncProcessor, GraphExecutor, Monitor, SkipStrategy

from ._graphs import chain, inc


class _Sleepy(AsyncProcessor):
    async def process_data(self, input_data: dict[str, Any]) -> Any:
        await asyncio.sleep(0.002 * (input_data["input"] % 3))
        return input_data["input"]


def _odd_fails(x: int) -> int:
    if x % 2:
        raise ValueError("odd")
    return x


def _load(path: Path) -> dict[str, Any]:
    trace: dict[str, Any] = orjson.loads(path.read_bytes())
    return trace


def test_trace_covers_every_firing_with_disjoint_spans_per_track(run: Any, tmp_path: Path) -> None:
    monitor = Monitor()
    graph = chain(("a", inc), ("b", _odd_fails))
    sleepy = _Sleepy("sleepy", max_concurrent=4)
    sleepy.create_default_pipes()
    graph.add_processor(sleepy)
    graph.connect("a", "output", "sleepy", "input")
    graph.set_error_strategy("b", SkipStrategy())
    run(GraphExecutor(graph, monitor).execute_stream({"a": range(20)}))
    path = monitor.export_trace(tmp_path / "run.json")
    trace = _load(path)
    events = trace["traceEvents"]
    spans = [e for e in events if e["ph"] == "X" and e["cat"] == "firing"]
    # one span per firing, each with its processor id and item index
    got = sorted((e["args"]["processor_id"], e["args"]["index"]) for e in spans)
    want = sorted((p, i) for p in ("a", "b", "sleepy") for i in range(20))
    assert got == want
    assert all(e["name"] == e["args"]["processor_id"] for e in spans)
    assert sum(1 for e in spans if "error" in e["args"]) == 10
    # on each track, spans are disjoint (so trivially well nested)
    by_tid: dict[int, list[tuple[float, float]]] = defaultdict(list)
    for e in spans:
        assert e["dur"] >= 0 and e["ts"] >= 0
        by_tid[e["tid"]].append((e["ts"], e["ts"] + e["dur"]))
    for intervals in by_tid.values():
        intervals.sort()
        for (_, end), (start, _) in itertools.pairwise(intervals):
            assert start >= end - 1e-6
    # the async processor overlapped its firings: they need more than one lane of "main"
    names = {e["tid"]: e["args"]["name"] for e in events if e["name"] == "thread_name"}
    assert "main" in names.values() and "main #2" in names.values()
    assert all(tid in names for tid in by_tid)
    # the run span encloses every firing
    (run_span,) = [e for e in events if e["ph"] == "X" and e["cat"] == "run"]
    assert all(
        run_span["ts"] <= e["ts"] and e["ts"] + e["dur"] <= run_span["ts"] + run_span["dur"] + 1
        for e in spans
    )
    assert trace["otherData"]["firings"] == 60 and trace["otherData"]["dropped_spans"] == 0


def test_trace_holds_the_last_run(run: Any, tmp_path: Path) -> None:
    monitor = Monitor()
    ex = GraphExecutor(chain(("a", inc)), monitor)
    run(ex.execute_stream({"a": range(5)}))
    run(ex.execute_stream({"a": range(3)}))
    trace = _load(monitor.export_trace(tmp_path / "t.json"))
    spans = [e for e in trace["traceEvents"] if e["ph"] == "X" and e["cat"] == "firing"]
    assert len(spans) == 3
    assert trace["otherData"]["run_id"] == ex.get_execution_status()["run_id"]


def test_thread_backend_firings_get_one_track_per_worker(run: Any, tmp_path: Path) -> None:
    monitor = Monitor()
    ex = GraphExecutor(chain(("a", inc), ("b", inc)), monitor, backend="thread", max_workers=2)
    run(ex.execute_stream({"a": range(30)}))
    trace = _load(monitor.export_trace(tmp_path / "threads.json"))
    spans = [e for e in trace["traceEvents"] if e["ph"] == "X" and e["cat"] == "firing"]
    assert len(spans) == 60
    workers = {e["args"]["worker"] for e in spans}
    names = {
        e["tid"]: e["args"]["name"] for e in trace["traceEvents"] if e["name"] == "thread_name"
    }
    assert workers and all(any(n.startswith(w) for n in names.values()) for w in workers)


def _spin(seconds: float) -> float:
    """Busy for ``seconds`` of this thread's CPU time (waiting is not work; the process's may
    grow faster while other threads, such as a math library's, run)."""
    import time

    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass
    return seconds


def _worker_graph(*steps: tuple[str, Any]) -> Any:
    from mpipe import ProcessingGraph, SimpleProcessor

    g = ProcessingGraph()
    prev = None
    for pid, fn in steps:
        p = SimpleProcessor(fn, pid, execution="process")
        p.create_default_pipes()
        g.add_processor(p)
        if prev is not None:
            g.connect(prev, "output", pid, "input")
        prev = pid
    return g


def _count_up(n: int) -> Any:
    yield from range(n)


@pytest.mark.slow
def test_worker_timings_queue_waits_and_one_track_per_worker(run: Any, tmp_path: Path) -> None:
    # Six firings of 0.1 s of CPU work on 2 worker processes, more than they run at once:
    # later firings wait for a worker. Run time is what the worker measured; the waits are
    # apart, in the summary, the processor's metrics and the trace (async slices, not on the
    # workers' tracks, which hold one firing at a time: one track per worker process).
    monitor = Monitor()
    graph = _worker_graph(("gen", _count_up), ("spin", lambda i: _spin(0.1)))
    ex = GraphExecutor(graph, max_workers=2, monitor=monitor)
    run(ex.execute({"gen": 6}))
    spin = monitor.get_metrics_summary()["processors"]["spin"]
    assert spin["count"] == 6 and spin["queued"] == 6
    assert spin["p50_time"] >= 0.1 and spin["max_time"] >= 0.1
    assert spin["total_queue_time"] >= 0.1  # at least one firing waited for a whole firing
    assert spin["mean_transfer_time"] >= 0.0
    metrics = graph.get_processor("spin").get_metrics()
    assert metrics["queue_time"] == pytest.approx(spin["total_queue_time"])
    assert metrics["total_time"] >= 0.6

    trace = _load(monitor.export_trace(tmp_path / "t.json"))
    events = trace["traceEvents"]
    names = {e["tid"]: e["args"]["name"] for e in events if e["name"] == "thread_name"}
    tracks = sorted(n for n in names.values() if n.startswith("worker-"))
    assert len(tracks) == 2 and not any("#" in n for n in tracks), tracks
    by_tid = defaultdict(list)
    for e in events:
        if e.get("cat") == "firing":
            by_tid[e["tid"]].append((e["ts"], e["ts"] + e["dur"]))
    for spans in by_tid.values():
        spans.sort()
        assert all(a[1] <= b[0] + 1e-3 for a, b in itertools.pairwise(spans))
    waits = [e for e in events if e.get("cat") == "queue"]
    assert waits and {e["ph"] for e in waits} == {"b", "e"}
    assert all(e["tid"] == 0 for e in waits)
    generators = [e for e in events if e.get("cat") == "generator" and e["ph"] == "b"]
    assert [e["name"] for e in generators] == ["gen (generator)"]
    assert generators[0]["args"]["run_ms"] >= 0.0
