"""A tap or event handler that raises is logged once, with its traceback, then counted.

One line at the run's end (or when a standalone pipe closes) says how many more times it
failed: a tap that fails on every item of a long stream does not print a traceback per item.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest

from mpipe import GraphExecutor, Monitor, MonitorEvent, Pipe

from ._graphs import chain, inc


def bad(item: Any) -> None:
    raise RuntimeError("observer bug")


def records(caplog: pytest.LogCaptureFixture, words: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if words in r.getMessage()]


def test_a_failing_tap_is_logged_once_per_run_with_a_count(
    run: Any, caplog: pytest.LogCaptureFixture
) -> None:
    g = chain(("a", inc), ("b", inc))
    g.get_processor("a").output_pipes["output"].add_tap("bad", bad)
    seen: list[int] = []
    g.get_processor("b").output_pipes["output"].add_tap("good", seen.append)
    ex = GraphExecutor(g)
    with caplog.at_level(logging.ERROR, logger="mpipe"):
        out = run(ex.execute_stream({"a": range(100)}))
    assert out == {"b:output": [x + 2 for x in range(100)]} and len(seen) == 100
    first = records(caplog, "tap 'bad' on pipe")
    assert len(first) == 2  # the first failure, then the count at the run's end
    assert first[0].exc_info is not None and "observer bug" in caplog.text
    assert "failed 99 more time(s)" in first[1].getMessage()
    caplog.clear()
    with caplog.at_level(logging.ERROR, logger="mpipe"):
        run(ex.execute_stream({"a": range(3)}))
    assert len(records(caplog, "tap 'bad' on pipe")) == 2  # each run reports its own


def test_a_standalone_pipe_counts_until_it_closes(caplog: pytest.LogCaptureFixture) -> None:
    pipe = Pipe("p")
    pipe.add_tap("bad", bad)
    with caplog.at_level(logging.ERROR, logger="mpipe"):
        for i in range(5):
            pipe.put(i)
        assert len(records(caplog, "tap 'bad' on pipe 'p'")) == 1
        pipe.close()
    assert "tap 'bad' on pipe 'p' failed 4 more time(s)" in caplog.text


def test_a_failing_event_handler_is_logged_once_per_run(
    run: Any, caplog: pytest.LogCaptureFixture
) -> None:
    monitor = Monitor()
    heard: list[MonitorEvent] = []
    monitor.add_event_handler("processor_complete", heard.append)
    monitor.add_event_handler("processor_complete", bad)
    steps = [(f"p{i}", inc) for i in range(10)]
    with caplog.at_level(logging.ERROR, logger="mpipe"):
        run(GraphExecutor(chain(*steps), monitor).execute(0))
    assert len(heard) == 10
    logged = records(caplog, "event handler 'bad' on processor_complete events")
    assert len(logged) == 2 and logged[0].exc_info is not None
    assert "failed 9 more time(s)" in logged[1].getMessage()
