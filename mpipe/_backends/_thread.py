"""The thread backend: sync firings run in a thread pool, so blocking calls do not stall the loop."""

from __future__ import annotations

import asyncio
import inspect
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ._base import END, Backend, FiringSlot


def _call(fn: Callable[[Any], Any], arg: Any, slot: FiringSlot) -> Any:
    slot.worker = threading.current_thread().name
    # Timed in the thread: the wait for a free thread is not run time. A generator runs later,
    # item by item: its firing is timed by the caller.
    start = time.perf_counter()
    try:
        result = fn(arg)
    except BaseException:
        end = time.perf_counter()
        slot.ran = (start, start, end, end - start)
        raise
    end = time.perf_counter()
    if not inspect.isgenerator(result):
        slot.ran = (start, start, end, end - start)
    return result


def _next(stream: Any) -> Any:
    # StopIteration cannot cross a future, so the end of the stream travels as END.
    return next(stream, END)


class ThreadBackend(Backend):
    """A pool of ``max_workers`` threads. Async functions still run on the event loop."""

    name = "thread"

    def __init__(self, max_workers: int) -> None:
        super().__init__(max_workers)
        self._pool: ThreadPoolExecutor | None = None

    async def start(self) -> None:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.max_workers, thread_name_prefix="mpipe-thread")
        await super().start()

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            # Threads cannot be killed; wait for the ones still running without blocking the loop.
            await asyncio.get_running_loop().run_in_executor(None, pool.shutdown, True)
        await super().close()

    def _require_pool(self) -> ThreadPoolExecutor:
        if self._pool is None:
            raise RuntimeError("thread backend used before start()")
        return self._pool

    def submit(self, fn: Callable[[Any], Any], arg: Any, slot: FiringSlot) -> Any:
        loop = asyncio.get_running_loop()
        return loop.run_in_executor(self._require_pool(), _call, fn, arg, slot)

    def advance(self, stream: Any) -> Any:
        if hasattr(stream, "__anext__"):
            return super().advance(stream)
        return asyncio.get_running_loop().run_in_executor(self._require_pool(), _next, stream)

    def concurrency(self, stateful: bool) -> int:
        return 1 if stateful else self.max_workers
