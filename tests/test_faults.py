"""Faults without losses: timeouts, skips, pool recovery, the thread backend's stuck threads.

Each test pins one way a fault used to cost more than the faulty firing: a timeout that counted
time queued, a skip that dropped an innocent item, a pool that stayed broken and returned empty
results, a thread backend that waited for a stuck firing. Real worker processes and threads
throughout; ordering by events, never by sleeps (the sleeps below are the work being timed).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from typing import Any

import pytest
from conftest import own_children

from mpipe import (
    ExecutionError,
    GraphExecutor,
    ProcessingGraph,
    ProcessorTimeoutError,
    SimpleProcessor,
    SkipStrategy,
    WorkerCrashedError,
)

pytestmark = pytest.mark.slow


def one(fn: Any, strategy: Any = None, **config: Any) -> ProcessingGraph:
    g = ProcessingGraph(error_strategy=strategy)
    p = SimpleProcessor(fn, "p", **config)
    p.create_default_pipes()
    g.add_processor(p)
    return g


# -- process backend: timeouts count from the firing's start --------------------------------------


def nap(x: int) -> int:
    time.sleep(0.5)
    return x


def test_a_process_timeout_does_not_count_time_spent_queued() -> None:
    """One worker, firings of 0.5 s, a 0.9 s timeout: the second firing waits 0.5 s in the
    worker's ring behind the first, which must not count against its own 0.9 s."""
    g = one(nap, execution="process", timeout=0.9)
    out = asyncio.run(GraphExecutor(g, max_workers=1).execute_stream({"p": [0, 1, 2]}))
    assert out == {"p:output": [0, 1, 2]}


def hangs_on_3(x: int) -> int:
    if x == 3:
        time.sleep(60)  # killed at its timeout
    return x * 10


def test_timeouts_skip_only_the_hung_item_run_after_run_on_one_pool() -> None:
    """Item 3 hangs past its timeout in every run of one pool: each run skips item 3 alone
    (the calls queued behind it run again, once), and the replacement workers, still
    starting when the next run sends them work, are never taken for hung ones."""
    skipped: list[list[int]] = []
    strategy = SkipStrategy(skip_callback=lambda e, pid, ctx: skipped[-1].append(ctx["item_index"]))
    g = one(hangs_on_3, strategy, execution="process", timeout=0.3)

    async def main() -> list[dict[str, list[int]]]:
        outs = []
        async with GraphExecutor(g, max_workers=2) as ex:
            for _ in range(3):
                skipped.append([])
                outs.append(await ex.execute_stream({"p": range(8)}))
        return outs

    for out in asyncio.run(main()):
        assert out == {"p:output": [0, 10, 20, 40, 50, 60, 70]}
    assert skipped == [[3], [3], [3]]
    assert not own_children()


# -- process backend: a pool that cannot start workers fails runs, never empties them -------------


def exits_on_0(x: int) -> int:
    if x == 0:
        os._exit(5)
    return x


@pytest.mark.parametrize("trim_delay", [1.0, 0.0])
def test_a_pool_that_cannot_replace_workers_fails_every_run_then_recovers(
    monkeypatch: pytest.MonkeyPatch, trim_delay: float
) -> None:
    """Item 0 kills its worker and no replacement can start: the run fails with the pool's
    error even though the strategy skips firings' failures (an empty result would hide it);
    so does the next run, which tries to start the pool afresh. Once workers can start
    again, the next run works on a fresh pool. With no delay, each run's end also asks the
    workers to trim their heaps: never through the dead worker's closed ring."""
    from mpipe._backends._process import _backend, _launch

    monkeypatch.setattr(_backend, "TRIM_DELAY", trim_delay)

    g = one(exits_on_0, SkipStrategy(), execution="process")
    real_code = _launch.WORKER_CODE

    async def main() -> None:
        async with GraphExecutor(g, max_workers=1) as ex:
            await ex.start()
            monkeypatch.setattr(_launch, "WORKER_CODE", "import sys; sys.exit(3)")
            with pytest.raises(ExecutionError) as info:
                await ex.execute_stream({"p": [0, 1, 2]})
            cause = info.value.cause
            assert isinstance(cause, WorkerCrashedError)
            assert "worker processes cannot start" in str(cause)
            with pytest.raises(WorkerCrashedError, match=r"could not start \(exit code 3\)"):
                await ex.execute_stream({"p": [1, 2]})
            monkeypatch.setattr(_launch, "WORKER_CODE", real_code)
            assert await ex.execute_stream({"p": [1, 2]}) == {"p:output": [1, 2]}

    asyncio.run(main())
    assert not own_children()


# -- thread backend: a stuck firing is abandoned, never waited for -----------------------------------


def test_a_thread_timeout_fails_at_the_deadline_and_abandons_the_thread(
    caplog: pytest.LogCaptureFixture,
) -> None:
    release = threading.Event()
    finished = threading.Event()

    def stuck(x: int) -> int:
        if x == 0:
            release.wait(30)
            finished.set()
        return x

    g = one(stuck, SkipStrategy(), execution="thread", timeout=0.3)
    ex = GraphExecutor(g, max_workers=1)
    try:
        # The only thread is abandoned with item 0: a fresh one runs items 1 and 2.
        out = asyncio.run(ex.execute_stream({"p": [0, 1, 2]}))
        assert out == {"p:output": [1, 2]}
        assert not finished.is_set()  # the run did not wait for the stuck firing
        assert "thread mpipe-thread-1 is abandoned" in caplog.text
        g.set_error_strategy("p", None)  # halt
        with pytest.raises(ExecutionError) as info:
            asyncio.run(ex.execute(0))
        assert isinstance(info.value.cause, ProcessorTimeoutError)
        assert "ran past its timeout of 0.3 s" in str(info.value.cause)
        assert not finished.is_set()
    finally:
        release.set()


_CTRL_C_SCRIPT = textwrap.dedent(
    """
    import signal, sys, threading, time
    from mpipe import GraphExecutor, create_simple_pipeline

    def slow(x):
        print("started", flush=True)
        if sys.argv[1] == "pool thread":  # where the kernel may hand the process's signal
            signal.pthread_kill(threading.get_ident(), signal.SIGINT)
        time.sleep(120)
        return x

    GraphExecutor(create_simple_pipeline([("p", slow)]), backend="thread").run(1)
    """
)


@pytest.mark.parametrize("lands_on", ["main thread", "pool thread"])
def test_ctrl_c_ends_a_thread_backend_run_without_waiting_for_the_firing(lands_on: str) -> None:
    with subprocess.Popen(
        [sys.executable, "-c", _CTRL_C_SCRIPT, lands_on],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        try:
            assert proc.stdout is not None
            assert proc.stdout.readline() == "started\n"
            if lands_on == "main thread":
                proc.send_signal(signal.SIGINT)
            # The firing sleeps for two minutes: only a run that does not wait for it ends here.
            _, err = proc.communicate(timeout=30)
        finally:
            proc.kill()
    assert proc.returncode != 0
    assert "KeyboardInterrupt" in err


# -- what a failure report says ---------------------------------------------------------------------


def unserializable_at_150(x: int) -> Any:
    if x == 150:
        return {"gen": (i for i in range(3))}  # cannot leave the worker
    return x


def test_a_batched_firing_that_fails_is_named_by_its_index_in_the_stream() -> None:
    """Tiny firings travel in batches; one whose output cannot be sent back is named by its
    place in the processor's stream, not by its place in the batch."""
    failed: list[tuple[int, BaseException]] = []
    strategy = SkipStrategy(skip_callback=lambda e, pid, ctx: failed.append((ctx["item_index"], e)))
    g = one(unserializable_at_150, strategy, execution="process")
    out = asyncio.run(GraphExecutor(g, max_workers=1).execute_stream({"p": range(200)}))
    assert out == {"p:output": [x for x in range(200) if x != 150]}
    [(index, error)] = failed
    assert index == 150
    assert "the output of item 150 cannot be serialized" in str(error)


def hungry(x: int) -> int:
    if x == 1:
        raise MemoryError
    return x


def test_a_memory_error_in_a_worker_says_where() -> None:
    g = one(hungry, execution="process")
    with pytest.raises(ExecutionError) as info:
        asyncio.run(GraphExecutor(g, max_workers=1).execute_stream({"p": [0, 1, 2]}))
    message = str(info.value)
    assert message.startswith(
        "processor 'p' failed: MemoryError (out of memory) (item 1, in worker-"
    )
    assert info.value.item_index == 1
