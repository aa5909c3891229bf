"""Pipes on their own, from coroutines and from threads."""

from __future__ import annotations

import asyncio
import pickle
import threading
import tracemalloc
import uuid

import numpy as np
import pytest

from mpipe import Pipe, PipeError, PipeFactory, PipeState, PipeType


def test_fifo_and_status() -> None:
    pipe = Pipe("p", max_size=3)
    assert pipe.is_empty() and pipe.size() == 0
    for i in range(3):
        pipe.put(i)
    assert pipe.is_full() and pipe.size() == 3
    assert [pipe.get() for _ in range(3)] == [0, 1, 2]
    status = pipe.get_status()
    assert status["pipe_id"] == "p"
    assert status["items_in"] == 3 and status["items_out"] == 3
    assert status["peak_size"] == 3 and status["peak_utilization"] == 1.0
    assert status["state"] == "open"


def test_bytes_are_counted_exactly_for_buffers_and_arrays() -> None:
    pipe = Pipe(max_size=10)
    pipe.put(b"x" * 100)
    pipe.put(np.zeros(50, dtype=np.float64))
    assert pipe.get_metrics()["bytes_in"] == 100 + 400


def test_invalid_capacity() -> None:
    with pytest.raises(PipeError, match="positive integer"):
        Pipe(max_size=0)
    for bad in (0, -1, 1.5, "64MiB", True):
        with pytest.raises(PipeError, match=f"pipe max_bytes must be .* got {bad!r}"):
            Pipe(max_bytes=bad)  # type: ignore[arg-type]


def test_a_pipe_is_bounded_in_bytes_as_well_as_items() -> None:
    pipe = Pipe("p", max_size=100, max_bytes=1000)
    assert pipe.get_metrics()["max_bytes"] == 1000
    pipe.put(b"a" * 600)
    assert not pipe.is_full()
    pipe.put(b"b" * 600)  # the bound is reached: the next put waits (or times out)
    assert pipe.is_full() and pipe.size() == 2
    with pytest.raises(PipeError, match="still full"):
        pipe.put(b"c", timeout=0.01)
    metrics = pipe.get_metrics()
    assert metrics["bytes"] == 1200 and metrics["peak_bytes"] == 1200
    assert metrics["byte_utilization"] == 1.2 and metrics["utilization"] == 0.02
    assert pipe.get() == b"a" * 600
    assert not pipe.is_full() and pipe.get_metrics()["bytes"] == 600
    pipe.get()
    pipe.put(b"x" * 5000)  # larger than max_bytes: it still passes, alone
    assert pipe.is_full() and pipe.get_metrics()["peak_bytes"] == 5000
    pipe.get()
    assert pipe.get_metrics()["bytes"] == 0


def test_clear_opens_a_pipe_full_in_bytes_and_later_puts_count_afresh() -> None:
    pipe = Pipe("p", max_size=100, max_bytes=1000)
    pipe.put(b"a" * 1000)
    assert pipe.is_full()
    pipe.clear()
    assert not pipe.is_full() and pipe.get_metrics()["bytes"] == 0
    pipe.put(b"b" * 10)
    assert pipe.get() == b"b" * 10 and pipe.get_metrics()["bytes"] == 0


def test_an_unused_pipe_holds_no_queues_until_its_first_put_or_wait() -> None:
    # A graph has a few pipes per processor that its runs never fill (lanes carry the items).
    pipe = Pipe("p")
    assert pipe.is_empty() and pipe.size() == 0 and not pipe.is_full()
    pipe.clear()
    pipe.reset()
    pipe.close()
    pipe.reset()

    async def waits() -> object:
        getter = asyncio.ensure_future(pipe.aget())
        await asyncio.sleep(0)
        await pipe.aput("x")
        return await getter

    assert asyncio.run(waits()) == "x"
    assert pipe.get_metrics()["items_in"] == 1 and pipe.is_empty()


def test_pipes_take_little_memory_before_their_first_item() -> None:
    Pipe("warm-up")  # the class's own first-use allocations are not the pipes'
    tracemalloc.start()
    try:
        pipes = [Pipe(f"p{i}") for i in range(500)]
        per_pipe = tracemalloc.get_traced_memory()[0] / len(pipes)
    finally:
        tracemalloc.stop()
    assert per_pipe < 1024  # four empty deques alone took over 2 KiB


def test_byte_bound_makes_an_async_producer_wait() -> None:
    async def main() -> list[int]:
        pipe = Pipe("p", max_size=1000, max_bytes=3 * 800)
        seen: list[int] = []

        async def produce() -> None:
            for i in range(10):
                await pipe.aput(np.full(100, i, dtype=np.float64))  # 800 bytes each
                seen.append(pipe.size())
            pipe.close()

        task = asyncio.create_task(produce())
        got = []
        while True:
            try:
                got.append(int((await pipe.aget())[0]))
            except PipeError:
                break
        await task
        assert got == list(range(10))
        return seen

    assert max(asyncio.run(main())) <= 3


def test_no_bound_in_bytes_when_max_bytes_is_none() -> None:
    pipe = Pipe("p", max_size=3, max_bytes=None)
    pipe.put(b"x" * (1 << 20))
    pipe.put(b"y" * (1 << 20))
    assert not pipe.is_full()
    assert pipe.get_metrics()["max_bytes"] is None
    assert pipe.get_metrics()["byte_utilization"] == 0.0
    assert pickle.loads(pickle.dumps(pipe)).max_bytes is None
    assert pickle.loads(pickle.dumps(Pipe("q", max_bytes=77))).max_bytes == 77


def test_closed_and_drained_pipe_raises() -> None:
    pipe = Pipe("p")
    pipe.put("last")
    pipe.close()
    assert pipe.state is PipeState.CLOSED
    with pytest.raises(PipeError, match="closed"):
        pipe.put("more")
    assert pipe.get() == "last"
    with pytest.raises(PipeError, match="closed, drained"):
        pipe.get()

    async def aget() -> None:
        await pipe.aget()

    with pytest.raises(PipeError, match="closed, drained"):
        asyncio.run(aget())


def test_get_and_put_time_out() -> None:
    pipe = Pipe("p", max_size=1)
    with pytest.raises(PipeError, match="still empty after 0.01 s"):
        pipe.get(timeout=0.01)
    pipe.put(1)
    with pytest.raises(PipeError, match="still full after 0.01 s"):
        pipe.put(2, timeout=0.01)

    async def main() -> None:
        with pytest.raises(PipeError, match="still full"):
            await pipe.aput(2, timeout=0.01)
        assert await pipe.aget() == 1
        with pytest.raises(PipeError, match="still empty"):
            await pipe.aget(timeout=0.01)

    asyncio.run(main())


def test_full_pipe_blocks_a_thread_producer_until_room() -> None:
    pipe = Pipe("p", max_size=2)
    done = threading.Event()

    def producer() -> None:
        for i in range(5):
            pipe.put(i)
        done.set()

    t = threading.Thread(target=producer)
    t.start()
    got = [pipe.get(timeout=5) for _ in range(5)]
    t.join(5)
    assert got == [0, 1, 2, 3, 4]
    assert done.is_set()
    metrics = pipe.get_metrics()
    assert metrics["peak_size"] <= 2


def test_async_backpressure_between_tasks() -> None:
    pipe = Pipe("p", max_size=2)

    async def main() -> list[int]:
        async def producer() -> None:
            for i in range(20):
                await pipe.aput(i)
                assert pipe.size() <= 2
            pipe.close()

        task = asyncio.create_task(producer())
        out = []
        while True:
            try:
                out.append(await pipe.aget())
            except PipeError:
                break
            await asyncio.sleep(0)
        await task
        return out

    assert asyncio.run(main()) == list(range(20))
    assert pipe.get_metrics()["full_events"] > 0


def test_thread_put_wakes_async_getter() -> None:
    pipe = Pipe("p")

    async def main() -> object:
        loop = asyncio.get_running_loop()
        loop.call_later(0.01, lambda: threading.Thread(target=pipe.put, args=("hi",)).start())
        return await pipe.aget(timeout=5)

    assert asyncio.run(main()) == "hi"


def test_taps_see_every_item_and_errors_do_not_stop_flow(caplog: pytest.LogCaptureFixture) -> None:
    pipe = Pipe("p")
    seen: list[int] = []
    pipe.add_tap("t", seen.append)
    pipe.add_tap("bad", lambda item: 1 / 0)
    for i in range(3):
        pipe.put(i)
    assert seen == [0, 1, 2]
    assert "tap 'bad' on pipe 'p' failed" in caplog.text
    pipe.remove_tap("t")
    pipe.remove_tap("unknown")
    pipe.put(3)
    assert seen == [0, 1, 2]
    with pytest.raises(PipeError, match="not callable"):
        pipe.add_tap("x", 3)  # type: ignore[arg-type]


def test_factory_shapes() -> None:
    assert PipeFactory.create_pipe(pipe_type=PipeType.INPUT, max_size=5).pipe_type is PipeType.INPUT
    assert PipeFactory.create_buffered_pipe(50).max_size == 50
    assert PipeFactory.create_streaming_pipe().max_size == 10
    made = PipeFactory.create_pipe()
    assert str(uuid.UUID(made.pipe_id)) == made.pipe_id  # no id given: a uuid4
    assert PipeFactory.create_buffered_pipe(pipe_id="b").pipe_id == "b"


def test_reset_empties_reopens_and_zeroes() -> None:
    pipe = Pipe()
    pipe.put(1)
    pipe.close()
    pipe.reset()
    assert pipe.state is PipeState.OPEN and pipe.is_empty()
    assert pipe.get_metrics()["items_in"] == 0
