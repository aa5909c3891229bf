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


def test_executor_progress_flag_is_quiet_off_a_terminal(
    run: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    run(GraphExecutor(chain(("only", inc)), progress=True).execute(1))
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""  # stderr is not a terminal here


def test_percent_and_time_left_when_the_input_has_a_length(run: Any) -> None:
    out = io.StringIO()
    display = ProgressDisplay(out)
    run(
        GraphExecutor(chain(("a", inc), ("b", double)), hooks=[display]).execute_stream(
            {"a": range(8)}
        )
    )
    text = out.getvalue()
    assert "  a: 8 done / 8 (100%, 0:00 left)" in text
    assert "  b: 8 done / 8 (100%, 0:00 left)" in text  # carried through a one-to-one step


def test_a_total_hint_and_a_generator_input(run: Any) -> None:
    def items() -> Any:
        yield from range(6)

    out = io.StringIO()
    display = ProgressDisplay(out, total=6)
    run(GraphExecutor(chain(("a", inc)), hooks=[display]).execute_stream({"a": items()}))
    assert "  a: 6 done / 6 (100%" in out.getvalue()
    out = io.StringIO()
    run(
        GraphExecutor(chain(("a", inc)), hooks=[ProgressDisplay(out)]).execute_stream(
            {"a": items()}
        )
    )
    assert "  a: 6 done, " in out.getvalue()  # no length, no percent: only the rate
    with pytest.raises(ValueError, match="total must be a non-negative int"):
        ProgressDisplay(total=-1)


def test_bars_on_a_terminal(run: Any) -> None:
    out = io.StringIO()
    display = ProgressDisplay(out, force_terminal=True)
    run(GraphExecutor(chain(("a", inc)), hooks=[display]).execute_stream({"a": range(4)}))
    text = out.getvalue()
    assert "progress" in text and "100%" in text and "4/4" in text and "━" in text


def test_many_processors_are_summed_up(run: Any) -> None:
    steps = [(f"p{i}", inc) for i in range(20)]
    out = io.StringIO()
    run(GraphExecutor(chain(*steps), hooks=[ProgressDisplay(out)]).execute(0))
    assert "... and 8 more processors" in out.getvalue()


def test_processors_are_listed_in_graph_order(run: Any) -> None:
    names = ["zeta", "alpha", "mid", "beta"]
    out = io.StringIO()
    run(GraphExecutor(chain(*[(n, inc) for n in names]), hooks=[ProgressDisplay(out)]).execute(0))
    shown = [line.split(":")[0].strip() for line in out.getvalue().splitlines()[1:5]]
    assert shown == names


@pytest.mark.slow
def test_run_time_and_wait_for_a_worker_are_shown_apart(run: Any) -> None:
    # Four firings of ~0.1 s of work on one worker process: each waits for the ones before it.
    # The run time shown is the work (measured in the worker), the wait is shown beside it.
    from mpipe import ProcessingGraph, SimpleProcessor

    g = ProcessingGraph()
    p = SimpleProcessor(spin, "spin", execution="process")
    p.create_default_pipes()
    g.add_processor(p)
    out = io.StringIO()
    run(GraphExecutor(g, max_workers=1, hooks=[ProgressDisplay(out)]).execute_stream([0.1] * 4))
    (line,) = [x for x in out.getvalue().splitlines() if x.startswith("  spin:")]
    run_ms = float(line.split("run ")[1].split(" ms")[0])
    wait_ms = float(line.split("wait ")[1].split(" ms")[0])
    assert 100 <= run_ms < 1000 and wait_ms > 0
    assert "worker (pid " in out.getvalue() and "worker 1" not in out.getvalue()


def spin(seconds: float) -> float:
    """Busy for ``seconds`` of this thread's CPU time (not wall time: waiting is not work; not the
    process's, which other threads, such as a math library's, may add to meanwhile)."""
    import time

    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass
    return seconds


def test_plain_lines_repeat_while_the_run_is_live(run: Any) -> None:
    import asyncio

    async def slow(x: int) -> int:
        await asyncio.sleep(0.06)
        return x

    out = io.StringIO()
    display = ProgressDisplay(out, interval=0.01, line_interval=0.01)
    run(GraphExecutor(chain(("slow", slow)), hooks=[display]).execute(1))
    heads = [line for line in out.getvalue().splitlines() if line.startswith("mpipe ")]
    assert len(heads) >= 2  # at least one live refresh, then the final line
    assert heads[0].endswith("0 firings, 0 errors") and heads[-1].endswith("- done")


def test_replayed_processors_and_failures_are_shown(run: Any) -> None:
    from mpipe import CheckpointManager, ExecutionError

    def boom(x: int) -> int:
        raise ValueError("boom")

    out = io.StringIO()
    ex = GraphExecutor(
        chain(("a", inc), ("b", boom)),
        checkpoint_manager=CheckpointManager(),
        progress=ProgressDisplay(out),
    )
    with pytest.raises(ExecutionError):
        run(ex.execute(1))
    assert "1 errors - failed: ExecutionError" in out.getvalue()
    with pytest.raises(ExecutionError):
        run(ex.execute(1, resume=ex.get_execution_status()["run_id"]))
    assert "  a: 0 done, 0.0/s, run 0.0 ms, 0 errors (replayed)" in out.getvalue()
