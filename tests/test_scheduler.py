"""The scheduler's transitions, driven by a fake backend whose firings the test completes by hand.

No threads, no processes: the backend hands back futures, the test resolves them in any order
and checks what the scheduler does (STYLE: dask ``local.py``-style tests of the state machine).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from mpipe import ExecutionError, Pipe, SimpleProcessor
from mpipe._backends import Backend, FiringSlot
from mpipe._nodes import Node, ResultSink, feeder
from mpipe._scheduler import Scheduler


class ManualBackend(Backend):
    """Every firing becomes a future the test resolves; it records what was submitted."""

    name = "manual"

    def __init__(self) -> None:
        super().__init__(1)
        self.submitted: list[tuple[Any, asyncio.Future[Any]]] = []

    def submit(self, fn: Callable[[Any], Any], arg: Any, slot: FiringSlot) -> Any:
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.submitted.append((arg, fut))
        return fut


def make_node(
    pid: str, backend: Backend, inputs: list[Pipe], outputs: list[Pipe], concurrency: int = 1
) -> Node:
    proc = SimpleProcessor(lambda x: x, pid)
    return Node(
        pid,
        proc,
        proc.func,
        True,
        ["input"],
        inputs,
        {"output": outputs},
        backend,
        concurrency,
        None,
        None,
    )


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def test_out_of_order_completions_leave_in_input_order() -> None:
    async def main() -> None:
        backend = ManualBackend()
        src, out = Pipe("src"), Pipe("out")
        node = make_node("p", backend, [src], [out], concurrency=3)
        sink = ResultSink(streaming=False)
        sink.attach("p:output", out)
        for i in range(3):
            src._offer(i)
        node.filled = 1
        src._closed = True
        sched = Scheduler([node], [], sink, [], "run")
        task = asyncio.create_task(sched.run())
        await settle()
        assert [arg for arg, _ in backend.submitted] == [0, 1, 2]  # concurrency 3: all in flight
        backend.submitted[2][1].set_result("c")
        backend.submitted[1][1].set_result("b")
        await settle()
        assert sink.results == {}  # 0 is not done: nothing may leave yet
        backend.submitted[0][1].set_result("a")
        await task
        assert sink.results == {"p:output": ["a", "b", "c"]}
        assert node.finished and out.closed

    asyncio.run(main())


def test_concurrency_limits_firings_in_flight() -> None:
    async def main() -> None:
        backend = ManualBackend()
        src, out = Pipe("src"), Pipe("out")
        node = make_node("p", backend, [src], [out], concurrency=2)
        sink = ResultSink(streaming=False)
        sink.attach("k", out)
        for i in range(5):
            src._offer(i)
        node.filled = 1
        src._closed = True
        task = asyncio.create_task(Scheduler([node], [], sink, [], "run").run())
        await settle()
        assert len(backend.submitted) == 2
        backend.submitted[0][1].set_result(0)
        await settle()
        assert len(backend.submitted) == 3
        for i in range(1, 5):
            await settle()
            backend.submitted[i][1].set_result(i)
        await task
        assert sink.results == {"k": [0, 1, 2, 3, 4]}

    asyncio.run(main())


def test_full_output_pipe_stops_the_producer_until_a_take() -> None:
    async def main() -> None:
        backend = ManualBackend()
        link = Pipe("link", max_size=2)
        out = Pipe("out", max_size=2)
        fed = iter(range(10))
        a = make_node("a", backend, [], [link])
        a.inputs = []
        b = make_node("b", backend, [link], [out])
        sink = ResultSink(streaming=True)
        sink.attach("b:output", out)
        src = feeder("in", fed, {"input": [Pipe("entry", max_size=1)]}, backend)
        entry = src.outputs["input"][0]
        entry._producer = src
        a.inputs = [entry]
        entry._consumer = a
        sched = Scheduler([a, b], [src], sink, [], "run")
        task = asyncio.create_task(sched.run())
        # Resolve every firing as soon as it appears, but never consume the results.
        for _ in range(30):
            await settle()
            for _arg, fut in backend.submitted:
                if not fut.done():
                    fut.set_result(_arg)
        # Pipes hold at most their capacity; the source was pulled only as far as room allowed.
        assert len(link) <= 2 and len(out) <= 2
        assert next(fed) < 10
        sched.stop()
        with pytest.raises(ExecutionError, match="stopped"):
            await task

    asyncio.run(main())


def test_failure_of_an_awaited_firing_halts_with_the_cause() -> None:
    async def main() -> None:
        backend = ManualBackend()
        src, out = Pipe("src"), Pipe("out")
        node = make_node("p", backend, [src], [out])
        sink = ResultSink(streaming=False)
        sink.attach("k", out)
        src._offer(1)
        node.filled = 1
        src._closed = True
        task = asyncio.create_task(Scheduler([node], [], sink, [], "run").run())
        await settle()
        backend.submitted[0][1].set_exception(KeyError("lost"))
        with pytest.raises(ExecutionError) as info:
            await task
        assert info.value.failed_processors == ["p"]
        assert isinstance(info.value.cause, KeyError)

    asyncio.run(main())


def test_a_stalled_run_is_reported_not_hung() -> None:
    async def main() -> None:
        backend = ManualBackend()
        never_closed = Pipe("open-forever")
        out = Pipe("out")
        node = make_node("p", backend, [never_closed], [out])
        sink = ResultSink(streaming=False)
        sink.attach("k", out)
        with pytest.raises(ExecutionError, match="stalled"):
            await Scheduler([node], [], sink, [], "run").run()

    asyncio.run(main())
