"""Batches: many tiny firings of one processor sent to a pool backend as one message.

The scheduler hands a batching node (a backend with ``batches``, such as the process pool) to
:func:`fire_batch` whenever the node has input. One waiting item goes as a plain call (it holds
one of the node's batch slots); more go in a batch of up to ``node.batch_size`` items, which
adapts per processor: it grows fourfold per batch until a batch takes about
``BATCH_TARGET_SECONDS`` of work in the worker, and shrinks for slow items. The answer is one
flat list of values (``(values, kinds, seconds)``, see ``Backend.submit_batch``); per-firing
metrics, hooks, ordering and error handling are kept item by item. These functions are the
scheduler's own steps, kept apart by concept: each takes the scheduler as its first argument and
uses only its public transitions (:class:`Steps`), so this module does not import the scheduler.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, Protocol

from .._backends import FiringSlot
from .._errors import WorkerCrashedError
from .._model._pipe import payload_nbytes
from .._model._strategies import record_success
from .._observe._hooks import RunHooks
from ._lanes import Lane
from ._nodes import Firing, Items, Node, Outputs

__all__ = ["BATCH_MAX_BYTES", "BATCH_TARGET_SECONDS", "MAX_BATCH", "Steps", "fire_batch"]

#: Batches grow (x4 per batch) until one takes about this long in the worker.
BATCH_TARGET_SECONDS = 0.005
MAX_BATCH = 4096
#: About the most payload bytes one batch carries (judged by its first item).
BATCH_MAX_BYTES = 1 << 20


class Steps(Protocol):
    """The scheduler's state and transitions a batch uses (:class:`Scheduler` has them all)."""

    done: bool
    observed: bool
    outstanding: set[asyncio.Future[Any]]
    start_hooks: Sequence[RunHooks]

    def schedule(self, node: Any) -> None: ...

    def poke(self) -> None: ...

    def has_room(self, node: Node) -> bool: ...

    def stop_early(self, node: Node) -> None: ...

    def fire(self, node: Node, holds_batch: bool = False) -> None: ...

    def start(self, firing: Firing, skip: int = 0) -> None: ...

    def take_many(self, lane: Lane, n: int) -> list[Any]: ...

    def take_all(self, node: Node) -> dict[str, Any]: ...

    def first_firing(self, node: Node, start: float) -> None: ...

    def track(
        self, fut: asyncio.Future[Any], callback: Callable[[asyncio.Future[Any]], None]
    ) -> None: ...

    def record_spans(
        self, node: Node, first: int, k: int, start: float, end: float, worker: str
    ) -> None: ...

    def record_wait(
        self,
        node: Node,
        first: int,
        k: int,
        submitted: float,
        picked: float,
        worker: str,
        transfer: float,
    ) -> None: ...

    def complete(self, node: Node, index: int, outcome: Any) -> None: ...

    def failed(self, firing: Firing, exc: BaseException, skip: int) -> None: ...


def fire_batch(sched: Steps, node: Node) -> bool:
    """Hand the backend up to ``node.batch_size`` firings as one batch (one message)."""
    if node.batches >= node.concurrency or node.inflight >= node.concurrency * MAX_BATCH:
        return False
    inputs = node.inputs
    if node.inflight and not _bytes_for(node, 1):
        return False  # what is in flight fills the byte bound; its answers wake the node
    if len(inputs[0].items) == 1 or min(len(p.items) for p in inputs) == 1:
        # One item waiting (a one-item run, a stream that keeps up): a plain call, no
        # batch to wrap and unwrap on either side.
        if not sched.has_room(node):
            return False
        sched.fire(node, holds_batch=True)
        return True
    room = min((p.max_size - len(p.items) for p in node.out_lanes if not p.closed), default=None)
    if room is None and node.out_lanes:
        sched.stop_early(node)
        return False
    if room is not None and any(p.held >= p.max_bytes for p in node.out_lanes if not p.closed):
        sched.has_room(node)  # full in bytes: account the wait
        return False
    available = min(len(p.items) for p in node.inputs)
    # Spread what is waiting over the free slots, so that a short backlog still keeps every
    # worker busy; never more than the output lanes can take.
    free = node.concurrency - node.batches
    k = min(node.batch_size, max(1, -(-available // free)))
    if k > 1:
        # Batches are for many small items: big ones (arrays, tables) travel one by one,
        # so that a batch never holds more than about BATCH_MAX_BYTES of arena space.
        k = min(k, max(1, BATCH_MAX_BYTES // max(1, payload_nbytes(node.inputs[0].items[0]))))
    if room is not None:
        # Every firing in flight will land in the output lanes: count them against the
        # room, so that a producer never runs ahead of its consumers by more than the
        # lanes hold, however many batches are out.
        room -= node.inflight
        if room <= 0:
            sched.has_room(node)  # account the wait
            return False
        k = min(k, room)
        if k > 1:
            k = max(1, min(k, _bytes_for(node, k)))
    if node.item_arg:
        args = sched.take_many(node.inputs[0], k)
    else:
        args = [sched.take_all(node) for _ in range(k)]
    first = node.index
    start = time.perf_counter()
    if not first and sched.observed:
        sched.first_firing(node, start)
    node.index += k
    node.inflight += k
    node.batches += 1
    for hook in sched.start_hooks:
        for j in range(k):
            hook.firing_start(node.node_id, first + j, start)
    slot = FiringSlot(node.node_id, first)
    try:
        assert node.fn is not None
        fut = asyncio.ensure_future(node.backend.submit_batch(node.fn, args, slot))
    except Exception as exc:
        _batch_failed(sched, node, first, args, start, slot, exc)
        return True
    sched.track(fut, partial(_on_batch_done, sched, node, first, args, start, slot))
    return True


def _bytes_for(node: Node, k: int) -> int:
    """How many of ``k`` more firings the output lanes' byte bounds have room for, counting the
    firings in flight (a batching node may have many: their outputs all land, and finished ones
    wait there for an earlier one to emit in order). Each output is guessed at the mean size of
    the items that entered the lane so far, or before any did, at the size of the next input
    (a stage that transforms arrays or tables); 0 when there is no room left for one."""
    guess = -1
    for lane in node.out_lanes:
        if lane.closed or lane.max_bytes == sys.maxsize:
            continue
        if lane.items_in:
            per = lane.bytes_in // lane.items_in
        else:
            if guess < 0:
                waiting = node.inputs[0].items
                guess = payload_nbytes(waiting[0]) if waiting else 0
            per = guess
        if per:
            k = min(k, (lane.max_bytes - lane.held) // per - node.inflight)
    return max(k, 0)


def _on_batch_done(
    sched: Steps,
    node: Node,
    first: int,
    args: list[Any],
    start: float,
    slot: FiringSlot,
    fut: asyncio.Future[Any],
) -> None:
    sched.outstanding.discard(fut)
    if fut.cancelled() or sched.done:
        return
    exc = fut.exception()
    if exc is not None:
        _batch_failed(sched, node, first, args, start, slot, exc)
    else:
        values, kinds, seconds = fut.result()
        node.batches -= 1
        end = time.perf_counter()
        k = len(values)
        per_item = seconds / k if k else 0.0
        processor = node.processor
        # Spans of the firings: when the batch ran in its worker, when the backend says.
        run_start, run_end = start, end
        ran = slot.ran
        if ran is not None and k:
            picked, run_start, run_end, _ = ran
            picked = min(max(picked, start), run_start)
            transfer = run_start - picked + max(end - run_end, 0.0)
            sched.record_wait(node, first, k, start, picked, slot.worker, transfer)
        if kinds is None and node.single_out is not None:
            # The common case, in bulk: every firing of the batch gave a value, so its
            # outputs travel as one run, emitted when the batch's turn comes.
            sched.record_spans(node, first, k, run_start, run_end, slot.worker)
            processor._record_many(k, seconds)
            sched.complete(node, first, Outputs(values))
            values = []
        for j, value in enumerate(values):
            kind = 1 if kinds is None else kinds[j]
            index = first + j
            if kind:
                processor._record(per_item, False)
                sched.record_spans(node, index, 1, run_start, run_end, slot.worker)
                sched.complete(node, index, value if kind == 1 else Items(value))
            else:
                firing = Firing(node, index, args[j])
                firing.start, firing.worker = start, slot.worker
                firing.ran = (run_start, run_start, run_end, per_item)
                sched.failed(firing, value, 0)
        if node.strategy is not None:
            record_success(node.strategy, node.node_id)
        # Adapt: grow towards batches of about BATCH_TARGET_SECONDS of work.
        if k >= node.batch_size:
            ideal = BATCH_TARGET_SECONDS / per_item if per_item > 0 else MAX_BATCH
            node.batch_size = int(max(1, min(ideal, node.batch_size * 4, MAX_BATCH)))
        elif per_item > 0 and per_item * node.batch_size > 4 * BATCH_TARGET_SECONDS:
            node.batch_size = int(max(1, BATCH_TARGET_SECONDS / per_item))
    sched.schedule(node)
    sched.poke()


def _batch_failed(
    sched: Steps,
    node: Node,
    first: int,
    args: list[Any],
    start: float,
    slot: FiringSlot,
    exc: BaseException,
) -> None:
    """The whole batch failed. A dead worker is not the fault of every firing in its batch:
    they run again one by one (the culprit then fails on its own). Any other failure of the
    whole batch goes to the strategy for each firing."""
    node.batches -= 1
    crashed = isinstance(exc, WorkerCrashedError) and len(args) > 1
    if crashed:
        node.batch_size = 1
    for j, arg in enumerate(args):
        firing = Firing(node, first + j, arg)
        if crashed:
            sched.start(firing)
        else:
            firing.start, firing.worker = start, slot.worker
            sched.failed(firing, exc, 0)
