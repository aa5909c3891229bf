"""Streams: generators hand each item on as they make it, and big items stay within the pipes'
bounds in bytes."""

from __future__ import annotations

import asyncio
import os
import select
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mpipe import GraphExecutor, Pipe, PipeError, ProcessingGraph, SimpleProcessor
from mpipe._model._pipe import DEFAULT_MAX_BYTES

MiB = 1 << 20


def two_stages(
    source: Callable[[Any], Any],
    consume: Callable[[Any], Any],
    source_placement: str = "inline",
    placement: str = "inline",
) -> ProcessingGraph:
    g = ProcessingGraph()
    src = SimpleProcessor(source, "src", execution=source_placement)
    src.create_default_pipes()
    use = SimpleProcessor(consume, "use", execution=placement)
    use.create_default_pipes()
    g.add_processor(src)
    g.add_processor(use)
    g.connect("src", "output", "use", "input")
    return g


# -- generators stream ---------------------------------------------------------------------------


class FirstItemSignal:
    """How the consumer of item 0 tells the source, wherever the consumer runs: in the event
    loop (it notes it directly), in a thread (an event), in a worker process (a FIFO)."""

    def __init__(self, placement: str, folder: Path, events: list[str]) -> None:
        self.placement = placement
        self.events = events
        self.thread_event = threading.Event()
        self.fifo = str(folder / "got-first")
        self.fd = -1
        if placement == "process":
            os.mkfifo(self.fifo)
            self.fd = os.open(self.fifo, os.O_RDONLY | os.O_NONBLOCK)

    def consumer(self) -> Callable[[int], int]:
        placement, events, thread_event, fifo = (
            self.placement,
            self.events,
            self.thread_event,
            self.fifo,
        )

        def consume(x: int) -> int:
            if x == 0:
                if placement == "process":
                    with open(fifo, "wb") as f:  # the source holds the reading end open
                        f.write(b"0")
                else:
                    events.append("consumer got item 0")
                    thread_event.set()
            return x * 10

        return consume

    def wait(self) -> None:
        """In the source: wait (10 s at most) until the consumer has item 0."""
        if self.placement == "thread":
            self.thread_event.wait(10)
        elif self.placement == "process":
            readable, _, _ = select.select([self.fd], [], [], 10)
            if readable and os.read(self.fd, 1) == b"0":
                self.events.append("consumer got item 0")

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)


@pytest.mark.parametrize(
    "placement", ["inline", "thread", pytest.param("process", marks=pytest.mark.slow)]
)
def test_a_generator_source_hands_each_item_on_before_making_the_next(
    placement: str, tmp_path: Path
) -> None:
    events: list[str] = []
    signal = FirstItemSignal(placement, tmp_path, events)

    def source(_: Any) -> Iterator[int]:
        for i in range(6):
            time.sleep(0.002)  # a slow source: longer than the scheduler's slice
            if i == 5:
                signal.wait()  # returns at once unless the consumer is elsewhere
            events.append(f"source made item {i}")
            yield i

    async def main() -> list[Any]:
        got = []
        async with GraphExecutor(two_stages(source, signal.consumer(), placement=placement)) as ex:
            async for _, value in ex.stream({"src": [None]}):
                events.append(f"result {value} arrived")
                got.append(value)
        return got

    try:
        assert asyncio.run(main()) == [0, 10, 20, 30, 40, 50]
    finally:
        signal.close()
    assert events.index("consumer got item 0") < events.index("source made item 5"), events
    if placement == "inline":
        # With everything in the event loop, each result even reaches the caller first.
        assert events[:4] == [
            "source made item 0",
            "consumer got item 0",
            "result 0 arrived",
            "source made item 1",
        ]


def test_a_source_on_a_thread_leaves_the_event_loop_free() -> None:
    arrived = threading.Event()
    order: list[str] = []

    def source(_: Any) -> Iterator[int]:
        for i in range(6):
            if i == 5:
                # The loop runs while this thread waits: result 0 reaches the caller.
                order.append("first result seen" if arrived.wait(10) else "timed out")
            yield i

    async def main() -> None:
        graph = two_stages(source, lambda x: x + 1, source_placement="thread")
        async for _, value in GraphExecutor(graph, max_workers=2).stream({"src": [None]}):
            if value == 1:
                arrived.set()

    asyncio.run(main())
    assert order == ["first result seen"]


def test_a_lazy_feeder_hands_its_first_item_on_at_once() -> None:
    # The caller's own generator feeds the graph: its item 0 is consumed before item 5 is made.
    events: list[str] = []

    def items() -> Iterator[int]:
        for i in range(6):
            time.sleep(0.002)
            events.append(f"made {i}")
            yield i

    def use(x: int) -> int:
        events.append(f"got {x}")
        return x

    g = ProcessingGraph()
    p = SimpleProcessor(use, "use")
    p.create_default_pipes()
    g.add_processor(p)
    out = asyncio.run(GraphExecutor(g).execute_stream({"use": items()}))
    assert out == {"use:output": list(range(6))}
    assert events.index("got 0") < events.index("made 5"), events


# -- bounded in bytes ----------------------------------------------------------------------------


class Live:
    """Counts the arrays alive at once (each one's collection is noticed)."""

    def __init__(self) -> None:
        self.now = 0
        self.peak = 0

    def track(self, arr: np.ndarray) -> np.ndarray:
        self.now += 1
        self.peak = max(self.peak, self.now)
        weakref.finalize(arr, self._gone)
        return arr

    def _gone(self) -> None:
        self.now -= 1


def test_big_items_wait_on_the_pipes_byte_bounds() -> None:
    # 200 items of 256 KiB (50 MiB) through three stages whose pipes hold 1 MiB each.
    live = Live()
    bound = MiB

    def items() -> Iterator[np.ndarray]:
        for i in range(200):
            yield live.track(np.full(32 * 1024, i, dtype=np.float64))

    g = ProcessingGraph()
    for i in range(3):
        p = SimpleProcessor(lambda a: a, f"s{i}")
        p.create_default_pipes()
        g.add_processor(p)
        if i:
            g.connect(f"s{i - 1}", "output", f"s{i}", "input", max_bytes=bound)
    g.get_processor("s0").register_input_pipe("input", Pipe("s0:input", max_bytes=bound))
    g.get_processor("s2").register_output_pipe("output", Pipe("s2:output", max_bytes=bound))

    async def consume() -> list[int]:
        seen = []
        async for _, arr in GraphExecutor(g).stream({"s0": items()}):
            seen.append(int(arr[0]))
            del arr
            await asyncio.sleep(0)  # a consumer slower than the source
        return seen

    assert asyncio.run(consume()) == list(range(200))
    pipes = [
        g.get_processor("s0").input_pipes["input"],
        *g.pipes.values(),
        g.get_processor("s2").output_pipes["output"],
    ]
    for pipe in pipes:
        metrics = pipe.get_metrics()
        # within its bound plus one item (the item that reached it)
        assert metrics["peak_bytes"] <= bound + 256 * 1024, (pipe.pipe_id, metrics)
        assert metrics["peak_size"] <= 5
        assert metrics["bytes_in"] == 200 * 256 * 1024
    assert pipes[0].get_metrics()["full_events"] >= 1  # the source did wait
    # Four pipes of five items each, and a few in hand: far below the 200 made.
    assert live.peak <= 4 * 5 + 4, live.peak


def test_a_list_of_big_items_enters_within_the_entry_pipes_bound() -> None:
    arrays = [np.full(64 * 1024, i, dtype=np.float64) for i in range(64)]  # 512 KiB each
    g = ProcessingGraph()
    p = SimpleProcessor(lambda a: float(a[0]), "p")
    p.create_default_pipes()
    p.register_input_pipe("input", Pipe("p:input", max_bytes=2 * MiB))
    g.add_processor(p)
    out = asyncio.run(GraphExecutor(g).execute_stream({"p": arrays}))
    assert out == {"p:output": [float(i) for i in range(64)]}
    metrics = p.input_pipes["input"].get_metrics()
    assert metrics["peak_bytes"] <= 2 * MiB + 512 * 1024
    assert metrics["peak_size"] <= 5


def test_pipes_bound_bytes_by_default_and_connections_take_max_bytes() -> None:
    g = ProcessingGraph()
    for pid in ("a", "b"):
        p = SimpleProcessor(lambda x: x, pid)
        p.create_default_pipes()
        g.add_processor(p)
    pipe = g.connect("a", "output", "b", "input")
    assert pipe.max_bytes == DEFAULT_MAX_BYTES == 64 * MiB
    assert g.get_processor("a").input_pipes["input"].max_bytes == DEFAULT_MAX_BYTES
    g.remove_processor("b")
    p = SimpleProcessor(lambda x: x, "b")
    p.create_default_pipes()
    g.add_processor(p)
    with pytest.raises(PipeError, match="pipe max_bytes must be a positive integer"):
        g.connect("a", "output", "b", "input", max_bytes=0)
    assert g.connect("a", "output", "b", "input", max_bytes=None).max_bytes is None


@pytest.mark.slow
def test_process_stages_keep_a_stream_of_big_arrays_within_the_pipes_bounds() -> None:
    # 64 arrays of 4 MiB (256 MiB) through two process stages whose pipe holds 8 MiB.
    g = ProcessingGraph()
    scale = SimpleProcessor(lambda a: a * 2, "scale", execution="process")
    scale.create_default_pipes()
    scale.register_input_pipe("input", Pipe("scale:input", max_bytes=8 * MiB))
    total = SimpleProcessor(lambda a: float(a.sum()), "total", execution="process")
    total.create_default_pipes()
    g.add_processor(scale)
    g.add_processor(total)
    g.connect("scale", "output", "total", "input", max_bytes=8 * MiB)

    def arrays() -> Iterator[np.ndarray]:
        for i in range(64):
            yield np.full(512 * 1024, i, dtype=np.float64)

    # Unfused: the bound under test is the one of the pipe between the two stages, which fused
    # stages would pass inside a worker call (no item would wait in it).
    ex = GraphExecutor(g, max_workers=2, fuse=False)
    out = asyncio.run(ex.execute_stream({"scale": arrays()}))
    assert out == {"total:output": [2.0 * i * 512 * 1024 for i in range(64)]}
    # A pipe holds its bound plus one item, and the outputs of the firings that were already
    # running when it filled: two per worker here.
    for pipe in (scale.input_pipes["input"], *g.pipes.values()):
        metrics = pipe.get_metrics()
        assert metrics["peak_bytes"] <= 8 * MiB + 4 * MiB + 4 * 4 * MiB, (pipe.pipe_id, metrics)
        assert metrics["bytes_in"] == 64 * 4 * MiB


def _slow_first(a: np.ndarray) -> np.ndarray:
    if a[0] == 0:  # the first item is held up: later ones finish and wait to go in order
        time.sleep(0.5)
    return a * 2


@pytest.mark.slow
def test_outputs_waiting_for_an_earlier_firing_count_against_the_byte_bound() -> None:
    # The first firing of a process stage takes long while the other worker finishes the next
    # ones: their outputs wait (in order) and would all land at once when it is done. The
    # stage stops firing once what is in flight fills the byte bound of its output.
    g = ProcessingGraph()
    scale = SimpleProcessor(_slow_first, "scale", execution="process")
    scale.create_default_pipes()
    total = SimpleProcessor(lambda a: float(a.sum()), "total", execution="process")
    total.create_default_pipes()
    g.add_processor(scale)
    g.add_processor(total)
    g.connect("scale", "output", "total", "input", max_bytes=8 * MiB)

    def arrays() -> Iterator[np.ndarray]:
        for i in range(32):
            yield np.full(512 * 1024, i, dtype=np.float64)

    out = asyncio.run(GraphExecutor(g, max_workers=2).execute_stream({"scale": arrays()}))
    assert out == {"total:output": [2.0 * i * 512 * 1024 for i in range(32)]}
    metrics = next(iter(g.pipes.values())).get_metrics()
    assert metrics["peak_bytes"] <= 8 * MiB + 4 * MiB + 4 * 4 * MiB, metrics
