"""Process metrics: psutil samples of the parent and of a backend's worker processes.

A sampler is driven by a loop timer (``call_later``) while a run is live: no thread, no
polling loop, nothing left running after the run.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import weakref
from collections.abc import Callable, Iterable
from typing import Any

import psutil

__all__ = ["ProcessSampler", "Ticker", "worker_pids_of"]


def worker_pids_of(backends: Iterable[Any]) -> list[int]:
    """Every worker process id the given backends report (see ``Backend.worker_pids``)."""
    pids: list[int] = []
    for backend in backends:
        try:
            pids.extend(backend.worker_pids())
        except Exception:  # a backend shutting down may not know its workers any more
            continue
    return pids


def shm_bytes_of(backends: Iterable[Any]) -> int:
    """Shared memory in use, as the backends report it (``metrics()["shm_bytes"]``)."""
    total = 0
    for backend in backends:
        try:
            total += int(backend.metrics().get("shm_bytes", 0))
        except Exception:
            continue
    return total


def _one(proc: psutil.Process) -> dict[str, Any] | None:
    try:
        with proc.oneshot():
            return {
                "pid": proc.pid,
                "rss_bytes": proc.memory_info().rss,
                "cpu_percent": proc.cpu_percent(None),
                "num_threads": proc.num_threads(),
            }
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return None


class ProcessSampler:
    """Samples RSS and CPU% of this process and of worker processes.

    CPU% is measured between consecutive samples of the same process (psutil's non-blocking
    mode), so the first sample of a process reads 0.
    """

    def __init__(self) -> None:
        self._parent = psutil.Process(os.getpid())
        self._parent.cpu_percent(None)
        self._workers: dict[int, psutil.Process] = {}
        self.samples = 0
        self.last: dict[str, Any] = {}

    def sample(
        self, worker_pids: list[int], shm_bytes: int = 0
    ) -> tuple[dict[str, Any], list[int], list[int]]:
        """Take one sample.

        Returns:
            The sample (``parent``, ``workers`` keyed by pid as a string, ``shm_bytes``,
            ``total_rss_bytes``), the worker pids seen for the first time, and those gone.
        """
        started: list[int] = []
        for pid in worker_pids:
            if pid not in self._workers:
                try:
                    proc = psutil.Process(pid)
                    proc.cpu_percent(None)
                except (psutil.NoSuchProcess, psutil.AccessDenied):
                    continue
                self._workers[pid] = proc
                started.append(pid)
        wanted = set(worker_pids)
        gone = [pid for pid in self._workers if pid not in wanted]
        workers: dict[str, Any] = {}
        for pid, proc in list(self._workers.items()):
            if pid not in wanted:
                del self._workers[pid]
                continue
            facts = _one(proc)
            if facts is None:
                del self._workers[pid]
                gone.append(pid)
            else:
                workers[str(pid)] = facts
        parent = _one(self._parent) or {"pid": self._parent.pid, "rss_bytes": 0, "cpu_percent": 0.0}
        self.samples += 1
        self.last = {
            "parent": parent,
            "workers": workers,
            "shm_bytes": shm_bytes,
            "total_rss_bytes": parent["rss_bytes"] + sum(w["rss_bytes"] for w in workers.values()),
            "samples": self.samples,
        }
        return self.last, started, gone


class Ticker:
    """Calls ``fn()`` every ``interval`` seconds on the running event loop while active.

    ``stop()`` is cheap and lazy: the pending timer is left to fire once more, finds the ticker
    inactive and ends there, so back-to-back short runs share one timer instead of creating and
    cancelling one each (a few microseconds apiece). ``fn`` is usually a method of the ticker's
    owner; it is held weakly, so owner and ticker form no reference cycle.
    """

    def __init__(self, interval: float, fn: Callable[[], None]) -> None:
        self.interval = interval
        self._fn: Callable[[], Callable[[], None] | None] = (
            weakref.WeakMethod(fn) if inspect.ismethod(fn) else (lambda: fn)
        )
        self._handle: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.active = False

    def start(self) -> None:
        """Tick from now on (no-op outside an event loop)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self.active = True
        if self._handle is not None and self._loop is loop:
            return  # the timer of an earlier run is still pending: it goes on ticking
        self._loop = loop
        self._handle = loop.call_later(self.interval, self._tick)

    def _tick(self) -> None:
        self._handle = None
        fn = self._fn()
        if not self.active or fn is None:  # stopped, or the owner is gone
            return
        try:
            fn()
        finally:
            loop = self._loop
            if self.active and loop is not None and not loop.is_closed():
                self._handle = loop.call_later(self.interval, self._tick)

    def stop(self) -> None:
        """Stop ticking: ``fn`` is not called again until :meth:`start`. Idempotent."""
        self.active = False
