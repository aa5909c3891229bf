"""processor_pipeline.v2.core.graph: the processing graph and its executor. Names only; served by mpipe."""

from mpipe import (
    GraphExecutor,
    GraphNode,
    ProcessingGraph,
)

__all__ = [
    "GraphExecutor",
    "GraphNode",
    "ProcessingGraph",
]
