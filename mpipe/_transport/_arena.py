"""The arena: one shared-memory region per executor, and the blocks allocated in it.

A :class:`Block` is this process's reference to an allocated block. References are counted per
process slot in the block header (slot 0 is the parent, workers use 1..63): a block is freed when
no slot holds it. Within one process every reference to a block is one :class:`Block` object;
zero-copy views (Arrow buffers, numpy arrays) keep that object alive, and its collection releases
the process's reference. Details and invariants: ``docs/transport.md``.
"""

from __future__ import annotations

import os
import threading
import weakref
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from ._errors import ArenaFullError, PayloadTooLargeError, TransportError
from ._fds import FdHandle
from ._load import native
from ._memory import format_size, headroom, memory_facts, reserve_size

__all__ = ["Arena", "ArenaHandle", "Block", "open_arena"]

BLOCK_HEADER: int = native.BLOCK_HEADER
MAX_SLOTS: int = native.MAX_SLOTS
_MiB = 1 << 20
#: Growth that an allocation may make without first asking the system for free memory: below
#: this, asking (a few file reads) would cost more than the bytes are worth.
UNCHECKED_GROWTH = 64 * _MiB
#: Where the heap starts: the arena's header page.
_HEAP_START = 4096


@dataclass(frozen=True)
class ArenaHandle:
    """What a worker needs to map the arena: picklable while the worker is being started.

    Attributes:
        fd: The arena's memfd.
        slot: The worker's holder slot (1..63).
        wait: Seconds an allocation waits for frees before :class:`ArenaFullError`.
    """

    fd: FdHandle
    slot: int
    wait: float


class Block:
    """This process's reference to one allocated block of the arena.

    Do not create blocks directly: :meth:`Arena.alloc` and :meth:`Arena.lease` do.
    """

    __slots__ = ("__weakref__", "_alive", "arena", "data_offset", "gen", "offset", "size")

    def __init__(self, arena: Arena, offset: int, gen: int, data_offset: int, size: int) -> None:
        self.arena = arena
        self.offset = offset
        self.gen = gen
        self.data_offset = data_offset
        self.size = size
        self._alive = True

    @property
    def address(self) -> int:
        """Address of the block's first data byte in this process."""
        return self.arena.address + self.data_offset

    def writable(self, start: int = 0, stop: int | None = None) -> memoryview:
        """A writable view of the block's data, for filling it before it is sent.

        The view does not keep the block alive: keep the :class:`Block` while you use it.
        """
        stop = self.size if stop is None else stop
        if not 0 <= start <= stop <= self.size:
            raise ValueError(f"range {start}:{stop} is outside the block's {self.size} bytes")
        return self.arena._view[self.data_offset + start : self.data_offset + stop]

    def buffer(self, start: int = 0, nbytes: int | None = None) -> Any:
        """A read-only ``pyarrow.Buffer`` over the block's data that keeps the block alive."""
        import pyarrow as pa

        nbytes = self.size - start if nbytes is None else nbytes
        if start < 0 or nbytes < 0 or start + nbytes > self.size:
            raise ValueError(f"range {start}+{nbytes} is outside the block's {self.size} bytes")
        return pa.foreign_buffer(self.address + start, nbytes, base=self)

    def share(self, slot: int) -> None:
        """Give ``slot`` one reference (sent along with a message addressed to it)."""
        self.arena._native.share(self.offset, self.gen, slot)

    def release(self) -> None:
        """Drop this process's reference now (views made from it must be gone)."""
        if self._alive:
            self._alive = False
            self.arena._drop(self)

    def __del__(self) -> None:
        if self._alive:
            self._alive = False
            self.arena._drop(self)

    def __repr__(self) -> str:
        return f"Block(offset={self.offset}, gen={self.gen}, size={self.size})"


class Arena:
    """A shared-memory arena mapped in this process.

    Use :func:`open_arena` in the parent and :meth:`Arena.attach` in a worker.

    Args:
        raw: The native arena.
        wait: Seconds an allocation waits for frees when the arena is full.
    """

    def __init__(self, raw: Any, wait: float) -> None:
        self._native = raw
        self._view = memoryview(raw)
        self.wait = wait
        # reentrant: a Block's __del__ (run by the garbage collector at any allocation, even
        # while this lock is held) takes it again in the same thread
        self._lock = threading.RLock()
        self._live: dict[tuple[int, int], weakref.ref[Block]] = {}
        self._closed = False

    @classmethod
    def attach(cls, handle: ArenaHandle) -> Arena:
        """Map the arena described by ``handle`` (in a worker process).

        Raises:
            TransportError: The descriptor is not an mpipe arena.
        """
        if not 1 <= handle.slot < MAX_SLOTS:
            raise ValueError(f"a worker slot must be in 1..{MAX_SLOTS - 1}, got {handle.slot}")
        return cls(native.Arena.attach(handle.fd.take(), handle.slot), handle.wait)

    @property
    def slot(self) -> int:
        """This process's holder slot (0 in the parent)."""
        return int(self._native.slot)

    @property
    def address(self) -> int:
        """Address of the mapping in this process."""
        return int(self._native.address)

    @property
    def capacity(self) -> int:
        """The most bytes the arena can ever span (its ``max_size``)."""
        return int(self._native.capacity)

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    def handle(self, slot: int) -> ArenaHandle:
        """A handle for a worker that will use holder slot ``slot``."""
        if self._native.fd < 0:
            raise TransportError("only the process that created the arena can hand it out")
        if not 1 <= slot < MAX_SLOTS:
            raise ValueError(f"a worker slot must be in 1..{MAX_SLOTS - 1}, got {slot}")
        return ArenaHandle(FdHandle(self._native.fd), slot, self.wait)

    def alloc(self, nbytes: int, wait: float | None = None) -> Block:
        """Allocate a block with room for ``nbytes``; this process holds its one reference.

        The arena grows to what the data needs: an allocation that needs more than
        ``UNCHECKED_GROWTH`` new bytes first checks that the system has that much memory free.

        Args:
            nbytes: Bytes of payload.
            wait: Seconds to wait for other processes to free space when the memory is short
                (default: the arena's ``wait``).

        Raises:
            PayloadTooLargeError: ``nbytes`` cannot fit in the memory the system has, even with
                every other payload released (the message says how much is available).
            ArenaFullError: It could fit, but the memory is taken by payloads in flight and
                none was released in time.
        """
        if nbytes < 0:
            raise ValueError(f"cannot allocate a negative number of bytes ({nbytes})")
        try:
            offset, gen, size = self._native.alloc(nbytes, 0.0, UNCHECKED_GROWTH)
        except (ArenaFullError, PayloadTooLargeError):
            offset, gen, size = self._alloc_checked(nbytes, self.wait if wait is None else wait)
        block = Block(self, offset, gen, offset + BLOCK_HEADER, size)
        with self._lock:
            self._live[(offset, gen)] = weakref.ref(block)
        return block

    def _alloc_checked(self, nbytes: int, wait: float) -> tuple[int, int, int]:
        """The slow path: grow by as much as the system's free memory allows, else wait."""
        size = f"a payload of {format_size(nbytes)} ({nbytes} bytes)"
        facts = memory_facts()
        spare = max(0, facts.available - headroom(facts.total))
        stats = self.stats()
        held = f"the shared-memory arena holds {format_size(stats['heap_bytes'])}"
        # Were every other payload released, the arena could hold what it has faulted in
        # now plus what the system can still give.
        if nbytes + BLOCK_HEADER > stats["resident_bytes"] + spare:
            raise PayloadTooLargeError(
                f"{size} does not fit in memory: {facts.describe()}, and {held} "
                f"({format_size(stats['used_bytes'])} of it in use by other payloads)"
            )
        if nbytes + BLOCK_HEADER > self.capacity - _HEAP_START:
            raise PayloadTooLargeError(
                f"{size} can never fit in this arena: it reserves "
                f"{format_size(self.capacity)} of address space (open_arena's max_size)"
            )
        try:
            return tuple(self._native.alloc(nbytes, wait, spare))  # type: ignore[return-value]
        except ArenaFullError as exc:
            stats = self.stats()
            limit = (
                f"it reached its max_size of {format_size(self.capacity)}"
                if stats["heap_bytes"] + _HEAP_START + nbytes > self.capacity
                else f"the system has {memory_facts().describe()}"
            )
            reason = f" ({exc})" if "no memory left" in str(exc) else ""
            raise ArenaFullError(
                f"no room for {size} after waiting {wait:g} s: {held}, "
                f"{format_size(stats['used_bytes'])} of it in use by payloads in flight, and "
                f"{limit}{reason}. Fewer payloads in flight at once (a smaller max_bytes on the "
                "pipes, fewer max_workers) need less memory"
            ) from None

    def populate_floor(self) -> None:
        """Fault the floor in, while other processes may use the arena already (the pages'
        contents stay as they are; on a kernel before 5.14 nothing happens and the pages fault
        in as they are first written).

        Raises:
            OSError: The system's memory is short.
        """
        self._native.populate_floor()

    def trim(self, keep: int | None = None) -> int:
        """Give the pages of free blocks back to the system (in every process at once).

        Args:
            keep: Offset below which pages stay (default: the ``size`` the arena was opened
                with, which stays faulted in for small payloads).

        Returns:
            Bytes punched out of the shared memory (holes already there count too).
        """
        floor = self.floor if keep is None else keep
        return int(self._native.trim(floor))

    @property
    def floor(self) -> int:
        """Bytes at the start of the arena that stay faulted in (its ``size``)."""
        return int(self._native.stats()["floor_bytes"])

    @property
    def rewarmed(self) -> int:
        """Bytes faulted in past the floor since the last :meth:`trim` (0: nothing to give
        back)."""
        return int(self._native.rewarmed)

    def lease(self, offset: int, gen: int) -> Block:
        """Take over the reference that a received message carried for this process.

        Raises:
            CorruptMessageError: The handle does not name a live block of this arena.
        """
        data_offset, size, _writer = self._native.block(offset, gen)
        if self.slot == 0:
            self._native.adopt(offset, gen)  # the parent owns it now: a dead writer won't free it
        with self._lock:
            ref = self._live.get((offset, gen))
            existing = ref() if ref is not None else None
            if existing is not None and existing._alive:
                # one Block per block per process: fold the message's reference into it
                self._native.release(offset, gen)
                return existing
            block = Block(self, offset, gen, data_offset, size)
            self._live[(offset, gen)] = weakref.ref(block)
            return block

    def find(self, address: int, nbytes: int) -> Block | None:
        """The live block of this process that holds ``[address, address + nbytes)``, if any."""
        base = self.address
        if not base <= address < base + self.capacity:
            return None
        with self._lock:
            refs = list(self._live.values())
        for ref in refs:
            block = ref()
            if block is not None and block._alive:
                start = block.address
                if start <= address and address + nbytes <= start + block.size:
                    return block
        return None

    def _drop(self, block: Block) -> None:
        with self._lock:
            key = (block.offset, block.gen)
            ref = self._live.get(key)
            if ref is not None and ref() in (None, block):
                del self._live[key]
        if not self._native.closed:
            self._native.release(block.offset, block.gen)

    def reclaim(self, slot: int) -> int:
        """Forget a dead worker's slot: drop its references and its unadopted blocks.

        Call it after draining the dead worker's response ring. Returns the blocks freed.
        """
        return int(self._native.reclaim(slot))

    def check(self) -> None:
        """Verify every invariant of the allocator.

        Raises:
            TransportError: Naming the first inconsistency found.
        """
        self._native.check()

    def stats(self) -> dict[str, int]:
        """Allocator statistics: capacity, heap, used and free bytes and blocks, repairs, and
        ``cold_bytes`` (free blocks given back to the system, or never touched) and
        ``resident_bytes`` (the heap less those)."""
        stats = dict(self._native.stats())
        stats["resident_bytes"] = stats["heap_bytes"] - stats["cold_bytes"]
        return stats

    def close(self) -> None:
        """Close the arena's descriptor. The mapping stays while decoded views still use it."""
        if not self._closed:
            self._closed = True
            self._native.close()

    def __enter__(self) -> Arena:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"slot {self.slot}"
        return f"<Arena {self.capacity // _MiB} MiB, {state}, pid {os.getpid()}>"


def open_arena(
    size: int = 256 * _MiB,
    *,
    max_size: int | None = None,
    grow_step: int | None = None,
    wait: float = 5.0,
    populate: bool = True,
) -> Arena:
    """Create an arena (in the parent); use it as a context manager.

    Args:
        size: Bytes mapped and faulted in up front; they stay faulted in (the floor).
        max_size: Address space reserved for the arena: it grows up to this many bytes as
            payloads need it. Default: the machine's memory and swap (at least ``4 * size``),
            so that only the memory itself limits a payload. Reserving costs no memory.
        grow_step: Bytes added per growth at least; default ``size // 4`` (at least 1 MiB).
        wait: Seconds an allocation waits for other payloads to be released when the system's
            memory is short (backpressure) before :class:`ArenaFullError`.
        populate: Fault the floor in now. False: later, with :meth:`Arena.populate_floor`
            (a pool does it while its workers start).

    Returns:
        The arena, holding slot 0.

    Raises:
        ValueError: A size is not positive or ``max_size < size``.
    """
    if size <= 0:
        raise ValueError(f"arena size must be positive, got {size}")
    default_range = max_size is None
    max_size = reserve_size(size) if max_size is None else max_size
    if max_size < size:
        raise ValueError(f"max_size ({max_size}) must be at least size ({size})")
    grow_step = max(size // 4, _MiB) if grow_step is None else grow_step
    if grow_step <= 0:
        raise ValueError(f"grow_step must be positive, got {grow_step}")
    if wait < 0:
        raise ValueError(f"wait must be >= 0 seconds, got {wait}")
    while True:
        try:
            return Arena(native.Arena.create(max_size, size, grow_step, populate), wait)
        except OSError:
            # A limit on address space (ulimit -v) refuses a large reservation: take less.
            if not default_range or max_size // 2 < 4 * size:
                raise
            max_size //= 2
