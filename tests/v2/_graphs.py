"""Small graphs shared by the tests of the v2 surface."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from processor_pipeline.v2.core.graph import ProcessingGraph
from processor_pipeline.v2.core.processor import SimpleProcessor


def chain(*steps: tuple[str, Callable[[Any], Any]], graph_id: str = "chain") -> ProcessingGraph:
    """A linear graph of SimpleProcessors, each feeding the next, built the v2 way."""
    graph = ProcessingGraph(graph_id)
    prev = None
    for pid, fn in steps:
        p = SimpleProcessor(fn, pid)
        p.create_default_pipes(["input"], ["output"])
        graph.add_processor(p)
        if prev is not None:
            graph.connect(prev, "output", pid, "input")
        prev = pid
    return graph


def inc(x: int) -> int:
    """Add one."""
    return x + 1


def double(x: int) -> int:
    """Times two."""
    return x * 2
