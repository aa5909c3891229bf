"""A worker's two rings (requests in, responses out) and their eventfd doorbells.

The parent opens one :class:`Channel` per worker with :func:`open_channel`: both rings live in
the arena, each has an eventfd doorbell. The parent sends on the request ring and watches the
response doorbell with ``loop.add_reader``; the worker, given :meth:`Channel.endpoint` when it is
started, blocks on its request doorbell with the GIL released and answers on the response ring.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from ._arena import Arena, ArenaHandle, Block
from ._errors import TransportError
from ._fds import FdHandle
from ._load import native

if TYPE_CHECKING:
    import asyncio  # the parent's side watches its doorbells on a loop; a worker has none

__all__ = ["Channel", "Endpoint", "WorkerChannel", "open_channel"]

RING_HEADER: int = native.RING_HEADER

#: Microseconds a blocked receiver spins on its ring before it sleeps on its doorbell. 200 us
#: covers the parent's set-up between two short runs, so a worker answering runs one after the
#: other is still awake (measured: a one-firing run's round trip 118 us with 50, 73 us with
#: 200, 89 us with 500); a busy stream never spins long, so throughput is unchanged.
DEFAULT_SPIN = 200


@dataclass(frozen=True)
class Endpoint:
    """Everything a worker needs to talk to the parent; pass it when starting the worker.

    Attributes:
        arena: The arena handle (carries the worker's slot).
        requests: The request ring's block: ``(offset, generation)``.
        responses: The response ring's block: ``(offset, generation)``.
        request_bell: Doorbell the parent rings for requests.
        response_bell: Doorbell the worker rings for responses.
        parent_pid: The parent's pid, watched so that a worker never waits on a dead parent.
        spin: Microseconds to spin before sleeping.
    """

    arena: ArenaHandle
    requests: tuple[int, int]
    responses: tuple[int, int]
    request_bell: FdHandle
    response_bell: FdHandle
    parent_pid: int
    spin: int

    def connect(self) -> WorkerChannel:
        """Map the arena and open the worker's ends of both rings (in the worker)."""
        arena = Arena.attach(self.arena)
        req_fd = self.request_bell.take()
        resp_fd = self.response_bell.take()
        try:
            # the worker's references to the ring blocks: they outlive the parent's close
            blocks = (arena.lease(*self.requests), arena.lease(*self.responses))
            requests = native.Ring(
                arena._native, blocks[0].data_offset, req_fd, True, self.parent_pid, self.spin
            )
            responses = native.Ring(
                arena._native, blocks[1].data_offset, resp_fd, False, self.parent_pid
            )
        except BaseException:
            os.close(req_fd)
            os.close(resp_fd)
            arena.close()
            raise
        return WorkerChannel(arena, requests, responses, (req_fd, resp_fd), blocks)


def _unbound(*args: Any) -> Any:
    raise TransportError("bind(worker_pid) the channel before using it")


def _closed(*args: Any) -> Any:
    raise TransportError("the channel is closed")


def _nothing() -> None:
    pass


def _watch(
    loop: asyncio.AbstractEventLoop, ring: Any, fd: int, on_message: Callable[[bytes], None]
) -> tuple[Callable[[], None], asyncio.Handle | None]:
    """Arm ``ring`` (every message rings its eventfd) and drain it from ``loop``'s reader.

    Returns the reader (it may also be called directly: one look, never a wait) and, when
    messages were already waiting, the handle of its first call, which the caller cancels if
    it stops watching before that call runs (the ring may be gone by then).
    """

    def ready() -> None:
        ring.clear_doorbell()
        while True:
            while (m := ring.try_recv()) is not None:
                on_message(m)
            if not ring.arm():  # armed: the next message rings the doorbell
                return

    ring.arm()
    loop.add_reader(fd, ready)
    return ready, loop.call_soon(ready) if len(ring) else None


_S = TypeVar("_S", bound="_Side")


class _Side(ABC):
    """What both ends of a channel share: watching one ring's doorbell from an event loop, and
    closing as a context manager."""

    _watching: asyncio.AbstractEventLoop | None = None
    _first: asyncio.Handle | None = None
    _watched_fd = -1

    def _watch_ring(
        self,
        loop: asyncio.AbstractEventLoop,
        ring: Any,
        fd: int,
        on_message: Callable[[bytes], None],
    ) -> Callable[[], None]:
        reader, self._first = _watch(loop, ring, fd, on_message)
        self._watching = loop
        self._watched_fd = fd
        return reader

    def unwatch(self) -> None:
        """Stop watching the doorbell."""
        if self._watching is not None:
            self._watching.remove_reader(self._watched_fd)
            self._watching = None
            if self._first is not None:
                self._first.cancel()
                self._first = None

    @abstractmethod
    def close(self) -> None:
        """Release this end's doorbells and ring references."""

    def __enter__(self: _S) -> _S:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class WorkerChannel(_Side):
    """The worker's side: receive requests, send responses.

    ``recv`` and ``send`` are the native ring methods themselves (no Python layer in between):

    - ``recv(timeout=None) -> bytes | None``: the next request, ``None`` on timeout; blocks with
      the GIL released. Raises :class:`RingClosedError` once the parent closed the channel and
      every request was read, :class:`PeerDiedError` when the parent died.
    - ``send(message, timeout=None)``: send a response, waiting while the ring is full. Raises
      :class:`PeerDiedError` when the parent died, :class:`RingFullError` after ``timeout``.

    Attributes:
        arena: The arena mapped in this worker.
        requests: Receiving end of the request ring.
        responses: Sending end of the response ring.
        recv: See above.
        send: See above.
    """

    recv: Callable[..., bytes | None]
    send: Callable[..., None]

    def __init__(
        self,
        arena: Arena,
        requests: Any,
        responses: Any,
        fds: tuple[int, int],
        blocks: tuple[Block, Block],
    ) -> None:
        self.arena = arena
        self.requests = requests
        self.responses = responses
        self._fds = fds
        self._blocks = blocks
        self._closed = False
        self.recv = requests.recv
        self.send = responses.send

    def watch(self, loop: asyncio.AbstractEventLoop, on_message: Callable[[bytes], None]) -> None:
        """For a worker that runs an event loop: call ``on_message`` in ``loop`` for each
        request, woken by the request doorbell (``recv`` must not be used meanwhile)."""
        self._watch_ring(loop, self.requests, self._fds[0], on_message)

    def close(self) -> None:
        """Close the worker's doorbells, drop its ring references, unmap what no view uses."""
        if not self._closed:
            self._closed = True
            self.unwatch()
            for fd in self._fds:
                os.close(fd)
            self.requests = self.responses = None
            self.recv = self.send = _closed
            for block in self._blocks:
                block.release()
            self.arena.close()


class Channel(_Side):
    """The parent's side of one worker's rings. Create with :func:`open_channel`.

    After :meth:`bind`, ``send``, ``try_send`` and ``recv`` are the native ring methods
    themselves (before it they raise :class:`TransportError`):

    - ``send(message, timeout=None)``: send a request, blocking while the ring is full (an event
      loop should use ``try_send``). Raises :class:`PeerDiedError` when the worker died,
      :class:`RingFullError` after ``timeout``.
    - ``try_send(message) -> bool``: send if the ring has room; never blocks.
    - ``recv(timeout=None) -> bytes | None``: block for the next response, ``None`` on timeout
      (scripts and benchmarks; the executor uses :meth:`watch`).

    While watched, ``look()`` handles every response waiting now, exactly as the doorbell's
    reader does (and leaves the doorbell armed); it never waits. Otherwise it does nothing.

    Args:
        arena: The parent's arena.
        slot: The worker's holder slot.
        capacity: Messages per ring (a power of two).
        message_size: Largest message in bytes (slot size minus 8, a multiple of 64 minus 8).
        spin: Microseconds a blocked receiver spins before it sleeps.
    """

    def __init__(
        self, arena: Arena, slot: int, capacity: int, message_size: int, spin: int
    ) -> None:
        if arena.slot != 0:
            raise TransportError("channels are opened by the parent (slot 0)")
        slot_size = -(-(message_size + 8) // 64) * 64
        ring_bytes = RING_HEADER + capacity * slot_size
        self.arena = arena
        self.slot = slot
        self.spin = spin
        self._blocks: list[Block] = []
        self._fds: list[int] = []
        self.worker_pid = 0
        self.requests: Any = None
        self.responses: Any = None
        self.send: Callable[..., None] = _unbound
        self.try_send: Callable[[bytes], bool] = _unbound
        self.recv: Callable[..., bytes | None] = _unbound
        self.look: Callable[[], None] = _nothing
        try:
            for _ in range(2):
                block = arena.alloc(ring_bytes, wait=0.0)
                native.Ring.format(arena._native, block.data_offset, capacity, slot_size)
                self._blocks.append(block)
                self._fds.append(native.doorbell())
        except BaseException:
            self.close()
            raise
        self.max_message = slot_size - 8

    def endpoint(self) -> Endpoint:
        """The worker's half, to pass as an argument of the worker process.

        It carries one reference to each ring block for the worker's slot, which the worker
        drops when it closes its channel; if the worker never connects or dies, the pool calls
        :meth:`Arena.reclaim` for the slot.
        """
        for block in self._blocks:
            block.share(self.slot)
        return Endpoint(
            arena=self.arena.handle(self.slot),
            requests=(self._blocks[0].offset, self._blocks[0].gen),
            responses=(self._blocks[1].offset, self._blocks[1].gen),
            request_bell=FdHandle(self._fds[0]),
            response_bell=FdHandle(self._fds[1]),
            parent_pid=os.getpid(),
            spin=self.spin,
        )

    def bind(self, worker_pid: int) -> None:
        """Open the parent's ends once the worker runs (its pid is watched for death)."""
        self.worker_pid = worker_pid
        raw = self.arena._native
        self.requests = native.Ring(
            raw, self._blocks[0].data_offset, self._fds[0], False, worker_pid
        )
        self.responses = native.Ring(
            raw, self._blocks[1].data_offset, self._fds[1], True, worker_pid, self.spin
        )
        self.send = self.requests.send
        self.try_send = self.requests.try_send
        self.recv = self.responses.recv

    def _bound(self) -> None:
        if self.requests is None:
            raise TransportError("bind(worker_pid) the channel before using it")

    def drain(self) -> list[bytes]:
        """Every response waiting now."""
        self._bound()
        out = []
        while (m := self.responses.try_recv()) is not None:
            out.append(m)
        return out

    def watch(self, loop: asyncio.AbstractEventLoop, on_message: Callable[[bytes], None]) -> None:
        """Call ``on_message`` in ``loop`` for each response, woken by the response doorbell."""
        self._bound()
        self.look = self._watch_ring(loop, self.responses, self._fds[1], on_message)

    def unwatch(self) -> None:
        """Stop watching the response doorbell."""
        super().unwatch()
        self.look = _nothing

    def close(self) -> None:
        """Close the request ring (the worker sees :class:`RingClosedError` after draining),
        stop watching, close the doorbells and drop the parent's references to both rings
        (freed once the worker has dropped its own)."""
        if self.requests is not None:
            self.requests.close()
        self.unwatch()
        for fd in self._fds:
            os.close(fd)
        self._fds = []
        self.requests = self.responses = None
        self.send = self.try_send = self.recv = _closed
        for block in self._blocks:
            block.release()
        self._blocks = []


def open_channel(
    arena: Arena,
    slot: int,
    *,
    capacity: int = 256,
    message_size: int = 440,
    spin: int = DEFAULT_SPIN,
) -> Channel:
    """Open one worker's request and response rings (in the parent); a context manager.

    Args:
        arena: The parent's arena; the rings are allocated in it.
        slot: The worker's holder slot (1..63), unique among live workers.
        capacity: Messages per ring, a power of two.
        message_size: Largest message in bytes.
        spin: Microseconds a blocked receiver spins before it sleeps on its doorbell.

    Raises:
        ValueError: A bad slot, capacity or message size.
    """
    if not 1 <= slot < native.MAX_SLOTS:
        raise ValueError(f"a worker slot must be in 1..{native.MAX_SLOTS - 1}, got {slot}")
    if capacity < 2 or capacity & (capacity - 1):
        raise ValueError(f"ring capacity must be a power of two >= 2, got {capacity}")
    if not 56 <= message_size <= 1 << 20:
        raise ValueError(f"message_size must be in 56..1048576 bytes, got {message_size}")
    if spin < 0:
        raise ValueError(f"spin must be >= 0, got {spin}")
    return Channel(arena, slot, capacity, message_size, spin)
