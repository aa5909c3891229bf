"""Plumbing shared by the process-backend benchmarks: a warm mpipe pool on its own event loop,
the anchor pools, an ``os.pipe`` echo child, a memory sampler, and the picklable work functions.

The work functions live in ``_work.py`` (re-exported here): an importable module, so that
every anchor can ship them by reference (``ProcessPoolExecutor`` cannot send a lambda; Dask's
spawned workers import them), and a small one, since each worker that receives one imports it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import psutil
from _work import add_column as add_column
from _work import burn
from _work import identity as identity
from _work import inc as inc
from _work import scale as scale
from _work import scale_column as scale_column
from _work import summarize as summarize
from _work import total as total

from mpipe import GraphExecutor, Pipe, ProcessingGraph, SimpleProcessor


def print_now(request: Any, text: str) -> None:
    """Print ``text`` to the terminal past pytest's output capture."""
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if capture is None:
        print(text)
        return
    with capture.global_and_fixture_disabled():
        print(text)


def cores() -> int:
    """Cores this process may run on (what every pool is sized to)."""
    return len(os.sched_getaffinity(0))


def calibrate_burn(seconds: float) -> int:
    """Steps of :func:`burn` that take about ``seconds`` on this machine (best of three)."""
    n = 200_000
    best = min(_timed(burn, (1, n)) for _ in range(3))
    return max(1, int(n * seconds / best))


def _timed(fn: Callable[[Any], Any], arg: Any) -> float:
    start = time.perf_counter()
    fn(arg)
    return time.perf_counter() - start


def line_graph(
    fns: list[Callable[[Any], Any]], *, pipe_size: int = 1000, execution: str | None = None
) -> ProcessingGraph:
    """A line of processors ``s0 -> s1 -> ...``; every pipe (the entry one too) holds
    ``pipe_size`` items."""
    graph = ProcessingGraph(f"line_{len(fns)}")
    for i, fn in enumerate(fns):
        config = {} if execution is None else {"execution": execution}
        p = SimpleProcessor(fn, f"s{i}", **config)
        p.register_input_pipe("input", Pipe(f"s{i}:input", max_size=pipe_size))
        p.create_default_pipes([], ["output"])
        graph.add_processor(p)
        if i:
            graph.connect(f"s{i - 1}", "output", f"s{i}", "input", max_size=pipe_size)
    return graph


class WarmExecutor:
    """A :class:`GraphExecutor` entered once (``async with``) on a private event loop, so that
    its worker pool is started before timing and serves every round."""

    def __init__(self, graph: ProcessingGraph, **options: Any) -> None:
        self.loop = asyncio.new_event_loop()
        self.ex = GraphExecutor(graph, **options)

    def run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        """Run ``coro`` to completion on the executor's loop."""
        return self.loop.run_until_complete(coro)

    def __enter__(self) -> WarmExecutor:
        self.run(self.ex.__aenter__())
        return self

    def __exit__(self, *exc_info: object) -> None:
        try:
            self.run(self.ex.__aexit__(None, None, None))
        finally:
            self.loop.close()

    @property
    def backend(self) -> Any:
        """The process backend object (pool and arena)."""
        return self.ex._backends["process"]


@contextlib.contextmanager
def dask_client(n_workers: int) -> Iterator[Any]:
    """A Dask ``LocalCluster`` of ``n_workers`` processes with one thread each, and its client.

    The environment the cluster's nannies write into this process for their workers
    (``MALLOC_TRIM_THRESHOLD_``, one BLAS thread, ...) is taken back once they are up: every
    pool started later in the run (mpipe's, ``ProcessPoolExecutor``'s) gets its own defaults,
    as in a script that uses only that tool.
    """
    from distributed import Client, LocalCluster

    from mpipe._backends._dask import environ_kept

    with environ_kept():
        cluster = LocalCluster(  # type: ignore[no-untyped-call]
            n_workers=n_workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
        )
    with cluster, Client(cluster) as client:  # type: ignore[no-untyped-call]
        yield client


@contextlib.contextmanager
def two_cores(*pids: int) -> Iterator[bool]:
    """Run this process on one core and ``pids`` on another while inside; yields whether it
    could (two usable cores at least). Round trips between two processes depend on where the
    kernel puts them: on one core a ping-pong is two context switches (~6 us here), across two
    cores each wake-up crosses cores (~20 us here). A pool's worker spins on its own core while
    the parent works, so round trips are compared with both processes placed that way."""
    usable = sorted(os.sched_getaffinity(0))
    if len(usable) < 2:
        yield False
        return
    before = {pid: os.sched_getaffinity(pid) for pid in (0, *pids)}
    try:
        os.sched_setaffinity(0, {usable[0]})
        for pid in pids:
            os.sched_setaffinity(pid, {usable[1]})
        yield True
    finally:
        for pid, cpus in before.items():
            with contextlib.suppress(ProcessLookupError):
                os.sched_setaffinity(pid, cpus)


@contextlib.contextmanager
def echo_child() -> Iterator[tuple[int, int, int]]:
    """A forked child that echoes 32-byte messages over two pipes: ``(write_fd, read_fd, pid)``."""
    to_child_r, to_child_w = os.pipe()
    to_parent_r, to_parent_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        try:
            while m := os.read(to_child_r, 32):
                os.write(to_parent_w, m)
        finally:
            os._exit(0)
    os.close(to_child_r)
    os.close(to_parent_w)
    try:
        yield to_child_w, to_parent_r, pid
    finally:
        os.close(to_child_w)
        os.close(to_parent_r)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)


class MemorySampler:
    """Samples, in a thread, the memory of this process and all its descendants.

    ``peak_pss`` is the largest sum of proportional set sizes seen: each shared-memory page
    (the arena) counts once in all, split among the processes that map it, so the sum is the
    memory the run really holds. ``peak_rss`` sums resident sizes, counting a shared page once
    per process that touched it (an upper bound); ``peak_parent_rss`` is this process's own.
    ``base_*`` are taken before the pool starts, ``warm_pss`` when :meth:`mark_warm` is called
    (pool started, work not yet begun).
    """

    def __init__(self, interval: float = 0.005) -> None:
        self.interval = interval
        self.peak_rss = 0
        self.peak_pss = 0
        self.peak_parent_rss = 0
        self.base_parent_rss = 0
        self.base_rss = 0
        self.base_pss = 0
        self.warm_pss = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="memory-sampler", daemon=True)
        self._me = psutil.Process()

    def _sample(self) -> tuple[int, int]:
        rss = pss = 0
        for proc in [self._me, *self._me.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                info = proc.memory_full_info()
                rss += info.rss
                pss += info.pss
        return rss, pss

    def _loop(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(psutil.Error):
                self.peak_parent_rss = max(self.peak_parent_rss, self._me.memory_info().rss)
            rss, pss = self._sample()
            self.peak_rss = max(self.peak_rss, rss)
            self.peak_pss = max(self.peak_pss, pss)
            self.samples += 1
            self._stop.wait(self.interval)

    def mark_warm(self) -> None:
        """Note the memory held once the pool is started, before the measured work."""
        self.warm_pss = self._sample()[1]

    def __enter__(self) -> MemorySampler:
        self.base_rss, self.base_pss = self._sample()
        self.base_parent_rss = self._me.memory_info().rss
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()
