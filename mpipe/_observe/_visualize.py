"""Pictures of a graph: plain text, Mermaid and Graphviz dot source, SVG and PNG."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, overload

from .._errors import ConfigurationError
from .._model._graph import ProcessingGraph

__all__ = ["visualize_graph"]

FORMATS = ("text", "mermaid", "dot", "svg", "png")


def _label(graph: ProcessingGraph, pid: str, numbers: dict[str, int] | None = None) -> str:
    proc = graph.nodes[pid].processor
    placement = getattr(proc, "execution", None)
    kind = type(proc).__name__
    group = (numbers or {}).get(pid)
    fused = f", fused {group}" if group is not None else ""
    return f"{pid} ({kind}{', ' + placement if placement else ''}{fused})"


def _quote(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


@overload
def visualize_graph(
    graph: ProcessingGraph,
    format: Literal["png"],
    *,
    fused: Sequence[Sequence[str]] | None = None,
) -> bytes: ...


@overload
def visualize_graph(
    graph: ProcessingGraph,
    format: Literal["text", "mermaid", "dot", "svg"] = "text",
    *,
    fused: Sequence[Sequence[str]] | None = None,
) -> str: ...


@overload
def visualize_graph(
    graph: ProcessingGraph, format: str, *, fused: Sequence[Sequence[str]] | None = None
) -> str | bytes: ...


def visualize_graph(
    graph: ProcessingGraph, format: str = "text", *, fused: Sequence[Sequence[str]] | None = None
) -> str | bytes:
    """Draw a graph.

    Args:
        graph: The graph.
        format: ``"text"`` (levels and connections), ``"mermaid"`` or ``"dot"`` (source for
            those tools), ``"svg"`` (a picture, as text) or ``"png"`` (a picture, as bytes).
            Pictures are drawn by Graphviz's ``dot`` when it is on the ``PATH``, else by
            mpipe's own layered layout (PNG then needs Pillow: the ``report`` extra).
        fused: Groups of processor ids that run fused (one worker call per item), as an
            executor's ``get_execution_status()["fused"]`` lists them: each processor's label
            says "fused N", the text lists the groups, Mermaid and dot draw each group as a
            box around its processors.

    Raises:
        ConfigurationError: Unknown format, PNG with neither ``dot`` nor Pillow, or ``fused``
            naming a processor the graph does not have.
    """
    if not isinstance(graph, ProcessingGraph):
        raise ConfigurationError(
            f"visualize_graph needs a ProcessingGraph, got {type(graph).__name__}", "graph"
        )
    if format not in FORMATS:
        raise ConfigurationError(
            f"visualize_graph format must be one of {', '.join(FORMATS)}, got {format!r}", "format"
        )
    groups = [list(group) for group in fused or ()]
    unknown = sorted({pid for group in groups for pid in group} - set(graph.nodes))
    if unknown:
        raise ConfigurationError(
            f"visualize_graph fused names processors graph {graph.graph_id!r} does not have: "
            f"{', '.join(map(repr, unknown))}",
            "fused",
        )
    numbers = {pid: n for n, group in enumerate(groups, 1) for pid in group}
    if format in ("svg", "png"):
        from ._layout import render_png, render_svg

        if format == "svg":
            return render_svg(graph, fused=groups)
        return render_png(graph, fused=groups)
    if format == "mermaid":
        ids = {pid: f"n{i}" for i, pid in enumerate(graph.nodes)}
        lines = ["graph TD"]
        lines += [f'    {ids[pid]}["{_quote(_label(graph, pid, numbers))}"]' for pid in graph.nodes]
        for n, group in enumerate(groups, 1):
            lines.append(f'    subgraph fused{n} ["fused {n}: one worker call per item"]')
            lines += [f"        {ids[pid]}" for pid in group]
            lines.append("    end")
        lines += [f"    {ids[a]} -->|{o} → {i}| {ids[b]}" for a, o, b, i in graph.connections]
        return "\n".join(lines)
    if format == "dot":
        lines = [f'digraph "{_quote(graph.graph_id)}" {{', "    rankdir=LR;"]
        lines += [
            f'    "{_quote(pid)}" [label="{_quote(_label(graph, pid, numbers))}"];'
            for pid in graph.nodes
        ]
        for n, group in enumerate(groups, 1):
            lines.append(f'    subgraph "cluster_fused_{n}" {{')
            lines.append(f'        label="fused {n}: one worker call per item"; style=dashed;')
            lines += [f'        "{_quote(pid)}";' for pid in group]
            lines.append("    }")
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
            labels = ", ".join(_label(graph, pid, numbers) for pid in level)
            lines.append(f"  level {n}: {labels}")
    if graph.connections:
        lines.append("  connections:")
        lines += [f"    {a}:{o} -> {b}:{i}" for a, o, b, i in graph.connections]
    if groups:
        lines.append("  fused (one worker call per item):")
        lines += [f"    {n}: {' -> '.join(group)}" for n, group in enumerate(groups, 1)]
    return "\n".join(lines)
