"""Breakpoints: pause before a firing, inspect or replace its input, resume, skip or abort."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from mpipe import (
    BreakpointAbort,
    BreakpointHit,
    CheckpointManager,
    ExecutionError,
    GraphError,
    GraphExecutor,
    PipelineError,
    ValidationError,
)

from ._graphs import chain, double, inc


def _executor(**kw: Any) -> GraphExecutor:
    return GraphExecutor(chain(("a", inc), ("b", double), ("c", inc)), **kw)


def test_pause_inspect_replace_resume(run: Any) -> None:
    ex = _executor()
    ex.set_breakpoint("b")

    async def main() -> dict[str, Any]:
        task = asyncio.ensure_future(ex.execute(1))
        hit = await ex.wait_for_break(timeout=10)
        assert (hit.processor_id, hit.index, hit.input) == ("b", 0, {"input": 2})
        assert not task.done()  # the run waits on the paused firing
        status = ex.get_execution_status()["processors"]
        assert status["a"]["finished"] and not status["c"]["finished"]
        hit.replace_input({"input": 100})
        hit.resume()
        return await task

    assert run(main()) == {"c:output": 201}


def test_skip_drops_the_firing(run: Any) -> None:
    ex = _executor()
    ex.set_breakpoint("b", condition=lambda data: data["input"] % 2 == 1)

    async def main() -> dict[str, Any]:
        task = asyncio.ensure_future(ex.execute_stream({"a": range(6)}))
        for expected in (0, 2, 4):  # a emits 1..6: the odd ones break, at b's firings 0, 2, 4
            hit = await ex.wait_for_break(timeout=10)
            assert hit.index == expected and hit.input["input"] % 2 == 1
            hit.skip()
        return await task

    assert run(main()) == {"c:output": [5, 9, 13]}
    (bp,) = ex.list_breakpoints()
    assert bp["hits"] == 3 and bp["processor_id"] == "b" and bp["has_condition"]


def test_abort_ends_the_run(run: Any) -> None:
    ex = _executor()
    ex.set_breakpoint("c")

    async def main() -> None:
        task = asyncio.ensure_future(ex.execute(1))
        hit = await ex.wait_for_break(timeout=10)
        hit.abort("stopped by the test")
        await task

    with pytest.raises(ExecutionError, match="processor 'c' failed") as info:
        run(main())
    assert isinstance(info.value.cause, BreakpointAbort)
    assert "stopped by the test" in str(info.value.cause)
    assert ex.get_execution_status()["state"] == "failed"


def test_step_breaks_at_the_next_firing_of_any_processor(run: Any) -> None:
    ex = _executor()
    ex.set_breakpoint("a")

    async def main() -> dict[str, Any]:
        task = asyncio.ensure_future(ex.execute(1))
        first = await ex.wait_for_break(timeout=10)
        assert first.processor_id == "a"
        ex.step()
        first.resume()
        second = await ex.wait_for_break(timeout=10)
        assert second.processor_id == "b" and second.breakpoint_id is None
        second.resume()
        return await task  # step is one-shot: c runs without pausing

    assert run(main()) == {"c:output": 5}


def test_on_break_callback_decides_without_a_caller(run: Any) -> None:
    seen: list[tuple[str, int]] = []

    def decide(hit: BreakpointHit) -> str | None:
        seen.append((hit.processor_id, hit.input["input"]))
        if hit.input["input"] == 3:
            return "skip"
        if hit.input["input"] == 4:
            hit.resume({"input": 40})
        return None

    ex = _executor(on_break=decide)
    ex.set_breakpoint("b")
    assert run(ex.execute_stream({"a": range(4)})) == {"c:output": [3, 5, 81]}
    assert seen == [("b", 1), ("b", 2), ("b", 3), ("b", 4)]

    async def async_abort(hit: BreakpointHit) -> str:
        await asyncio.sleep(0)
        return "abort"

    ex2 = _executor(on_break=async_abort)
    ex2.set_breakpoint("a")
    with pytest.raises(ExecutionError, match="processor 'a' failed"):
        run(ex2.execute(1))

    ex3 = _executor(on_break=lambda hit: "maybe")
    ex3.set_breakpoint("a")
    with pytest.raises(ExecutionError, match="on_break returned 'maybe'"):
        run(ex3.execute(1))


def test_enable_disable_remove_and_check(run: Any) -> None:
    ex = _executor(on_break=lambda hit: None)
    bp = ex.set_breakpoint("b", condition=lambda d: d["input"] > 5)
    assert ex.check_breakpoint("b", {"input": 6}) and not ex.check_breakpoint("b", {"input": 1})
    assert not ex.check_breakpoint("a", {"input": 6})
    ex.disable_breakpoint(bp)
    assert not ex.check_breakpoint("b", {"input": 6})
    run(ex.execute(10))
    assert ex.list_breakpoints()[0]["hits"] == 0 and not ex.list_breakpoints()[0]["enabled"]
    ex.enable_breakpoint(bp)
    run(ex.execute(10))
    assert ex.list_breakpoints()[0]["hits"] == 1
    ex.remove_breakpoint(bp)
    assert ex.list_breakpoints() == []
    for method in (ex.remove_breakpoint, ex.enable_breakpoint, ex.disable_breakpoint):
        with pytest.raises(KeyError, match="unknown breakpoint id 'bp-99'"):
            method("bp-99")


def test_bad_breakpoints() -> None:
    ex = _executor()
    with pytest.raises(GraphError, match="unknown processor 'nope'"):
        ex.set_breakpoint("nope")
    with pytest.raises(TypeError, match="condition must be callable"):
        ex.set_breakpoint("a", condition="x > 1")  # type: ignore[arg-type]
    with pytest.raises(Exception, match="on_break must be callable"):
        _executor(on_break=42)  # type: ignore[arg-type]


def test_manager_breakpoints_are_shared_and_checked_at_run_time(run: Any) -> None:
    manager = CheckpointManager()
    manager.set_breakpoint("ghost")  # a manager knows no graph: accepted here...
    ex = _executor(checkpoint_manager=manager)
    with pytest.raises(ValidationError) as info:  # ...refused before anything runs
        run(ex.execute(1))
    assert "breakpoint on unknown processor 'ghost'" in info.value.validation_errors
    manager.remove_breakpoint(manager.list_breakpoints()[0]["breakpoint_id"])
    manager.set_breakpoint("c")
    assert ex.list_breakpoints()[0]["processor_id"] == "c"

    async def main() -> dict[str, Any]:
        task = asyncio.ensure_future(ex.execute(1))
        hit = await ex.wait_for_break(timeout=10)
        assert hit.processor_id == "c" and hit.input == {"input": 4}
        hit.resume()
        return await task

    assert run(main()) == {"c:output": 5}


def test_waiting_for_a_break_that_never_comes(run: Any) -> None:
    ex = _executor()

    async def main() -> None:
        task = asyncio.ensure_future(ex.execute(1))
        with pytest.raises(PipelineError, match="the run ended without pausing"):
            await ex.wait_for_break(timeout=10)
        await task
        with pytest.raises(TimeoutError, match=r"no breakpoint hit within 0\.01 s"):
            await ex.wait_for_break(timeout=0.01)

    run(main())


def test_hit_misuse(run: Any) -> None:
    ex = _executor()
    ex.set_breakpoint("a")

    async def main() -> None:
        task = asyncio.ensure_future(ex.execute(1))
        hit = await ex.wait_for_break(timeout=10)
        with pytest.raises(ValueError, match="must be a dict with the keys"):
            hit.replace_input({"wrong": 1})
        hit.resume()
        with pytest.raises(PipelineError, match="already resumed"):
            hit.skip()
        await task

    run(main())


def test_stop_while_paused_cancels_cleanly(run: Any) -> None:
    ex = _executor()
    ex.set_breakpoint("b")

    async def main() -> None:
        task = asyncio.ensure_future(ex.execute(1))
        await ex.wait_for_break(timeout=10)
        await ex.stop_execution()
        with pytest.raises(ExecutionError, match="stopped"):
            await task

    run(main())
    assert ex.get_execution_status()["state"] == "stopped"
