"""The backend interface: where a firing runs.

The scheduler hands each firing to a backend as ``submit(fn, arg, firing)`` and gets back either
the result itself (the firing ran already) or an awaitable of it; a backend with ``replies``
returns None for a firing whose slot has ``on_reply`` set and answers through that instead.
Generators returned by a firing are advanced one item at a time through ``advance(stream)``,
which returns the next item, :data:`END`, or an awaitable of either. A backend knows nothing of graphs or pipes; what a
remote engine needs to know of a processor it gets through ``wrap`` and ``fetcher``.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

__all__ = ["END", "Backend", "FiringSlot", "Stream", "usable_cores"]


def usable_cores() -> int:
    """Cores this process may run on (respects CPU affinity)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


class _End:
    def __repr__(self) -> str:
        return "END"


#: Returned by ``advance`` when a stream has no more items.
END: Any = _End()


class FiringSlot:
    """One firing as a backend sees it: whose it is, its limits, and (set by the backend) which
    worker ran it and when.

    ``ran``: set by a backend that times firings where they run (a worker process, a thread),
    before it answers: ``(picked, start, end, busy)``, ``time.perf_counter()`` values of when
    the worker took the firing up, when the call began and ended, and the seconds it spent
    running it (for a generator, the time spent inside it). None: the backend does not tell,
    and the caller times the firing from submission to answer.

    ``on_reply``: when the caller sets it and the backend has ``replies`` True, ``submit``
    returns None and the backend answers by calling ``on_reply(slot, value, error)`` on the
    event-loop thread as soon as the outcome is known (``error`` None on success). It saves
    the caller an awaitable and an event-loop turn per firing. The backend clears it before
    the call, so it is called at most once, and never from inside ``submit`` (the answer comes
    on a later turn of the loop). A caller that no longer wants the answer clears
    ``on_reply``: the backend then drops the answer and does not run the firing again (after
    a worker crash, say).
    """

    __slots__ = ("index", "on_reply", "processor_id", "ran", "timeout", "worker")

    def __init__(
        self, processor_id: str = "", index: int = -1, timeout: float | None = None
    ) -> None:
        self.processor_id = processor_id
        self.index = index
        self.timeout = timeout
        self.worker = "main"
        self.ran: tuple[float, float, float, float] | None = None
        self.on_reply: Callable[[FiringSlot, Any, BaseException | None], None] | None = None


class Stream:
    """Base of the generator handles a backend returns for generators that run elsewhere (a
    worker process); the scheduler drains them through ``advance`` like local generators."""

    __slots__ = ()


async def _anext_or_end(stream: Any) -> Any:
    try:
        return await stream.__anext__()
    except StopAsyncIteration:
        return END


class Backend(ABC):
    """One way of running firings.

    Args:
        max_workers: Workers (threads, processes) the backend may use.
    """

    name = "backend"
    #: Whether the backend enforces ``slot.timeout`` itself (the scheduler does otherwise).
    enforces_timeout = False
    #: Whether ``submit_batch`` is worth using for tiny firings (one message for many items).
    batches = False
    #: Whether ``submit`` answers through ``slot.on_reply`` when it is set (see FiringSlot).
    replies = False
    #: Set while the backend cannot run firings at all (a pool that cannot start workers):
    #: the error every firing gets. ``start`` then starts it afresh (the executor calls it
    #: before each run).
    broken: BaseException | None = None

    def __init__(self, max_workers: int) -> None:
        self.max_workers = max_workers
        self.started = False

    async def start(self) -> None:
        """Acquire what the backend needs (pools, workers). Idempotent."""
        self.started = True

    async def close(self) -> None:
        """Release everything the backend holds. Idempotent."""
        self.started = False

    @abstractmethod
    def submit(self, fn: Callable[[Any], Any], arg: Any, slot: FiringSlot) -> Any:
        """Run ``fn(arg)``; return its result or an awaitable of it (None when the backend
        answers through ``slot.on_reply``, see :class:`FiringSlot`)."""

    def submit_batch(self, fn: Callable[[Any], Any], args: list[Any], slot: FiringSlot) -> Any:
        """Run ``fn`` on each of ``args``; an awaitable of ``(values, kinds, seconds)``: one value
        per firing, ``kinds`` None when every firing gave a plain value, else one per firing:
        1 a value, 2 a list of items (a generator drained), 0 an exception (the value).
        Only called when ``batches`` is True."""
        raise TypeError(f"the {self.name} backend does not run batches")

    def advance(self, stream: Any) -> Any:
        """The next item of a generator a firing returned, :data:`END`, or an awaitable of them."""
        if hasattr(stream, "__anext__"):
            return _anext_or_end(stream)
        return next(stream, END)

    def wrap(
        self, fn: Callable[[Any], Any], outputs: tuple[str, ...], sink: bool
    ) -> Callable[[Any], Any]:
        """What a firing of a processor placed here calls, made once per plan: ``fn`` itself,
        unless the backend needs to know more of the processor (its ``outputs`` pipe names,
        whether it is a ``sink`` whose values come home)."""
        return fn

    def fetcher(self) -> Callable[[Any], Awaitable[Any]] | None:
        """None, or ``fetch`` when this backend's results are references to values held
        elsewhere: a processor placed on another backend awaits ``fetch(arg)`` for the values
        before each firing that takes them."""
        return None

    def release(self, stream: Any) -> None:
        """The caller no longer wants the rest of ``stream`` (a generator a firing returned):
        let go of what the backend holds for it. Local generators need nothing."""
        del stream

    def expect(self, nbytes: int) -> None:
        """Before :meth:`start`: the first run brings ``nbytes`` of input payloads for this
        backend's processors; it may prepare memory for them while it starts. Nothing by
        default."""
        del nbytes

    def preload(self, fns: Sequence[Callable[[Any], Any]]) -> None:
        """The backend just started and will run ``fns``: it may get them ready ahead of their
        first calls (worker processes load them, imports included). Nothing by default."""
        del fns

    def idle(self) -> None:
        """A run that used the backend ended and the backend stays started (the executor
        outlives the run): it may give back what it kept for speed. Nothing by default."""
        return

    def check_callable(self, fn: Callable[[Any], Any], processor_id: str) -> None:
        """Raise a clear error now if ``fn`` cannot run on this backend (before a run starts)."""
        if not callable(fn):
            raise TypeError(f"processor {processor_id!r}: {fn!r} is not callable")

    def concurrency(self, stateful: bool) -> int:
        """Firings of one processor in flight at once, unless the processor says otherwise."""
        return 1

    def metrics(self) -> dict[str, Any]:
        """JSON-compatible facts about the backend's workers."""
        return {"backend": self.name, "max_workers": self.max_workers, "started": self.started}

    def worker_pids(self) -> list[int]:
        """Process ids of worker processes (empty for in-process backends), for psutil sampling."""
        return []
