"""Fusion: which processors of a plan run as one call per item (a plan-level rewrite).

After the compiler made one node per processor, :func:`fuse` finds groups of process-placed
processors whose items go only to each other and puts one node per group in their place:

- a **chain** ``A -> B (-> C ...)``: A's one output pipe feeds only B, and it is B's only input;
- a **diamond** ``A -> B1 .. Bm -> D`` (m >= 2): A's one output pipe feeds B1 .. Bm and only
  them, each Bi has that one input and one output pipe feeding only D, and D's inputs are
  exactly the Bi's outputs (D zips them); a diamond may itself start or end a chain.

A processor qualifies when its firings need nothing that lives in the parent or in one worker:
a :class:`~mpipe.BaseProcessor` placed on the process pool that is not ``stateful`` (a
``SimpleProcessor``), whose function is a plain sync function (not a coroutine or generator
function), with no ``timeout`` (timed per firing of its own), no callbacks (run in the parent
per firing), no breakpoint, and an error strategy that does not refuse firings before they run
(a circuit breaker). A pipe between two of them joins them only when nothing taps it: a tap
sees each item in the parent, so fusion steps aside there. Nothing fuses when the executor
keeps checkpoints (they save every processor's outputs as they pass through the parent) or was
made with ``fuse=False``.

The group's node has the head's input lanes and the tail's output lanes; the lanes between its
processors stay in the plan (their traffic counters count the items that passed inside the
worker) but no item enters them. What the decision depended on that can change without a new
graph version (taps, callbacks, breakpoints) is watched (:class:`FusionWatch`): the executor
compiles the plan again when it changed.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from typing import Any

from .._model._processors import BaseProcessor
from ._fused import FusedBook, FusedCall, FusedGroup
from ._lanes import Lane
from ._nodes import Node

__all__ = ["FusionWatch", "fuse"]


class FusionWatch:
    """What a plan's fusion depended on beyond the graph: the candidates' callbacks and
    breakpoints, and the taps of the pipes between candidates.

    Args:
        candidates: The processors that could fuse, by id.
        lanes: The lanes between two candidates.
        blocked: The processors that had breakpoints when the plan was compiled.
    """

    def __init__(
        self, candidates: dict[str, BaseProcessor], lanes: list[Lane], blocked: Iterable[str]
    ) -> None:
        from .._model._pipe import tap_changes

        self.candidates = candidates
        self.lanes = lanes
        self.blocked = frozenset(blocked) & candidates.keys()
        self.callbacks = self._callbacks()
        self.tapped = self._tapped()
        self.taps_seen = tap_changes()

    def _callbacks(self) -> frozenset[str]:
        return frozenset(pid for pid, p in self.candidates.items() if p.has_callbacks)

    def _tapped(self) -> frozenset[int]:
        return frozenset(id(lane) for lane in self.lanes if any(p._taps for p in lane.watched))

    def changed(self, blocked: Iterable[str]) -> bool:
        """Whether fusion would now decide otherwise: a candidate gained or lost callbacks or
        a breakpoint (``blocked``: the processors with breakpoints now), or a pipe between
        candidates gained or lost its taps."""
        from .._model._pipe import tap_changes

        if frozenset(blocked) & self.candidates.keys() != self.blocked:
            return True
        if self._callbacks() != self.callbacks:
            return True
        changes = tap_changes()
        if changes != self.taps_seen:
            self.taps_seen = changes
            if self._tapped() != self.tapped:
                return True
        return False


def _plain(fn: Any) -> bool:
    """Whether ``fn`` is a plain sync function (its call returns the value itself)."""
    for f in (fn, getattr(fn, "__call__", None)):  # noqa: B004 - a callable object's own call
        if f is None:
            continue
        if (
            inspect.iscoroutinefunction(f)
            or inspect.isgeneratorfunction(f)
            or inspect.isasyncgenfunction(f)
        ):
            return False
    return True


def _candidate(node: Node) -> bool:
    """Whether ``node``'s processor could run inside a fused call (breakpoints, callbacks and
    taps aside: those are checked apart, since they change without a new graph version)."""
    proc = node.processor
    return (
        node.backend.name == "process"
        and isinstance(proc, BaseProcessor)
        and not proc.stateful
        and node.timeout is None
        and node.gated is None
        and node.fetch is None
        and node.fn is not None
        and _plain(node.fn)
    )


def _single_out(node: Node) -> Lane | None:
    """The one lane of ``node``'s one output pipe, when that is all it has."""
    if len(node.outputs) != 1:
        return None
    (lanes,) = node.outputs.values()
    return lanes[0] if len(lanes) == 1 else None


class _Unit:
    """Processors that run together in one call, in order (one, or a diamond)."""

    __slots__ = ("after", "before", "nodes", "sources")

    def __init__(self, nodes: list[Node], sources: list[tuple[tuple[str, int], ...]]) -> None:
        self.nodes = nodes
        self.sources = sources  # per node: (input name, index within the unit) per input
        self.before: _Unit | None = None
        self.after: _Unit | None = None


def fuse(
    nodes: list[Node], fuse_on: bool, blocked: Iterable[str]
) -> tuple[list[Node], FusionWatch | None]:
    """Put one node per fused group in the place of its processors' nodes.

    Args:
        nodes: One node per processor, in graph order.
        fuse_on: Whether to fuse at all.
        blocked: The processors that have breakpoints (they do not fuse).

    Returns:
        The plan's nodes (in graph order: a group where its head was), and what the decision
        depended on (None when no processor could fuse).
    """
    blocked = frozenset(blocked)
    candidates = {n.node_id: n for n in nodes if _candidate(n)}
    if not fuse_on or len(candidates) < 2:
        return nodes, None
    between = [
        lane
        for n in candidates.values()
        for lanes in n.outputs.values()
        for lane in lanes
        if isinstance(lane.consumer, Node) and lane.consumer.node_id in candidates
    ]
    watch = FusionWatch({pid: n.processor for pid, n in candidates.items()}, between, blocked)
    usable = {
        pid: n
        for pid, n in candidates.items()
        if pid not in blocked and not n.processor.has_callbacks
    }
    units = _units(usable)
    groups = _chains(units)
    if not groups:
        return nodes, watch
    replaced: dict[str, Node | None] = {}
    for chain in groups:
        node = _group_node(chain)
        members = [m for unit in chain for m in unit.nodes]
        replaced[members[0].node_id] = node
        for m in members[1:]:
            replaced[m.node_id] = None
    out: list[Node] = []
    for n in nodes:
        if n.node_id not in replaced:
            out.append(n)
        else:
            group_node = replaced[n.node_id]
            if group_node is not None:
                out.append(group_node)
    return out, watch


def _joins(u: Node, v: Node) -> Lane | None:
    """The lane from ``u`` to ``v`` when it is all of ``u``'s output and of ``v``'s input,
    untapped, on one backend: the edge a chain fuses over."""
    lane = _single_out(u)
    if (
        lane is None
        or lane.consumer is not v
        or len(v.inputs) != 1
        or v.inputs[0] is not lane
        or lane.tapped
        or u.backend is not v.backend
    ):
        return None
    return lane


def _units(usable: dict[str, Node]) -> dict[str, _Unit]:
    """Every usable processor's unit, by processor id: diamonds first, then each one alone."""
    units: dict[str, _Unit] = {}
    for pid, head in usable.items():
        if pid in units or len(head.outputs) != 1:
            continue
        (fan,) = head.outputs.values()
        if len(fan) < 2:
            continue
        branches: list[Node] = []
        join: Node | None = None
        for lane in fan:
            b = lane.consumer
            if (
                not isinstance(b, Node)
                or b.node_id not in usable
                or b.node_id in units
                or lane.tapped
                or len(b.inputs) != 1
                or b.inputs[0] is not lane
                or b.backend is not head.backend
            ):
                break
            out = _single_out(b)
            d = out.consumer if out is not None else None
            if (
                out is None
                or out.tapped
                or not isinstance(d, Node)
                or (join is not None and d is not join)
            ):
                break
            join = d
            branches.append(b)
        else:
            assert join is not None
            if (
                join.node_id not in usable
                or join.node_id in units
                or join.backend is not head.backend
                or len(join.inputs) != len(branches)
                or len({id(b) for b in branches}) != len(branches)
            ):
                continue
            outs = [_single_out(b) for b in branches]
            if {id(lane) for lane in outs} != {id(lane) for lane in join.inputs}:
                continue
            order = [branches[outs.index(lane)] for lane in join.inputs]
            members = [head, *order, join]
            sources: list[tuple[tuple[str, int], ...]] = [()]
            sources += [((b.input_names[0], 0),) for b in order]
            sources.append(tuple((name, 1 + i) for i, name in enumerate(join.input_names)))
            unit = _Unit(members, sources)
            for m in members:
                units[m.node_id] = unit
    for pid, n in usable.items():
        if pid not in units:
            units[pid] = _Unit([n], [()])
    return units


def _chains(units: dict[str, _Unit]) -> list[list[_Unit]]:
    """Units linked into chains; the chains of more than one processor, in order."""
    distinct = list({id(u): u for u in units.values()}.values())
    for u in distinct:
        tail = u.nodes[-1]
        lane = _single_out(tail)
        if lane is None or not isinstance(lane.consumer, Node):
            continue
        v = units.get(lane.consumer.node_id)
        if v is None or v is u or v.nodes[0] is not lane.consumer:
            continue
        if _joins(tail, v.nodes[0]) is not None:
            u.after, v.before = v, u
    chains: list[list[_Unit]] = []
    for u in distinct:
        if u.before is not None:
            continue
        chain = [u]
        while chain[-1].after is not None:
            nxt = chain[-1].after
            assert nxt is not None
            chain.append(nxt)
        if sum(len(c.nodes) for c in chain) > 1:
            chains.append(chain)
    return chains


def _group_node(chain: list[_Unit]) -> Node:
    """The one node that runs a chain of units."""
    members: list[Node] = []
    sources: list[tuple[tuple[str, int], ...]] = []
    for unit in chain:
        offset = len(members)
        for k, (m, src) in enumerate(zip(unit.nodes, unit.sources, strict=True)):
            if k == 0 and offset:  # the unit's head reads the previous unit's tail
                src = ((m.input_names[0], offset - 1),)
            else:
                src = tuple((name, offset + j) for name, j in src)
            members.append(m)
            sources.append(src)
    sources[0] = ()
    index = {id(m): k for k, m in enumerate(members)}
    inner: list[tuple[Lane, int]] = []
    for k, m in enumerate(members[:-1]):
        for lanes in m.outputs.values():
            for lane in lanes:
                if id(lane.consumer) in index:
                    inner.append((lane, k))
    ids = [m.node_id for m in members]
    fns: list[Callable[[Any], Any]] = []
    for m in members:
        assert m.fn is not None
        fns.append(m.fn)
    item_args = [m.item_arg for m in members]
    call = FusedCall(ids, fns, item_args, sources)
    group = FusedGroup(
        ids,
        [m.processor for m in members],
        [m.strategy for m in members],
        [m.input_names for m in members],
        item_args,
        call,
        inner,
    )
    head, tail = members[0], members[-1]
    head.backend.check_callable(call, head.node_id)
    node = Node(
        head.node_id,
        FusedBook(group),
        call,
        head.item_arg,
        head.input_names,
        head.inputs,
        tail.outputs,
        head.backend,
        min(m.concurrency for m in members),
        head.strategy,
        None,
    )
    node.fused = group
    node.batch_size = 0  # one call per item: a fused call's answer is not a batch's
    return node
