"""Building, validating and ordering graphs."""

from __future__ import annotations

import gc
import tracemalloc
import weakref

import pytest

from mpipe import GraphError, ProcessingGraph, SimpleProcessor, ValidationError


def proc(
    pid: str, inputs: list[str] | None = None, outputs: list[str] | None = None
) -> SimpleProcessor:
    p = SimpleProcessor(lambda x: x, pid)
    p.create_default_pipes(inputs, outputs)
    return p


def graph_of(*pids: str) -> ProcessingGraph:
    g = ProcessingGraph("g")
    for pid in pids:
        g.add_processor(proc(pid))
    return g


def test_duplicate_processor_id_is_a_graph_error() -> None:
    g = graph_of("a")
    with pytest.raises(GraphError, match="already has a processor 'a'"):
        g.add_processor(proc("a"))


def test_add_processor_rejects_non_processors() -> None:
    with pytest.raises(GraphError, match="takes a processor"):
        ProcessingGraph().add_processor(lambda x: x)  # type: ignore[arg-type]


def test_connect_unknown_processor_names_it() -> None:
    g = graph_of("a")
    with pytest.raises(GraphError, match="unknown processor 'ghost'"):
        g.connect("a", "output", "ghost", "input")


def test_connect_returns_the_connection_pipe_and_records_it() -> None:
    g = graph_of("a", "b")
    pipe = g.connect("a", "output", "b", "input", max_size=7)
    assert g.pipes == {"a:output->b:input": pipe}
    assert pipe.max_size == 7
    assert g.connections == [("a", "output", "b", "input")]
    assert g.nodes["a"].dependents == {"b"}
    assert g.nodes["b"].dependencies == {"a"}
    with pytest.raises(GraphError, match="already exists"):
        g.connect("a", "output", "b", "input")


def test_remove_processor_drops_its_connections() -> None:
    g = graph_of("a", "b", "c")
    g.connect("a", "output", "b", "input")
    g.connect("b", "output", "c", "input")
    g.remove_processor("b")
    assert g.connections == []
    assert g.pipes == {}
    assert g.nodes["a"].dependents == set()
    assert g.nodes["c"].dependencies == set()
    with pytest.raises(GraphError, match="no processor 'b'"):
        g.remove_processor("b")


def test_a_processor_tells_the_graphs_that_hold_it_when_it_changes() -> None:
    # What executors compile depends on the graph's version: a processor's placement is part
    # of it, in every graph that holds the processor, and only while it holds it.
    shared = proc("p")
    first, second = ProcessingGraph("first"), ProcessingGraph("second")
    first.add_processor(shared)
    second.add_processor(shared)
    v1, v2 = first._version, second._version
    shared.execution = "thread"
    assert (first._version, second._version) == (v1 + 1, v2 + 1)
    first.remove_processor("p")
    v1, v2 = first._version, second._version
    shared.execution = "inline"
    assert (first._version, second._version) == (v1, v2 + 1)
    graph_ref = weakref.ref(second)
    del second
    gc.collect()
    assert graph_ref() is None  # the processor does not keep its graphs alive
    shared.execution = "thread"  # and a change after they are gone tells nobody


def test_a_big_graph_takes_a_few_kib_per_processor() -> None:
    def build(n: int) -> ProcessingGraph:
        g = ProcessingGraph("line")
        for i in range(n):
            g.add_processor(proc(f"p{i}"))
            if i:
                g.connect(f"p{i - 1}", "output", f"p{i}", "input")
        return g

    build(3)  # first-use allocations of the classes are not the graph's
    tracemalloc.start()
    try:
        graph = build(1000)
        per_processor = tracemalloc.get_traced_memory()[0] / len(graph.nodes)
    finally:
        tracemalloc.stop()
    # A processor, its two pipes and the pipe of its connection: about 3.5 KiB on 3.11 (13 KiB
    # when every pipe made its queues up front and every processor a WeakSet of its graphs).
    assert per_processor < 6 * 1024


def test_single_processor_is_valid() -> None:
    g = graph_of("only")
    assert g.validate() == []
    assert g.get_execution_order() == [["only"]]


def test_validate_reports_every_problem_at_once() -> None:
    g = ProcessingGraph("bad")
    for p in (proc("a"), proc("b"), proc("c"), proc("d"), proc("e", inputs=[])):
        g.add_processor(p)
    g.connect("a", "output", "b", "input")
    g.connect("b", "output", "c", "input")
    g.connect("c", "output", "a", "input")  # cycle a -> b -> c -> a
    g.connect("d", "result", "b", "nonexistent")  # neither pipe is declared
    g.connect("d", "output", "c", "input")  # c:input fed twice
    g.connect("d", "output", "e", "input")  # e has dependencies but no input pipes
    problems = g.validate()
    text = "\n".join(problems)
    assert "cycle: a -> b -> c -> a" in text
    assert "processor 'd' has no output pipe 'result'" in text
    assert "processor 'b' has no input pipe 'nonexistent'" in text
    assert "input pipe c:input is fed by 2 connections" in text
    assert "processor 'e' has dependencies (d) but declares no input pipes" in text
    assert len(problems) >= 5
    assert g.execution_order == []
    with pytest.raises(ValidationError) as info:
        g.get_execution_order()
    assert info.value.validation_errors == problems


def test_self_loop_is_a_cycle() -> None:
    g = graph_of("a")
    g.connect("a", "output", "a", "input")
    assert any("cycle: a -> a" in p for p in g.validate())


def test_execution_order_is_topological_levels() -> None:
    g = graph_of("src", "left", "right", "join")
    join = g.get_processor("join")
    join.register_input_pipe("l", join.input_pipes["input"])
    join.register_input_pipe("r", join.input_pipes["input"])
    del join.input_pipes["input"]
    g.connect("src", "output", "left", "input")
    g.connect("src", "output", "right", "input")
    g.connect("left", "output", "join", "l")
    g.connect("right", "output", "join", "r")
    assert g.get_execution_order() == [["src"], ["left", "right"], ["join"]]
    assert g.execution_order == [["src"], ["left", "right"], ["join"]]


def test_graph_info_and_accessors() -> None:
    g = graph_of("a", "b")
    g.connect("a", "output", "b", "input")
    info = g.get_graph_info()
    assert info["graph_id"] == "g"
    assert info["processor_count"] == 2
    assert info["sources"] == ["a"] and info["sinks"] == ["b"]
    assert info["valid"] is True
    assert info["execution_order"] == [["a"], ["b"]]
    assert set(g.get_all_processors()) == {"a", "b"}
    assert g.get_processor("a").processor_id == "a"
    assert g.nodes["a"].processor is g.get_processor("a")
    with pytest.raises(GraphError, match="no processor 'zz'"):
        g.get_processor("zz")


def test_set_error_strategy_needs_a_known_processor() -> None:
    g = graph_of("a")
    with pytest.raises(GraphError, match="no processor 'x'"):
        g.set_error_strategy("x", None)
