"""Lanes: a run's own queue for each pipe of the graph.

A user's :class:`~mpipe.Pipe` describes a connection (its id, its capacity, its taps) and can be
used on its own from threads and coroutines. Inside a run, the items travel in a :class:`Lane`
that the run's plan made for that pipe: the lane holds the items, whether it is closed, the nodes
on both sides and the traffic counters, so two executors running one graph at once never touch
each other's items. The scheduler drives lanes from the event-loop thread only, with no lock.

A lane is bounded twice: in items (``max_size``) and in bytes (``max_bytes``); it is full when
either bound is reached, and its producer then waits. ``held`` is the sum of the sizes of the
items in it (``payload_nbytes``, taken when each item enters and kept beside it in ``sizes``).

A lane counts its traffic over every run of its plan (``items_in``, ``items_out``, ``bytes_in``,
``blocked_time``, ``full_events``: nothing is added up or zeroed per run, which a wide graph of
thousands of lanes would pay on every run), and ``peak``/``peak_bytes`` are the most it held in
any of them. A pipe's ``get_metrics()`` adds the
lanes of every plan alive to its own counters; when a plan is dropped, its lanes' traffic moves
into their pipes (:meth:`Lane.retire`). A run's own traffic is the difference between the
counters at its end and at its start (what the monitor keeps).

Invariant: the scheduler lets a lane exceed ``max_size`` by at most a processor's concurrency (a
firing already running when the lane filled still delivers its output), and ``max_bytes`` by
those outputs and one item (an item larger than ``max_bytes`` enters an empty lane alone), so
memory stays bounded by capacity whatever the stream's length.
"""

from __future__ import annotations

import sys
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from .._model._observer_errors import ObserverErrors
from .._model._pipe import SIZERS, Pipe, byte_metrics, payload_nbytes

__all__ = ["Lane", "LaneBook"]


class LaneBook:
    """The few lanes of a plan that need a look when a run ends: those whose producer was
    waiting for room (their waiting time is closed) and those whose taps failed (reported
    once). Kept as they happen, so that ending a run costs no pass over every lane."""

    __slots__ = ("failed_taps", "stalled")

    def __init__(self) -> None:
        self.stalled: set[Lane] = set()
        self.failed_taps: set[Lane] = set()

    def settle(self) -> None:
        """A run ended: stop counting waits, report tap failures."""
        for lane in self.stalled:
            if lane.blocked_since is not None:
                lane.note_blocked(False)
        self.stalled.clear()
        for lane in self.failed_taps:
            lane.report_tap_errors()
        self.failed_taps.clear()


class Lane:
    """One pipe's items within the runs of one plan (reset at each run's start).

    Args:
        pipe: The pipe the lane carries items for (its id, capacity and counters).
        watched: More pipes whose taps see the lane's items: a processor's own declared output
            or input pipe when a connection's pipe stands between them.
    """

    __slots__ = (
        "blocked_since",
        "blocked_time",
        "book",
        "bytes_in",
        "closed",
        "consumer",
        "full_events",
        "held",
        "items",
        "items_in",
        "items_out",
        "max_bytes",
        "max_size",
        "peak",
        "peak_bytes",
        "pipe",
        "pipe_id",
        "producer",
        "run_taps",
        "sizes",
        "tap_errors",
        "tapped",
        "watched",
    )

    def __init__(self, pipe: Pipe, watched: Sequence[Pipe] = ()) -> None:
        self.pipe = pipe
        self.pipe_id = pipe.pipe_id
        self.max_size = pipe.max_size
        # No byte bound is a bound no lane reaches: one comparison either way.
        self.max_bytes = sys.maxsize if pipe.max_bytes is None else pipe.max_bytes
        tapped = bool(pipe._taps)
        if watched:  # plain loops: thousands of lanes are made per compile
            others = []
            for p in watched:
                if p is not pipe:
                    others.append(p)
                    if p._taps:
                        tapped = True
            self.watched = (pipe, *others)
        else:
            self.watched = (pipe,)
        self.items: deque[Any] = deque()
        self.sizes: deque[int] = deque()
        self.held = 0
        self.closed = False
        # The nodes on both sides (the result sink as the consumer of a sink's lane); a take
        # wakes the producer, an offer the consumer.
        self.consumer: Any = None
        self.producer: Any = None
        #: Taps of this run only (checkpoints of a processor's outputs), by id, and how often
        #: taps failed: made when first needed (a wide graph has thousands of lanes).
        self.run_taps: dict[str, Callable[[Any], Any]] | None = None
        self.tap_errors: ObserverErrors | None = None
        self.tapped = tapped
        self.items_in = self.items_out = self.bytes_in = self.peak = 0
        self.full_events = self.peak_bytes = 0
        self.blocked_time = 0.0
        self.blocked_since: float | None = None
        #: The plan's record of lanes that need a look when a run ends (set by the plan).
        self.book: LaneBook | None = None

    def zero(self) -> None:
        """Zero the traffic counters (the pipe was reset, or took them over)."""
        self.items_in = 0
        self.items_out = 0
        self.bytes_in = 0
        self.peak = 0
        self.blocked_time = 0.0
        self.blocked_since = None
        self.full_events = 0
        self.peak_bytes = 0

    def retap(self) -> None:
        """Look at the watched pipes' taps again (they changed since the lane last looked)."""
        self.tapped = bool(self.run_taps) or any(p._taps for p in self.watched)

    # -- the scheduler's side ----------------------------------------------------------------------

    def offer(self, item: Any) -> None:
        items = self.items
        items.append(item)
        size = SIZERS[type(item)](item)
        self.sizes.append(size)
        self.items_in += 1
        self.bytes_in += size
        held = self.held = self.held + size
        if held > self.peak_bytes:
            self.peak_bytes = held
        if len(items) > self.peak:
            self.peak = len(items)
        if self.tapped:
            self._run_taps(item)

    def offer_many(self, items: list[Any], sizes: list[int] | None = None) -> int:
        """``offer`` for a run of items at once (a batch's outputs, a feeder's chunk); the
        bytes they added. ``sizes``: the items' sizes, when the caller has them already."""
        if self.tapped:
            before = self.bytes_in
            for item in items:
                self.offer(item)
            return self.bytes_in - before
        queue = self.items
        queue.extend(items)
        self.items_in += len(items)
        if sizes is None:
            if items and SIZERS[type(items[0])] is sys.getsizeof:
                # Plain objects: one C-level pass (getsizeof sizes anything, so a mixed run is
                # fine).
                sizes = list(map(sys.getsizeof, items))
            else:
                sizes = list(map(payload_nbytes, items))
        self.sizes.extend(sizes)
        added = sum(sizes)
        self.bytes_in += added
        held = self.held = self.held + added
        if held > self.peak_bytes:
            self.peak_bytes = held
        if len(queue) > self.peak:
            self.peak = len(queue)
        return added

    def fill(self, item: Any) -> None:
        """Put an item into an entry lane before the run starts (a batch's input)."""
        if not self.items:
            self.consumer.filled += 1
        self.offer(item)

    def seal(self) -> None:
        """No more items come into this entry lane (a batch's lanes, once filled)."""
        self.closed = True
        self.producer = None

    def take(self) -> Any:
        self.items_out += 1
        self.held -= self.sizes.popleft()
        return self.items.popleft()

    def take_many(self, n: int) -> list[Any]:
        """``take`` for ``n`` items at once (the oldest first)."""
        popleft = self.items.popleft
        self.items_out += n
        sizes = self.sizes
        if n == len(sizes):
            self.held = 0
            sizes.clear()
        else:
            drop = sizes.popleft
            self.held -= sum([drop() for _ in range(n)])
        return [popleft() for _ in range(n)]

    def clear(self) -> None:
        """Drop every item (nobody will take them)."""
        self.items.clear()
        self.sizes.clear()
        self.held = 0

    def note_blocked(self, blocked: bool) -> None:
        """Account the time the producer spends waiting on this lane."""
        now = time.perf_counter()
        if blocked:
            if self.blocked_since is None:
                self.blocked_since = now
                self.full_events += 1
                if self.book is not None:
                    self.book.stalled.add(self)
        elif self.blocked_since is not None:
            self.blocked_time += now - self.blocked_since
            self.blocked_since = None

    # -- taps --------------------------------------------------------------------------------------

    def add_tap(self, tap_id: str, fn: Callable[[Any], Any]) -> None:
        """Call ``fn(item)`` for every item that enters the lane, for this run only."""
        if self.run_taps is None:
            self.run_taps = {}
        self.run_taps[tap_id] = fn
        self.tapped = True

    def remove_tap(self, tap_id: str) -> None:
        if self.run_taps is not None:
            self.run_taps.pop(tap_id, None)
        self.retap()

    def _run_taps(self, item: Any) -> None:
        failed = False
        for pipe in self.watched:
            if pipe._taps:
                pipe._run_taps(item)
                if pipe._tap_errors.counts:
                    failed = True
        for tap_id, fn in list((self.run_taps or {}).items()):
            try:
                fn(item)
            except Exception:
                if self.tap_errors is None:
                    self.tap_errors = ObserverErrors()
                self.tap_errors.failed(f"tap {tap_id!r} on pipe {self.pipe_id!r}")
                failed = True
        if failed and self.book is not None:
            self.book.failed_taps.add(self)

    def report_tap_errors(self) -> None:
        """Log how often this lane's taps failed since the last report (at a run's end)."""
        if self.tap_errors is not None and self.tap_errors.counts:
            self.tap_errors.report()
        for watched in self.watched:
            if watched._tap_errors.counts:
                watched._tap_errors.report()

    # -- what observers see --------------------------------------------------------------------------

    def traffic(self) -> tuple[int, int, int, int, int, float, int, int, int]:
        """What a pipe's metrics add up over its lanes (a tuple: a summary of thousands of
        pipes reads thousands of lanes): items in, items out, bytes in, items held, the peak
        in items, seconds its producer waited, how often it was full, bytes held, the peak in
        bytes."""
        blocked = self.blocked_time
        if self.blocked_since is not None:
            blocked += time.perf_counter() - self.blocked_since
        return (
            self.items_in,
            self.items_out,
            self.bytes_in,
            len(self.items),
            self.peak,
            blocked,
            self.full_events,
            self.held,
            self.peak_bytes,
        )

    def get_metrics(self) -> dict[str, Any]:
        """The lane's traffic over its plan's runs and what it holds now, in the shape of
        :meth:`Pipe.get_metrics` (JSON-compatible)."""
        items_in, items_out, bytes_in, size, peak, blocked, full, held, peak_bytes = self.traffic()
        return {
            "items_in": items_in,
            "items_out": items_out,
            "bytes_in": bytes_in,
            "size": size,
            "peak_size": peak,
            "max_size": self.max_size,
            "utilization": size / self.max_size,
            "peak_utilization": peak / self.max_size,
            "blocked_time": blocked,
            "full_events": full,
            **byte_metrics(held, peak_bytes, self.pipe.max_bytes),
        }

    def get_status(self) -> dict[str, Any]:
        """The pipe's id, type and taps with this run's state and metrics."""
        pipe = self.pipe
        return {
            "pipe_id": self.pipe_id,
            "pipe_type": pipe.pipe_type.value,
            "state": "closed" if self.closed else "open",
            "taps": sorted({*pipe._taps, *(self.run_taps or {})}),
            **self.get_metrics(),
        }

    def retire(self, ended_at: float | None) -> None:
        """Move the lane's traffic into its pipe's own counters (its plan is dropped; the run
        that used it last ended at ``ended_at`` by the wall clock) and zero the lane's. Written
        without the pipe's lock: nothing else puts into a pipe that a plan's lanes carry."""
        if not (self.items_in or self.full_events):
            return
        if self.blocked_since is not None:
            self.note_blocked(False)
        pipe = self.pipe
        pipe._items_in += self.items_in
        pipe._items_out += self.items_out
        pipe._bytes_in += self.bytes_in
        pipe._peak = max(pipe._peak, self.peak)
        pipe._blocked_time += self.blocked_time
        pipe._full_events += self.full_events
        pipe._peak_bytes = max(pipe._peak_bytes, self.peak_bytes)
        if ended_at is not None and (pipe._last_activity or 0.0) < ended_at:
            pipe._last_activity = ended_at
        self.zero()

    def __repr__(self) -> str:
        return f"Lane({self.pipe_id!r}, size={len(self.items)}/{self.max_size})"
