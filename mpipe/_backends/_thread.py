"""The thread backend: sync firings run in a pool of threads, so blocking calls do not stall the loop.

Python cannot stop a thread, so the pool is the backend's own rather than a
``ThreadPoolExecutor`` (whose shutdown waits for every running call):

- a firing with a timeout is timed from the moment its thread starts it (the thread tells the
  loop); at the deadline the firing fails with :class:`ProcessorTimeoutError` at once, its
  thread is *abandoned* (left to finish on its own, its result dropped, logged as a warning)
  and a new thread takes its place, so the pool keeps ``max_workers`` threads that can work;
- closing the pool waits at most ``EXIT_GRACE`` seconds: idle threads exit at once, a thread
  still busy with a firing whose run has ended is left to exit when that firing returns (and
  logged). Threads are daemons, so a stuck one does not keep the interpreter alive either:
  Ctrl-C ends a script within about a second;
- the kernel may hand a signal sent to the process (Ctrl-C's ``SIGINT``) to a pool thread
  rather than the main one; Python then runs its handler in the main thread only once that
  wakes, and an event loop asleep in ``select`` would not wake before the firing returned.
  While threads run firings the loop wakes every ``SIGNAL_CHECK`` seconds, which bounds that
  wait. (Blocking the signals in the pool's threads would pass the block on to every process
  a firing starts.)
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from .._errors import ProcessorTimeoutError
from ._base import END, Backend, FiringSlot

__all__ = ["ThreadBackend"]

_log = logging.getLogger("mpipe")

#: Seconds a closing pool waits for its threads to exit before it leaves the busy ones.
EXIT_GRACE = 1.0

#: Seconds between the event loop's wake-ups while the pool's threads run firings.
SIGNAL_CHECK = 0.25


def _next(stream: Any) -> Any:
    # StopIteration cannot cross a future, so the end of the stream travels as END.
    return next(stream, END)


class _Job:
    """One call waiting for, or running in, a thread."""

    __slots__ = ("arg", "fn", "future", "slot", "thread", "timer")

    def __init__(
        self, fn: Callable[[Any], Any], arg: Any, slot: FiringSlot, future: asyncio.Future[Any]
    ) -> None:
        self.fn = fn
        self.arg = arg
        self.slot = slot
        self.future = future
        self.thread: _Thread | None = None
        self.timer: asyncio.TimerHandle | None = None


class _Jobs:
    """The calls waiting for a thread, shared by the threads of one start of the pool, and how
    many of those threads wait for a call (so that a call is never left queued while every
    thread is busy or abandoned: its submitter starts a thread instead)."""

    __slots__ = ("cond", "idle", "items")

    def __init__(self) -> None:
        self.cond = threading.Condition(threading.Lock())
        self.items: deque[_Job | None] = deque()
        self.idle = 0  # threads waiting, not yet woken for a call

    def put(self, job: _Job | None) -> bool:
        """Queue ``job`` (None: one thread exits); False when no thread is free to take it."""
        with self.cond:
            self.items.append(job)
            if not self.idle:
                return False
            self.idle -= 1
            self.cond.notify()
            return True

    def get(self) -> _Job | None:
        with self.cond:
            while not self.items:
                self.idle += 1
                self.cond.wait()
            return self.items.popleft()

    def waiting(self) -> bool:
        """Whether calls wait that no free thread will take."""
        with self.cond:
            return len(self.items) > self.idle

    def clear(self) -> list[_Job | None]:
        with self.cond:
            items = list(self.items)
            self.items.clear()
            return items


class _Thread:
    """One thread of the pool; ``abandoned`` once a firing it runs is past its timeout."""

    __slots__ = ("abandoned", "gone", "handle", "name", "since")

    def __init__(self, name: str) -> None:
        self.name = name
        self.abandoned = False
        self.gone = False  # its exit was seen on the loop
        self.since = 0.0
        self.handle: threading.Thread | None = None


class ThreadBackend(Backend):
    """A pool of ``max_workers`` threads. Async functions still run on the event loop."""

    name = "thread"
    enforces_timeout = True

    def __init__(self, max_workers: int) -> None:
        super().__init__(max_workers)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._jobs: _Jobs | None = None
        self._threads: set[_Thread] = set()  # the threads that take work
        self._abandoned: set[_Thread] = set()  # still running a firing past its timeout
        self._names = itertools.count(1)
        self._closing: set[_Thread] = set()  # threads told to exit, not gone yet
        self._all_gone: asyncio.Future[None] | None = None
        self._signal_check: asyncio.TimerHandle | None = None

    async def start(self) -> None:
        if self.started:
            return
        self._loop = asyncio.get_running_loop()
        self._jobs = _Jobs()
        await super().start()

    async def close(self) -> None:
        if not self.started:
            return
        self.started = False
        if self._signal_check is not None:
            self._signal_check.cancel()
            self._signal_check = None
        jobs, self._jobs = self._jobs, None
        assert jobs is not None
        # Calls that never started are dropped (their run has ended); every thread exits once
        # its current call returns.
        for job in jobs.clear():
            if job is not None:
                job.future.cancel()
        closing = list(self._threads)
        for _ in closing:
            jobs.put(None)
        self._threads = set()
        self._closing = {t for t in closing if not t.gone}
        if self._closing:
            assert self._loop is not None
            self._all_gone = self._loop.create_future()
            await asyncio.wait({self._all_gone}, timeout=EXIT_GRACE)
            if self._closing:
                _log.warning(
                    "thread backend closed with %d thread(s) still busy with a firing of an "
                    "ended run (%s); they exit when it returns",
                    len(self._closing),
                    ", ".join(sorted(t.name for t in self._closing)),
                )
            self._all_gone = None
        for t in closing:
            if t.gone and t.handle is not None:
                t.handle.join(EXIT_GRACE)  # it said goodbye: a matter of microseconds
        if self._abandoned:  # each was reported when its firing timed out
            _log.info(
                "thread backend closed with %d abandoned thread(s) still running a timed-out "
                "firing (%s); they finish on their own",
                len(self._abandoned),
                ", ".join(sorted(t.name for t in self._abandoned)),
            )

    def _queue(self) -> _Jobs:
        if self._jobs is None:
            raise RuntimeError("the thread backend is not started (or was closed): start() it")
        return self._jobs

    # -- running calls ------------------------------------------------------------------------

    def _run(self, fn: Callable[[Any], Any], arg: Any, slot: FiringSlot) -> asyncio.Future[Any]:
        jobs = self._queue()
        assert self._loop is not None
        job = _Job(fn, arg, slot, self._loop.create_future())
        if not jobs.put(job) and len(self._threads) < self.max_workers:
            self._spawn(jobs)
        if self._signal_check is None:
            self._signal_check = self._loop.call_later(SIGNAL_CHECK, self._check_signals)
        return job.future

    def _check_signals(self) -> None:
        """On the loop, woken only so that Python runs the handlers of signals that landed on
        a pool thread; again while threads run firings (those not waiting for a call)."""
        jobs = self._jobs
        busy = jobs is not None and (jobs.idle < len(self._threads) or jobs.waiting())
        if busy or self._abandoned:
            assert self._loop is not None
            self._signal_check = self._loop.call_later(SIGNAL_CHECK, self._check_signals)
        else:
            self._signal_check = None

    def _spawn(self, jobs: _Jobs) -> None:
        me = _Thread(f"mpipe-thread-{next(self._names)}")
        self._threads.add(me)
        me.handle = threading.Thread(
            target=self._serve, args=(me, jobs, self._loop), name=me.name, daemon=True
        )
        me.handle.start()

    def _serve(
        self,
        me: _Thread,
        jobs: _Jobs,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        """A thread's life: run calls until the pool closes or abandons this thread."""
        try:
            self._work(me, jobs, loop)
        finally:
            with contextlib.suppress(RuntimeError):  # RuntimeError: the event loop is closed
                loop.call_soon_threadsafe(self._gone, me)

    def _gone(self, thread: _Thread) -> None:
        """On the loop: ``thread`` has exited (or is about to return)."""
        thread.gone = True
        self._closing.discard(thread)
        waiter = self._all_gone
        if waiter is not None and not self._closing and not waiter.done():
            waiter.set_result(None)

    def _work(
        self,
        me: _Thread,
        jobs: _Jobs,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        while True:
            job = jobs.get()
            if job is None:
                return
            if job.future.done():  # cancelled while it waited: its run has ended
                continue
            job.thread = me
            slot = job.slot
            slot.worker = me.name
            try:
                if slot.timeout is not None:
                    me.since = time.monotonic()
                    loop.call_soon_threadsafe(self._started, job, me.since)
                error: BaseException | None = None
                # Timed in the thread: the wait for a free thread is not run time. A generator
                # runs later, item by item: its firing is timed by the caller.
                start = time.perf_counter()
                try:
                    value = job.fn(job.arg)
                except StopIteration:  # cannot cross a future
                    value, error = None, RuntimeError("a firing raised StopIteration")
                except BaseException as exc:  # handed to the caller as it is
                    value, error = None, exc
                end = time.perf_counter()
                if slot is not _ADVANCE and (error is not None or not inspect.isgenerator(value)):
                    slot.ran = (start, start, end, end - start)
                loop.call_soon_threadsafe(self._done, job, value, error)
            except RuntimeError:  # the event loop is closed: nobody waits for the answer
                return
            finally:
                del job
            if me.abandoned:
                return

    def _started(self, job: _Job, since: float) -> None:
        """On the loop: a timed call started at ``since`` (monotonic, as ``loop.time()``)."""
        if job.future.done() or job.slot.timeout is None:
            return
        assert self._loop is not None
        job.timer = self._loop.call_at(since + job.slot.timeout, self._on_timeout, job)

    def _done(self, job: _Job, value: Any, error: BaseException | None) -> None:
        """On the loop: a call returned (perhaps long after its timeout)."""
        if job.timer is not None:
            job.timer.cancel()
        thread = job.thread
        if thread is not None and thread.abandoned:
            self._abandoned.discard(thread)
            _log.info(
                "abandoned thread %s returned %.1f s after it started a firing of %r",
                thread.name,
                time.monotonic() - thread.since,
                job.slot.processor_id,
            )
        future = job.future
        if future.done():
            return
        if error is None:
            future.set_result(value)
        else:
            future.set_exception(error)

    def _on_timeout(self, job: _Job) -> None:
        """On the loop: a call ran past its timeout. Fail it now, abandon its thread (a thread
        cannot be stopped) and start another in its place."""
        if job.future.done():
            return
        thread = job.thread
        assert thread is not None
        slot = job.slot
        thread.abandoned = True
        self._threads.discard(thread)
        self._abandoned.add(thread)
        _log.warning(
            "processor %r: firing %d ran past its timeout of %s s; thread %s is abandoned "
            "(Python cannot stop a thread) and another takes its place",
            slot.processor_id,
            slot.index,
            slot.timeout,
            thread.name,
        )
        job.future.set_exception(
            ProcessorTimeoutError(
                f"processor {slot.processor_id!r}: firing {slot.index} ran past its timeout of "
                f"{slot.timeout} s in thread {thread.name}; the thread was abandoned and "
                "replaced",
                slot.processor_id,
            )
        )
        jobs = self._jobs
        if jobs is not None and jobs.waiting() and len(self._threads) < self.max_workers:
            self._spawn(jobs)

    # -- the backend interface -----------------------------------------------------------------

    def submit(self, fn: Callable[[Any], Any], arg: Any, slot: FiringSlot) -> Any:
        return self._run(fn, arg, slot)

    def advance(self, stream: Any) -> Any:
        if hasattr(stream, "__anext__"):
            return super().advance(stream)
        return self._run(_next, stream, _ADVANCE)

    def concurrency(self, stateful: bool) -> int:
        return 1 if stateful else self.max_workers

    def metrics(self) -> dict[str, Any]:
        out = super().metrics()
        out["threads"] = len(self._threads)
        out["abandoned_threads"] = sorted(t.name for t in self._abandoned)
        return out


#: The slot of a generator's next item (not a firing of its own: never timed).
_ADVANCE = FiringSlot("")
