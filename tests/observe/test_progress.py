"""Live progress: plain lines off a terminal, a rich live table on one."""

from __future__ import annotations

import io
from typing import Any

import pytest

from mpipe import GraphExecutor, ProgressDisplay

from ._graphs import chain, double, inc


def test_plain_lines_when_not_a_terminal(run: Any) -> None:
    out = io.StringIO()
    display = ProgressDisplay(out)
    run(
        GraphExecutor(chain(("a", inc), ("b", double)), hooks=[display]).execute_stream(
            {"a": range(10)}
        )
    )
    text = out.getvalue()
    assert "2/2 processors finished, 20 firings, 0 errors - done" in text
    assert "  a: 10 done" in text and "  b: 10 done" in text
    assert "parent (pid " in text and "rss" in text
    assert "\x1b[" not in text  # no terminal control codes


def test_live_table_on_a_terminal(run: Any) -> None:
    out = io.StringIO()
    display = ProgressDisplay(out, force_terminal=True)
    run(GraphExecutor(chain(("a", inc)), hooks=[display]).execute_stream({"a": range(5)}))
    text = out.getvalue()
    assert "processor" in text and "items/s" in text and "rss MiB" in text
    assert "\x1b[" in text  # rich drew it


def test_executor_progress_flag_prints_to_stdout(
    run: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    run(GraphExecutor(chain(("only", inc)), progress=True).execute(1))
    assert "only: 1 done" in capsys.readouterr().out


def test_many_processors_are_summed_up(run: Any) -> None:
    steps = [(f"p{i}", inc) for i in range(20)]
    out = io.StringIO()
    run(GraphExecutor(chain(*steps), hooks=[ProgressDisplay(out)]).execute(0))
    assert "... and 8 more processors" in out.getvalue()
