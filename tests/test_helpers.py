"""Graph-building helpers and visualization."""

from __future__ import annotations

import asyncio

import pytest

from mpipe import (
    ConfigurationError,
    GraphExecutor,
    create_diamond_pipeline,
    create_parallel_pipeline,
    create_simple_pipeline,
    run_simple_pipeline,
    visualize_graph,
)


def test_parallel_pipeline_with_and_without_combine() -> None:
    g = create_parallel_pipeline([("up", str.upper), ("len", len)], combine=lambda d: d)
    assert GraphExecutor(g).run("abc") == {"combine:output": {"up": "ABC", "len": 3}}
    g = create_parallel_pipeline([("up", str.upper), ("len", len)])
    assert GraphExecutor(g).run("abc") == {"up:output": "ABC", "len:output": 3}


def test_parallel_pipeline_keywords() -> None:
    g = create_parallel_pipeline(
        branches=[("up", str.upper), ("n", len)], combine=lambda d: d, combine_id="j"
    )
    assert GraphExecutor(g).run("a") == {"j:output": {"up": "A", "n": 1}}
    with pytest.raises(ConfigurationError, match="processors or branches, not both"):
        create_parallel_pipeline([("a", len)], branches=[("b", len)])
    with pytest.raises(ConfigurationError, match="at least one"):
        create_parallel_pipeline()


def test_diamond_pipeline() -> None:
    g = create_diamond_pipeline(
        ("src", lambda x: x + 1),
        ("l", lambda x: x * 2),
        ("r", lambda x: x * 3),
        ("j", lambda d: d["l"] + d["r"]),
    )
    assert g.get_execution_order() == [["src"], ["l", "r"], ["j"]]
    assert GraphExecutor(g).run(1) == {"j:output": 10}
    named = create_diamond_pipeline(
        source=("s", abs),
        left=("l", abs),
        right=("r", abs),
        join=("j", lambda d: d["l"]),
        graph_id="d",
    )
    assert GraphExecutor(named).run(-2) == {"j:output": 2}


def test_run_simple_pipeline_feeds_the_first_step_even_a_dict() -> None:
    g = create_simple_pipeline([("a", lambda d: d["input"]), ("b", lambda x: x + 1)])
    assert asyncio.run(run_simple_pipeline(g, {"input": 41})) == {"b:output": 42}


def test_bad_steps() -> None:
    with pytest.raises(ConfigurationError, match="at least one"):
        create_simple_pipeline([])
    with pytest.raises(ConfigurationError, match="step 1 must be an"):
        create_simple_pipeline([("a", len), "b"])  # type: ignore[list-item]
    with pytest.raises(ConfigurationError, match="func must be callable"):
        create_simple_pipeline([("a", 3)])  # type: ignore[list-item]


def test_visualize_formats() -> None:
    g = create_diamond_pipeline(("src", abs), ("l", abs), ("r", abs), ("j", dict))
    text = visualize_graph(g)
    assert "level 1: l (SimpleProcessor), r (SimpleProcessor)" in text
    assert "src:output -> l:input" in text
    mermaid = visualize_graph(g, "mermaid")
    assert mermaid.startswith("graph TD") and "-->|output → l|" in mermaid
    dot = visualize_graph(g, format="dot")
    assert dot.startswith('digraph "') and '"src" -> "l"' in dot and dot.endswith("}")
    with pytest.raises(ConfigurationError, match="format must be one of"):
        visualize_graph(g, "gif")


def test_visualize_shows_problems() -> None:
    g = create_simple_pipeline([("a", abs), ("b", abs)])
    g.connect("b", "output", "a", "input")
    assert "INVALID" in visualize_graph(g) and "cycle" in visualize_graph(g)
