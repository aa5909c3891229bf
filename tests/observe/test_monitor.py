"""The monitor: every event type where it belongs, handlers, taps, metrics, logging, export."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
from typing import Any

import orjson
import pytest

from mpipe import (
    CheckpointManager,
    EventType,
    ExecutionError,
    GraphExecutor,
    LogLevel,
    Monitor,
    MonitorEvent,
    RetryStrategy,
    RunInfo,
    SkipStrategy,
)

from ._graphs import chain, double, inc


def _flaky(fails: int) -> Any:
    calls = {"n": 0}

    def fn(x: int) -> int:
        calls["n"] += 1
        if calls["n"] <= fails:
            raise RuntimeError(f"flaky call {calls['n']}")
        return x

    return fn


def _bad(x: int) -> int:
    raise ValueError(f"bad item {x}")


def test_run_events_in_order(run: Any) -> None:
    monitor = Monitor()
    graph = chain(("a", inc), ("b", double))
    assert run(GraphExecutor(graph, monitor).execute(1)) == {"b:output": 4}
    kinds = [e["event_type"] for e in monitor.get_recent_events(1000)]
    assert kinds[0] == "graph_start"
    assert kinds[-1] == "graph_complete"
    starts = monitor.get_recent_events(event_type=EventType.PROCESSOR_START)
    completes = monitor.get_recent_events(event_type="processor_complete")
    assert [e["processor_id"] for e in starts] == ["a", "b"]
    assert [e["processor_id"] for e in completes] == ["a", "b"]
    assert completes[0]["data"] == {"firings": 1}
    assert kinds.count("system_metrics") == 1  # a short run: one sample, at its end
    event = monitor.get_recent_events(1)[0]
    assert set(event) == {"timestamp", "event_type", "processor_id", "data", "level"}


def test_error_retry_skip_and_graph_error_events(run: Any) -> None:
    monitor = Monitor()
    graph = chain(("flaky", _flaky(1)), ("skipper", _bad))
    graph.set_error_strategy("flaky", RetryStrategy(max_retries=2, initial_delay=0))
    graph.set_error_strategy("skipper", SkipStrategy())
    run(GraphExecutor(graph, monitor).execute(5))
    by_type = monitor.get_metrics_summary()["events_by_type"]
    assert by_type["processor_error"] == 2  # flaky's first try, and skipper's
    assert by_type["processor_retry"] == 1
    assert by_type["processor_skip"] == 1
    retry = monitor.get_recent_events(event_type="processor_retry")[0]
    assert retry["processor_id"] == "flaky" and retry["data"]["attempt"] == 2
    assert retry["level"] == "WARNING"
    error = monitor.get_recent_events(event_type="processor_error")[-1]
    assert error["level"] == "ERROR" and "ValueError: bad item 5" in error["data"]["error"]

    halting = Monitor()
    with pytest.raises(ExecutionError):
        run(GraphExecutor(chain(("a", inc), ("boom", _bad)), halting).execute(1))
    last = halting.get_recent_events(1)[0]
    assert last["event_type"] == "graph_error" and "bad item 2" in last["data"]["error"]
    assert halting.get_processor_status("boom")["state"] == "error"
    assert halting.get_processor_status("a")["state"] == "completed"


def test_pipe_full_and_tapped_data_flow(run: Any) -> None:
    monitor = Monitor()
    graph = chain(("a", inc), ("b", inc), ("c", inc))
    narrow = graph.pipes["a:output->b:input"]
    narrow.max_size = 2
    seen: list[int] = []
    tap_id = monitor.tap_pipe(narrow, seen.append)

    async def main() -> dict[str, list[Any]]:
        return await GraphExecutor(graph, monitor).execute_stream({"a": range(50)})

    out = run(main())
    assert out == {"c:output": [i + 3 for i in range(50)]}
    assert seen == [i + 1 for i in range(50)]  # every item exactly once, in order
    flows = monitor.get_recent_events(1000, "pipe_data_flow")
    assert len(flows) == 50 and flows[0]["data"]["item_type"] == "int"
    full = monitor.get_recent_events(event_type="pipe_full")
    assert full and full[0]["processor_id"] == narrow.pipe_id
    monitor.untap_pipe(tap_id)
    with pytest.raises(KeyError, match="unknown tap id"):
        monitor.untap_pipe(tap_id)
    pipes = monitor.get_metrics_summary()["pipes"]
    assert pipes[narrow.pipe_id]["items_in"] == 50
    assert pipes[narrow.pipe_id]["bytes_in"] == sum(sys.getsizeof(i + 1) for i in range(50))
    assert 0 < pipes[narrow.pipe_id]["peak_bytes"] <= 3 * sys.getsizeof(50)
    assert pipes[narrow.pipe_id]["peak_byte_utilization"] < 1e-3  # 64 MiB: far from full
    assert pipes[narrow.pipe_id]["full_events"] >= 1
    assert monitor.get_pipe_status(narrow.pipe_id)["max_size"] == 2


def test_taps_see_every_item_once_across_fan_out(run: Any) -> None:
    monitor = Monitor()
    graph = chain(("src", inc), ("left", double))
    from mpipe import SimpleProcessor

    right = SimpleProcessor(inc, "right")
    right.create_default_pipes()
    graph.add_processor(right)
    graph.connect("src", "output", "right", "input")
    taps: dict[str, list[int]] = {cid: [] for cid in graph.pipes}
    for cid, pipe in graph.pipes.items():
        monitor.tap_pipe(pipe, taps[cid].append, events=False)
    run(GraphExecutor(graph, monitor).execute_stream({"src": range(300)}))
    for cid in graph.pipes:
        assert taps[cid] == [i + 1 for i in range(300)], cid
    assert monitor.get_metrics_summary()["events_by_type"].get("pipe_data_flow", 0) == 0


def test_checkpoint_and_breakpoint_events(run: Any) -> None:
    monitor = Monitor()
    ex = GraphExecutor(
        chain(("a", inc), ("b", inc)),
        monitor,
        checkpoint_manager=CheckpointManager(),
        on_break=lambda hit: None,
    )
    ex.set_breakpoint("b")
    run(ex.execute(1))
    run_id = ex.get_execution_status()["run_id"]
    run(ex.execute(1, resume=run_id))
    by_type = monitor.get_metrics_summary()["events_by_type"]
    assert by_type["checkpoint_create"] == 2  # a and b, first run
    assert by_type["checkpoint_restore"] == 2  # both replayed on resume
    assert by_type["breakpoint_hit"] == 1  # b ran only in the first run
    hit = monitor.get_recent_events(event_type="breakpoint_hit")[0]
    assert hit["processor_id"] == "b" and hit["data"]["inputs"] == ["input"]


class _Workers:
    """A backend stand-in for the sampler: reports real worker processes."""

    def __init__(self, pids: list[int]) -> None:
        self.pids = pids

    def worker_pids(self) -> list[int]:
        return list(self.pids)

    def metrics(self) -> dict[str, Any]:
        return {"shm_bytes": 4096}


def test_worker_start_and_crash_events_from_process_samples() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        monitor = Monitor()
        workers = _Workers([child.pid])
        info = RunInfo("r1", "g", ["p"], {"p": "process"}, 0.0, extra={"backends": [workers]})
        monitor.run_start(info)
        monitor.sample_now()  # what the loop timer does every sample_interval
        started = monitor.get_recent_events(event_type="worker_start")
        assert [e["data"]["pid"] for e in started] == [child.pid]
        sample = monitor.get_metrics_summary()["process"]
        assert str(child.pid) in sample["workers"]
        assert sample["workers"][str(child.pid)]["rss_bytes"] > 0
        assert sample["shm_bytes"] == 4096
        child.kill()
        child.wait()
        monitor.sample_now()
        crashed = monitor.get_recent_events(event_type="worker_crash")
        assert [e["data"]["pid"] for e in crashed] == [child.pid]
        monitor.run_end(info, None)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def test_process_metrics_sampled_while_live(run: Any) -> None:
    monitor = Monitor(sample_interval=0.01)

    async def slow(x: int) -> int:
        await asyncio.sleep(0.06)
        return x

    run(GraphExecutor(chain(("slow", slow)), monitor).execute(1))
    samples = monitor.get_recent_events(event_type="system_metrics")
    assert len(samples) >= 2  # at least one tick during the sleep, and the end
    parent = monitor.get_metrics_summary()["process"]["parent"]
    assert parent["rss_bytes"] > 0 and parent["cpu_percent"] >= 0
    count = len(monitor.get_recent_events(1000, "system_metrics"))

    async def later() -> None:
        await asyncio.sleep(0.05)  # the ticker was stopped with the run

    run(later())
    assert len(monitor.get_recent_events(1000, "system_metrics")) == count


def test_metrics_summary_per_processor(run: Any) -> None:
    monitor = Monitor()
    graph = chain(("a", inc), ("b", _bad))
    graph.set_error_strategy("b", SkipStrategy())
    run(GraphExecutor(graph, monitor).execute_stream({"a": range(40)}))
    summary = monitor.get_metrics_summary()
    for key in ("total_events", "active_processors", "events_by_type", "error_rate", "process"):
        assert key in summary
    a, b = summary["processors"]["a"], summary["processors"]["b"]
    assert a["count"] == 40 and a["errors"] == 0 and a["error_rate"] == 0
    assert b["count"] == 40 and b["errors"] == 40 and b["skips"] == 40
    assert 0 < a["p50_time"] <= a["p95_time"] <= a["max_time"]
    assert a["mean_time"] > 0 and a["items_per_second"] > 0
    assert summary["error_rate"] == pytest.approx(0.5)
    assert summary["total_firings"] == 80
    assert summary["active_processors"] == 0
    status = monitor.get_all_processor_statuses()
    assert set(status) == {"a", "b"} and status["a"]["state"] == "completed"


def test_summary_accumulates_over_runs_and_large_runs(run: Any) -> None:
    monitor = Monitor()
    monitor.trace.max_spans = 100  # force the overflow path: stats stay exact past the trace
    ex = GraphExecutor(chain(("a", inc)), monitor)
    run(ex.execute_stream({"a": range(250)}))
    run(ex.execute_stream({"a": range(50)}))
    summary = monitor.get_metrics_summary()
    assert summary["processors"]["a"]["count"] == 300
    assert summary["runs"] == 2
    assert len(monitor.trace.spans) == 50  # the last run's spans


def test_handlers_and_bad_handlers(run: Any, caplog: pytest.LogCaptureFixture) -> None:
    monitor = Monitor()
    got: list[MonitorEvent] = []

    def broken(event: MonitorEvent) -> None:
        raise RuntimeError("handler bug")

    monitor.add_event_handler(EventType.PROCESSOR_COMPLETE, got.append)
    monitor.add_event_handler("processor_complete", broken)
    with caplog.at_level(logging.ERROR, logger="mpipe"):
        run(GraphExecutor(chain(("a", inc), ("b", inc)), monitor).execute(1))
    assert [e.processor_id for e in got] == ["a", "b"]
    assert "handler bug" in caplog.text
    monitor.remove_event_handler(EventType.PROCESSOR_COMPLETE, got.append)
    run(GraphExecutor(chain(("c", inc)), monitor).execute(1))
    assert len(got) == 2
    with pytest.raises(ValueError, match="unknown event type 'nope'"):
        monitor.add_event_handler("nope", got.append)
    with pytest.raises(TypeError, match="callable"):
        monitor.add_event_handler(EventType.ALERT, 3)  # type: ignore[arg-type]


def test_logging_at_the_monitor_level(caplog: pytest.LogCaptureFixture) -> None:
    monitor = Monitor(log_level="warning")
    assert monitor.log_level is LogLevel.WARNING
    with caplog.at_level(logging.DEBUG, logger="mpipe"):
        monitor.log_event(EventType.PROCESSOR_START, "quiet")
        monitor.log_event("processor_retry", "loud", {"attempt": 2})
    assert "loud" in caplog.text and "quiet" not in caplog.text
    assert caplog.records[-1].levelno == logging.WARNING
    assert Monitor(log_level=LogLevel.DEBUG).log_level is LogLevel.DEBUG
    with pytest.raises(ValueError, match="unknown log level 'LOUD'"):
        Monitor(log_level="LOUD")
    with pytest.raises(ValueError, match="max_events"):
        Monitor(max_events=0)


def test_recent_events_export_clear_and_pause(tmp_path: Any) -> None:
    monitor = Monitor(max_events=5)
    for i in range(8):
        monitor.log_event(EventType.PROCESSOR_START, f"p{i}", {"i": i})
    assert [e["data"]["i"] for e in monitor.get_recent_events(3)] == [5, 6, 7]
    assert monitor.total_events == 8 and len(monitor.get_recent_events()) == 5
    text = monitor.export_events("json", path=tmp_path / "events.jsonl")
    lines = [orjson.loads(line) for line in text.splitlines()]
    assert [e["processor_id"] for e in lines] == ["p3", "p4", "p5", "p6", "p7"]
    assert (tmp_path / "events.jsonl").read_text() == text
    with pytest.raises(ValueError, match="unknown export format"):
        monitor.export_events("xml")
    monitor.stop_monitoring()
    monitor.log_event(EventType.ALERT)
    assert monitor.total_events == 8
    monitor.start_monitoring()
    monitor.clear_events()
    assert monitor.total_events == 0 and monitor.get_recent_events() == []


def test_register_and_status_errors() -> None:
    monitor = Monitor()
    from mpipe import SimpleProcessor

    proc = SimpleProcessor(inc, "registered")
    monitor.register_processor(proc)
    status = monitor.get_processor_status("registered")
    assert status["state"] == "idle" and status["count"] == 0
    assert status["metrics"]["processor_id"] == "registered"
    with pytest.raises(KeyError, match="'ghost' is not known"):
        monitor.get_processor_status("ghost")
    with pytest.raises(KeyError, match="pipe 'nope' is not known"):
        monitor.get_pipe_status("nope")
    with pytest.raises(TypeError):
        monitor.register_processor(42)
    with pytest.raises(TypeError, match="needs a Pipe"):
        monitor.tap_pipe("not a pipe", print)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="no run to export"):
        monitor.export_trace("never.json")


def test_a_per_run_monitor_sees_the_resume(run: Any) -> None:
    ex = GraphExecutor(chain(("a", inc)), checkpoint_manager=CheckpointManager())
    run(ex.execute(1))
    monitor = Monitor()
    run(ex.execute(1, monitor=monitor, resume=ex.get_execution_status()["run_id"]))
    by_type = monitor.get_metrics_summary()["events_by_type"]
    assert by_type["checkpoint_restore"] == 1 and by_type["graph_complete"] == 1
    assert "processor_start" not in by_type  # a was replayed, not run


def test_restores_are_reported_inside_the_run(run: Any) -> None:
    monitor = Monitor()
    ex = GraphExecutor(
        chain(("a", inc), ("b", inc)), monitor, checkpoint_manager=CheckpointManager()
    )
    run(ex.execute(1))
    monitor.clear_events()
    run(ex.execute(1, resume=ex.get_execution_status()["run_id"]))
    kinds = [e["event_type"] for e in monitor.get_recent_events(100)]
    assert kinds[0] == "graph_start" and kinds[-1] == "graph_complete"
    assert kinds.count("checkpoint_restore") == 2
