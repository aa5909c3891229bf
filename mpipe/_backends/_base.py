"""The backend interface: where a firing runs.

The scheduler hands each firing to a backend as ``submit(fn, arg, firing)`` and gets back either
the result itself (the firing ran already) or an awaitable of it. Generators returned by a firing
are advanced one item at a time through ``advance(stream)``, which returns the next item,
:data:`END`, or an awaitable of either. A backend knows nothing of graphs or pipes.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

__all__ = ["END", "Backend", "FiringSlot"]


class _End:
    def __repr__(self) -> str:
        return "END"


#: Returned by ``advance`` when a stream has no more items.
END: Any = _End()


class FiringSlot:
    """What a backend may tell the scheduler about one firing (which worker ran it)."""

    __slots__ = ("worker",)

    def __init__(self) -> None:
        self.worker = "main"


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
        """Run ``fn(arg)``; return its result or an awaitable of it."""

    def advance(self, stream: Any) -> Any:
        """The next item of a generator a firing returned, :data:`END`, or an awaitable of them."""
        if hasattr(stream, "__anext__"):
            return _anext_or_end(stream)
        return next(stream, END)

    def concurrency(self, stateful: bool) -> int:
        """Firings of one processor in flight at once, unless the processor says otherwise."""
        return 1

    def metrics(self) -> dict[str, Any]:
        """JSON-compatible facts about the backend's workers."""
        return {"backend": self.name, "max_workers": self.max_workers, "started": self.started}

    def worker_pids(self) -> list[int]:
        """Process ids of worker processes (empty for in-process backends), for psutil sampling."""
        return []
