"""Shortcuts that build common graph shapes from plain functions."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Any

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


def _steps(steps: Sequence[Step], what: str) -> list[SimpleProcessor]:
    if not steps:
        raise ConfigurationError(f"{what} needs at least one (id, function) step")
    out = []
    for i, step in enumerate(steps):
        if not (isinstance(step, tuple) and len(step) == 2 and isinstance(step[0], str)):
            raise ConfigurationError(
                f"{what}: step {i} must be an (id, function) tuple, got {step!r}", f"steps[{i}]"
            )
        proc = SimpleProcessor(step[1], step[0])
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


def create_parallel_pipeline(
    branches: Sequence[Step],
    combine: Callable[[dict[str, Any]], Any] | None = None,
    graph_id: str | None = None,
    combine_id: str = "combine",
) -> ProcessingGraph:
    """Independent branches on the same input, optionally joined by ``combine``.

    Args:
        branches: ``(processor_id, function)`` pairs; each gets the run's input.
        combine: Receives a dict of branch id -> branch output; without it each branch is a sink.
        graph_id: The graph's id.
        combine_id: The id of the combining processor.
    """
    graph = ProcessingGraph(graph_id)
    procs = _steps(branches, "create_parallel_pipeline")
    for p in procs:
        graph.add_processor(p)
    if combine is not None:
        join = SimpleProcessor(combine, combine_id)
        join.create_default_pipes([p.processor_id for p in procs], ["output"])
        graph.add_processor(join)
        for p in procs:
            graph.connect(p.processor_id, "output", combine_id, p.processor_id)
    return graph


def create_diamond_pipeline(
    source: Step,
    left: Step,
    right: Step,
    join: Step,
    graph_id: str | None = None,
) -> ProcessingGraph:
    """source -> (left, right) -> join; ``join`` gets a dict with the left and right ids as keys."""
    graph = ProcessingGraph(graph_id)
    src, lft, rgt = _steps([source, left, right], "create_diamond_pipeline")
    sink = SimpleProcessor(join[1], join[0])
    sink.create_default_pipes([lft.processor_id, rgt.processor_id], ["output"])
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
