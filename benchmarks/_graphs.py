"""Graph shapes shared by the benchmark suite (mpipe graphs and their Dask equivalents)."""

from __future__ import annotations

from typing import Any

from mpipe import ProcessingGraph, SimpleProcessor


def inc(x: int) -> int:
    """The tiny firing used to measure scheduler overhead."""
    return x + 1


def total(d: dict[str, int]) -> int:
    """Sum a fan-in's inputs."""
    return sum(d.values())


def chains_graph(n_chains: int, length: int) -> tuple[ProcessingGraph, dict[str, int]]:
    """``n_chains`` independent chains of ``length`` ``inc`` processors, and their inputs."""
    graph = ProcessingGraph(f"chains_{n_chains}x{length}")
    inputs = {}
    for c in range(n_chains):
        prev = None
        for i in range(length):
            pid = f"c{c}_{i}"
            p = SimpleProcessor(inc, pid)
            p.create_default_pipes()
            graph.add_processor(p)
            if prev is None:
                inputs[pid] = c
            else:
                graph.connect(prev, "output", pid, "input")
            prev = pid
    return graph, inputs


def fan_in_graph(n_leaves: int) -> tuple[ProcessingGraph, dict[str, int]]:
    """``n_leaves`` ``inc`` sources feeding one summing sink, and their inputs."""
    graph = ProcessingGraph(f"fan_in_{n_leaves}")
    sink = SimpleProcessor(total, "sum")
    sink.create_default_pipes([f"in{i}" for i in range(n_leaves)], ["output"])
    graph.add_processor(sink)
    inputs = {}
    for i in range(n_leaves):
        p = SimpleProcessor(inc, f"leaf{i}")
        p.create_default_pipes()
        graph.add_processor(p)
        graph.connect(f"leaf{i}", "output", "sum", f"in{i}")
        inputs[f"leaf{i}"] = i
    return graph, inputs


def stages_graph(n_stages: int) -> ProcessingGraph:
    """A linear stream of ``n_stages`` ``inc`` stages; feed it with ``{"s0": iterable}``."""
    graph = ProcessingGraph(f"stages_{n_stages}")
    for i in range(n_stages):
        p = SimpleProcessor(inc, f"s{i}")
        p.create_default_pipes()
        graph.add_processor(p)
        if i:
            graph.connect(f"s{i - 1}", "output", f"s{i}", "input")
    return graph


def chains_dask(n_chains: int, length: int, offset: int = 0) -> tuple[dict[str, Any], list[str]]:
    """The chains graph as a Dask task graph (and its sink keys)."""
    dsk: dict[str, Any] = {}
    sinks = []
    for c in range(n_chains):
        for i in range(length):
            key = f"c{c}_{i}"
            dsk[key] = (inc, c + offset) if i == 0 else (inc, f"c{c}_{i - 1}")
        sinks.append(f"c{c}_{length - 1}")
    return dsk, sinks


def fan_in_dask(n_leaves: int, offset: int = 0) -> tuple[dict[str, Any], str]:
    """The fan-in graph as a Dask task graph (and its sink key)."""
    dsk: dict[str, Any] = {f"leaf{i}": (inc, i + offset) for i in range(n_leaves)}
    dsk["sum"] = (sum, [f"leaf{i}" for i in range(n_leaves)])
    return dsk, "sum"
