"""The state of a run, per processor: nodes, firings, generators being drained, the result sink.

Plain data with the few transitions that belong to one object (``Node.reset``, the sink's
``on_item``); the scheduler (``mpipe/_engine/_scheduler.py``) moves items between them.
"""

from __future__ import annotations

import asyncio
import inspect
from collections import deque
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from .._backends import Backend, FiringSlot
from .._model._strategies import ErrorStrategy
from ._lanes import Lane

if TYPE_CHECKING:
    from ._fused import FusedGroup

__all__ = [
    "DISCARD",
    "SKIPPED",
    "Discard",
    "Firing",
    "Items",
    "Node",
    "Outputs",
    "ResultSink",
    "StreamState",
    "feeder",
]

#: The outcome of a firing that was skipped: it produces no output.
SKIPPED: Any = object()


class Outputs:
    """The outputs of consecutive firings (a batch), one per firing, emitted together."""

    __slots__ = ("items",)

    def __init__(self, items: list[Any]) -> None:
        self.items = items


class Items:
    """A firing's several outputs, all known at once (a generator drained in a worker batch)."""

    __slots__ = ("items",)

    def __init__(self, items: list[Any]) -> None:
        self.items = items


class StreamState:
    """A generator being drained: the firing it belongs to and how far it got."""

    __slots__ = ("base", "chunk", "emitted", "firing", "gen", "pulling", "skip")

    def __init__(self, gen: Any, firing: Firing, skip: int) -> None:
        self.gen = gen
        self.firing = firing
        # A feeder's items per pull from the caller's iterator (see Scheduler._pull_chunk).
        self.chunk = 1
        # A retried generator re-yields what its failed tries already emitted: the first
        # ``base`` items are dropped (``skip`` counts down), then ``emitted`` counts new ones.
        self.base = skip
        self.skip = skip
        self.emitted = 0
        self.pulling = False


class Firing(FiringSlot):
    """One firing: which node, which item index, its input and which try this is.

    It is also the slot the backend fills in (which worker ran it).
    """

    __slots__ = ("arg", "attempt", "holds_batch", "node", "skip", "start")

    def __init__(self, node: Node, index: int, arg: Any) -> None:
        self.node = node
        self.processor_id = node.node_id
        self.index = index
        self.timeout = node.timeout
        self.arg = arg
        self.attempt = 1
        self.worker = "main"
        self.start = 0.0
        self.ran = None
        self.on_reply = None
        self.skip = 0  # generator items to skip on this try (a retry of a stream)
        self.holds_batch = False  # counts as one of its node's batches in flight

    def input_dict(self) -> Any:
        node = self.node
        if node.item_arg and len(node.input_names) == 1:
            return {node.input_names[0]: self.arg}
        return self.arg


class Node:
    """A processor's state within one run (or a feeder of external input, when ``processor`` is None).

    Args:
        node_id: The processor id (or the feeder's name).
        processor: The processor, or None for a feeder.
        fn: What a firing calls.
        item_arg: Whether ``fn`` takes the single item rather than a dict of pipe name -> item.
        input_names: Input pipe names, in the order of ``inputs``.
        inputs: The lanes of the input pipes, in that order.
        outputs: Output pipe name -> the lanes each item goes to (fan-out).
        backend: Where firings run.
        concurrency: Firings in flight at once.
        strategy: Error strategy, or None for halt-on-first-error.
        timeout: Seconds a firing may take (enforced for awaitable firings).
    """

    __slots__ = (
        "backend",
        "batch_size",
        "batches",
        "concurrency",
        "done_inputs",
        "drained",
        "fast",
        "fetch",
        "filled",
        "finished",
        "fn",
        "fused",
        "gate",
        "gated",
        "index",
        "inflight",
        "input_names",
        "inputs",
        "item_arg",
        "next_emit",
        "node_id",
        "out_lanes",
        "out_names",
        "outputs",
        "pending",
        "placement",
        "processor",
        "queued",
        "run_ok",
        "single_out",
        "strategy",
        "stream",
        "timeout",
    )

    def __init__(
        self,
        node_id: str,
        processor: Any,
        fn: Callable[[Any], Any] | None,
        item_arg: bool,
        input_names: list[str],
        inputs: list[Lane],
        outputs: dict[str, list[Lane]],
        backend: Backend,
        concurrency: int,
        strategy: Any,
        timeout: float | None,
    ) -> None:
        self.node_id = node_id
        self.processor = processor
        self.fn = fn
        self.item_arg = item_arg
        self.input_names = input_names
        self.inputs = inputs
        self.outputs = outputs
        self.out_names = frozenset(outputs)
        self.single_out: list[Lane] | None = (
            next(iter(outputs.values())) if len(outputs) == 1 else None
        )
        # The lanes the node waits on for room and closes when it ends: not the lanes of outputs
        # nobody is connected to (those never fill, and never make the node listened to).
        self.out_lanes: list[Lane] = [
            p for ps in outputs.values() for p in ps if p.consumer is not DISCARD
        ]
        self.backend = backend
        self.concurrency = concurrency
        self.strategy = strategy
        self.timeout = timeout
        self.placement = backend.name
        # Inline, untimed firings take the hot path (see Scheduler._fire_inline), and with one
        # input and one output, several at a time when several wait (Scheduler._fire_run).
        self.fast = backend.name == "inline" and timeout is None and processor is not None
        self.run_ok = self.fast and item_arg and len(inputs) == 1 and len(outputs) == 1
        # The strategy, when it can refuse a firing before it runs (a circuit breaker).
        allow = getattr(type(strategy), "allow", None)
        self.gated = strategy if allow is not None and allow is not ErrorStrategy.allow else None
        # Tiny firings on a backend that runs batches go in batches (0: never batched). Not for
        # generators (their items stream), timeouts (per firing) or callbacks (per firing).
        self.batch_size = 0
        if (
            backend.batches
            and fn is not None
            and timeout is None
            and not inspect.isgeneratorfunction(fn)
            and not inspect.isasyncgenfunction(fn)
            and not getattr(processor, "has_callbacks", False)
            and self.gated is None
        ):
            self.batch_size = 1
        self.pending: dict[int, Any] = {}
        self.stream: StreamState | None = None
        # Set by the executor on a node fed by a backend whose items are references to values
        # held elsewhere (Dask): ``await fetch(arg)`` gives the values. Such a node never takes
        # the inline fast path or batches (the executor clears ``fast`` and ``batch_size``).
        self.fetch: Callable[[Any], Any] | None = None
        #: Set on the node of a fused group (``mpipe/_engine/_fused.py``): the processors whose
        #: firings its one call per item runs. None for every other node.
        self.fused: FusedGroup | None = None
        self.reset()
        self.relink()

    def reset(self) -> None:
        """Forget the state of an earlier run (a node is planned once, run many times)."""
        self.index = 0
        self.next_emit = 0
        self.inflight = 0
        self.batches = 0
        if self.pending:
            self.pending = {}
        self.stream = None
        self.queued = False
        self.finished = False
        self.done_inputs = False
        # How many input lanes hold an item, and whether one is closed and empty: kept up to
        # date by every offer and take, so that checking a node with thousands of inputs
        # (a wide fan-in) costs O(1), not O(inputs).
        self.filled = 0
        self.drained = False
        # Breakpoints (mpipe/_observe/_breakpoints.py) set this while the node has any; None otherwise.
        self.gate: Callable[[str, int, Any], Any] | None = None

    def relink(self) -> None:
        """Be the consumer of the input lanes and the producer of the output lanes again (after a
        run in which a replay feeder stood in for this node)."""
        for lane in self.inputs:
            lane.consumer = self
        for lane in self.out_lanes:
            lane.producer = self

    def __repr__(self) -> str:
        return f"Node({self.node_id!r}, inflight={self.inflight}, finished={self.finished})"


class ResultSink:
    """Where sink items go: collected in lists (batch) or queued for a consumer (stream).

    The sink is the consumer side of every sink output lane. In batch mode it takes each item as
    it arrives (the lane never fills); in stream mode the lanes fill up to capacity and the
    consumer's ``take`` makes room, which is the backpressure a slow consumer exerts.
    """

    __slots__ = ("arrivals", "keys", "results", "streaming", "waiter")

    def __init__(self, streaming: bool, keys: dict[int, str] | None = None) -> None:
        self.streaming = streaming
        self.results: dict[str, list[Any]] = {}
        self.arrivals: deque[tuple[str, Lane]] = deque()
        self.waiter: asyncio.Future[None] | None = None
        #: ``id(lane)`` -> result key of each sink lane. A plan shares one mapping between the
        #: sinks of all its runs (and makes each its lanes' consumer), so it is never written.
        self.keys: dict[int, str] = {} if keys is None else keys

    def attach(self, key: str, lane: Lane) -> None:
        """Collect ``lane``'s items under ``key`` (in a new mapping: the old may be shared)."""
        self.keys = {**self.keys, id(lane): key}
        lane.consumer = self

    def on_item(self, lane: Lane, n: int = 1) -> None:
        """``n`` items arrived in a sink lane."""
        key = self.keys[id(lane)]
        if self.streaming:
            self.arrivals.extend([(key, lane)] * n)
            self.wake()
        elif n == 1:
            self.results.setdefault(key, []).append(lane.take())
        else:
            self.results.setdefault(key, []).extend(lane.take_many(n))

    def wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


class Discard:
    """The consumer of an output pipe nobody is connected to: it drops each item as it arrives.

    The output still has a lane of the processor's own pipe, so that the pipe's taps and counters
    see the items; the lane never holds one between two scheduler steps.
    """

    def on_item(self, lane: Lane, n: int = 1) -> None:
        """``n`` items arrived: drop them."""
        if n == 1:
            lane.take()
        else:
            lane.take_many(n)


#: The one :class:`Discard` every plan uses.
DISCARD = Discard()


def feeder(
    name: str, items: Iterable[Any] | Any, outputs: dict[str, list[Lane]], backend: Backend
) -> Node:
    """A node that pulls external input from an (async) iterable into entry lanes.

    With several outputs, each item should be a dict of pipe name -> item (routed key by key).
    """
    node = Node(name, None, None, False, [], [], outputs, backend, 1, None, None)
    gen = items.__aiter__() if hasattr(items, "__aiter__") else iter(items)
    node.stream = StreamState(gen, Firing(node, 0, None), 0)
    node.inflight = 1
    return node
