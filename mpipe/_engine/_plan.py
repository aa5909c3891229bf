"""Compiling a graph into a plan: its nodes, its lanes, where its input enters and its results leave.

A :class:`Plan` is built once per version of the graph (and of the executor's settings, see
``GraphExecutor._fingerprint``) and reused by every run of one executor, which resets it at the
start of each run. It holds the run's nodes and lanes, never the user's objects' state: the
graph, its processors and its pipes only describe, so executors that share a graph each compile
a plan of their own and run independently.
"""

from __future__ import annotations

import gc
import threading
import time
import weakref
from collections.abc import Callable, Iterable
from typing import Any, TypeGuard

from .._backends import Backend
from .._errors import ValidationError
from .._model._graph import ProcessingGraph, connection_id
from .._model._interfaces import ProcessorInterface
from .._model._pipe import Pipe, PipeType, add_traffic_source, tap_changes
from .._model._placement import check_placement
from .._model._processors import BaseProcessor
from ._fused import FusedBook
from ._fusion import FusionWatch, fuse
from ._inputs import Entry, EntryIndex
from ._lanes import Lane, LaneBook
from ._nodes import DISCARD, Node

__all__ = ["Plan", "compile_plan", "give_back", "lifecycle_of", "take_spare"]

#: Idle plans kept per graph for the next executor of the same graph and settings: a script
#: or a server that makes a new executor per call compiles the graph once, not per call.
SPARES_PER_GRAPH = 2

_spares: weakref.WeakKeyDictionary[ProcessingGraph, list[Plan]] = weakref.WeakKeyDictionary()
_spares_lock = threading.Lock()


def take_spare(
    graph: ProcessingGraph,
    fingerprint: tuple[int, ...],
    backend_for: Callable[[str], Backend],
    blocked: Iterable[str] = (),
) -> Plan | None:
    """An idle plan of ``graph`` compiled with ``fingerprint`` (another executor used it and
    was dropped) whose fusion still holds (``blocked``: the processors with breakpoints now),
    moved onto this executor's backends; None when there is none."""
    with _spares_lock:
        plans = _spares.get(graph, [])
        for n, plan in enumerate(plans):
            if plan.fingerprint == fingerprint and (
                plan.watch is None or not plan.watch.changed(blocked)
            ):
                del plans[n]  # another executor's settings keep theirs
                break
        else:
            return None
    plan.adopt(backend_for)
    return plan


def give_back(graph: weakref.ref[ProcessingGraph], plan: Plan) -> None:
    """Keep ``plan`` for the next executor of its graph (its executor is dropped)."""
    owner = graph()
    if owner is None or not plan.portable or plan.running:
        return
    with _spares_lock:
        plans = _spares.setdefault(owner, [])
        plans.append(plan)
        del plans[:-SPARES_PER_GRAPH]  # the newest are kept: older settings give way


class Foreign:
    """Bookkeeping for a processor that implements the interface but is not a BaseProcessor."""

    has_callbacks = False
    stateful = True

    def __init__(self, processor: ProcessorInterface) -> None:
        self.processor = processor
        self._items_out = 0

    def _record(self, duration: float, failed: bool) -> None:
        pass

    def _record_many(self, n: int, duration: float, longest: float | None = None) -> None:
        pass

    def _waited(self, queue: float, transfer: float) -> None:
        pass

    def _fire_callbacks(self, event: str, arg: Any) -> None:
        pass


class Plan:
    """A graph compiled for running: its nodes and lanes, entries and sinks.

    Attributes:
        fingerprint: What the plan was compiled from; a run recompiles when it changed.
        nodes: One node per processor, in graph order.
        lanes: Every lane: connections, entries and sinks.
        index: Where the caller's input goes (see ``mpipe/_engine/_inputs.py``).
        entry_lanes: ``(processor id, input pipe name)`` -> the lane that input enters.
        sinks: ``(result key, lane)`` for every output of every sink processor.
        placements: Processor id -> where its firings run.
    """

    __slots__ = (
        "__weakref__",
        "_batch_totals",
        "_by_pipe",
        "backends",
        "book",
        "ended_at",
        "entry_lanes",
        "fingerprint",
        "fresh",
        "fused",
        "index",
        "lane_map",
        "lanes",
        "lifecycle",
        "nodes",
        "pipe_map",
        "placements",
        "portable",
        "processor_ids",
        "procs",
        "relink",
        "running",
        "single_entries",
        "sink_keys",
        "sinks",
        "strategy_resets",
        "taps_seen",
        "watch",
    )

    def __init__(
        self,
        fingerprint: tuple[int, ...],
        nodes: list[Node],
        index: EntryIndex,
        entry_lanes: dict[tuple[str, str], Lane],
        sinks: list[tuple[str, Lane]],
        lanes: list[Lane],
        placements: dict[str, str],
    ) -> None:
        self.fingerprint = fingerprint
        self.nodes = nodes
        self.index = index
        self.entry_lanes = entry_lanes
        self.sinks = sinks
        self.lanes = lanes
        self.placements = placements
        #: The processor ids, one list shared by every run of the plan (observers may tell two
        #: runs of one plan apart from runs of another by its identity).
        self.processor_ids = list(placements)
        #: Every lane by pipe id, and every pipe of the plan by id, for observers (made once per
        #: plan, shared by its runs): a pipe's metrics count its live lanes' traffic.
        self.lane_map = {lane.pipe_id: lane for lane in lanes}
        self.pipe_map = {lane.pipe_id: lane.pipe for lane in lanes}
        #: The lanes of each pipe, by the pipe's identity (see :meth:`lanes_of`).
        self._by_pipe: dict[int, list[Lane]] = {}
        for lane in lanes:
            self._by_pipe.setdefault(id(lane.pipe), []).append(lane)
        #: What each run needs of the nodes, worked out once: the processors, those whose
        #: initialize/cleanup must be called, and the ``reset`` of each distinct error
        #: strategy that has one (called as a run starts).
        self.procs, self.lifecycle = lifecycle_of(nodes)
        self.strategy_resets = strategy_resets(nodes)
        #: The processor ids of each fused group, in the order they run (``_fusion.py``).
        self.fused: list[list[str]] = [list(n.fused.ids) for n in nodes if n.fused is not None]
        #: What fusion depended on beyond the graph (None: nothing could fuse).
        self.watch: FusionWatch | None = None
        self.backends = list({id(n.backend): n.backend for n in nodes}.values())
        #: Whether another executor with the same settings may run the plan: its nodes hold
        #: nothing of a backend but the backend itself (no wrapped calls, no fetchers).
        self.portable = all(
            type(b).wrap is Backend.wrap and type(b).fetcher is Backend.fetcher
            for b in self.backends
        )
        #: Source id -> its entry lane, when every source has one (the common batch input).
        self.single_entries: dict[str, Lane] | None = (
            None
            if index.single is None
            else {
                pid: entry_lanes[(e.processor_id, e.pipe_name)] for pid, e in index.single.items()
            }
        )
        #: Each sink lane's result key, shared by the sinks of every run of the plan.
        self.sink_keys = {id(lane): key for key, lane in sinks}
        #: Set when a run put replay feeders in some nodes' place (resume): the next run links
        #: the nodes to their lanes again.
        self.relink = False
        #: How many tap changes the lanes last saw (see ``tap_changes``).
        self.taps_seen = tap_changes()
        self._batch_totals: dict[str, int] | None = None
        #: Whether no run used the plan yet (its first run needs no reset).
        self.fresh = True
        #: Whether a run of the plan is live, and when the last one ended (wall clock).
        self.running = False
        self.ended_at: float | None = None
        #: Lanes to look at when a run ends (see ``LaneBook``).
        self.book = LaneBook()
        for lane in lanes:
            lane.book = self.book
        add_traffic_source(self)

    def reset(self) -> None:
        """Forget the last run: empty every lane, reset every node, relink if a run changed links."""
        if self.fresh:  # nothing ran yet: the nodes and lanes are as compiled
            self.fresh = False
            if self.taps_seen == tap_changes():
                return
        changes = tap_changes()
        if changes != self.taps_seen:
            self.taps_seen = changes
            for lane in self.lanes:
                lane.retap()
        for lane in self.lanes:  # empty and open again
            if lane.items:
                lane.clear()
            lane.closed = False
        for node in self.nodes:
            node.reset()
        if self.relink:
            for node in self.nodes:
                node.relink()
            self.relink = False

    def lanes_of(self, pipe: Pipe) -> list[Lane]:
        """The lanes that carry ``pipe``'s items (a pipe's metrics add their traffic)."""
        return self._by_pipe.get(id(pipe), [])

    def batch_totals(self) -> dict[str, int]:
        """Items each source gets in a batch run (one): made once per plan, shared (read only)."""
        totals = self._batch_totals
        if totals is None:
            totals = self._batch_totals = {pid: 1 for pid, _ in self.entry_lanes}
        return totals

    def adopt(self, backend_for: Callable[[str], Backend]) -> None:
        """Run on another executor's backends from now on (same kinds, same settings: only a
        ``portable`` plan, whose backends keep nothing of their own in the nodes)."""
        for node in self.nodes:
            node.backend = backend_for(node.placement)
        self.backends = list({id(n.backend): n.backend for n in self.nodes}.values())

    def ended(self) -> None:
        """A run of the plan ended: close the lanes' waits, report tap failures."""
        self.running = False
        self.ended_at = time.time()
        book = self.book
        if book.stalled or book.failed_taps:
            book.settle()

    def __del__(self) -> None:
        # The plan is dropped: its lanes' traffic moves into the pipes, which count it from
        # then on by themselves (see ``Lane.retire``).
        try:
            for lane in self.lanes:
                lane.retire(self.ended_at)
        except Exception:  # at interpreter exit the modules may be half gone; nothing to keep
            pass


def compile_plan(
    graph: ProcessingGraph,
    fingerprint: tuple[int, ...],
    default_placement: str,
    backend_for: Callable[[str], Backend],
    strategy_for: Callable[[str, ProcessorInterface], Any],
    fuse_on: bool = False,
    blocked: frozenset[str] = frozenset(),
) -> Plan:
    """Validate ``graph`` and build its plan.

    Args:
        graph: The graph.
        fingerprint: What the plan depends on (kept on it).
        default_placement: Where a processor runs when it does not say.
        backend_for: The executor's backend for a placement (made, not started).
        strategy_for: The error strategy of a processor.
        fuse_on: Fuse what qualifies (see ``mpipe/_engine/_fusion.py``).
        blocked: Processors that must not fuse (they have breakpoints).

    Raises:
        ValidationError: The graph is invalid.
        ConfigurationError: A processor's placement is unknown or it cannot run there.
    """
    # Compiling makes a few objects per processor and keeps every one of them: the garbage
    # collector, run every few hundred allocations, would walk the growing plan again and
    # again and find nothing to free (it took half of a large graph's first run).
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _compile(
            graph, fingerprint, default_placement, backend_for, strategy_for, fuse_on, blocked
        )
    finally:
        if collecting:
            gc.enable()


def _compile(
    graph: ProcessingGraph,
    fingerprint: tuple[int, ...],
    default_placement: str,
    backend_for: Callable[[str], Backend],
    strategy_for: Callable[[str, ProcessorInterface], Any],
    fuse_on: bool,
    blocked: frozenset[str],
) -> Plan:
    problems = graph.validate()
    if problems:
        raise ValidationError(f"graph {graph.graph_id!r} is invalid", problems)
    connected = {(b, i) for _, _, b, i in graph.connections}
    # One lane per connection. Taps on a processor's own declared pipes see the items too:
    # the producer's output pipe through the first connection from it (so a tap sees each item
    # once, however many consumers), the consumer's input pipe through the one into it.
    inputs_of: dict[tuple[str, str], Lane] = {}
    outputs_of: dict[tuple[str, str], list[Lane]] = {}
    for conn in graph.connections:
        src, out_name, dst, in_name = conn
        watched: list[Pipe] = []
        if (src, out_name) not in outputs_of:
            own_out = graph.nodes[src].processor.output_pipes.get(out_name)
            if own_out is not None:
                watched.append(own_out)
        own_in = graph.nodes[dst].processor.input_pipes.get(in_name)
        if own_in is not None:
            watched.append(own_in)
        lane = Lane(graph.pipes[connection_id(conn)], watched)
        inputs_of[(dst, in_name)] = lane
        outputs_of.setdefault((src, out_name), []).append(lane)
    entries: list[Entry] = []
    entry_lanes: dict[tuple[str, str], Lane] = {}
    sinks: list[tuple[str, Lane]] = []
    drops: list[Lane] = []
    nodes: list[Node] = []
    placements: dict[str, str] = {}
    for pid, gnode in graph.nodes.items():
        proc = gnode.processor
        placement = getattr(proc, "execution", None) or default_placement
        placements[pid] = check_placement(placement, f"processor {pid!r}")
        backend = backend_for(placement)
        input_names = list(proc.input_pipes) or ["input"]
        for name in input_names:
            if (pid, name) not in connected:
                entries.append(Entry(pid, name, not gnode.dependencies))
                own_in = proc.input_pipes.get(name)
                if own_in is None:
                    own_in = Pipe(f"{pid}:{name}", pipe_type=PipeType.INPUT)
                entry_lanes[(pid, name)] = inputs_of[(pid, name)] = Lane(own_in)
        outputs: dict[str, list[Lane]] = {}
        for name, own in proc.output_pipes.items():
            targets = list(outputs_of.get((pid, name), []))
            if not gnode.dependents:
                sink = Lane(own)
                sinks.append((f"{pid}:{name}", sink))
                targets.append(sink)
            elif not targets:
                # An output nobody is connected to: its items are dropped, through a lane of the
                # processor's own pipe so that the pipe's taps and counters see them.
                drop = Lane(own)
                drop.consumer = DISCARD
                drops.append(drop)
                targets.append(drop)
            outputs[name] = targets
        if _is_base(proc):
            fn, item_arg = proc._firing_call()
            book: Any = proc
            concurrency = proc.max_concurrent or backend.concurrency(proc.stateful)
            timeout = proc.timeout
        else:
            fn, item_arg, book = proc.process, False, Foreign(proc)
            concurrency, timeout = backend.concurrency(True), None
        call = backend.wrap(fn, tuple(outputs), sink=not gnode.dependents)
        if _is_base(proc) or call is not fn:
            backend.check_callable(call, pid)
        nodes.append(
            Node(
                pid,
                book,
                call,
                item_arg and len(input_names) == 1,
                input_names,
                [inputs_of[(pid, n)] for n in input_names],
                outputs,
                backend,
                concurrency,
                strategy_for(pid, proc),
                timeout,
            )
        )
    _mark_fetching(graph, nodes)
    nodes, watch = fuse(nodes, fuse_on, blocked)
    lanes = [
        *(lane for group in outputs_of.values() for lane in group),
        *entry_lanes.values(),
        *(lane for _, lane in sinks),
        *drops,
    ]
    plan = Plan(fingerprint, nodes, EntryIndex(entries), entry_lanes, sinks, lanes, placements)
    plan.watch = watch
    return plan


def _mark_fetching(graph: ProcessingGraph, nodes: list[Node]) -> None:
    """A backend whose results are references to values held elsewhere (Dask) gives a
    ``fetcher``; a processor placed on another backend that takes from one fetches the values
    before each firing. Decided here, at compile time, so that nodes fed only by local nodes keep
    their fast path."""
    if all(b.fetcher() is None for b in {id(n.backend): n.backend for n in nodes}.values()):
        return  # the common case: every value is local
    by_id = {n.node_id: n for n in nodes}
    for node in nodes:
        for pid in graph.nodes[node.node_id].dependencies:
            upstream = by_id[pid].backend
            fetch = upstream.fetcher()
            if fetch is not None and upstream is not node.backend:
                node.fetch = fetch
                node.fast = False
                node.batch_size = 0
                break


def lifecycle_of(nodes: list[Node]) -> tuple[list[BaseProcessor], list[Any]]:
    """The nodes' processors, and those whose ``initialize``/``cleanup`` must be called (only
    processors that override them cost a task per run)."""
    procs: list[BaseProcessor] = []
    for n in nodes:
        if _is_base(n.processor):
            procs.append(n.processor)
        elif isinstance(n.processor, FusedBook):
            procs.extend(n.processor.group.processors)
    foreign = [n.processor.processor for n in nodes if isinstance(n.processor, Foreign)]
    return procs, [p for p in procs if _overrides_lifecycle(p)] + foreign


def strategy_resets(nodes: list[Node]) -> list[Callable[[], None]]:
    """The ``reset`` of each distinct error strategy of ``nodes`` that has one."""
    every = [s for n in nodes for s in (n.fused.strategies if n.fused else [n.strategy])]
    distinct = {id(s): s for s in every if s}.values()
    return [reset for s in distinct if (reset := getattr(s, "reset", None)) is not None]


def _is_base(processor: Any) -> TypeGuard[BaseProcessor]:
    """``isinstance(processor, BaseProcessor)`` without the ABC machinery's Python-level check
    (thousands of processors are compiled at a time; nothing registers virtual subclasses)."""
    return BaseProcessor in type(processor).__mro__


def _overrides_lifecycle(processor: BaseProcessor) -> bool:
    cls = type(processor)
    return (
        cls.initialize is not BaseProcessor.initialize or cls.cleanup is not BaseProcessor.cleanup
    )
