"""Pictures of a graph: plain text, Mermaid and Graphviz dot."""

from __future__ import annotations

from .._errors import ConfigurationError
from .._model._graph import ProcessingGraph

__all__ = ["visualize_graph"]

FORMATS = ("text", "mermaid", "dot")


def _label(graph: ProcessingGraph, pid: str) -> str:
    proc = graph.nodes[pid].processor
    placement = getattr(proc, "execution", None)
    kind = type(proc).__name__
    return f"{pid} ({kind}{', ' + placement if placement else ''})"


def _quote(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def visualize_graph(graph: ProcessingGraph, format: str = "text") -> str:
    """Draw a graph.

    Args:
        graph: The graph.
        format: ``"text"`` (levels and connections), ``"mermaid"`` or ``"dot"``.

    Raises:
        ConfigurationError: Unknown format.
    """
    if format not in FORMATS:
        raise ConfigurationError(
            f"visualize_graph format must be one of {', '.join(FORMATS)}, got {format!r}", "format"
        )
    if format == "mermaid":
        ids = {pid: f"n{i}" for i, pid in enumerate(graph.nodes)}
        lines = ["graph TD"]
        lines += [f'    {ids[pid]}["{_quote(_label(graph, pid))}"]' for pid in graph.nodes]
        lines += [f"    {ids[a]} -->|{o} → {i}| {ids[b]}" for a, o, b, i in graph.connections]
        return "\n".join(lines)
    if format == "dot":
        lines = [f'digraph "{_quote(graph.graph_id)}" {{', "    rankdir=LR;"]
        lines += [
            f'    "{_quote(pid)}" [label="{_quote(_label(graph, pid))}"];' for pid in graph.nodes
        ]
        lines += [
            f'    "{_quote(a)}" -> "{_quote(b)}" [label="{_quote(o)} → {_quote(i)}"];'
            for a, o, b, i in graph.connections
        ]
        lines.append("}")
        return "\n".join(lines)
    problems = graph.validate()
    lines = [
        f"Graph {graph.graph_id} ({len(graph.nodes)} processors, {len(graph.connections)} connections)"
    ]
    if problems:
        lines.append("  INVALID:")
        lines += [f"    - {p}" for p in problems]
    else:
        for n, level in enumerate(graph.execution_order):
            lines.append(f"  level {n}: {', '.join(_label(graph, pid) for pid in level)}")
    if graph.connections:
        lines.append("  connections:")
        lines += [f"    {a}:{o} -> {b}:{i}" for a, o, b, i in graph.connections]
    return "\n".join(lines)
