"""Pipes: bounded FIFO queues that carry items between processors.

A pipe is usable on its own, from coroutines (``aput``/``aget``) and from threads (``put``/``get``);
the public methods take a lock. In a graph a pipe describes a connection: its id, its capacity
and its taps. A run never puts its items into the pipe itself: it keeps them in a lane of its
own (``mpipe/_engine/_lanes.py``) that counts the traffic of every run of its plan; the pipe's
metrics add those lanes' counters to its own (see ``_SOURCES``).

A pipe is bounded in items (``max_size``) and in bytes (``max_bytes``, the sum of its items'
sizes as :func:`payload_nbytes` measures them): a put waits while either bound is reached. One
item larger than ``max_bytes`` still passes, alone.

Invariant: ``len(self._items) <= max_size`` for every public ``put``, and the held bytes exceed
``max_bytes`` by less than the last item put.
"""

from __future__ import annotations

import asyncio
import itertools
import sys
import threading
import time
import uuid
import weakref
from collections import deque
from collections.abc import Callable
from enum import Enum
from typing import Any

from .._errors import PipeError, PipeTimeoutError
from ._observer_errors import ObserverErrors

__all__ = [
    "DEFAULT_MAX_BYTES",
    "SIZERS",
    "Pipe",
    "PipeFactory",
    "PipeState",
    "PipeType",
    "add_traffic_source",
    "byte_metrics",
    "check_max_bytes",
    "payload_nbytes",
    "pipe_resets",
    "sizer_of",
    "tap_changes",
]

_cond_lock = threading.Lock()
_ids = itertools.count(1)
#: A pipe's bound in bytes unless it says otherwise: eight 8 MiB arrays, or a thousand items
#: of 64 KiB, so a stream of big items waits for its consumer long before memory runs short.
DEFAULT_MAX_BYTES = 64 << 20
#: A pipe's queues until first used (empty, and without ``append``: a put that forgot to make
#: its queue fails loudly). A graph holds three pipes per processor that its runs never fill
#: (they carry items in lanes), and a deque takes half a KiB before its first item.
_UNUSED: Any = ()


class PipeType(Enum):
    """Which way a pipe faces, seen from its processor."""

    INPUT = "input"
    OUTPUT = "output"
    BIDIRECTIONAL = "bidirectional"


class PipeState(Enum):
    """Whether a pipe still accepts items: OPEN, FULL (holds ``max_size`` items, so a put
    waits) or CLOSED. ERROR is declared for code that names it; no pipe is ever in it."""

    OPEN = "open"
    CLOSED = "closed"
    FULL = "full"
    ERROR = "error"


# Where runs keep a pipe's items and count its traffic: objects (the engine's plans) whose
# ``lanes_of(pipe)`` gives the queues carrying that pipe's items, each with the counters of
# ``Pipe.get_metrics`` over the plan's runs, and whose ``running`` tells whether a run is live.
# Weak: a plan that is dropped moves its lanes' traffic into the pipes' own counters first.
# Weak references by id rather than a WeakSet, whose iteration guard cost more than the rest of
# a pipe's metrics (a summary reads thousands of pipes).
_SOURCES: dict[int, weakref.ref[Any]] = {}


def add_traffic_source(source: Any) -> None:
    """Count the lanes of ``source`` (``lanes_of(pipe)``) in their pipes' metrics while it
    lives."""
    key = id(source)

    def forget(_: weakref.ref[Any]) -> None:
        _SOURCES.pop(key, None)

    _SOURCES[key] = weakref.ref(source, forget)


def _traffic_sources() -> list[Any]:
    """The live sources (see ``_SOURCES``)."""
    return [source for ref in list(_SOURCES.values()) if (source := ref()) is not None]


def _nbytes_or_size(item: Any) -> int:
    nbytes = getattr(item, "nbytes", None)
    return nbytes if isinstance(nbytes, int) else sys.getsizeof(item)


# Per type, how to size its instances: ``len`` for buffers and text, ``nbytes`` where the type
# has one (numpy arrays, Arrow data: exact), else the shallow ``sys.getsizeof``.
class _Sizers(dict[type, Callable[[Any], int]]):
    """How to size the instances of each type, found on first use: ``SIZERS[type(item)](item)``
    is one lookup on the per-item path."""

    def __missing__(self, cls: type) -> Callable[[Any], int]:
        sizer = self[cls] = _nbytes_or_size if hasattr(cls, "nbytes") else sys.getsizeof
        return sizer


SIZERS: dict[type, Callable[[Any], int]] = _Sizers({bytes: len, bytearray: len, str: len})


def sizer_of(cls: type) -> Callable[[Any], int]:
    """How to size the instances of ``cls`` (see :func:`payload_nbytes`)."""
    return SIZERS[cls]


class _TapChanges:
    """Counts taps added and removed on any pipe, so that a run learns whether its lanes must
    look at their pipes' taps again without looking at every pipe each time."""

    count = 0

    @classmethod
    def bump(cls) -> None:
        cls.count += 1


_tap_changes = _TapChanges


def tap_changes() -> int:
    """How many times a tap was added to or removed from any pipe (see ``Lane``)."""
    return _tap_changes.count


class _Resets:
    """Counts ``Pipe.reset()`` calls on any pipe (they zero the counters of the pipe's lanes
    too), so that an observer that keeps lane counters from one run to the next knows whether
    they still hold."""

    count = 0


def pipe_resets() -> int:
    """How many times any pipe was reset."""
    return _Resets.count


def payload_nbytes(item: Any) -> int:
    """Best cheap estimate of an item's size in bytes (exact for buffers, arrays and tables)."""
    return sizer_of(type(item))(item)


def byte_metrics(held: int, peak: int, max_bytes: int | None) -> dict[str, Any]:
    """The byte side of a pipe's metrics: bytes held now and at most, the bound, and both as a
    fraction of it (0.0 when the pipe has no bound in bytes)."""
    return {
        "bytes": held,
        "peak_bytes": peak,
        "max_bytes": max_bytes,
        "byte_utilization": held / max_bytes if max_bytes else 0.0,
        "peak_byte_utilization": peak / max_bytes if max_bytes else 0.0,
    }


def check_max_bytes(max_bytes: Any) -> int | None:
    """``max_bytes`` itself when valid: a positive integer, or None for no bound in bytes.

    Raises:
        PipeError: It is neither.
    """
    if max_bytes is not None and (
        not isinstance(max_bytes, int) or isinstance(max_bytes, bool) or max_bytes < 1
    ):
        raise PipeError(
            f"pipe max_bytes must be a positive integer (bytes) or None, got {max_bytes!r}"
        )
    return max_bytes


class Pipe:
    """A bounded FIFO queue of items.

    A full pipe makes its producer wait (backpressure). Getting from a closed pipe that has been
    drained raises :class:`PipeError`.

    Args:
        pipe_id: A name for the pipe; generated when omitted.
        max_size: Capacity in items (at least 1).
        pipe_type: Which way the pipe faces, for processors' own pipes.
        max_bytes: Capacity in bytes (default 64 MiB; None: bounded in items only). Items are
            sized by ``nbytes`` (numpy arrays, Arrow data), ``len`` (bytes, str) or
            ``sys.getsizeof`` (other objects, shallowly).

    Raises:
        PipeError: ``max_size`` is not a positive integer, or ``max_bytes`` is neither a
            positive integer nor None.
    """

    def __init__(
        self,
        pipe_id: str | None = None,
        max_size: int = 1000,
        pipe_type: PipeType = PipeType.BIDIRECTIONAL,
        max_bytes: int | None = DEFAULT_MAX_BYTES,
    ) -> None:
        if not isinstance(max_size, int) or isinstance(max_size, bool) or max_size < 1:
            raise PipeError(f"pipe max_size must be a positive integer, got {max_size!r}")
        self.pipe_id = pipe_id or f"pipe_{next(_ids)}"
        self.max_size = max_size
        self.max_bytes = check_max_bytes(max_bytes)
        self.pipe_type = pipe_type
        # The items, their sizes, and the waiting coroutines: made on first use (``_UNUSED``).
        self._items: deque[Any] = _UNUSED
        self._sizes: deque[int] = _UNUSED
        self._held = 0
        self._closed = False
        self._lock = threading.Lock()
        # Waiting machinery is made on first use: graphs hold thousands of pipes that the
        # scheduler drives without ever waiting on them.
        self._cond_: threading.Condition | None = None
        self._getters: deque[asyncio.Future[None]] = _UNUSED
        self._putters: deque[asyncio.Future[None]] = _UNUSED
        self._taps: dict[str, Callable[[Any], Any]] = {}
        self.created_at = time.time()
        self._tap_errors = ObserverErrors()
        self._reset_counters()

    @property
    def _cond(self) -> threading.Condition:
        cond = self._cond_
        if cond is None:
            with _cond_lock:
                cond = self._cond_
                if cond is None:
                    cond = self._cond_ = threading.Condition(self._lock)
        return cond

    def _reset_counters(self) -> None:
        self._items_in = 0
        self._items_out = 0
        self._bytes_in = 0
        self._peak = 0
        self._peak_bytes = 0
        self._blocked_time = 0.0
        self._full_events = 0
        self._last_activity: float | None = None

    # -- state -------------------------------------------------------------------------------

    @property
    def state(self) -> PipeState:
        """``PipeState.CLOSED`` once closed; else ``FULL`` while it holds ``max_size`` items or
        more, ``OPEN`` otherwise."""
        if self._closed:
            return PipeState.CLOSED
        return PipeState.FULL if len(self._items) >= self.max_size else PipeState.OPEN

    @property
    def closed(self) -> bool:
        """Whether the pipe was closed."""
        return self._closed

    def is_empty(self) -> bool:
        """Whether no item is waiting."""
        return not self._items

    def is_full(self) -> bool:
        """Whether the pipe holds ``max_size`` items or ``max_bytes`` bytes (or more)."""
        return len(self._items) >= self.max_size or (
            self.max_bytes is not None and self._held >= self.max_bytes
        )

    def size(self) -> int:
        """How many items are waiting."""
        return len(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def close(self) -> None:
        """Close the pipe: no more puts; gets drain what is left, then raise :class:`PipeError`."""
        with self._lock:
            self._closed = True
            self._notify()
        self._wake_all(self._getters)
        self._wake_all(self._putters)
        if self._tap_errors.counts:
            self._tap_errors.report()

    def clear(self) -> None:
        """Drop every waiting item (a full pipe is open again); counters and taps stay."""
        with self._lock:
            self._drop_items()
            self._notify()
        self._wake_all(self._putters)

    def reset(self) -> None:
        """Empty and reopen the pipe and zero its counters; taps stay."""
        with self._lock:
            self._drop_items()
            self._closed = False
            self._reset_counters()
        for lane, _ in self._lanes():  # the runs' traffic counted so far goes too
            lane.zero()
        _Resets.count += 1

    # -- taps ----------------------------------------------------------------------------------

    def add_tap(self, tap_id: str, fn: Callable[[Any], Any]) -> None:
        """Call ``fn(item)`` for every item that enters the pipe.

        A tap observes; an exception it raises does not stop the flow. Its first failure is
        logged with its traceback, later ones are counted and logged as one line when the pipe
        closes or the run that fed it ends.

        Raises:
            PipeError: ``fn`` is not callable.
        """
        if not callable(fn):
            raise PipeError(f"tap {tap_id!r} on pipe {self.pipe_id!r} is not callable: {fn!r}")
        self._taps[tap_id] = fn
        _tap_changes.bump()

    def remove_tap(self, tap_id: str) -> None:
        """Remove a tap; unknown ids are ignored."""
        if self._taps.pop(tap_id, None) is not None:
            _tap_changes.bump()

    # -- the queue itself (called with the lock held) ---------------------------------------

    def _drop_items(self) -> None:
        if self._items:
            self._items.clear()
            self._sizes.clear()
        self._held = 0

    def _offer(self, item: Any) -> None:
        items = self._items
        if items is _UNUSED:
            items = self._items = deque()
            self._sizes = deque()
        items.append(item)
        self._last_activity = time.time()
        self._items_in += 1
        size = sizer_of(type(item))(item)
        self._bytes_in += size
        self._sizes.append(size)
        self._held += size
        if self._held > self._peak_bytes:
            self._peak_bytes = self._held
        n = len(items)
        if n > self._peak:
            self._peak = n
        if self._taps:
            self._run_taps(item)
        if self._getters:
            self._wake_one(self._getters)

    def _take(self) -> Any:
        item = self._items.popleft()
        self._held -= self._sizes.popleft()
        self._last_activity = time.time()
        self._items_out += 1
        if self._putters:
            self._wake_one(self._putters)
        return item

    def _run_taps(self, item: Any) -> None:
        for tap_id, fn in list(self._taps.items()):
            try:
                fn(item)
            except Exception:
                self._tap_errors.failed(f"tap {tap_id!r} on pipe {self.pipe_id!r}")

    # -- public producer / consumer API -------------------------------------------------------

    def put(self, item: Any, timeout: float | None = None) -> None:
        """Put an item, waiting while the pipe is full. For threads, not coroutines.

        Raises:
            PipeError: The pipe is closed.
            PipeTimeoutError: Still full after ``timeout`` seconds (a PipeError).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            start = None
            while not self._closed and self.is_full():
                if start is None:
                    start = time.perf_counter()
                    self._full_events += 1
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise self._timed_out("full", timeout)
                self._cond.wait(remaining)
            if start is not None:
                self._blocked_time += time.perf_counter() - start
            if self._closed:
                raise PipeError(f"put into closed pipe {self.pipe_id!r}", self.pipe_id, "put")
            self._offer_locked(item)

    async def aput(self, item: Any, timeout: float | None = None) -> None:
        """Put an item, awaiting while the pipe is full.

        Raises:
            PipeError: The pipe is closed.
            PipeTimeoutError: Still full after ``timeout`` seconds (a PipeError).
        """
        start = None
        while True:
            with self._lock:
                if self._closed:
                    raise PipeError(f"put into closed pipe {self.pipe_id!r}", self.pipe_id, "put")
                if not self.is_full():
                    if start is not None:
                        self._blocked_time += time.perf_counter() - start
                    self._offer_locked(item)
                    return
                if start is None:
                    start = time.perf_counter()
                    self._full_events += 1
                fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
                if self._putters is _UNUSED:
                    self._putters = deque()
                self._putters.append(fut)
            await self._wait(fut, timeout, "full")

    def get(self, timeout: float | None = None) -> Any:
        """Take the oldest item, waiting while the pipe is empty. For threads, not coroutines.

        Raises:
            PipeError: The pipe is closed and drained.
            PipeTimeoutError: Still empty after ``timeout`` seconds (a PipeError, and the
                ``TimeoutError`` of ``processor_pipeline.v2``).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self._items:
                if self._closed:
                    raise PipeError(
                        f"get from closed, drained pipe {self.pipe_id!r}", self.pipe_id, "get"
                    )
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise self._timed_out("empty", timeout)
                self._cond.wait(remaining)
            item = self._take()
            self._notify()
            return item

    async def aget(self, timeout: float | None = None) -> Any:
        """Take the oldest item, awaiting while the pipe is empty.

        Raises:
            PipeError: The pipe is closed and drained.
            PipeTimeoutError: Still empty after ``timeout`` seconds (a PipeError).
        """
        while True:
            with self._lock:
                if self._items:
                    item = self._take()
                    self._notify()
                    return item
                if self._closed:
                    raise PipeError(
                        f"get from closed, drained pipe {self.pipe_id!r}", self.pipe_id, "get"
                    )
                fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
                if self._getters is _UNUSED:
                    self._getters = deque()
                self._getters.append(fut)
            await self._wait(fut, timeout, "empty")

    def _offer_locked(self, item: Any) -> None:
        self._offer(item)
        self._notify()

    def _notify(self) -> None:
        """Wake threads blocked in ``put``/``get`` (call with the lock held)."""
        if self._cond_ is not None:
            self._cond_.notify_all()

    async def _wait(self, fut: asyncio.Future[None], timeout: float | None, what: str) -> None:
        try:
            if timeout is None:
                await fut
            else:
                await asyncio.wait_for(fut, timeout)
        except asyncio.TimeoutError:
            raise self._timed_out(what, timeout) from None
        finally:
            with self._lock:
                for waiters in (self._getters, self._putters):
                    if fut in waiters:
                        waiters.remove(fut)

    def _timed_out(self, what: str, timeout: float | None) -> PipeTimeoutError:
        return PipeTimeoutError(
            f"pipe {self.pipe_id!r} still {what} after {timeout} s",
            timeout_duration=timeout or 0.0,
            pipe_id=self.pipe_id,
            operation="put" if what == "full" else "get",
        )

    @staticmethod
    def _wake_one(waiters: deque[asyncio.Future[None]]) -> None:
        while waiters:
            fut = waiters.popleft()
            if not fut.done():
                _resolve(fut)
                return

    @staticmethod
    def _wake_all(waiters: deque[asyncio.Future[None]]) -> None:
        while waiters:
            fut = waiters.popleft()
            if not fut.done():
                _resolve(fut)

    # -- status --------------------------------------------------------------------------------

    def _lanes(self) -> list[tuple[Any, bool]]:
        """Every lane of a live plan that carries this pipe's items, and whether a run of its
        plan is live."""
        return [
            (lane, source.running)
            for source in _traffic_sources()
            for lane in source.lanes_of(self)
        ]

    def get_metrics(self) -> dict[str, Any]:
        """Counters of the pipe's traffic since it was created or last reset (JSON-compatible).

        They include the traffic of the runs that carried this pipe's items (the connection
        pipes of a graph, the declared pipes of its sources and sinks), and while a run is live
        what it holds.
        """
        items_in, items_out, nbytes = self._items_in, self._items_out, self._bytes_in
        size, peak = len(self._items), self._peak
        blocked, full_events = self._blocked_time, self._full_events
        held, peak_bytes = self._held, self._peak_bytes
        for lane, running in self._lanes() if _SOURCES else ():
            i, o, b, n, p, w, f, h, pb = lane.traffic()
            items_in += i
            items_out += o
            nbytes += b
            if p > peak:
                peak = p
            blocked += w
            full_events += f
            if pb > peak_bytes:
                peak_bytes = pb
            if running:  # what a finished run left behind is no longer in the pipe
                size += n
                held += h
        return {
            "items_in": items_in,
            "items_out": items_out,
            "bytes_in": nbytes,
            "size": size,
            "peak_size": peak,
            "max_size": self.max_size,
            "utilization": size / self.max_size,
            "peak_utilization": peak / self.max_size,
            **byte_metrics(held, peak_bytes, self.max_bytes),
            "blocked_time": blocked,
            "full_events": full_events,
        }

    def get_status(self) -> dict[str, Any]:
        """The pipe's id, type, state, taps and metrics (JSON-compatible).

        Besides :meth:`get_metrics`: ``state``, ``taps`` (their ids), ``active_taps`` (how
        many), ``is_empty``, ``is_full``, ``created_at``, ``last_activity`` (wall-clock time of
        the last item in or out; for a run's items, when the run's traffic was counted or read
        live; None before any), ``total_items_processed`` (= ``items_in``) and
        ``total_bytes_processed`` (= ``bytes_in``).
        """
        metrics = self.get_metrics()
        last = self._last_activity
        live = False
        for source in _traffic_sources() if _SOURCES else ():
            if source.lanes_of(self):
                live = live or source.running
                ended = source.ended_at
                if ended is not None and (last is None or ended > last):
                    last = ended
        size = metrics["size"]
        closed = self._closed
        state = "closed" if closed else ("full" if size >= self.max_size else "open")
        return {
            "pipe_id": self.pipe_id,
            "pipe_type": self.pipe_type.value,
            "state": state,
            "taps": sorted(self._taps),
            "active_taps": len(self._taps),
            "is_empty": size == 0,
            "is_full": size >= self.max_size,
            "created_at": self.created_at,
            "last_activity": time.time() if live else last,
            "total_items_processed": metrics["items_in"],
            "total_bytes_processed": metrics["bytes_in"],
            **metrics,
        }

    def __reduce__(self) -> tuple[Any, ...]:
        # A pipe travels (inside a processor sent to a worker) as its declaration only: its
        # items, waiters and locks belong to this process.
        return (Pipe, (self.pipe_id, self.max_size, self.pipe_type, self.max_bytes))

    def __repr__(self) -> str:
        return (
            f"Pipe({self.pipe_id!r}, size={len(self._items)}/{self.max_size}, {self.state.value})"
        )


def _resolve(fut: asyncio.Future[None]) -> None:
    loop = fut.get_loop()
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        fut.set_result(None)
    else:
        loop.call_soon_threadsafe(_set_if_pending, fut)


def _set_if_pending(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


class PipeFactory:
    """Makes pipes of the usual shapes; a pipe made without an id gets a uuid4 as its id."""

    @staticmethod
    def create_pipe(
        pipe_type: PipeType = PipeType.BIDIRECTIONAL,
        max_size: int = 1000,
        pipe_id: str | None = None,
        max_bytes: int | None = DEFAULT_MAX_BYTES,
    ) -> Pipe:
        """A pipe of the given type and capacity (in items and in bytes)."""
        return Pipe(
            pipe_id or str(uuid.uuid4()),
            max_size=max_size,
            pipe_type=pipe_type,
            max_bytes=max_bytes,
        )

    @staticmethod
    def create_buffered_pipe(buffer_size: int = 10000, pipe_id: str | None = None) -> Pipe:
        """A pipe with a large buffer (10,000 items by default), for bursty producers."""
        return Pipe(pipe_id or str(uuid.uuid4()), max_size=buffer_size)

    @staticmethod
    def create_streaming_pipe(pipe_id: str | None = None, max_size: int = 10) -> Pipe:
        """A pipe with a small buffer (10 items by default), so that producers and consumers
        stay in step."""
        return Pipe(pipe_id or str(uuid.uuid4()), max_size=max_size)
