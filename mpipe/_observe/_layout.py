"""Pictures of a graph as SVG (and PNG), drawn by a layered DAG layout in pure Python.

Graphviz's ``dot`` draws better pictures, and :func:`render_svg` uses it when it is on the
``PATH``; everything here works without it, so a picture is one ``pip install`` away.

The layout is the classic layered (Sugiyama) one, left to right:

1. layers: each processor one layer right of its furthest dependency (longest path from the
   sources); processors on a cycle, which an invalid graph may have, go one layer past the
   rest, in graph order;
2. an edge that spans several layers gets a virtual point in each layer between, so that it
   bends around the boxes instead of crossing them;
3. order within a layer: a few down and up sweeps of the barycentre heuristic, which keeps
   crossings few;
4. coordinates: each layer a column as wide as its widest box, boxes stacked and centred.
"""

from __future__ import annotations

import html
import itertools
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field

from .._errors import ConfigurationError
from .._model._graph import Connection, ProcessingGraph

__all__ = ["Layout", "graph_layout", "render_png", "render_svg", "svg_of_layout"]

#: What to install for PNG pictures without Graphviz (Pillow comes with the ``report`` extra).
REPORT_EXTRA = "pip install 'processor-pipeline[report]'"

FONT = 12  # px
CHAR_W = 7.0  # px per character at FONT, for the sans-serif fonts browsers pick
BOX_H = 40.0
PAD_X = 14.0
LAYER_GAP = 110.0
ROW_GAP = 26.0
MARGIN = 20.0
SWEEPS = 4

#: An edge's note in the picture: (text, colour) keyed by connection; see :func:`render_svg`.
EdgeNotes = dict[Connection, tuple[str, str]]


@dataclass
class Box:
    """A processor's box: centre, size and its two lines of text."""

    pid: str
    title: str
    subtitle: str
    x: float = 0.0
    y: float = 0.0
    w: float = 0.0
    h: float = BOX_H


@dataclass
class Edge:
    """A connection drawn through ``points`` (the box edges and any virtual points)."""

    conn: Connection
    points: list[tuple[float, float]] = field(default_factory=list)


@dataclass
class Layout:
    """Where everything goes: boxes, edges and the picture's size."""

    boxes: dict[str, Box]
    edges: list[Edge]
    width: float
    height: float


def _subtitle(graph: ProcessingGraph, pid: str, fused: dict[str, int] | None = None) -> str:
    proc = graph.nodes[pid].processor
    placement = getattr(proc, "execution", None)
    group = (fused or {}).get(pid)
    return (
        type(proc).__name__
        + (f", {placement}" if placement else "")
        + (f", fused {group}" if group is not None else "")
    )


def fused_numbers(fused: Sequence[Sequence[str]] | None) -> dict[str, int]:
    """Processor id -> the number (from 1) of the fused group it runs in."""
    return {pid: n for n, group in enumerate(fused or (), 1) for pid in group}


def _layers(graph: ProcessingGraph) -> dict[str, int]:
    """Longest-path layer of each processor (cycles go last)."""
    indegree = {pid: len(node.dependencies) for pid, node in graph.nodes.items()}
    layer = dict.fromkeys(graph.nodes, 0)
    ready = [pid for pid, d in indegree.items() if d == 0]
    placed: set[str] = set()
    while ready:
        pid = ready.pop(0)
        placed.add(pid)
        for dep in sorted(graph.nodes[pid].dependents):
            layer[dep] = max(layer[dep], layer[pid] + 1)
            indegree[dep] -= 1
            if indegree[dep] == 0:
                ready.append(dep)
    rest = [pid for pid in graph.nodes if pid not in placed]
    if rest:
        last = max((layer[p] for p in placed), default=-1) + 1
        for pid in rest:
            layer[pid] = last
    return layer


def graph_layout(graph: ProcessingGraph, fused: Sequence[Sequence[str]] | None = None) -> Layout:
    """Lay a graph out left to right (see the module's docstring for how).

    Args:
        graph: The graph (valid or not: cycles are drawn too).
        fused: Groups of processors that run fused: their boxes say "fused N".
    """
    numbers = fused_numbers(fused)
    layer_of = _layers(graph)
    n_layers = max(layer_of.values(), default=-1) + 1
    # Rows: real processors and the virtual points of long edges, per layer.
    rows: list[list[str]] = [[] for _ in range(n_layers)]
    for pid in graph.nodes:
        rows[layer_of[pid]].append(pid)
    chains: list[tuple[Connection, list[str]]] = []  # each edge as the row keys it passes
    ups: dict[str, list[str]] = {key: [] for key in graph.nodes}  # neighbours one layer left
    downs: dict[str, list[str]] = {key: [] for key in graph.nodes}  # ... one layer right
    for n, conn in enumerate(graph.connections):
        a, _, b, _ = conn
        la, lb = layer_of[a], layer_of[b]
        chain = [a]
        for k in range(la + 1, lb):  # virtual points of a long edge, one per layer between
            key = f"\x00{n}:{k}"
            rows[k].append(key)
            ups[key], downs[key] = [], []
            chain.append(key)
        chain.append(b)
        if lb > la:  # back edges of a cycle do not pull on the order
            for u, v in itertools.pairwise(chain):
                downs[u].append(v)
                ups[v].append(u)
        chains.append((conn, chain))
    # Barycentre sweeps: order each layer by the mean position of its neighbours in the last.
    pos = {key: float(i) for row in rows for i, key in enumerate(row)}
    for sweep in range(SWEEPS):
        down = sweep % 2 == 0
        order = range(1, n_layers) if down else range(n_layers - 2, -1, -1)
        for k in order:
            nbrs = ups if down else downs

            def centre(key: str, nbrs: dict[str, list[str]] = nbrs) -> float:
                near = nbrs.get(key) or []
                return sum(pos[n] for n in near) / len(near) if near else pos[key]

            rows[k].sort(key=centre)
            for i, key in enumerate(rows[k]):
                pos[key] = float(i)
    # Coordinates.
    boxes = {
        pid: Box(pid, pid, _subtitle(graph, pid, numbers))
        for pid in graph.nodes  # dict order: graph order
    }
    for box in boxes.values():
        box.w = max(len(box.title), len(box.subtitle) * 0.85) * CHAR_W + 2 * PAD_X
    widths = [max((boxes[k].w for k in row if k in boxes), default=0.0) for row in rows]
    heights = [
        sum(BOX_H if k in boxes else 0.0 for k in row) + ROW_GAP * max(len(row) - 1, 0)
        for row in rows
    ]
    tallest = max(heights, default=0.0)
    centres: dict[str, tuple[float, float]] = {}
    x = MARGIN
    for k, row in enumerate(rows):
        y = MARGIN + (tallest - heights[k]) / 2
        cx = x + widths[k] / 2
        for key in row:
            h = BOX_H if key in boxes else 0.0
            centres[key] = (cx, y + h / 2)
            if key in boxes:
                boxes[key].x, boxes[key].y = cx, y + h / 2
            y += h + ROW_GAP
        x += widths[k] + LAYER_GAP
    width = max(x - LAYER_GAP + MARGIN, 2 * MARGIN)
    height = tallest + 2 * MARGIN
    edges = []
    for conn, chain in chains:
        src, dst = boxes[conn[0]], boxes[conn[2]]
        if dst.x <= src.x:  # a self-loop or a back edge of a cycle
            points = [(src.x, src.y - src.h / 2), (dst.x, dst.y - dst.h / 2)]
        else:
            points = [(src.x + src.w / 2, src.y)]
            points += [centres[k] for k in chain[1:-1]]
            points.append((dst.x - dst.w / 2, dst.y))
        edges.append(Edge(conn, points))
    _spread_ports(edges, boxes)
    return Layout(boxes, edges, width, height)


def _spread_ports(edges: list[Edge], boxes: dict[str, Box]) -> None:
    """Edges into (out of) one box meet its side at points spread over the side, in the
    order of where they come from (go to), so that they neither cross nor merge there."""
    for end in (-1, 0):  # -1: where edges enter a box; 0: where they leave
        groups: dict[str, list[Edge]] = {}
        for edge in edges:
            if edge.points[-1][0] > edge.points[0][0]:  # forward edges only
                groups.setdefault(edge.conn[2 if end == -1 else 0], []).append(edge)
        for pid, group in groups.items():
            if len(group) < 2:
                continue
            box = boxes[pid]
            near = -2 if end == -1 else 1
            group.sort(key=lambda e: (e.points[near][1], e.conn))
            span = box.h * 0.6
            for n, edge in enumerate(group):
                x, _ = edge.points[end]
                edge.points[end] = (x, box.y - span / 2 + span * n / (len(group) - 1))


def _path(points: list[tuple[float, float]], back: bool) -> str:
    """An SVG path through the points: smooth curves between consecutive points."""
    (x0, y0), rest = points[0], points[1:]
    if back:  # an arc over the top, from box to box
        x1, y1 = rest[-1]
        lift = 40.0 + abs(x1 - x0) / 4
        top = min(y0, y1) - lift
        return f"M{x0:.1f},{y0:.1f} C{x0:.1f},{top:.1f} {x1:.1f},{top:.1f} {x1:.1f},{y1:.1f}"
    parts = [f"M{x0:.1f},{y0:.1f}"]
    px, py = x0, y0
    for x, y in rest:
        mx = (px + x) / 2
        parts.append(f"C{mx:.1f},{py:.1f} {mx:.1f},{y:.1f} {x:.1f},{y:.1f}")
        px, py = x, y
    return " ".join(parts)


def _midpoint(points: list[tuple[float, float]], back: bool) -> tuple[float, float]:
    if back:
        (x0, y0), (x1, y1) = points[0], points[-1]
        return (x0 + x1) / 2, min(y0, y1) - 30.0 - abs(x1 - x0) / 8
    if len(points) % 2 == 1:
        return points[len(points) // 2]
    (x0, y0), (x1, y1) = points[len(points) // 2 - 1], points[len(points) // 2]
    return (x0 + x1) / 2, (y0 + y1) / 2


def svg_of_layout(
    layout: Layout, title: str, notes: EdgeNotes | None = None, box_fill: str = "#eef3fb"
) -> str:
    """The layout as a standalone SVG document.

    Each processor is a ``<g class="node">`` and each connection a ``<g class="edge">``, both
    with a ``<title>`` (the processor id; the connection id ``a:out->b:in``).

    Args:
        layout: From :func:`graph_layout`.
        title: The picture's title (the graph id).
        notes: Text and colour per connection, drawn instead of its pipe names (a report
            shows each pipe's peak fill this way).
        box_fill: The boxes' colour.
    """
    esc = html.escape
    top = (
        min([0.0] + [b.y - b.h / 2 - 60.0 for b in layout.boxes.values()])
        if any(e.points[-1][0] <= e.points[0][0] for e in layout.edges)
        else 0.0
    )
    height = layout.height - top
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{layout.width:.0f}" '
        f'height="{height:.0f}" viewBox="0 {top:.0f} {layout.width:.0f} {height:.0f}" '
        f'font-family="Helvetica, Arial, sans-serif" font-size="{FONT}">',
        f"<title>{esc(title)}</title>",
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" '
        'markerWidth="8" markerHeight="8" orient="auto-start-reverse">'
        '<path d="M0,0 L10,5 L0,10 z" fill="#555"/></marker></defs>',
    ]
    for edge in layout.edges:
        a, o, b, i = edge.conn
        back = edge.points[-1][0] <= edge.points[0][0]
        text, colour = (notes or {}).get(edge.conn, (f"{o} → {i}", "#555"))
        mx, my = _midpoint(edge.points, back)
        out.append(
            f'<g class="edge"><title>{esc(f"{a}:{o}->{b}:{i}")}</title>'
            f'<path d="{_path(edge.points, back)}" fill="none" stroke="{esc(colour)}" '
            f'stroke-width="1.6" marker-end="url(#arrow)"/>'
            f'<text x="{mx:.1f}" y="{my - 5:.1f}" text-anchor="middle" fill="{esc(colour)}" '
            f'font-size="{FONT - 2}">{esc(text)}</text></g>'
        )
    for box in layout.boxes.values():
        x0, y0 = box.x - box.w / 2, box.y - box.h / 2
        out.append(
            f'<g class="node" id="node-{esc(box.pid)}"><title>{esc(box.pid)}</title>'
            f'<rect x="{x0:.1f}" y="{y0:.1f}" width="{box.w:.1f}" height="{box.h:.1f}" '
            f'rx="6" fill="{esc(box_fill)}" stroke="#3b5b8c" stroke-width="1.2"/>'
            f'<text x="{box.x:.1f}" y="{box.y - 3:.1f}" text-anchor="middle" '
            f'font-weight="bold">{esc(box.title)}</text>'
            f'<text x="{box.x:.1f}" y="{box.y + 12:.1f}" text-anchor="middle" fill="#555" '
            f'font-size="{FONT - 2}">{esc(box.subtitle)}</text></g>'
        )
    out.append("</svg>")
    return "\n".join(out)


def _dot() -> str | None:
    return shutil.which("dot")


def _run_dot(dot: str, source: str, fmt: str) -> bytes | None:
    """``dot -T<fmt>`` of the source, or None when dot fails (the caller falls back)."""
    try:
        done = subprocess.run(
            [dot, f"-T{fmt}"], input=source.encode(), capture_output=True, timeout=30, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 and done.stdout else None


def render_svg(
    graph: ProcessingGraph,
    *,
    use_dot: bool | None = None,
    fused: Sequence[Sequence[str]] | None = None,
) -> str:
    """The graph as an SVG document.

    Args:
        graph: The graph.
        use_dot: Draw with Graphviz's ``dot`` (True), with the built-in layout (False), or
            with ``dot`` when it is on the ``PATH`` and the built-in layout otherwise (None).
        fused: Groups of processors that run fused, marked in the picture.

    Raises:
        ConfigurationError: ``use_dot=True`` and ``dot`` is not on the ``PATH``.
    """
    dot = _dot() if use_dot is not False else None
    if use_dot and dot is None:
        raise ConfigurationError("Graphviz 'dot' is not on the PATH", "use_dot")
    if dot is not None:
        from ._visualize import visualize_graph

        drawn = _run_dot(dot, visualize_graph(graph, "dot", fused=fused), "svg")
        if drawn is not None:
            return drawn.decode()
    return svg_of_layout(graph_layout(graph, fused), graph.graph_id)


def render_png(
    graph: ProcessingGraph,
    *,
    use_dot: bool | None = None,
    scale: float = 2.0,
    fused: Sequence[Sequence[str]] | None = None,
) -> bytes:
    """The graph as a PNG image: by ``dot`` when on the ``PATH``, else by Pillow.

    Args:
        graph: The graph.
        use_dot: As for :func:`render_svg`.
        scale: Pixels per layout unit when Pillow draws (2: sharp on high-density screens).
        fused: As for :func:`render_svg`.

    Raises:
        ConfigurationError: Neither ``dot`` nor Pillow is there (the message says what to
            install), or ``use_dot=True`` without ``dot``.
    """
    dot = _dot() if use_dot is not False else None
    if use_dot and dot is None:
        raise ConfigurationError("Graphviz 'dot' is not on the PATH", "use_dot")
    if dot is not None:
        from ._visualize import visualize_graph

        drawn = _run_dot(dot, visualize_graph(graph, "dot", fused=fused), "png")
        if drawn is not None:
            return drawn
    try:
        from PIL import Image, ImageDraw, ImageFont
    except ImportError:
        raise ConfigurationError(
            "PNG pictures need Graphviz's 'dot' on the PATH or Pillow: " + REPORT_EXTRA,
            "format",
        ) from None
    import io

    layout = graph_layout(graph, fused)
    # Room above the boxes for the arcs of back edges (cycles).
    top = 70.0 if any(e.points[-1][0] <= e.points[0][0] for e in layout.edges) else 0.0
    size = (int((layout.width) * scale) + 1, int((layout.height + top) * scale) + 1)
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    try:
        font = ImageFont.load_default(size=FONT * scale)
        small = ImageFont.load_default(size=(FONT - 2) * scale)
    except TypeError:  # Pillow < 10.1: one bitmap size
        font = small = ImageFont.load_default()

    def at(x: float, y: float) -> tuple[float, float]:
        return x * scale, (y + top) * scale

    for edge in layout.edges:
        back = edge.points[-1][0] <= edge.points[0][0]
        points = edge.points
        if back:
            (x0, y0), (x1, y1) = points[0], points[-1]
            lift = min(y0, y1) - 40.0
            points = [(x0, y0), (x0, lift), (x1, lift), (x1, y1)]
        line = [at(x, y) for x, y in _curve(points)]
        draw.line(line, fill="#555555", width=max(int(scale), 1))
        _arrowhead(draw, line[-2], line[-1], scale)
        mx, my = _midpoint(edge.points, back)
        draw.text(
            at(mx, my - 5),
            f"{edge.conn[1]} -> {edge.conn[3]}",
            fill="#555555",
            font=small,
            anchor="ms",
        )
    for box in layout.boxes.values():
        x0, y0 = at(box.x - box.w / 2, box.y - box.h / 2)
        x1, y1 = at(box.x + box.w / 2, box.y + box.h / 2)
        draw.rounded_rectangle(
            (x0, y0, x1, y1),
            radius=6 * scale,
            fill="#eef3fb",
            outline="#3b5b8c",
            width=max(int(scale), 1),
        )
        draw.text(at(box.x, box.y - 3), box.title, fill="black", font=font, anchor="ms")
        draw.text(at(box.x, box.y + 12), box.subtitle, fill="#555555", font=small, anchor="ms")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _curve(points: list[tuple[float, float]], steps: int = 12) -> list[tuple[float, float]]:
    """The smooth curve of :func:`_path` as a polyline (for raster pictures)."""
    out = [points[0]]
    for (px, py), (x, y) in itertools.pairwise(points):
        mx = (px + x) / 2
        for s in range(1, steps + 1):
            t = s / steps
            u = 1 - t
            # Cubic Bezier with control points (mx, py) and (mx, y).
            bx = u**3 * px + 3 * u * u * t * mx + 3 * u * t * t * mx + t**3 * x
            by = u**3 * py + 3 * u * u * t * py + 3 * u * t * t * y + t**3 * y
            out.append((bx, by))
    return out


def _arrowhead(
    draw: object, tail: tuple[float, float], tip: tuple[float, float], scale: float
) -> None:
    import math

    angle = math.atan2(tip[1] - tail[1], tip[0] - tail[0])
    size = 8 * scale
    left = (tip[0] - size * math.cos(angle - 0.4), tip[1] - size * math.sin(angle - 0.4))
    right = (tip[0] - size * math.cos(angle + 0.4), tip[1] - size * math.sin(angle + 0.4))
    draw.polygon([tip, left, right], fill="#555555")  # type: ignore[attr-defined]
