"""The processing graph: processors as nodes, pipe-to-pipe connections as edges.

Pure model: no I/O, no processes. Validation and topological order live here.
"""

from __future__ import annotations

import itertools
import threading
import weakref
from dataclasses import dataclass, field
from typing import Any

from .._errors import GraphError, ValidationError
from ._interfaces import GraphInterface, ProcessorInterface
from ._pipe import DEFAULT_MAX_BYTES, Pipe
from ._processors import BaseProcessor

__all__ = ["Connection", "GraphNode", "ProcessingGraph"]

_ids = itertools.count(1)

#: ``(from_id, from_output, to_id, to_input)``
Connection = tuple[str, str, str, str]


@dataclass
class GraphNode:
    """A processor in a graph, with the ids of its neighbours.

    Attributes:
        processor: The processor.
        dependencies: Ids of the processors that feed it.
        dependents: Ids of the processors it feeds.
        execution_level: Its topological level once the graph validated (0 for sources), else -1.
    """

    processor: ProcessorInterface
    dependencies: set[str] = field(default_factory=set)
    dependents: set[str] = field(default_factory=set)
    execution_level: int = -1

    @property
    def processor_id(self) -> str:
        """The processor's id."""
        return self.processor.processor_id

    def add_dependency(self, processor_id: str) -> None:
        """Record that ``processor_id`` feeds this node."""
        self.dependencies.add(processor_id)

    def remove_dependency(self, processor_id: str) -> None:
        """Forget that ``processor_id`` feeds this node (an unknown id is ignored)."""
        self.dependencies.discard(processor_id)

    def add_dependent(self, processor_id: str) -> None:
        """Record that this node feeds ``processor_id``."""
        self.dependents.add(processor_id)

    def remove_dependent(self, processor_id: str) -> None:
        """Forget that this node feeds ``processor_id`` (an unknown id is ignored)."""
        self.dependents.discard(processor_id)


def connection_id(conn: Connection) -> str:
    """The id of a connection: ``"a:out->b:in"``."""
    return f"{conn[0]}:{conn[1]}->{conn[2]}:{conn[3]}"


class ProcessingGraph(GraphInterface):
    """A directed acyclic graph of processors.

    Args:
        graph_id: A name for the graph; generated when omitted.
        error_strategy: What to do when a firing fails, unless a processor has its own
            (default: halt the run on the first error).
    """

    def __init__(self, graph_id: str | None = None, error_strategy: Any = None) -> None:
        self.graph_id = graph_id or f"graph_{next(_ids)}"
        self.error_strategy = error_strategy
        self.error_strategies: dict[str, Any] = {}
        self.nodes: dict[str, GraphNode] = {}
        self.connections: list[Connection] = []
        self.pipes: dict[str, Pipe] = {}
        self.execution_order: list[list[str]] = []
        #: Bumped by every change executors compile (the graph's structure, and the placement,
        #: pipes, function or limits of a processor in it), so executors know when to re-plan.
        self._version = 0

    # -- building --------------------------------------------------------------------------------

    def add_processor(self, processor: ProcessorInterface) -> None:
        """Add a processor.

        Raises:
            GraphError: Not a processor, or its id is already in the graph.
        """
        if not isinstance(processor, ProcessorInterface):
            raise GraphError(
                f"graph {self.graph_id!r}: add_processor takes a processor, got "
                f"{type(processor).__name__}"
            )
        pid = processor.processor_id
        if pid in self.nodes:
            raise GraphError(f"graph {self.graph_id!r} already has a processor {pid!r}")
        self.nodes[pid] = GraphNode(processor)
        _hold(processor, self)
        self.execution_order = []
        self._version += 1

    def remove_processor(self, processor_id: str) -> None:
        """Remove a processor and every connection to or from it.

        Raises:
            GraphError: Unknown processor id.
        """
        self._node(processor_id)
        for conn in [c for c in self.connections if processor_id in (c[0], c[2])]:
            self._drop_connection(conn)
        _release(self.nodes.pop(processor_id).processor, self)
        self.error_strategies.pop(processor_id, None)
        self.execution_order = []
        self._version += 1

    def connect(
        self,
        from_id: str,
        from_output: str,
        to_id: str,
        to_input: str,
        max_size: int = 1000,
        max_bytes: int | None = DEFAULT_MAX_BYTES,
    ) -> Pipe:
        """Connect an output pipe of one processor to an input pipe of another.

        An output pipe may feed several inputs (each gets every item); an input pipe takes one
        connection (``validate`` reports an input fed twice).

        Args:
            from_id: The producing processor.
            from_output: Its output pipe's name.
            to_id: The consuming processor.
            to_input: Its input pipe's name.
            max_size: Capacity of the connection's pipe, in items.
            max_bytes: Capacity of the connection's pipe, in bytes (None: items only).

        Returns:
            The connection's pipe (also in ``pipes`` under ``"a:out->b:in"``).

        Raises:
            GraphError: An unknown processor, or the same connection made twice.
            PipeError: A bad ``max_size`` or ``max_bytes``.
        """
        missing = [p for p in (from_id, to_id) if p not in self.nodes]
        if missing:
            raise GraphError(
                f"graph {self.graph_id!r}: cannot connect {from_id}:{from_output} -> "
                f"{to_id}:{to_input}: unknown processor {', '.join(map(repr, missing))}"
            )
        conn: Connection = (from_id, from_output, to_id, to_input)
        cid = connection_id(conn)
        if cid in self.pipes:
            raise GraphError(f"graph {self.graph_id!r}: connection {cid} already exists")
        pipe = Pipe(cid, max_size=max_size, max_bytes=max_bytes)
        self.connections.append(conn)
        self.pipes[cid] = pipe
        self.nodes[from_id].dependents.add(to_id)
        self.nodes[to_id].dependencies.add(from_id)
        self.execution_order = []
        self._version += 1
        return pipe

    def _drop_connection(self, conn: Connection) -> None:
        self.connections.remove(conn)
        del self.pipes[connection_id(conn)]
        a, b = conn[0], conn[2]
        if not any(c[0] == a and c[2] == b for c in self.connections):
            self.nodes[a].dependents.discard(b)
            self.nodes[b].dependencies.discard(a)

    def set_error_strategy(self, processor_id: str, strategy: Any) -> None:
        """Give one processor its own error strategy (overrides the graph's).

        Raises:
            GraphError: Unknown processor id.
        """
        self._node(processor_id)
        self.error_strategies[processor_id] = strategy
        self._version += 1

    # -- reading ---------------------------------------------------------------------------------

    def _node(self, processor_id: str) -> GraphNode:
        try:
            return self.nodes[processor_id]
        except KeyError:
            raise GraphError(f"graph {self.graph_id!r} has no processor {processor_id!r}") from None

    def get_processor(self, processor_id: str) -> ProcessorInterface:
        """The processor with this id.

        Raises:
            GraphError: Unknown processor id.
        """
        return self._node(processor_id).processor

    def get_all_processors(self) -> dict[str, ProcessorInterface]:
        """Every processor, by id, in the order they were added."""
        return {pid: node.processor for pid, node in self.nodes.items()}

    def sources(self) -> list[str]:
        """Ids of processors with no dependencies."""
        return [pid for pid, node in self.nodes.items() if not node.dependencies]

    def sinks(self) -> list[str]:
        """Ids of processors with no dependents."""
        return [pid for pid, node in self.nodes.items() if not node.dependents]

    def get_graph_info(self) -> dict[str, Any]:
        """A JSON-compatible description of the graph."""
        problems = self.validate()
        return {
            "graph_id": self.graph_id,
            "processor_count": len(self.nodes),
            "connection_count": len(self.connections),
            "processors": {
                pid: {
                    "type": type(node.processor).__name__,
                    "input_pipes": list(node.processor.input_pipes),
                    "output_pipes": list(node.processor.output_pipes),
                    "dependencies": sorted(node.dependencies),
                    "dependents": sorted(node.dependents),
                }
                for pid, node in self.nodes.items()
            },
            "connections": [
                {"from_processor": a, "from_output": o, "to_processor": b, "to_input": i}
                for a, o, b, i in self.connections
            ],
            "sources": self.sources(),
            "sinks": self.sinks(),
            "valid": not problems,
            "validation_errors": problems,
            "execution_order": self.execution_order if not problems else [],
        }

    # -- validation ------------------------------------------------------------------------------

    def validate(self) -> list[str]:
        """Every problem of the graph at once; empty when it is valid.

        Reports cycles (naming the cycle), connections to pipe names a processor does not
        declare, input pipes fed twice, and processors with dependencies but no input pipes.
        Sets ``execution_order`` and each node's ``execution_level`` when the graph is valid.
        """
        problems: list[str] = []
        fed: dict[tuple[str, str], list[str]] = {}
        for conn in self.connections:
            a, out, b, inp = conn
            src, dst = self.nodes[a].processor, self.nodes[b].processor
            if out not in src.output_pipes:
                problems.append(
                    f"connection {connection_id(conn)}: processor {a!r} has no output pipe "
                    f"{out!r} (it declares {_names(src.output_pipes)})"
                )
            if inp not in dst.input_pipes:
                problems.append(
                    f"connection {connection_id(conn)}: processor {b!r} has no input pipe "
                    f"{inp!r} (it declares {_names(dst.input_pipes)})"
                )
            fed.setdefault((b, inp), []).append(f"{a}:{out}")
        for (b, inp), feeders in fed.items():
            if len(feeders) > 1:
                problems.append(
                    f"input pipe {b}:{inp} is fed by {len(feeders)} connections "
                    f"({', '.join(feeders)}); an input pipe takes exactly one"
                )
        for pid, node in self.nodes.items():
            if node.dependencies and not node.processor.input_pipes:
                problems.append(
                    f"processor {pid!r} has dependencies "
                    f"({', '.join(sorted(node.dependencies))}) but declares no input pipes"
                )
        levels = self._levels()
        if sum(map(len, levels)) < len(self.nodes):  # what a cycle holds up never gets a level
            problems.extend(f"cycle: {' -> '.join(cycle)}" for cycle in self._cycles())
        self.execution_order = [] if problems else levels
        for node in self.nodes.values():
            node.execution_level = -1
        for level, pids in enumerate(self.execution_order):
            for pid in pids:
                self.nodes[pid].execution_level = level
        return problems

    def _cycles(self) -> list[list[str]]:
        """One representative cycle per strongly connected component that has one."""
        white, grey, black = 0, 1, 2
        colour = dict.fromkeys(self.nodes, white)
        cycles: list[list[str]] = []
        seen: set[frozenset[str]] = set()
        for root in self.nodes:
            if colour[root] != white:
                continue
            # Iterative DFS: a stack of (node, iterator over its dependents), and the path.
            path: list[str] = [root]
            stack = [iter(sorted(self.nodes[root].dependents))]
            colour[root] = grey
            while stack:
                nxt = next(stack[-1], None)
                if nxt is None:
                    colour[path.pop()] = black
                    stack.pop()
                elif colour[nxt] == grey:
                    cycle = [*path[path.index(nxt) :], nxt]
                    key = frozenset(cycle)
                    if key not in seen:
                        seen.add(key)
                        cycles.append(cycle)
                elif colour[nxt] == white:
                    colour[nxt] = grey
                    path.append(nxt)
                    stack.append(iter(sorted(self.nodes[nxt].dependents)))
        return cycles

    def _levels(self) -> list[list[str]]:
        indegree = {pid: len(node.dependencies) for pid, node in self.nodes.items()}
        level = [pid for pid, d in indegree.items() if d == 0]
        levels: list[list[str]] = []
        order = {pid: i for i, pid in enumerate(self.nodes)}
        while level:
            levels.append(level)
            nxt: list[str] = []
            for pid in level:
                for dep in self.nodes[pid].dependents:
                    indegree[dep] -= 1
                    if indegree[dep] == 0:
                        nxt.append(dep)
            level = sorted(nxt, key=order.__getitem__)
        return levels

    def get_execution_order(self) -> list[list[str]]:
        """Processor ids in topological levels (each level depends only on earlier ones).

        Raises:
            ValidationError: The graph is invalid; ``validation_errors`` lists why.
        """
        problems = self.validate()
        if problems:
            raise ValidationError(f"graph {self.graph_id!r} is invalid", problems)
        return [list(level) for level in self.execution_order]

    def __repr__(self) -> str:
        return (
            f"ProcessingGraph({self.graph_id!r}, {len(self.nodes)} processors, "
            f"{len(self.connections)} connections)"
        )

    def _repr_svg_(self) -> str:
        """The graph as a picture, for notebooks (Jupyter shows it in place of the repr)."""
        # Imported here: drawing is the observe layer's; the model only offers the hook.
        from .._observe._layout import render_svg

        return render_svg(self)


def _names(pipes: dict[str, Pipe]) -> str:
    return ", ".join(repr(n) for n in pipes) if pipes else "none"


def _hold(processor: Any, graph: ProcessingGraph) -> None:
    """Note on ``processor`` (weakly) that ``graph`` holds it, to be told when it changes (see
    ``BaseProcessor._changed``). Other implementations of the interface are not told: their
    changes after an executor compiled the graph need a new executor. A tuple of weak
    references, not a ``WeakSet`` (which took 0.7 KiB and a few microseconds per processor):
    a processor is in one graph or very few."""
    if isinstance(processor, BaseProcessor):
        with _holding:
            processor._graphs = (*_live(processor._graphs, None), weakref.ref(graph))


def _release(processor: Any, graph: ProcessingGraph) -> None:
    """``graph`` no longer holds ``processor``."""
    if isinstance(processor, BaseProcessor):
        with _holding:
            processor._graphs = _live(processor._graphs, graph)


#: Serializes the read and write of a processor's graphs (graphs may be built in threads).
_holding = threading.Lock()


def _live(refs: tuple[weakref.ref[Any], ...], leaving: Any) -> tuple[weakref.ref[Any], ...]:
    return tuple(r for r in refs if (g := r()) is not None and g is not leaving)
