"""The run timeline: row tables (C and Python), and a monitor fed through it or by hook calls.

A monitor that nobody hears live takes the run's timeline (the scheduler writes rows, no call
per firing); one with a handler, an alert manager or INFO logging is called per event. Both
ways must give the same events, states, metrics and trace.
"""

from __future__ import annotations

import asyncio
import logging
import struct
import sys
from typing import Any

import pytest

from mpipe import EventType, GraphExecutor, Monitor, MonitorEvent, RunHooks
from mpipe._observe._hooks import Timeline
from mpipe._observe._rows import PyRows, Rows

from ._graphs import chain, double, inc

ROW_TABLES = [PyRows] + ([Rows] if Rows is not PyRows else [])


@pytest.mark.parametrize("table", ROW_TABLES, ids=lambda t: t.__module__)
def test_rows_add_read_cut(table: Any) -> None:
    rows = table(4)
    assert len(rows) == 0 and rows.rows() == [] and rows.ids() == []
    assert rows.add("a", 0, 1.5, 2.5, "main") is False
    assert rows.add("b", 7, 3.0, 4.0, None) is False
    assert rows.add_run("c", 10, 5.0, 6.0, "worker-1", 3) is True  # 5 rows >= limit 4
    assert len(rows) == 5
    assert rows.rows(1, 3) == [("b", 7, 3.0, 4.0, None), ("c", 10, 5.0, 6.0, "worker-1")]
    assert rows.ids(2) == ["c", "c", "c"]
    assert struct.unpack("5q", rows.ints()) == (0, 7, 10, 11, 12)
    assert struct.unpack("2d", rows.starts(0, 2)) == (1.5, 3.0)
    assert struct.unpack("2d", rows.ends(3, 99)) == (6.0, 6.0)  # stop past the end is clamped
    assert rows.cut(2) == 3 and len(rows) == 2 and rows.cut(5) == 0
    rows.limit = 3
    assert rows.add("d", 1, 0.0, 0.0, None) is True
    assert rows.add_run("e", 0, 0.0, 0.0, None, 0) is True  # nothing added, still at the limit


@pytest.mark.parametrize("table", ROW_TABLES, ids=lambda t: t.__module__)
def test_rows_refuse_bad_rows(table: Any) -> None:
    rows = table()
    with pytest.raises(TypeError, match="id must be a str"):
        rows.add(1, 0, 0.0, 0.0, None)
    with pytest.raises(TypeError, match="worker must be a str or None"):
        rows.add("a", 0, 0.0, 0.0, 5)
    with pytest.raises(TypeError):
        rows.add("a", "zero", 0.0, 0.0, None)
    with pytest.raises(ValueError, match="count must be >= 0"):
        rows.add_run("a", 0, 0.0, 0.0, None, -1)
    with pytest.raises(ValueError, match="keep must be >= 0"):
        rows.cut(-1)
    with pytest.raises(OverflowError):
        rows.add("a", 1 << 64, 0.0, 0.0, None)
    with pytest.raises(TypeError, match="id must be a str"):
        rows.add(type("Name", (str,), {})("a"), 0, 0.0, 0.0, None)  # no str subclasses
    assert len(rows) == 0  # nothing half-added
    rows.add("a", 0, 0.0, 0.0, None)
    for huge in (2**61, 2**62 + 1, sys.maxsize):
        with pytest.raises(OverflowError, match="at most"):
            rows.add_run("a", 0, 0.0, 0.0, None, huge)
    assert len(rows) == 1


def _run_both(run: Any, graph_steps: Any, feed: Any, stream: bool = False) -> list[Monitor]:
    """The same runs watched by a monitor on the timeline and by one called per event."""
    quiet, heard = Monitor(), Monitor()
    got: list[MonitorEvent] = []
    heard.add_event_handler(EventType.PROCESSOR_START, got.append)
    for monitor in (quiet, heard):
        executor = GraphExecutor(chain(*graph_steps), monitor)
        for data in feed:
            call = executor.execute_stream if stream else executor.execute
            run(call(data))
    assert len(got) == heard.events_by_type["processor_start"]
    return [quiet, heard]


def test_timeline_and_hook_calls_agree(run: Any) -> None:
    quiet, heard = _run_both(run, [("a", inc), ("b", double)], [{"a": range(30)}], stream=True)
    for monitor in (quiet, heard):
        kinds = [e["event_type"] for e in monitor.get_recent_events(1000)]
        assert kinds[0] == "graph_start" and kinds[-1] == "graph_complete"
        assert kinds.count("processor_start") == 2 and kinds.count("processor_complete") == 2
        events = monitor.get_recent_events(1000)
        stamps = [e["timestamp"] for e in events]
        assert stamps == sorted(stamps)  # notes folded in time order
        for pid in "ab":
            mine = [e["event_type"] for e in events if e["processor_id"] == pid]
            assert mine == ["processor_start", "processor_complete"]
        completes = monitor.get_recent_events(event_type="processor_complete")
        assert [e["data"] for e in completes] == [{"firings": 30}, {"firings": 30}]
        summary = monitor.get_metrics_summary()
        assert summary["total_firings"] == 60
        assert {p: s["count"] for p, s in summary["processors"].items()} == {"a": 30, "b": 30}
        assert {p: s["state"] for p, s in summary["processors"].items()} == {
            "a": "completed",
            "b": "completed",
        }
        assert len(monitor.trace.spans) == 60
    assert quiet.events_by_type == heard.events_by_type


def test_many_runs_keep_counts_exact_and_newest_events(run: Any) -> None:
    monitor = Monitor(max_events=50)
    executor = GraphExecutor(chain(("a", inc), ("b", inc), ("c", inc)), monitor)
    for i in range(40):
        run(executor.execute(i))
    by_type = monitor.events_by_type
    assert by_type["processor_start"] == 120 and by_type["processor_complete"] == 120
    assert by_type["graph_start"] == 40 and by_type["graph_complete"] == 40
    assert monitor.total_events == sum(by_type.values())
    events = monitor.get_recent_events(1000)
    assert len(events) == 50
    assert events[-1]["event_type"] == "graph_complete"
    stamps = [e["timestamp"] for e in events]
    assert stamps == sorted(stamps)
    assert monitor.get_metrics_summary()["processors"]["c"]["count"] == 40
    assert monitor.get_processor_status("b")["state"] == "completed"


def test_states_while_live_on_the_timeline(run: Any) -> None:
    """A processor whose first firing is still running reads as running, mid-run."""
    monitor = Monitor()
    seen: dict[str, Any] = {}
    started, release = asyncio.Event(), asyncio.Event()

    async def slow(x: int) -> int:
        started.set()
        await release.wait()
        return x

    async def main() -> None:
        executor = GraphExecutor(chain(("a", inc), ("slow", slow), ("c", inc)), monitor)
        task = asyncio.ensure_future(executor.execute(1))
        await started.wait()  # "a" completed, "slow" is running
        seen["states"] = {p: s["state"] for p, s in monitor.get_all_processor_statuses().items()}
        seen["starts"] = [
            e["processor_id"] for e in monitor.get_recent_events(event_type="processor_start")
        ]
        release.set()
        await task

    run(main())
    assert seen["states"] == {"a": "completed", "slow": "running", "c": "waiting"}
    assert seen["starts"] == ["a", "slow"]
    starts = [e["processor_id"] for e in monitor.get_recent_events(event_type="processor_start")]
    assert starts == ["a", "slow", "c"]  # no start counted twice after a live read
    assert monitor.get_processor_status("c")["state"] == "completed"


def test_failed_run_states_and_error_spans(run: Any) -> None:
    def bad(x: int) -> int:
        raise ValueError("no")

    for hear in (False, True):
        monitor = Monitor()
        if hear:
            monitor.add_event_handler("processor_complete", lambda e: None)
        executor = GraphExecutor(chain(("a", inc), ("bad", bad), ("c", inc)), monitor)
        with pytest.raises(Exception, match="no"):
            run(executor.execute(1))
        states = {p: s["state"] for p, s in monitor.get_all_processor_statuses().items()}
        assert states == {"a": "completed", "bad": "error", "c": "idle"}
        errors = [s for s in monitor.trace.spans if s[5] is not None]
        assert [(s[0], s[5]) for s in errors] == [("bad", "ValueError: no")]


def test_logging_at_info_gets_live_events(run: Any, caplog: pytest.LogCaptureFixture) -> None:
    monitor = Monitor()
    with caplog.at_level(logging.INFO, logger="mpipe"):
        run(GraphExecutor(chain(("a", inc)), monitor).execute(1))
    assert "processor_start a" in caplog.text and "processor_complete a" in caplog.text


def test_one_timeline_per_run_the_other_recorder_is_called(run: Any) -> None:
    class Recorder(RunHooks):
        def __init__(self) -> None:
            self.timelines: list[Timeline] = []

        def take_timeline(self) -> Timeline | None:
            self.timelines.append(Timeline())
            return self.timelines[-1]

    first, second = Recorder(), Recorder()
    ends: list[str] = []

    class Ends(RunHooks):
        def processor_end(self, processor_id: str, firings: int) -> None:
            ends.append(processor_id)

    executor = GraphExecutor(chain(("a", inc), ("b", inc)), hooks=[first, second, Ends()])
    run(executor.execute(1))
    timeline = first.timelines[0]
    assert timeline.spans.ids() == ["a", "b"] and timeline.firsts.ids() == ["a", "b"]
    assert [r[:2] for r in timeline.ends.rows()] == [("a", 1), ("b", 1)]
    assert second.timelines == []  # only asked once the first one took the timeline
    assert ends == ["a", "b"]  # a plain observer is still called


def test_monitor_on_the_python_row_tables(run: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Where the C tables are not built, the Python ones carry the same runs."""
    import mpipe._observe._hooks as hooks

    monkeypatch.setattr(hooks, "Rows", PyRows)
    monitor = Monitor()
    executor = GraphExecutor(chain(("a", inc), ("b", double)), monitor)
    assert run(executor.execute_stream({"a": range(5)})) == {"b:output": [2, 4, 6, 8, 10]}
    assert isinstance(monitor.trace.book.timeline.spans, PyRows)
    assert monitor.get_metrics_summary()["total_firings"] == 10
    assert monitor.events_by_type["processor_complete"] == 2


def test_logs_stay_bounded_without_reads(run: Any) -> None:
    """Run logs hold processor starts and ends only, and old ones go even unread."""
    monitor = Monitor(max_events=50)
    monitor.trace.max_spans = 1000
    executor = GraphExecutor(chain(("a", inc), ("b", inc), ("c", inc)), monitor)
    for i in range(60):
        run(executor.execute_stream({"a": range(i, i + 20)}))
    assert len(monitor._runlogs) <= 10  # about max_events / 6 events per run
    assert all(not hasattr(log, "timeline") for log in monitor._runlogs)
    monitor.stop_monitoring()
    for i in range(100):
        run(executor.execute(i))
    assert len(monitor._runlogs) <= 2
    monitor.start_monitoring()
    assert monitor.events_by_type["processor_start"] == 180  # 60 runs x 3, none while stopped
    assert monitor.get_metrics_summary()["processors"]["a"]["count"] == 60 * 20 + 100


def test_stop_and_start_monitoring_mid_run(run: Any) -> None:
    monitor = Monitor()

    async def main(switch: Any) -> None:
        started, release = asyncio.Event(), asyncio.Event()

        async def gate(x: int) -> int:
            started.set()
            await release.wait()
            return x

        executor = GraphExecutor(chain(("a", inc), ("slow", gate), ("c", inc)), monitor)
        task = asyncio.ensure_future(executor.execute(1))
        await started.wait()  # "a" completed, "slow" started
        switch()
        release.set()
        await task

    run(main(monitor.stop_monitoring))
    assert [e.processor_id for e in monitor.events if e.event_type.value == "processor_start"] == [
        "a",
        "slow",
    ]
    monitor.clear_events()
    run(main(monitor.start_monitoring))  # started stopped: only what follows is recorded
    kinds = [(e.event_type.value, e.processor_id) for e in monitor.events]
    assert ("processor_start", "a") not in kinds and ("processor_start", "c") in kinds
    assert ("processor_complete", "slow") in kinds


def test_trace_keeps_the_first_max_spans(run: Any) -> None:
    monitor = Monitor()
    monitor.trace.max_spans = 100
    run(GraphExecutor(chain(("a", inc)), monitor).execute_stream({"a": range(300)}))
    assert len(monitor.trace.spans) == 100 and monitor.trace.dropped == 200
    assert [s[1] for s in monitor.trace.spans] == list(range(100))
    assert monitor.get_metrics_summary()["processors"]["a"]["count"] == 300


def test_observer_subclasses_keep_working(run: Any) -> None:
    """A hook subclass with an attribute named like a hook method, and hooks set on an
    instance, behave as before the timeline."""
    seen: list[str] = []

    class Mine(RunHooks):
        def __init__(self) -> None:
            self.timeline: list[str] = []

        def processor_end(self, processor_id: str, firings: int) -> None:
            self.timeline.append(processor_id)

    mine, patched = Mine(), RunHooks()
    patched.firing_end = lambda pid, *rest: seen.append(pid)  # type: ignore[method-assign]
    monitor = Monitor()
    executor = GraphExecutor(chain(("a", inc), ("b", inc)), monitor, hooks=[mine, patched])
    run(executor.execute(1, monitor=monitor))  # the same monitor twice: counted once
    assert mine.timeline == ["a", "b"] and seen == ["a", "b"]
    assert monitor.events_by_type["processor_start"] == 2
    assert monitor.get_metrics_summary()["total_firings"] == 2


def test_an_observer_is_registered_once(run: Any) -> None:
    monitor = Monitor()
    executor = GraphExecutor(chain(("a", inc)), monitor, hooks=[monitor])
    executor.add_hooks(monitor)
    for i in range(3):
        run(executor.execute(i))
    assert monitor.events_by_type["graph_start"] == 3
