"""The dataflow scheduler: plain state transitions driven by one asyncio task.

Design note. Every processor of the graph is a :class:`Node` (``mpipe/_engine/_nodes.py``);
every pipe a bounded :class:`Lane` (``mpipe/_engine/_lanes.py``). The state of a run is:

- per lane: its items (FIFO) and whether it is closed;
- per node: the next firing index, the firings in flight, the finished firings waiting for
  their turn to emit (``pending``, so that outputs leave in input order), the generator being
  drained (``stream``), and whether it is ``finished``;
- the ``ready`` queue of nodes that may be able to make progress.

Transitions (all on the event-loop thread, none of them awaits):

- *fire*: a node whose every input lane holds an item, whose outputs have room and which has
  fewer than ``concurrency`` firings in flight takes one item from each input (zip) and hands
  ``fn(arg)`` to its backend. A result that is already there completes the firing at once (the
  inline fast path: no task, no future); an awaitable completes it from a done-callback.
- *complete*: a firing's outcome is emitted when its index is the next to emit: a value is
  routed to the output lanes, a generator becomes the node's ``stream`` and is drained one item
  at a time while the outputs have room (backpressure reaches into generators). After each
  item the generator gives way: to the nodes that are ready (its consumers fire on the item
  before the next is made), and, once the driver has run for ``SLICE`` seconds without the
  event loop getting a turn, to the loop (so workers' answers and timers are not kept
  waiting by a sync generator). Feeders pull the caller's iterables the same way, in chunks.
- *fail*: the processor's error strategy decides (in a small task, since strategies are async):
  RETRY runs the same firing again with the same input, SKIP completes it with no output, HALT
  records the failure, which ends the run.
- *finish*: a node with a closed, drained input lane and nothing in flight closes its outputs;
  a node whose every output is closed (nobody listens any more) stops early and closes its
  inputs, so an endless source stops when its consumers are done.

Putting into or taking from a lane puts the node on the other side into ``ready``; the driver
task drains ``ready`` and otherwise sleeps on one future that every callback resolves (or,
when a node gave way to the loop, yields one loop turn). The scheduler never polls. It knows
backends only through ``submit``/``advance``.

Why one module of this length: every transition of a run's state is here, so a reader follows an
item from its firing to its emit without leaving the file. The one part kept apart by concept is
the batching of tiny firings (``_batches.py``), which uses the public transitions only.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import sys
import time
import types
from collections import deque
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, cast

from .._backends import END, FiringSlot, Stream
from .._errors import (
    ExecutionError,
    PipelineError,
    ProcessorTimeoutError,
    WorkerCrashedError,
    describe_error,
)
from .._model._pipe import SIZERS
from .._model._strategies import CircuitOpenError, ErrorAction, record_success, resolve_action
from .._observe._hooks import RunHooks, Timeline
from ._batches import fire_batch
from ._fused import on_reply as fused_reply
from ._lanes import Lane
from ._nodes import SKIPPED, Firing, Items, Node, Outputs, ResultSink, StreamState, feeder

__all__ = ["Node", "ResultSink", "Scheduler", "feeder"]

_STREAM_TYPES = (types.GeneratorType, types.AsyncGeneratorType, Stream)
# Iterators a feeder may pull from in chunks (plain sync iterators over the caller's input):
# over data that exists already, and lazy ones, whose every item may take time to make.
_SAMPLES: tuple[Any, ...] = ([], (), range(1), {}, set(), "", b"")
_MATERIALIZED: frozenset[type] = frozenset(type(iter(sample)) for sample in _SAMPLES)
_ITERATORS: frozenset[type] = _MATERIALIZED | frozenset(
    [types.GeneratorType, itertools.count, itertools.islice, map, zip, filter]
)
#: Seconds the driver runs generators before it lets the event loop have a turn.
SLICE = 0.001
# Results of these types are plain values: no awaitable or generator check needed.
_PLAIN = frozenset({int, float, str, bytes, bool, type(None), dict, list, tuple, set, complex})


class Scheduler:
    """Runs one graph once, as a stream, to the end or to the first unhandled failure.

    Args:
        nodes: Every processor's node, in graph order.
        feeders: Nodes that pull external input from iterables into entry lanes.
        sink: Where sink items go.
        hooks: Observers told of every firing.
        run_id: The run's id, passed to error strategies in ``context``.
    """

    # One scheduler per run: fixed attributes make it cheap to build.
    __slots__ = (
        "_wake",
        "done",
        "end_hooks",
        "failed_at",
        "failure",
        "feeders",
        "finish_hooks",
        "first_hooks",
        "hooks",
        "later",
        "nodes",
        "observed",
        "outstanding",
        "ready",
        "replying",
        "run_id",
        "sink",
        "slice_end",
        "start_hooks",
        "stopped",
        "timeline",
        "unfinished",
        "wait_hooks",
    )

    def __init__(
        self,
        nodes: list[Node],
        feeders: list[Node],
        sink: ResultSink,
        hooks: list[RunHooks],
        run_id: str,
    ) -> None:
        self.nodes = nodes
        self.feeders = feeders
        self.sink = sink
        self.hooks = hooks
        # Only observers that override firing_start are called per firing for it.
        self.start_hooks: Sequence[RunHooks] = ()
        self.wait_hooks: Sequence[RunHooks] = ()
        # Told of successful firings and of processors' starts and ends: the observers that
        # override those hooks, less the recorder that takes a timeline instead (_observe).
        self.timeline: Timeline | None = None
        self.end_hooks: Sequence[RunHooks] = ()
        self.first_hooks: Sequence[RunHooks] = ()
        self.finish_hooks: Sequence[RunHooks] = ()
        if hooks:
            self.start_hooks = _overriding(hooks, "firing_start")
            self.wait_hooks = _overriding(hooks, "firing_waited")
            self.end_hooks = _overriding(hooks, "firing_end")
            self.first_hooks = _overriding(hooks, "processor_start")
            self.finish_hooks = _overriding(hooks, "processor_end")
        self.observed = bool(self.first_hooks)
        self.run_id = run_id
        self.ready: deque[Node] = deque()
        # Nodes that gave way to the event loop: ready again after its next turn.
        self.later: deque[Node] = deque()
        self.slice_end = 0.0
        self.unfinished = len(nodes) + len(feeders)
        self.failure: tuple[str, BaseException] | None = None
        # The failed firing's item index and where it ran, when a firing's failure ended the run.
        self.failed_at: tuple[int, str] | None = None
        self.stopped = False
        self.outstanding: set[asyncio.Future[Any]] = set()
        # Firings a backend answers through their slot's on_reply; the run's end clears
        # on_reply, so that a backend knows the firing is no longer wanted (e.g. not to run
        # it again after a worker crash).
        self.replying: set[Firing] = set()
        self._wake: asyncio.Future[None] | None = None
        self.done = False

    # -- driving ---------------------------------------------------------------------------------

    async def run(self) -> None:
        """Drive the run until every node has finished.

        Raises:
            ExecutionError: A failure the strategy did not absorb, or ``stop()``.
        """
        loop = asyncio.get_running_loop()
        if self.hooks:
            self._observe()
        try:
            for node in self.feeders:
                self.schedule(node)
            for node in self.nodes:
                self.schedule(node)
            self.slice_end = time.perf_counter() + SLICE
            while True:
                self._drain()
                if self.failure is not None or self.stopped:
                    raise self._error()
                if not self.unfinished:
                    break
                if self.later:
                    self.ready.extend(self.later)
                    self.later.clear()
                    # Two turns of the loop: what is due runs (workers' answers, timers, the
                    # stream's consumer), then what that made due.
                    await asyncio.sleep(0)
                    await asyncio.sleep(0)
                    self.slice_end = time.perf_counter() + SLICE
                    continue
                if (
                    not self.outstanding
                    and not self.replying
                    and not self.ready
                    and not self._waiting_on_consumer()
                ):
                    waiting = [n for n in self.nodes if not n.finished]
                    shown = ", ".join(repr(n) for n in waiting[:5])
                    more = f" and {len(waiting) - 5} more" if len(waiting) > 5 else ""
                    raise ExecutionError(
                        f"the run stalled: no firing in flight and none ready ({shown}{more})"
                    )
                self._wake = loop.create_future()
                await self._wake
                self._wake = None
                self.slice_end = time.perf_counter() + SLICE
        finally:
            self.done = True
            if self.outstanding or self.replying:
                self._cancel_outstanding()
            for node in self.nodes if self.unfinished else ():
                if node.stream is not None:  # a generator left half drained
                    node.backend.release(node.stream.gen)
            self.sink.wake()

    def _observe(self) -> None:
        """Give the first observer that asks for one the run's timeline (after run_start)."""
        for hook in self.hooks:
            timeline = hook.take_timeline()
            if isinstance(timeline, Timeline):
                self.timeline = timeline
                self.end_hooks = [h for h in self.end_hooks if h is not hook]
                self.wait_hooks = [h for h in self.wait_hooks if h is not hook]
                self.first_hooks = [h for h in self.first_hooks if h is not hook]
                self.finish_hooks = [h for h in self.finish_hooks if h is not hook]
                break
        self.observed = bool(self.first_hooks) or self.timeline is not None

    def record_spans(
        self,
        node: Node,
        first: int,
        k: int,
        start: float,
        end: float,
        worker: str,
        streamed: float | None = None,
    ) -> None:
        """Successful firings ``first .. first + k - 1`` of ``node``, to the timeline and hooks;
        ``streamed``: the firing returned a generator, which ran for that many seconds (the
        timeline keeps its whole life and that figure; observers called per firing get a span
        of that length ending at its end).

        The ``k`` firings of a batch ran one after the other from ``start`` to ``end``: each
        gets its share of that time, in order.
        """
        timeline = self.timeline
        node_id = node.node_id
        if k == 1:
            if timeline is not None:
                if streamed is not None:
                    timeline.streamed[len(timeline.spans)] = streamed
                if timeline.spans.add(node_id, first, start, end, worker):
                    timeline.full()
            if streamed is not None:  # observers get the time it ran, ending at its end
                start = end - streamed
            for hook in self.end_hooks:
                hook.firing_end(node_id, first, start, end, worker, None)
            return
        share = (end - start) / k
        for j in range(k):
            begin = start + j * share
            if timeline is not None and timeline.spans.add(
                node_id, first + j, begin, begin + share, worker
            ):
                timeline.full()
            for hook in self.end_hooks:
                hook.firing_end(node_id, first + j, begin, begin + share, worker, None)

    def record_wait(
        self,
        node: Node,
        first: int,
        k: int,
        submitted: float,
        picked: float,
        worker: str,
        transfer: float,
    ) -> None:
        """Firings ``first .. first + k - 1`` waited for ``worker`` from ``submitted`` to
        ``picked``, and their data spent ``transfer`` seconds in transit (all of them)."""
        node_id = node.node_id
        node.processor._waited((picked - submitted) * k, transfer)
        timeline = self.timeline
        if timeline is not None:
            timeline.add_wait(node_id, first, k, submitted, picked, worker)
            timeline.transfer[node_id] = timeline.transfer.get(node_id, 0.0) + transfer
        for hook in self.wait_hooks:
            for j in range(k):
                hook.firing_waited(node_id, first + j, submitted, picked, worker, transfer / k)

    def _waiting_on_consumer(self) -> bool:
        return self.sink.streaming and bool(self.sink.arrivals)

    def _error(self) -> ExecutionError:
        if self.failure is not None:
            pid, exc = self.failure
            if isinstance(exc, ExecutionError):
                return exc
            if any(f.node_id == pid for f in self.feeders):
                # The caller's own iterable failed: no processor is to blame.
                return ExecutionError(f"{pid} failed: {describe_error(exc)}", [], cause=exc)
            where = ""
            index = None
            if self.failed_at is not None:
                index, worker = self.failed_at
                if not isinstance(exc, (ProcessorTimeoutError, WorkerCrashedError)):
                    # (those two name the firing and the worker themselves)
                    where = f" (item {index}" + (f", in {worker})" if worker != "main" else ")")
            return ExecutionError(
                f"processor {pid!r} failed: {describe_error(exc)}{where}",
                [pid],
                cause=exc,
                item_index=index,
            )
        return ExecutionError("execution stopped by stop_execution()")

    def notice(self, kind: str, processor_id: str | None, data: dict[str, Any]) -> None:
        """Tell every observer of the run something rarer (see ``RunHooks.notice``)."""
        for hook in self.hooks:
            hook.notice(kind, processor_id, data)

    def poke(self) -> None:
        """Wake the driver task (from callbacks on the loop thread)."""
        wake = self._wake
        if wake is not None and not wake.done():
            wake.set_result(None)

    def stop(self) -> None:
        """Cancel everything still running; ``run`` raises ExecutionError."""
        self.stopped = True
        self._cancel_outstanding()
        self.poke()

    def halt(self, node: Node, exc: BaseException, firing: Firing | None = None) -> None:
        """Record the failure that ends the run (``firing``'s, when one failed) and cancel
        everything still running."""
        if self.failure is None:
            self.failure = (node.node_id, exc)
            if firing is not None:
                self.failed_at = (firing.index, firing.worker)
        self._cancel_outstanding()
        self.poke()

    def _cancel_outstanding(self) -> None:
        for fut in list(self.outstanding):
            fut.cancel()
        self.outstanding.clear()
        for firing in self.replying:
            firing.on_reply = None
        self.replying.clear()

    def track(
        self, fut: asyncio.Future[Any], callback: Callable[[asyncio.Future[Any]], None]
    ) -> None:
        self.outstanding.add(fut)
        fut.add_done_callback(callback)

    def schedule(self, node: Any) -> None:
        """Put a node into the ready queue (no-op for the result sink or a queued node)."""
        if type(node) is Node and not node.queued and not node.finished:
            node.queued = True
            self.ready.append(node)

    def _drain(self) -> None:
        ready = self.ready
        while ready:
            if self.failure is not None or self.stopped:
                return
            node = ready.popleft()
            node.queued = False
            self._advance(node)

    # -- the node's step ------------------------------------------------------------------------

    def _advance(self, node: Node) -> None:
        """Make all the progress a node can make now."""
        while not node.finished:
            if node.stream is not None:
                if not self._pull(node):
                    return
                continue
            if node.processor is None:  # a feeder without a stream has nothing left
                self._finish(node)
                return
            if not node.done_inputs:
                if node.filled == len(node.inputs):
                    if node.batch_size and node.gate is None:
                        if not fire_batch(self, node):
                            return
                        continue
                    if node.inflight >= node.concurrency or not self.has_room(node):
                        return
                    if (
                        node.fast
                        and node.gate is None
                        and not node.inflight
                        and not node.processor.has_callbacks
                        and (node.gated is None or node.gated.allow(node.node_id))
                    ):
                        if (
                            node.run_ok
                            and len(node.inputs[0].items) > 1
                            and node.gated is None
                            and self._fire_run(node)
                        ):
                            continue
                        self._fire_inline(node)
                    else:
                        self.fire(node)
                    continue
                if node.drained:
                    # Zip ends with its shortest input: what waits in the others is dropped,
                    # and their producers learn that nobody listens.
                    node.done_inputs = True
                    for lane in node.inputs:
                        if not lane.closed:
                            self._close_input(lane)
            if node.done_inputs and not node.inflight and node.stream is None:
                self._finish(node)
            return

    def has_room(self, node: Node) -> bool:
        listening = False
        for lane in node.out_lanes:
            if lane.closed:
                continue
            listening = True
            if len(lane.items) >= lane.max_size or lane.held >= lane.max_bytes:
                if lane.blocked_since is None:
                    lane.note_blocked(True)
                    for hook in self.hooks:
                        hook.pipe_full(lane.pipe_id)
                return False
        if not listening and node.out_lanes:
            self.stop_early(node)
            return False
        return True

    def stop_early(self, node: Node) -> None:
        """Nobody listens to the node any more: drop its input and let it finish."""
        node.done_inputs = True
        for lane in node.inputs:
            self._close_input(lane)
        if node.stream is not None and not node.stream.pulling:
            node.backend.release(node.stream.gen)
            node.stream = None
            node.inflight -= 1
            node.next_emit += 1
        if not node.inflight:
            self._finish(node)

    def _close_input(self, lane: Lane) -> None:
        if lane.items:
            lane.clear()
            lane.consumer.filled -= 1
        lane.closed = True
        self.schedule(lane.producer)

    def take(self, lane: Lane) -> Any:
        # ``_took`` inlined: this is the per-item path.
        items = lane.items
        was_full = len(items) >= lane.max_size or lane.held >= lane.max_bytes
        # ``lane.take()`` inlined.
        lane.items_out += 1
        lane.held -= lane.sizes.popleft()
        item = items.popleft()
        if not items:
            consumer = lane.consumer
            if type(consumer) is Node:
                consumer.filled -= 1
                if lane.closed:
                    consumer.drained = True
        if lane.blocked_since is not None:
            lane.note_blocked(False)
        if was_full:  # its producer may be waiting for this room
            self.schedule(lane.producer)
        return item

    def take_many(self, lane: Lane, n: int) -> list[Any]:
        """``_take`` for ``n`` items (``n`` at most what the lane holds)."""
        was_full = len(lane.items) >= lane.max_size or lane.held >= lane.max_bytes
        items = lane.take_many(n)
        self._took(lane, was_full)
        return items

    def _took(self, lane: Lane, was_full: bool) -> None:
        """Items left ``lane``: its consumer may have none left (and, the lane closed, be
        drained), and its producer, when the lane ``was_full``, may go on."""
        if not lane.items:
            consumer = lane.consumer
            if type(consumer) is Node:
                consumer.filled -= 1
                if lane.closed:
                    consumer.drained = True
        if lane.blocked_since is not None:
            lane.note_blocked(False)
        if was_full:  # its producer may be waiting for this room
            self.schedule(lane.producer)

    def fire(self, node: Node, holds_batch: bool = False) -> None:
        """Take a node's next input and start its firing; ``holds_batch``: the firing counts
        as one of the node's batches in flight until its answer (a single call of a batching
        node)."""
        arg = self.take(node.inputs[0]) if node.item_arg else self.take_all(node)
        firing = Firing(node, node.index, arg)
        if holds_batch:
            firing.holds_batch = True
            node.batches += 1
        if not node.index and self.observed:
            self.first_firing(node, time.perf_counter())
        node.index += 1
        node.inflight += 1
        if node.fetch is not None:
            self._fetch_then_start(firing)
            return
        # Breakpoints: one attribute check per firing when the node has none. Checked here
        # rather than in _start so that retries of a firing do not pause again.
        if node.gate is not None and self._gated(firing):
            return
        self.start(firing)

    # -- references (Dask): values fetched before a firing that needs them ----------------------

    def _fetch_then_start(self, firing: Firing) -> None:
        assert firing.node.fetch is not None
        fut = asyncio.ensure_future(firing.node.fetch(firing.arg))
        self.track(fut, partial(self._on_fetched, firing))

    def _on_fetched(self, firing: Firing, fut: asyncio.Future[Any]) -> None:
        self.outstanding.discard(fut)
        if fut.cancelled() or self.done:
            return
        node = firing.node
        exc = fut.exception()
        if exc is None:
            firing.arg = fut.result()
            if node.gate is None or not self._gated(firing):
                self.start(firing)
        else:  # the input is gone (the cluster lost it): no strategy can rerun this firing
            error = PipelineError(
                f"processor {node.node_id!r}: could not fetch the input of item "
                f"{firing.index}: {type(exc).__name__}: {exc}"
            )
            error.__cause__ = exc
            self.halt(node, error)
        self.schedule(node)
        self.poke()

    def _fire_inline(self, node: Node) -> None:
        """The hot path: one sync firing run right here, with nothing in flight before it.

        Same transitions as ``_fire`` + ``_start`` + ``_complete``, without a firing record;
        one is made only when the firing turns out to need it (error, awaitable, generator).
        """
        arg = self.take(node.inputs[0]) if node.item_arg else self.take_all(node)
        index = node.index
        node.index = index + 1
        start = time.perf_counter()
        if not index and self.observed:
            # _first_firing, inlined: once per processor per run on the hot path.
            timeline = self.timeline
            if timeline is not None:
                timeline.firsts.add(node.node_id, 0, start, 0.0, None)
            for hook in self.first_hooks:
                hook.processor_start(node.node_id)
        for hook in self.start_hooks:
            hook.firing_start(node.node_id, index, start)
        try:
            result = node.fn(arg)  # type: ignore[misc]
        except Exception as exc:
            firing = Firing(node, index, arg)
            firing.start = start
            node.inflight += 1
            self.failed(firing, exc, 0)
            return
        if type(result) not in _PLAIN and (
            isinstance(result, _STREAM_TYPES) or inspect.isawaitable(result)
        ):
            firing = Firing(node, index, arg)
            firing.start = start
            node.inflight += 1
            self._handle_result(firing, result, 0)
            return
        end = time.perf_counter()
        node.processor._record(end - start, False)
        # _record_spans for one firing, inlined: this is the hot path.
        timeline = self.timeline
        if timeline is not None and timeline.spans.add(node.node_id, index, start, end, "main"):
            timeline.full()
        for hook in self.end_hooks:
            hook.firing_end(node.node_id, index, start, end, "main", None)
        if node.strategy is not None:
            record_success(node.strategy, node.node_id)
        self._route(node, result)
        node.next_emit += 1

    def _fire_run(self, node: Node) -> bool:
        """The hot path for a stream: the node's waiting items, as many as its output lanes
        have room for, each run right here one after the other; False when fewer than two wait.

        Same transitions as ``_fire_inline`` for each of them, with one take and one send for
        the whole run. A firing that raises, or returns a generator or an awaitable, ends the
        run: the firings before it are emitted, it goes the way of ``_fire_inline``'s, and the
        items after it stay in the lane for the next step.
        """
        lane = node.inputs[0]
        items = lane.items
        room = len(items)
        byte_room = sys.maxsize
        for out in node.out_lanes:
            if not out.closed:
                free = out.max_size - len(out.items)
                if free < room:
                    room = free
                if out.max_bytes - out.held < byte_room:
                    byte_room = out.max_bytes - out.held
        if room < 2:
            return False
        fn = node.fn
        assert fn is not None
        node_id = node.node_id
        first = node.index
        timeline = self.timeline
        spans = timeline.spans if timeline is not None else None
        perf_counter = time.perf_counter
        start = perf_counter()
        if not first and self.observed:
            self.first_firing(node, start)
        popleft = items.popleft
        pop_size = lane.sizes.popleft
        taken_bytes = 0
        was_full = len(items) >= lane.max_size or lane.held >= lane.max_bytes
        results: list[Any] = []
        append = results.append
        sizes: list[int] = []  # the results' sizes: the run ends at the outputs' byte bound
        sizers = SIZERS
        plain = _PLAIN
        longest = 0.0
        t0 = start
        odd: tuple[Any, Any] | None = None  # the argument and the result that end the run
        failure: tuple[Any, Exception] | None = None
        start_hooks, end_hooks = self.start_hooks, self.end_hooks
        for index in range(first, first + room):
            arg = popleft()
            taken_bytes += pop_size()
            for hook in start_hooks:
                hook.firing_start(node_id, index, t0)
            try:
                result = fn(arg)
            except Exception as exc:
                failure = (arg, exc)
                break
            if type(result) not in plain and (
                isinstance(result, _STREAM_TYPES) or inspect.isawaitable(result)
            ):
                odd = (arg, result)
                break
            t1 = perf_counter()
            append(result)
            cls = type(result)
            size = sizers[cls](result)
            sizes.append(size)
            byte_room -= size
            if t1 - t0 > longest:
                longest = t1 - t0
            if spans is not None and spans.add(node_id, index, t0, t1, "main"):
                timeline.full()  # type: ignore[union-attr]
            for hook in end_hooks:
                hook.firing_end(node_id, index, t0, t1, "main", None)
            t0 = perf_counter() if end_hooks else t1
            if byte_room <= 0:  # the outputs are full in bytes: the rest waits for room
                break
        done = len(results)
        taken = done + (odd is not None or failure is not None)
        # The take, for all of them.
        lane.items_out += taken
        lane.held -= taken_bytes
        self._took(lane, was_full)
        node.index = first + taken
        if done:
            node.processor._record_many(done, t0 - start, longest)
            if node.strategy is not None:
                record_success(node.strategy, node_id)
            assert node.single_out is not None
            self._send_many(node.single_out, results, sizes)
            node.processor._items_out += done
            node.next_emit += done
        if failure is not None:
            firing = Firing(node, first + done, failure[0])
            firing.start = t0
            node.inflight += 1
            self.failed(firing, failure[1], 0)
        elif odd is not None:
            firing = Firing(node, first + done, odd[0])
            firing.start = t0
            node.inflight += 1
            self._handle_result(firing, odd[1], 0)
        return True

    def first_firing(self, node: Node, start: float) -> None:
        timeline = self.timeline
        for pid in (node.node_id,) if node.fused is None else node.fused.ids:
            if timeline is not None:
                timeline.firsts.add(pid, 0, start, 0.0, None)
            for hook in self.first_hooks:
                hook.processor_start(pid)

    def take_all(self, node: Node) -> dict[str, Any]:
        return {
            name: self.take(lane) for name, lane in zip(node.input_names, node.inputs, strict=True)
        }

    # -- breakpoints ---------------------------------------------------------------------------

    def _gated(self, firing: Firing) -> bool:
        """Ask the node's gate whether this firing pauses first; True when it does."""
        node = firing.node
        assert node.gate is not None
        pause = node.gate(node.node_id, firing.index, firing.input_dict())
        if pause is None:
            return False
        self.track(asyncio.ensure_future(pause), partial(self._on_gate, firing))
        return True

    def _on_gate(self, firing: Firing, fut: asyncio.Future[Any]) -> None:
        self.outstanding.discard(fut)
        if fut.cancelled() or self.done:
            return
        node = firing.node
        exc = fut.exception()
        if exc is not None:  # aborted at the breakpoint: the run ends
            self.halt(node, exc)
            return
        action, new_input = fut.result()
        if action == "skip":
            self.complete(node, firing.index, SKIPPED)
        else:
            if new_input is not None:
                firing.arg = new_input[node.input_names[0]] if node.item_arg else new_input
            self.start(firing)
        self.schedule(node)
        self.poke()

    def start(self, firing: Firing, skip: int = 0) -> None:
        node = firing.node
        gated = node.gated  # the strategy, when it can refuse a firing (a circuit breaker)
        if gated is not None and not gated.allow(node.node_id):
            exc = CircuitOpenError(
                f"processor {node.node_id!r}: circuit open, firing {firing.index} not run",
                node.node_id,
            )
            self.failed(firing, exc, skip)
            return
        start = firing.start = time.perf_counter()
        firing.ran = None
        for hook in self.start_hooks:
            hook.firing_start(node.node_id, firing.index, start)
        processor = node.processor
        if processor.has_callbacks:
            processor._fire_callbacks("start", firing.input_dict())
        assert node.fn is not None
        backend = node.backend
        if backend.replies:  # answered through _on_reply, an event-loop turn sooner
            # A bound method per firing, not one kept on the scheduler: kept, it would tie the
            # scheduler into a reference cycle that only the garbage collector frees.
            firing.on_reply = self._on_reply
            firing.skip = skip
        try:
            result = backend.submit(node.fn, firing.arg, firing)
        except Exception as exc:
            firing.on_reply = None
            self._release(firing)
            self.failed(firing, exc, skip)
            return
        if backend.replies:
            self.replying.add(firing)
            return
        self._handle_result(firing, result, skip)

    @staticmethod
    def _release(firing: Firing) -> None:
        """The firing's answer came (or never will): it no longer holds a batch slot."""
        if firing.holds_batch:
            firing.holds_batch = False
            firing.node.batches -= 1

    def _handle_result(self, firing: Firing, result: Any, skip: int) -> None:
        """What ``submit`` returned: a value, a generator to drain, or an awaitable."""
        node = firing.node
        if type(result) in _PLAIN:
            self._succeeded(firing)
            self.complete(firing.node, firing.index, result)
        elif isinstance(result, _STREAM_TYPES):
            self.complete(firing.node, firing.index, StreamState(result, firing, skip))
        elif inspect.isawaitable(result):
            if node.timeout is not None and not node.backend.enforces_timeout:
                result = _within(result, node.timeout, node.node_id, firing.index)
            self.track(asyncio.ensure_future(result), partial(self._on_done, firing, skip))
        else:
            self._succeeded(firing)
            self.complete(firing.node, firing.index, result)

    def _on_done(self, firing: Firing, skip: int, fut: asyncio.Future[Any]) -> None:
        self.outstanding.discard(fut)
        self._release(firing)
        if fut.cancelled() or self.done:
            return
        exc = fut.exception()
        if exc is None:
            result = fut.result()
            if isinstance(result, _STREAM_TYPES):
                self.complete(firing.node, firing.index, StreamState(result, firing, skip))
            elif inspect.isawaitable(result):  # e.g. an async function run by a thread backend
                node = firing.node
                if node.timeout is not None:  # it runs on the loop: the backend cannot time it
                    result = _within(result, node.timeout, node.node_id, firing.index)
                self.track(asyncio.ensure_future(result), partial(self._on_done, firing, skip))
                return
            else:
                self._succeeded(firing)
                self.complete(firing.node, firing.index, result)
        else:
            self.failed(firing, exc, skip)
        self.schedule(firing.node)
        self.poke()

    def _on_reply(self, slot: FiringSlot, value: Any, error: BaseException | None) -> None:
        """A backend's direct answer to a firing (``FiringSlot.on_reply``): ``_on_done``
        without the future."""
        firing = cast(Firing, slot)
        self.replying.discard(firing)
        self._release(firing)
        if self.done or self.failure is not None or self.stopped:
            return
        node = firing.node
        try:
            if node.fused is not None:  # a fused group's call: each stage booked on its own
                fused_reply(self, firing, value, error)
            elif error is not None:
                self.failed(firing, error, firing.skip)
            elif isinstance(value, _STREAM_TYPES):
                self.complete(node, firing.index, StreamState(value, firing, firing.skip))
            else:
                self._succeeded(firing)
                self.complete(node, firing.index, value)
            self.schedule(node)
        except Exception as exc:  # a bug here must end the run, not vanish in the backend
            self.halt(node, exc)
        self.poke()

    def _succeeded(self, firing: Firing, streamed: bool = False) -> None:
        """A firing succeeded (``streamed``: its generator is exhausted): its metrics and spans,
        timed where it ran when its backend says (``FiringSlot.ran``), else here."""
        end = time.perf_counter()
        node = firing.node
        start = firing.start
        ran = firing.ran
        if ran is None:
            node.processor._record(end - start, False)
            if self.timeline is not None or self.end_hooks:
                busy = end - start if streamed else None
                self.record_spans(node, firing.index, 1, start, end, firing.worker, busy)
        else:
            firing.ran = None
            picked, run_start, run_end, busy = ran
            # Clamped between the submission and the run's start (conditionals rather than
            # min/max: this runs once per firing of every worker).
            if picked < start:
                picked = start
            if picked > run_start:
                picked = run_start
            # The hops to the worker and back; a generator's items wait in the parent for room
            # downstream, which is no transfer.
            transfer = run_start - picked
            if not streamed and end > run_end:
                transfer += end - run_end
            node.processor._record(busy, False)
            self.record_wait(node, firing.index, 1, start, picked, firing.worker, transfer)
            if self.timeline is not None or self.end_hooks:
                self.record_spans(
                    node,
                    firing.index,
                    1,
                    run_start,
                    run_end,
                    firing.worker,
                    busy if streamed else None,
                )
        if node.strategy is not None:
            record_success(node.strategy, node.node_id)

    def complete(self, node: Node, index: int, outcome: Any) -> None:
        """A firing's outcome (value, stream, or skipped) is known; emit it in input order."""
        if index == node.next_emit and node.stream is None:
            self._emit(node, outcome)
        else:
            node.pending[index] = outcome
        if node.pending:
            self._complete_pending(node)

    def _emit(self, node: Node, outcome: Any) -> None:
        # _fire_inline repeats the plain-value case below (route, move next_emit on) for its
        # firing that was never counted in flight: keep the two in step.
        if type(outcome) is Outputs:
            k = len(outcome.items)
            assert node.single_out is not None
            self._send_many(node.single_out, outcome.items)
            node.processor._items_out += k
            node.inflight -= k
            node.next_emit += k
            return
        if type(outcome) is StreamState:
            node.stream = outcome
            self.schedule(node)
            return
        if type(outcome) is Items:
            for item in outcome.items:
                self._route(node, item)
        elif outcome is not SKIPPED:
            if node.processor.has_callbacks:
                node.processor._fire_callbacks("complete", outcome)
            self._route(node, outcome)
        node.inflight -= 1
        node.next_emit += 1

    def _route(self, node: Node, value: Any) -> None:
        single = node.single_out
        if single is not None:
            self._send(single, value)
        elif isinstance(value, dict) and value and node.out_names.issuperset(value):
            for name, item in value.items():
                self._send(node.outputs[name], item)
        else:
            for lanes in node.outputs.values():
                self._send(lanes, value)
        if node.processor is not None:
            node.processor._items_out += 1

    def _send_many(
        self, lanes: list[Lane], values: list[Any], sizes: list[int] | None = None
    ) -> int:
        """``_send`` for a run of values in order (one pass over the lanes, not one per value);
        the values' bytes. ``sizes``: theirs, when the caller measured them already."""
        added = 0
        for lane in lanes:
            if not lane.closed:
                was_empty = not lane.items
                added = lane.offer_many(values, sizes)
                self._arrived(lane, was_empty, len(values))
        return added

    def _send(self, lanes: list[Lane], value: Any) -> None:
        for lane in lanes:
            if not lane.closed:
                was_empty = not lane.items
                lane.offer(value)
                # ``_arrived(lane, was_empty, 1)`` inlined: this is the per-item path.
                consumer = lane.consumer
                if type(consumer) is Node:
                    if was_empty:
                        consumer.filled += 1
                    if not consumer.queued and consumer.filled == len(consumer.inputs):
                        consumer.queued = True
                        self.ready.append(consumer)
                elif consumer is not None:
                    consumer.on_item(lane, 1)

    def _arrived(self, lane: Lane, was_empty: bool, n: int) -> None:
        """``n`` items entered ``lane``: its consumer may fire (or the result sink takes them)."""
        consumer = lane.consumer
        if type(consumer) is Node:
            if was_empty:
                consumer.filled += 1
            # Only a consumer with an item in every input can fire: a wide fan-in is woken
            # once, by its last input, not by each of them.
            if not consumer.queued and consumer.filled == len(consumer.inputs):
                consumer.queued = True
                self.ready.append(consumer)
        elif consumer is not None:
            consumer.on_item(lane, n)

    # -- generators ------------------------------------------------------------------------------

    def _pull(self, node: Node) -> bool:
        """Move one item of the node's stream on; False when it must wait (room or a result)
        or gave way to other nodes."""
        stream = node.stream
        assert stream is not None
        if stream.pulling or not self.has_room(node):
            return False
        if (
            node.processor is None
            and node.single_out is not None
            and type(stream.gen) in _ITERATORS
        ):
            return self._pull_chunk(node, stream)
        try:
            item = node.backend.advance(stream.gen)
        except Exception as exc:
            self._stream_failed(node, stream, exc)
            return True
        if type(item) not in _PLAIN and inspect.isawaitable(item):
            stream.pulling = True
            fut = asyncio.ensure_future(item)
            self.track(fut, partial(self._on_pulled, node, stream))
            return False
        self._stream_item(node, stream, item)
        if node.stream is stream and (self.ready or time.perf_counter() >= self.slice_end):
            # The item is handed on: whoever it woke runs before the next item is made.
            self._give_way(node)
            return False
        return True

    def _give_way(self, node: Node) -> None:
        """Let the nodes that are ready run before ``node`` goes on; after them the event loop
        too, once the driver's slice of time is spent."""
        if node.queued:  # its own firing scheduled it again while it ran: to the back it goes
            try:
                self.ready.remove(node)
            except ValueError:  # waiting for the loop's turn already
                return
        node.queued = True
        if time.perf_counter() >= self.slice_end:
            self.later.append(node)
        else:
            self.ready.append(node)

    def _pull_chunk(self, node: Node, stream: StreamState) -> bool:
        """A feeder of a plain iterator fills its lanes' free room (in items and in bytes) in
        chunks. The first chunk is one item; then, over items that exist already (a list), as
        many as the bytes left allow judging by the last chunk, until the room is full; from a
        lazy iterator (a generator), chunks that grow fourfold while items come fast, each
        handed to the consumers before the next is pulled, so that a slow source's first item
        reaches its consumer at once."""
        lanes = node.single_out
        assert lanes is not None
        open_lanes = [p for p in lanes if not p.closed]
        room = min(p.max_size - len(p.items) for p in open_lanes)
        byte_room = min(p.max_bytes - p.held for p in open_lanes)
        gen = stream.gen
        lazy = type(gen) not in _MATERIALIZED
        while True:
            take = min(room, stream.chunk)
            started = time.perf_counter()
            try:
                chunk = list(itertools.islice(gen, take))
            except Exception as exc:
                self._stream_failed(node, stream, exc)
                return True
            n = len(chunk)
            if n:
                added = self._send_many(lanes, chunk)
                room -= n
                byte_room -= added
                # As many items as the bytes left allow, judged by these items' sizes.
                fit = max(1, byte_room // max(1, added // n))
                if lazy:
                    took = time.perf_counter() - started
                    if took < SLICE / 4:
                        stream.chunk *= 4
                    elif took > SLICE:
                        stream.chunk = 1
                    stream.chunk = min(stream.chunk, fit)
                else:
                    stream.chunk = fit
            if n < take:
                node.stream = None
                self._finish(node)
                return True
            if room <= 0 or byte_room <= 0:
                return True  # full: the next pull waits for the consumer to make room
            # A lazy source's items go to their consumers as they come; items that exist
            # already fill the room first (in one go, unless the driver's slice is spent).
            if (lazy and self.ready) or time.perf_counter() >= self.slice_end:
                self._give_way(node)
                return False

    def _on_pulled(self, node: Node, stream: StreamState, fut: asyncio.Future[Any]) -> None:
        self.outstanding.discard(fut)
        stream.pulling = False
        if fut.cancelled() or self.done or node.stream is not stream:
            return
        exc = fut.exception()
        if exc is None:
            self._stream_item(node, stream, fut.result())
        else:
            self._stream_failed(node, stream, exc)
        self.schedule(node)
        self.poke()

    def _stream_item(self, node: Node, stream: StreamState, item: Any) -> None:
        if item is END:
            node.stream = None
            if node.processor is None:  # a feeder's input is exhausted
                self._finish(node)
                return
            self._succeeded(stream.firing, streamed=True)
            node.inflight -= 1
            node.next_emit += 1
            self._complete_pending(node)
            return
        if stream.skip:
            # A retried generator re-yields what its failed try already emitted: drop those.
            stream.skip -= 1
            return
        stream.emitted += 1
        self._route(node, item)

    def _complete_pending(self, node: Node) -> None:
        pending = node.pending
        while pending and node.stream is None and node.next_emit in pending:
            self._emit(node, pending.pop(node.next_emit))

    def _stream_failed(self, node: Node, stream: StreamState, exc: BaseException) -> None:
        node.stream = None
        if node.processor is None:
            self.halt(node, exc)
            return
        self.failed(stream.firing, exc, stream.base + stream.emitted)

    # -- failures --------------------------------------------------------------------------------

    def failed(self, firing: Firing, exc: BaseException, skip: int) -> None:
        node = firing.node
        end = time.perf_counter()
        start = firing.start or end
        ran = firing.ran
        busy = end - start
        if ran is not None:  # timed where it ran
            firing.ran = None
            _, start, end, busy = ran
        node.processor._record(busy, True)
        for hook in self.hooks:
            hook.firing_end(node.node_id, firing.index, start, end, firing.worker, exc)
        if node.processor.has_callbacks:
            node.processor._fire_callbacks("error", exc)
        if node.strategy is None or getattr(exc, "fatal", False):
            # No strategy, or a failure of the run rather than of this firing (a worker pool
            # that cannot start workers): skipping it would hide the error.
            self.halt(node, exc, firing)
            return
        fut = asyncio.ensure_future(self._decide(firing, exc, skip))
        self.track(fut, self._on_decided)

    def _on_decided(self, fut: asyncio.Future[Any]) -> None:
        self.outstanding.discard(fut)
        self.poke()

    async def _decide(self, firing: Firing, exc: BaseException, skip: int) -> None:
        node = firing.node
        context = {
            "attempt": firing.attempt,
            "input": firing.input_dict(),
            "item_index": firing.index,
            "run_id": self.run_id,
            "processor_id": node.node_id,
        }
        try:
            action = resolve_action(await node.strategy.handle_error(exc, node.node_id, context))
        except Exception as strategy_exc:
            strategy_exc.__context__ = exc
            self.halt(node, strategy_exc)
            return
        if self.done or self.failure is not None:
            return
        if action is ErrorAction.RETRY:
            firing.attempt += 1
            firing.worker = "main"
            for hook in self.hooks:
                hook.firing_retry(node.node_id, firing.index, firing.attempt, exc)
            self.start(firing, skip)
        elif action is ErrorAction.SKIP:
            for hook in self.hooks:
                hook.firing_skip(node.node_id, firing.index, exc)
            self.complete(firing.node, firing.index, SKIPPED)
        else:
            self.halt(node, exc, firing)
        self.schedule(node)

    # -- the end of a node --------------------------------------------------------------------------

    def _finish(self, node: Node) -> None:
        if node.finished:
            return
        node.finished = True
        self.unfinished -= 1
        for lane in node.out_lanes:
            if not lane.closed:
                lane.closed = True
                consumer = lane.consumer
                if type(consumer) is Node:
                    if not lane.items:
                        consumer.drained = True
                    self.schedule(consumer)
        if self.sink.streaming:
            self.sink.wake()
        if node.processor is not None and (self.finish_hooks or self.timeline is not None):
            timeline = self.timeline
            for pid in (node.node_id,) if node.fused is None else node.fused.ids:
                if timeline is not None:
                    timeline.ends.add(pid, node.index, time.perf_counter(), 0.0, None)
                for hook in self.finish_hooks:
                    hook.processor_end(pid, node.index)


async def _within(awaitable: Any, timeout: float, processor_id: str, index: int) -> Any:
    """Await ``awaitable`` for at most ``timeout`` seconds, else cancel it and raise."""
    fut = asyncio.ensure_future(awaitable)
    done, _ = await asyncio.wait({fut}, timeout=timeout)
    if not done:
        fut.cancel()
        raise ProcessorTimeoutError(
            f"processor {processor_id!r}: firing {index} ran past its timeout of {timeout} s",
            processor_id,
        )
    return fut.result()


def _overriding(hooks: list[RunHooks], name: str) -> list[RunHooks]:
    """The observers among ``hooks`` whose class overrides hook method ``name``."""
    default = getattr(RunHooks, name)
    return [h for h in hooks if getattr(getattr(h, name), "__func__", None) is not default]
