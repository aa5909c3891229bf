"""Real data with the process backend's defaults: payloads of any size that fits in memory, a
clear error for one that does not (from the parent or from a worker), memory given back after
a run, and a default worker count that works on any host."""

from __future__ import annotations

import asyncio
import gc
import os
from collections.abc import Iterator
from typing import Any

import numpy as np
import psutil
import pyarrow as pa
import pytest
from conftest import worker_fds

from mpipe import (
    ConfigurationError,
    ExecutionError,
    GraphExecutor,
    PayloadTooLargeError,
    ProcessingGraph,
    SimpleProcessor,
)
from mpipe._backends._process import _backend

MiB = 1 << 20


def identity(x: Any) -> Any:
    return x


def process_graph(fn: Any) -> ProcessingGraph:
    g = ProcessingGraph()
    p = SimpleProcessor(fn, "p", execution="process")
    p.create_default_pipes()
    g.add_processor(p)
    return g


def rss_shmem() -> int:
    """Bytes of shared memory mapped and resident in this process."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("RssShmem:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no RssShmem in /proc/self/status")


@pytest.fixture
def no_fd_leak() -> Iterator[None]:
    before = worker_fds()
    yield
    gc.collect()
    assert worker_fds() <= before, "file descriptors leaked"


@pytest.mark.slow
def test_payloads_past_the_arena_size_pass_with_the_defaults(
    monkeypatch: pytest.MonkeyPatch, no_fd_leak: None
) -> None:
    # 300 MiB each, with the default arena_size of 64 MiB: a numpy array, an Arrow table and a
    # pickled object whose buffers travel out of band.
    monkeypatch.setattr(_backend, "TRIM_DELAY", 0.0)  # give memory back as soon as a run ends
    n = 300 * MiB // 8
    array = np.arange(n, dtype=np.float64)
    table = pa.table({"x": pa.array(array)})
    nested = {"name": "big", "data": array}
    shm_start = rss_shmem()

    async def main() -> None:
        async with GraphExecutor(process_graph(identity), backend="process", max_workers=1) as ex:
            out = (await ex.execute({"p": array}))["p:output"]
            assert out.shape == (n,) and out[0] == 0 and out[-1] == n - 1
            assert float(out[:: 1 << 20].sum()) == float(array[:: 1 << 20].sum())
            del out
            out_table = (await ex.execute({"p": table}))["p:output"]
            assert out_table.num_rows == n and out_table.column("x")[n - 1].as_py() == n - 1
            del out_table
            out_nested = (await ex.execute({"p": nested}))["p:output"]
            assert out_nested["name"] == "big" and out_nested["data"][12345] == 12345
            del out_nested
            gc.collect()
            arena = ex._backends["process"]._arena  # type: ignore[attr-defined]
            stats = arena.stats()
            assert stats["heap_bytes"] >= 300 * MiB  # it grew to what the payloads needed
            arena.trim()  # what the last run's result held is free now: the idle trim's work
            stats = arena.stats()
            # Given back: the arena's resident memory is down to its floor and the rings.
            assert stats["resident_bytes"] <= 64 * MiB + 4 * MiB, stats
            assert rss_shmem() - shm_start <= 64 * MiB + 4 * MiB

    asyncio.run(main())
    gc.collect()
    assert rss_shmem() - shm_start < 4 * MiB  # the pool closed: the shared memory is gone


@pytest.mark.slow
def test_a_run_ending_gives_back_what_the_arena_grew_by(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_backend, "TRIM_DELAY", 0.0)

    async def main() -> None:
        graph = process_graph(lambda a: float(a.sum()))
        async with GraphExecutor(graph, backend="process", max_workers=1, arena_size=8 * MiB) as ex:
            value = await ex.execute({"p": np.ones(12 * MiB, dtype=np.uint8)})
            assert value == {"p:output": 12.0 * MiB}
            arena = ex._backends["process"]._arena  # type: ignore[attr-defined]
            stats = arena.stats()
            assert stats["heap_bytes"] >= 12 * MiB  # it grew past its 8 MiB for the payload
            assert stats["resident_bytes"] <= 8 * MiB, stats  # and gave the growth back
            assert arena.rewarmed == 0

    asyncio.run(main())


def _resident_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _churn(_: int) -> tuple[int, int, int]:
    """48 MiB in 1 MiB blocks, written and freed (what numpy temporaries do): the worker's pid,
    its resident bytes with the blocks, and after freeing them."""
    blocks = [bytearray(MiB) for _ in range(48)]
    held = _resident_bytes()
    del blocks
    return os.getpid(), held, _resident_bytes()


def test_workers_keep_freed_heap_memory_while_working_and_give_it_back_when_idle(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_backend, "TRIM_DELAY", 0.0)
    for name in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_"):
        monkeypatch.delenv(name, raising=False)

    async def main() -> None:
        async with GraphExecutor(process_graph(_churn), backend="process", max_workers=1) as ex:
            pid, held, kept = (await ex.execute({"p": 0}))["p:output"]
            assert held - kept < 8 * MiB  # kept by the worker's heap for its next call
            # The run ended: the pool asks its idle workers to give that memory back.
            for _ in range(100):
                if psutil.Process(pid).memory_info().rss < kept - 32 * MiB:
                    break
                await asyncio.sleep(0.05)
            assert psutil.Process(pid).memory_info().rss < kept - 32 * MiB

    asyncio.run(main())


@pytest.mark.slow
def test_arena_size_is_only_the_memory_kept_faulted_in(monkeypatch: pytest.MonkeyPatch) -> None:
    # A payload four times the arena: it grows as needed, no option to raise.
    monkeypatch.setattr(_backend, "TRIM_DELAY", 3600.0)  # never within the test
    graph = process_graph(lambda a: a[::-1].copy())
    data = np.arange(8 * MiB // 8, dtype=np.int64)
    ex = GraphExecutor(graph, backend="process", max_workers=1, arena_size=2 * MiB)
    out = ex.run({"p": data})["p:output"]
    assert np.array_equal(out, data[::-1])


def too_big() -> np.ndarray:
    """An array that cannot fit in this machine's memory (a view that costs nothing)."""
    total = psutil.virtual_memory().total + psutil.swap_memory().total
    return np.broadcast_to(np.uint8(7), (4 * total,))


@pytest.mark.slow
def test_a_worker_out_of_memory_fails_the_run_with_the_reason_and_survives() -> None:
    def maybe_huge(x: Any) -> Any:
        return too_big() if x == "huge" else x + 1

    async def main() -> None:
        async with GraphExecutor(process_graph(maybe_huge), backend="process", max_workers=1) as ex:
            with pytest.raises(ExecutionError) as info:
                await ex.execute({"p": "huge"})
            cause = info.value.cause
            assert isinstance(cause, PayloadTooLargeError), repr(cause)
            text = str(cause)
            assert f"({too_big().nbytes} bytes) does not fit in memory" in text
            assert "available" in text
            assert info.value.failed_processors == ["p"]
            pids = ex._backends["process"].worker_pids()
            # The worker did not die: the next run uses it.
            assert await ex.execute({"p": 1}) == {"p:output": 2}
            assert ex._backends["process"].worker_pids() == pids

    asyncio.run(main())


@pytest.mark.slow
def test_an_input_too_big_for_memory_fails_the_run_in_the_parent() -> None:
    g = ProcessingGraph()
    src = SimpleProcessor(lambda _: too_big(), "src")
    src.create_default_pipes()
    use = SimpleProcessor(lambda a: a.shape, "use", execution="process")
    use.create_default_pipes()
    g.add_processor(src)
    g.add_processor(use)
    g.connect("src", "output", "use", "input")
    with pytest.raises(ExecutionError) as info:
        GraphExecutor(g, max_workers=1).run({"src": 1})
    assert isinstance(info.value.cause, PayloadTooLargeError)
    assert "does not fit in memory" in str(info.value.cause)
    assert info.value.failed_processors == ["use"]


def test_a_pool_told_of_its_first_input_faults_that_much_in_as_it_starts() -> None:
    async def main() -> dict[str, int]:
        backend = _backend.ProcessBackend(1, arena_size=8 * MiB)
        backend.expect(40 * MiB)
        await backend.start()
        try:
            backend.expect(400 * MiB)  # a pool that runs already does not take it
            assert backend._expected == 0
            stats: dict[str, int] = backend._arena.stats()
            return stats
        finally:
            await backend.close()

    stats = asyncio.run(main())
    # The heap grew past its 8 MiB floor to hold 40 MiB, faulted in, and free for the payloads
    # (what is in use is the worker's rings).
    assert stats["resident_bytes"] >= 40 * MiB, stats
    assert stats["used_bytes"] < MiB, stats


def test_a_run_that_starts_its_pool_announces_its_batch_input(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    told: list[int] = []
    monkeypatch.setattr(_backend.ProcessBackend, "expect", lambda self, n: told.append(n))
    data = np.ones(5 * MiB, dtype=np.uint8)

    async def main() -> None:
        async with GraphExecutor(process_graph(identity), backend="process", max_workers=1) as ex:
            await ex.execute({"p": data})  # starts the pool: told first
            await ex.execute({"p": data})  # the pool runs already: nothing to tell
        async with GraphExecutor(process_graph(identity), backend="process", max_workers=1) as ex:
            await ex.execute_stream({"p": [data]})  # a stream's items are not known ahead
        async with GraphExecutor(process_graph(identity), backend="process", max_workers=1) as ex:
            await ex.execute({"p": {"rows": list(range(1000))}})  # no bytes sent as they are

    asyncio.run(main())
    assert told == [5 * MiB]


def test_a_run_that_fails_after_its_pool_grew_ahead_gives_the_growth_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from mpipe._engine import _executor

    monkeypatch.setattr(_backend, "TRIM_DELAY", 0.0)

    def fails(*_: Any) -> Any:
        raise RuntimeError("the run could not be prepared")

    monkeypatch.setattr(_executor, "prepare_run", fails)

    async def main() -> dict[str, int]:
        graph = process_graph(identity)
        async with GraphExecutor(graph, backend="process", max_workers=1, arena_size=8 * MiB) as ex:
            with pytest.raises(RuntimeError, match="could not be prepared"):
                await ex.execute({"p": np.ones(40 * MiB, dtype=np.uint8)})
            stats: dict[str, int] = ex._backends["process"]._arena.stats()  # type: ignore[attr-defined]
            return stats

    stats = asyncio.run(main())
    assert stats["heap_bytes"] >= 40 * MiB  # the pool grew ahead for the input
    assert stats["resident_bytes"] <= 8 * MiB, stats  # and gave it back: no run followed


def test_an_input_too_big_for_memory_announced_still_fails_the_run_by_name() -> None:
    # The pool cannot fault it in ahead (no error there); the run fails as it would anyway.
    with pytest.raises(ExecutionError) as info:
        GraphExecutor(process_graph(identity), backend="process", max_workers=1).run(
            {"p": too_big()}
        )
    assert isinstance(info.value.cause, PayloadTooLargeError)
    assert "does not fit in memory" in str(info.value.cause)


def test_the_default_worker_count_works_on_a_128_core_host(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(128)))
    ex = GraphExecutor(process_graph(identity), backend="process")
    assert ex.max_workers == 128
    assert ex._backend_for("process").max_workers == _backend.MAX_WORKERS == 63
    assert ex._backend_for("thread").max_workers == 128  # threads have no such limit
    chosen = GraphExecutor(process_graph(identity), backend="process", max_workers=64)
    with pytest.raises(ConfigurationError, match=r"max_workers=64 is more than a process pool"):
        chosen.run({"p": 1})


def test_an_arena_size_beyond_the_free_memory_is_refused_by_name() -> None:
    size = 4 * psutil.virtual_memory().total
    ex = GraphExecutor(process_graph(identity), backend="process", arena_size=size)
    with pytest.raises(ConfigurationError, match=rf"arena_size={size} .* more memory") as info:
        ex.run({"p": 1})
    assert info.value.field == "arena_size"  # type: ignore[attr-defined]
