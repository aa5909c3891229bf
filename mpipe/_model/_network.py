"""A pipe network: a set of pipes and the edges between them, with their status in one place.

A :class:`PipeNetwork` describes and reports; it moves no item. Its pipes' status is read from
the pipes when asked, so a network built from a graph's pipes shows the traffic of the runs
that go through them, including a run live at that moment (see :meth:`Pipe.get_metrics`).
"""

from __future__ import annotations

from typing import Any

from .._errors import PipeError
from ._graph import ProcessingGraph, connection_id
from ._pipe import Pipe

__all__ = ["PipeNetwork"]


class PipeNetwork:
    """Pipes by id, and directed edges between them.

    Attributes:
        pipes: Pipe id -> pipe.
        connections: Pipe id -> ids of the pipes it feeds (an edge may repeat).
    """

    def __init__(self) -> None:
        self.pipes: dict[str, Pipe] = {}
        self.connections: dict[str, list[str]] = {}

    @classmethod
    def from_graph(cls, graph: ProcessingGraph) -> PipeNetwork:
        """The network of a graph's connection pipes (``graph.pipes``).

        An edge goes from each pipe into a processor to each pipe out of the same processor,
        the way items travel through the graph.

        Raises:
            TypeError: ``graph`` is not a ProcessingGraph.
        """
        if not isinstance(graph, ProcessingGraph):
            raise TypeError(f"PipeNetwork.from_graph needs a ProcessingGraph, got {graph!r}")
        network = cls()
        for pipe in graph.pipes.values():
            network.add_pipe(pipe)
        into: dict[str, list[str]] = {}
        out_of: dict[str, list[str]] = {}
        for conn in graph.connections:
            src, _, dst, _ = conn
            pipe = graph.pipes[connection_id(conn)]
            out_of.setdefault(src, []).append(pipe.pipe_id)
            into.setdefault(dst, []).append(pipe.pipe_id)
        for pid, incoming in into.items():
            for a in incoming:
                for b in out_of.get(pid, []):
                    network.connect_pipes(a, b)
        return network

    def add_pipe(self, pipe: Pipe) -> None:
        """Add a pipe (a pipe with the same id is replaced; its edges stay).

        Raises:
            PipeError: ``pipe`` is not a Pipe.
        """
        if not isinstance(pipe, Pipe):
            raise PipeError(
                f"PipeNetwork.add_pipe needs a Pipe, got {type(pipe).__name__}", operation="add"
            )
        self.pipes[pipe.pipe_id] = pipe
        self.connections.setdefault(pipe.pipe_id, [])

    def connect_pipes(self, from_pipe_id: str, to_pipe_id: str) -> None:
        """Add an edge from one pipe to another (the same edge may be added twice).

        Raises:
            PipeError: Either id names no pipe of the network (``operation`` is ``"connect"``).
        """
        for pipe_id in (from_pipe_id, to_pipe_id):
            if pipe_id not in self.pipes:
                raise PipeError(
                    f"cannot connect {from_pipe_id!r} -> {to_pipe_id!r}: no pipe {pipe_id!r} "
                    f"in the network (pipes: {', '.join(map(repr, self.pipes)) or 'none'})",
                    pipe_id,
                    "connect",
                )
        self.connections.setdefault(from_pipe_id, []).append(to_pipe_id)

    def get_network_status(self) -> dict[str, Any]:
        """The network now.

        Keys: ``total_pipes``, ``total_connections`` (edges), ``connections`` (the network's
        own dict, not a copy) and ``pipe_statuses`` (pipe id -> :meth:`Pipe.get_status`).
        """
        return {
            "total_pipes": len(self.pipes),
            "total_connections": sum(len(edges) for edges in self.connections.values()),
            "connections": self.connections,
            "pipe_statuses": {pid: pipe.get_status() for pid, pipe in self.pipes.items()},
        }

    def __repr__(self) -> str:
        edges = sum(len(e) for e in self.connections.values())
        return f"PipeNetwork({len(self.pipes)} pipes, {edges} connections)"
