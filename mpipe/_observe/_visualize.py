"""Pictures of a graph: plain text, Mermaid and Graphviz dot source, SVG and PNG."""

from __future__ import annotations

from typing import Literal, overload

from .._errors import ConfigurationError
from .._model._graph import ProcessingGraph

__all__ = ["visualize_graph"]

FORMATS = ("text", "mermaid", "dot", "svg", "png")


def _label(graph: ProcessingGraph, pid: str) -> str:
    proc = graph.nodes[pid].processor
    placement = getattr(proc, "execution", None)
    kind = type(proc).__name__
    return f"{pid} ({kind}{', ' + placement if placement else ''})"


def _quote(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


@overload
def visualize_graph(graph: ProcessingGraph, format: Literal["png"]) -> bytes: ...


@overload
def visualize_graph(
    graph: ProcessingGraph, format: Literal["text", "mermaid", "dot", "svg"] = "text"
) -> str: ...


@overload
def visualize_graph(graph: ProcessingGraph, format: str) -> str | bytes: ...


def visualize_graph(graph: ProcessingGraph, format: str = "text") -> str | bytes:
    """Draw a graph.

    Args:
        graph: The graph.
        format: ``"text"`` (levels and connections), ``"mermaid"`` or ``"dot"`` (source for
            those tools), ``"svg"`` (a picture, as text) or ``"png"`` (a picture, as bytes).
            Pictures are drawn by Graphviz's ``dot`` when it is on the ``PATH``, else by
            mpipe's own layered layout (PNG then needs Pillow: the ``report`` extra).

    Raises:
        ConfigurationError: Unknown format, or PNG with neither ``dot`` nor Pillow.
    """
    if not isinstance(graph, ProcessingGraph):
        raise ConfigurationError(
            f"visualize_graph needs a ProcessingGraph, got {type(graph).__name__}", "graph"
        )
    if format not in FORMATS:
        raise ConfigurationError(
            f"visualize_graph format must be one of {', '.join(FORMATS)}, got {format!r}", "format"
        )
    if format in ("svg", "png"):
        from ._layout import render_png, render_svg

        return render_svg(graph) if format == "svg" else render_png(graph)
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
