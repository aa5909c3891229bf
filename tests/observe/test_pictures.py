"""Graph pictures: SVG from the built-in layered layout (no Graphviz needed), PNG, notebooks."""

from __future__ import annotations

import io
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from mpipe import ConfigurationError, ProcessingGraph, SimpleProcessor, visualize_graph
from mpipe._observe import _layout

SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture(autouse=True)
def no_dot(monkeypatch: pytest.MonkeyPatch) -> None:
    """Draw as on a machine without Graphviz, whatever this one has."""
    monkeypatch.setattr(_layout, "_dot", lambda: None)


def diamond_with_a_long_edge() -> ProcessingGraph:
    graph = ProcessingGraph("pictured")
    for pid, inputs in [
        ("load", ["input"]),
        ("left", ["input"]),
        ("right", ["input"]),
        ("deeper", ["input"]),
        ("join", ["a", "b", "c"]),
        ("alone", ["input"]),
    ]:
        p = SimpleProcessor(lambda d: d, pid, execution="thread" if pid == "left" else None)
        p.create_default_pipes(inputs, ["output"])
        graph.add_processor(p)
    graph.connect("load", "output", "left", "input")
    graph.connect("load", "output", "right", "input")
    graph.connect("right", "output", "deeper", "input")
    graph.connect("left", "output", "join", "a")
    graph.connect("deeper", "output", "join", "b")
    graph.connect("load", "output", "join", "c")  # spans three layers
    return graph


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)  # raises on malformed XML


def test_svg_is_well_formed_and_has_every_processor_and_connection() -> None:
    graph = diamond_with_a_long_edge()
    root = parse(visualize_graph(graph, "svg"))
    assert root.tag == f"{SVG}svg"
    nodes = {g.find(f"{SVG}title").text for g in root.iter(f"{SVG}g") if g.get("class") == "node"}  # type: ignore[union-attr]
    edges = {g.find(f"{SVG}title").text for g in root.iter(f"{SVG}g") if g.get("class") == "edge"}  # type: ignore[union-attr]
    assert nodes == set(graph.nodes)
    assert edges == {f"{a}:{o}->{b}:{i}" for a, o, b, i in graph.connections}
    texts = " ".join(t.text or "" for t in root.iter(f"{SVG}text"))
    assert "SimpleProcessor, thread" in texts and "output → c" in texts


def test_layers_run_left_to_right_and_boxes_do_not_overlap() -> None:
    layout = _layout.graph_layout(diamond_with_a_long_edge())
    x = {pid: box.x for pid, box in layout.boxes.items()}
    assert x["load"] < x["left"] == x["right"] < x["deeper"] < x["join"]
    boxes = list(layout.boxes.values())
    for n, a in enumerate(boxes):
        for b in boxes[n + 1 :]:
            apart_x = abs(a.x - b.x) >= (a.w + b.w) / 2
            apart_y = abs(a.y - b.y) >= (a.h + b.h) / 2
            assert apart_x or apart_y, (a.pid, b.pid)
    long_edge = next(e for e in layout.edges if e.conn[3] == "c")
    assert len(long_edge.points) == 4  # bends through a point in each of the two layers between


def test_a_graph_with_a_cycle_is_still_drawn() -> None:
    graph = ProcessingGraph("loop")
    for pid in ("a", "b"):
        p = SimpleProcessor(lambda d: d, pid)
        p.create_default_pipes()
        graph.add_processor(p)
    graph.connect("a", "output", "b", "input")
    graph.connect("b", "output", "a", "input")
    root = parse(visualize_graph(graph, "svg"))
    assert len([g for g in root.iter(f"{SVG}g") if g.get("class") == "edge"]) == 2


def test_a_graph_shows_itself_as_svg_in_a_notebook() -> None:
    graph = diamond_with_a_long_edge()
    assert parse(graph._repr_svg_()).tag == f"{SVG}svg"


def test_png_is_drawn_by_pillow_without_graphviz() -> None:
    pytest.importorskip("PIL")
    from PIL import Image

    png = visualize_graph(diamond_with_a_long_edge(), "png")
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(io.BytesIO(png)) as image:
        assert image.width > 400 and image.height > 100


def test_png_without_graphviz_or_pillow_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "PIL", None)
    with pytest.raises(ConfigurationError, match=r"processor-pipeline\[report\]"):
        visualize_graph(diamond_with_a_long_edge(), "png")


def test_unknown_format_and_non_graph_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="must be one of text, mermaid, dot, svg, png"):
        visualize_graph(diamond_with_a_long_edge(), "gif")
    with pytest.raises(ConfigurationError, match="needs a ProcessingGraph"):
        visualize_graph("graph", "svg")  # type: ignore[call-overload]


def test_dot_is_used_when_asked_for_and_missing_is_an_error() -> None:
    with pytest.raises(ConfigurationError, match="'dot' is not on the PATH"):
        _layout.render_svg(diamond_with_a_long_edge(), use_dot=True)


def test_cli_viz_writes_svg_and_png(tmp_path: Path) -> None:
    from mpipe._cli import main

    cfg = tmp_path / "g.yaml"
    cfg.write_text(
        "graph_id: drawn\nprocessors:\n"
        "  - {processor_id: a, processor_type: simple, parameters: {function: passthrough}}\n"
        "  - {processor_id: b, processor_type: simple, parameters: {function: passthrough}}\n"
        "connections:\n"
        "  - {from_processor: a, from_output: output, to_processor: b, to_input: input}\n"
    )
    out, err = io.StringIO(), io.StringIO()
    assert main(["viz", str(cfg), "--format", "svg"], out, err) == 0, err.getvalue()
    root = parse(out.getvalue())
    assert {t.text for t in root.iter(f"{SVG}title")} >= {"a", "b", "a:output->b:input"}
    if _has_pil():
        target = tmp_path / "g.png"
        code = main(["viz", str(cfg), "--format", "png", "-o", str(target)], out, err)
        assert code == 0, err.getvalue()
        assert target.read_bytes()[:4] == b"\x89PNG"
        assert f"png picture of graph 'drawn' written to {target}" in err.getvalue()


def _has_pil() -> bool:
    try:
        import PIL  # noqa: F401
    except ImportError:
        return False
    return True


def test_cli_viz_png_refuses_a_terminal(tmp_path: Path) -> None:
    from mpipe._cli import main

    cfg = tmp_path / "g.yaml"
    cfg.write_text(
        "processors:\n"
        "  - {processor_id: a, processor_type: simple, parameters: {function: passthrough}}\n"
    )

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    out, err = Tty(), io.StringIO()
    assert main(["viz", str(cfg), "--format", "png"], out, err) == 2
    assert "give --output FILE or redirect stdout" in err.getvalue()
