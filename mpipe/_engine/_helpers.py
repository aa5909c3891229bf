"""Shortcuts that build common graph shapes from plain functions."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Any, cast

from .._errors import ConfigurationError
from .._model._graph import ProcessingGraph
from .._model._processors import SimpleProcessor
from ._executor import GraphExecutor

__all__ = [
    "create_diamond_pipeline",
    "create_parallel_pipeline",
    "create_simple_pipeline",
    "run_simple_pipeline",
]

Step = tuple[str, Callable[..., Any]]


def _check_steps(steps: Sequence[Any], what: str) -> list[Step]:
    if not steps:
        raise ConfigurationError(f"{what} needs at least one (id, function) step")
    for i, step in enumerate(steps):
        if not (isinstance(step, tuple) and len(step) == 2 and isinstance(step[0], str)):
            raise ConfigurationError(
                f"{what}: step {i} must be an (id, function) tuple, got {step!r}", f"steps[{i}]"
            )
    return list(steps)


def _steps(steps: Sequence[Step], what: str) -> list[SimpleProcessor]:
    out = []
    for pid, fn in _check_steps(steps, what):
        proc = SimpleProcessor(fn, pid)
        proc.create_default_pipes()
        out.append(proc)
    return out


def create_simple_pipeline(steps: Sequence[Step], graph_id: str | None = None) -> ProcessingGraph:
    """A linear graph: each step's output feeds the next step.

    Args:
        steps: ``(processor_id, function)`` pairs, in order.
        graph_id: The graph's id.
    """
    graph = ProcessingGraph(graph_id)
    procs = _steps(steps, "create_simple_pipeline")
    for p in procs:
        graph.add_processor(p)
    for a, b in itertools.pairwise(procs):
        graph.connect(a.processor_id, "output", b.processor_id, "input")
    return graph


def _identity(item: Any) -> Any:
    return item


def _node(
    pid: str, fn: Callable[..., Any], inputs: list[str], outputs: list[str]
) -> SimpleProcessor:
    proc = SimpleProcessor(fn, pid)
    proc.create_default_pipes(inputs, outputs)
    return proc


def create_parallel_pipeline(
    processors: Sequence[Step] | None = None,
    aggregator: Callable[[dict[str, Any]], Any] | None = None,
    graph_id: str | None = None,
    *,
    branches: Sequence[Step] | None = None,
    combine: Callable[[dict[str, Any]], Any] | None = None,
    combine_id: str = "combine",
) -> ProcessingGraph:
    """Independent branches on the same input, optionally joined.

    A ``"source"`` processor (it passes its input on) feeds every branch, so the graph has one
    source: ``execute(data)`` and :func:`run_simple_pipeline` give ``data`` to every branch.

    Args:
        processors: ``(processor_id, function)`` pairs, one per branch (or ``branches=``).
        aggregator: Joins the branches in an ``"aggregator"`` processor, called with a dict
            ``{"input_0": first branch's output, "input_1": ..., ...}`` in branch order.
        graph_id: The graph's id.
        combine: Joins the branches in a processor named ``combine_id``, called with a dict
            of branch id -> branch output (instead of ``aggregator``).
        combine_id: The id of the ``combine`` processor.

    Without a join, each branch is a sink (``"<branch id>:output"`` in the results).

    Raises:
        ConfigurationError: No branches, a malformed branch, both ``processors`` and
            ``branches``, or both ``aggregator`` and ``combine``.
        GraphError: A branch id used twice, or named like a processor the helper adds.
    """
    if aggregator is not None and combine is not None:
        raise ConfigurationError(
            "create_parallel_pipeline: give aggregator or combine, not both", "combine"
        )
    if processors is not None and branches is not None:
        raise ConfigurationError(
            "create_parallel_pipeline: give processors or branches, not both", "branches"
        )
    procs = _steps(
        processors if processors is not None else branches or [], "create_parallel_pipeline"
    )
    graph = ProcessingGraph(graph_id)
    graph.add_processor(_node("source", _identity, ["input"], ["output"]))
    for p in procs:
        graph.add_processor(p)
        graph.connect("source", "output", p.processor_id, "input")
    if aggregator is not None:
        names = [f"input_{i}" for i in range(len(procs))]
        graph.add_processor(_node("aggregator", aggregator, names, ["output"]))
        for p, name in zip(procs, names, strict=True):
            graph.connect(p.processor_id, "output", "aggregator", name)
    elif combine is not None:
        ids = [p.processor_id for p in procs]
        graph.add_processor(_node(combine_id, combine, ids, ["output"]))
        for pid in ids:
            graph.connect(pid, "output", combine_id, pid)
    return graph


def create_diamond_pipeline(
    splitter: Step | Callable[..., Any] | None = None,
    left_processor: Step | Callable[..., Any] | None = None,
    right_processor: Step | Callable[..., Any] | None = None,
    merger: Step | Callable[..., Any] | None = None,
    graph_id: str | None = None,
    *,
    source: Step | Callable[..., Any] | None = None,
    left: Step | Callable[..., Any] | None = None,
    right: Step | Callable[..., Any] | None = None,
    join: Step | Callable[..., Any] | None = None,
) -> ProcessingGraph:
    """A diamond: split -> (left, right) -> merge.

    The four steps may also be given as ``source=``, ``left=``, ``right=`` and ``join=``. Give
    them as functions, or all four as ``(processor_id, function)`` pairs:

    - functions: processors ``splitter`` (output pipes ``left`` and ``right``: a returned dict
      with those keys is routed key by key, any other value goes to both branches) ->
      ``left_branch`` / ``right_branch`` -> ``merger``, called with ``{"left": ..., "right":
      ...}``; the result is ``"merger:output"``;
    - pairs: the first step's output goes to both branches, and the last is called with a dict
      keyed by the two branch ids.

    Raises:
        ConfigurationError: A step missing or given twice, a mix of functions and pairs, or a
            malformed step.
    """
    steps: list[Any] = []
    for name, value, alias, other in (
        ("splitter", splitter, "source", source),
        ("left_processor", left_processor, "left", left),
        ("right_processor", right_processor, "right", right),
        ("merger", merger, "join", join),
    ):
        if (value is None) == (other is None):
            raise ConfigurationError(
                f"create_diamond_pipeline: give {name} (or {alias}=) exactly once", name
            )
        steps.append(value if value is not None else other)
    if all(callable(s) and not isinstance(s, tuple) for s in steps):
        split, left, right, merge = cast("list[Callable[..., Any]]", steps)
        graph = ProcessingGraph(graph_id)
        graph.add_processor(_node("splitter", split, ["input"], ["left", "right"]))
        graph.add_processor(_node("left_branch", left, ["input"], ["output"]))
        graph.add_processor(_node("right_branch", right, ["input"], ["output"]))
        graph.add_processor(_node("merger", merge, ["left", "right"], ["output"]))
        for side in ("left", "right"):
            graph.connect("splitter", side, f"{side}_branch", "input")
            graph.connect(f"{side}_branch", "output", "merger", side)
        return graph
    if any(callable(s) and not isinstance(s, tuple) for s in steps):
        raise ConfigurationError(
            "create_diamond_pipeline: give all four steps as functions or all four as "
            "(id, function) pairs, not a mix",
            "steps",
        )
    source, left_step, right_step, join = _check_steps(steps, "create_diamond_pipeline")
    graph = ProcessingGraph(graph_id)
    src, lft, rgt = _steps([source, left_step, right_step], "create_diamond_pipeline")
    sink = _node(join[0], join[1], [lft.processor_id, rgt.processor_id], ["output"])
    for p in (src, lft, rgt, sink):
        graph.add_processor(p)
    for branch in (lft, rgt):
        graph.connect(src.processor_id, "output", branch.processor_id, "input")
        graph.connect(branch.processor_id, "output", sink.processor_id, branch.processor_id)
    return graph


async def run_simple_pipeline(
    graph: ProcessingGraph, data: Any, **executor_options: Any
) -> dict[str, Any]:
    """Run a graph made by :func:`create_simple_pipeline`: the first step gets ``data``."""
    sources = graph.sources()
    if len(sources) != 1:
        raise ConfigurationError(
            f"run_simple_pipeline needs a graph with one source, {graph.graph_id!r} has "
            f"{len(sources)}"
        )
    executor = GraphExecutor(graph, **executor_options)
    return await executor.execute({sources[0]: data})
