"""Diagnosis helpers: run one processor by hand, explain a graph's problems, profile runs."""

from __future__ import annotations

import asyncio
import inspect
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from .._engine._executor import GraphExecutor
from .._errors import ConfigurationError
from .._model._graph import ProcessingGraph
from .._model._interfaces import ProcessorInterface
from .._observe._checkpoints import CheckpointManager
from .._observe._monitor import Monitor

__all__ = ["debug_processor_execution", "profile_graph_execution", "validate_and_fix_graph"]

T = TypeVar("T")

# (what a problem's text contains, the hint for it), checked in this order.
_HINTS: list[tuple[str, str]] = [
    (
        "cycle",
        "break the cycle: remove or redirect one of its connections (a graph must be acyclic)",
    ),
    (
        "isolated",
        "connect the processor to the others, or run it in a graph of its own",
    ),
    (
        "has no output pipe",
        "declare that output pipe on the producing processor (create_default_pipes or "
        "register_output_pipe), or connect from a pipe it declares",
    ),
    (
        "has no input pipe",
        "declare that input pipe on the consuming processor (create_default_pipes or "
        "register_input_pipe), or connect to a pipe it declares",
    ),
    (
        "is fed by",
        "give each input pipe exactly one connection: declare one input pipe per producer",
    ),
    (
        "declares no input pipes",
        "declare input pipes on the processor (create_default_pipes) so its producers can feed it",
    ),
]
_GENERIC_HINT = "check the graph's processors and connections (graph.get_graph_info())"


def _hint(problem: str) -> str:
    for needle, hint in _HINTS:
        if needle in problem:
            return hint
    return _GENERIC_HINT


def validate_and_fix_graph(graph: ProcessingGraph) -> tuple[bool, list[str], list[str]]:
    """Validate a graph and suggest a fix for each problem; the graph is not changed.

    Returns:
        ``(True, [], [])`` for a valid graph, else ``(False, problems, hints)`` with one hint
        per problem, in the same order.

    Raises:
        TypeError: ``graph`` is not a ProcessingGraph.
    """
    if not isinstance(graph, ProcessingGraph):
        raise TypeError(f"validate_and_fix_graph needs a ProcessingGraph, got {graph!r}")
    problems = graph.validate()
    if not problems:
        return True, [], []
    return False, problems, [_hint(p) for p in problems]


def _run_sync(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to the end from synchronous code: in this thread, or in a thread of its
    own when this thread already runs an event loop (a notebook)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(make())
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(make())
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=target, name="mpipe-debug")
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["value"]  # type: ignore[no-any-return]


def _firing_input(processor: ProcessorInterface, data: Any) -> dict[str, Any]:
    names = list(processor.input_pipes) or ["input"]
    if isinstance(data, dict) and data and set(data) <= set(names):
        return dict(data)
    if len(names) == 1:
        return {names[0]: data}
    raise ConfigurationError(
        f"processor {processor.processor_id!r} has the input pipes {names}; give input_data as "
        "a dict with those keys",
        "input_data",
    )


async def _drain(value: Any) -> Any:
    if inspect.isawaitable(value):
        value = await value
    if inspect.isasyncgen(value):
        return [item async for item in value]
    if inspect.isgenerator(value):
        return list(value)
    return value


def _metrics(processor: ProcessorInterface) -> dict[str, Any]:
    try:
        return dict(processor.get_metrics())
    except Exception as exc:
        return {"error": repr(exc)}


def debug_processor_execution(
    processor: ProcessorInterface,
    input_data: Any,
    create_checkpoint: bool = True,
    *,
    checkpoint_manager: CheckpointManager | None = None,
) -> dict[str, Any]:
    """Run one firing of ``processor`` on ``input_data`` by hand and report what happened.

    ``input_data`` is the firing's input: a dict of input pipe name -> item, or, for a
    processor with one input pipe (or none), the item itself. A generator's items are
    collected in a list. Works from synchronous code and from inside a running event loop (the
    firing then runs in a thread of its own while the caller waits).

    Args:
        processor: The processor.
        input_data: Its input.
        create_checkpoint: Save the input as a checkpoint first (named ``debug_<id>_input``).
        checkpoint_manager: Where to save it; by default a new manager that keeps it in memory
            (and may pickle any value), returned under ``checkpoint_manager``. Nothing is
            written to the current directory unless this manager's folder is there.

    Returns:
        ``processor_id``, ``input_data``, ``initial_state``, ``metrics_before``,
        ``checkpoint_id`` and ``checkpoint_manager`` (with ``create_checkpoint``),
        ``execution_successful``, ``output`` (on success) or ``error`` (type and message, on
        failure), ``duration`` (seconds), ``final_state`` and ``metrics_after``.

    Raises:
        TypeError: ``processor`` is not a processor.
        ConfigurationError: ``input_data`` does not fit a processor with several input pipes.
        CheckpointError: The input cannot be saved in ``checkpoint_manager``.
    """
    if not isinstance(processor, ProcessorInterface):
        raise TypeError(f"debug_processor_execution needs a processor, got {processor!r}")
    pid = processor.processor_id
    firing = _firing_input(processor, input_data)
    report: dict[str, Any] = {
        "processor_id": pid,
        "input_data": input_data,
        "initial_state": processor.state.value,
        "metrics_before": _metrics(processor),
    }
    if create_checkpoint:
        manager = checkpoint_manager or CheckpointManager(allow_pickle=True)
        report["checkpoint_id"] = manager.create_checkpoint(
            f"debug_{pid}_input", pid, input_data, {"debug": True, "state": report["initial_state"]}
        )
        report["checkpoint_manager"] = manager

    async def fire() -> Any:
        return await _drain(processor.process(firing))

    start = time.perf_counter()
    try:
        output = _run_sync(fire)
    except Exception as exc:
        report["execution_successful"] = False
        report["error"] = {"type": type(exc).__name__, "message": str(exc)}
    else:
        report["execution_successful"] = True
        report["output"] = output
    report["duration"] = time.perf_counter() - start
    report["final_state"] = processor.state.value
    report["metrics_after"] = _metrics(processor)
    return report


def profile_graph_execution(
    graph: ProcessingGraph, input_data: Any, iterations: int = 1, **executor_options: Any
) -> dict[str, Any]:
    """Run a graph ``iterations`` times on the same input and time it, per run and per processor.

    Synchronous: it runs its own event loop (``asyncio.run``), so it cannot be called from a
    running one; there, run ``GraphExecutor(graph, monitor).execute`` and read the monitor.

    Args:
        graph: The graph.
        input_data: What each run's ``execute`` gets.
        iterations: How many runs (at least 1).
        **executor_options: For the :class:`~mpipe.GraphExecutor` (``backend=``...); its worker
            pools are kept for all the runs.

    Returns:
        ``iterations``, ``total_time`` and ``average_time`` (seconds, of the runs),
        ``processor_times`` (processor id -> ``total_processing_time``, ``items_processed``
        (firings), ``average_per_item``) and ``execution_results`` (per run: ``iteration``,
        ``execution_time``, ``success``, and ``result_keys`` or ``error``).

    Raises:
        ConfigurationError: ``iterations`` is not a positive integer.
        RuntimeError: Called from a running event loop.
    """
    if not isinstance(iterations, int) or isinstance(iterations, bool) or iterations < 1:
        raise ConfigurationError(
            f"iterations must be a positive integer, got {iterations!r}", "iterations"
        )
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        raise RuntimeError(
            "profile_graph_execution runs its own event loop and cannot be called from a "
            "running one; await GraphExecutor(graph, monitor).execute(...) there"
        )
    monitor = Monitor(log_level="CRITICAL")
    executor = GraphExecutor(graph, monitor, **executor_options)

    async def runs() -> list[dict[str, Any]]:
        results: list[dict[str, Any]] = []
        async with executor:
            for i in range(iterations):
                start = time.perf_counter()
                entry: dict[str, Any] = {"iteration": i}
                try:
                    out = await executor.execute(input_data)
                except Exception as exc:
                    entry["success"] = False
                    entry["error"] = f"{type(exc).__name__}: {exc}"
                else:
                    entry["success"] = True
                    entry["result_keys"] = list(out)
                entry["execution_time"] = time.perf_counter() - start
                results.append(entry)
        return results

    results = asyncio.run(runs())
    total = sum(r["execution_time"] for r in results)
    summary = monitor.get_metrics_summary()["processors"]
    times = {
        pid: {
            "total_processing_time": stats["total_time"],
            "items_processed": stats["count"],
            "average_per_item": stats["total_time"] / stats["count"] if stats["count"] else 0.0,
        }
        for pid, stats in summary.items()
    }
    return {
        "iterations": iterations,
        "total_time": total,
        "average_time": total / iterations,
        "processor_times": times,
        "execution_results": results,
    }
