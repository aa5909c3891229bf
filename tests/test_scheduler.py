"""The scheduler's transitions, driven by a fake backend whose firings the test completes by hand.

No threads, no processes: the backend hands back futures, the test resolves them in any order
and checks what the scheduler does: tests of the state machine alone, with no real backend.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from mpipe import ExecutionError, Pipe, SimpleProcessor
from mpipe._backends import Backend, FiringSlot
from mpipe._engine._lanes import Lane
from mpipe._engine._nodes import Node, ResultSink, feeder
from mpipe._engine._scheduler import Scheduler


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
    pid: str, backend: Backend, inputs: list[Lane], outputs: list[Lane], concurrency: int = 1
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


class Wired:
    """A chain of processors wired as a plan wires them: an entry lane, one lane between each
    pair of nodes, and a sink lane collected under ``"out"``."""

    def __init__(
        self,
        backend: Backend,
        names: list[str],
        *,
        concurrency: int = 1,
        capacity: int = 1000,
        streaming: bool = False,
    ) -> None:
        self.lanes = [Lane(Pipe(f"lane{i}", max_size=capacity)) for i in range(len(names) + 1)]
        self.nodes = [
            make_node(name, backend, [self.lanes[i]], [self.lanes[i + 1]], concurrency)
            for i, name in enumerate(names)
        ]
        self.entry, self.out = self.lanes[0], self.lanes[-1]
        self.sink = ResultSink(streaming=streaming)
        self.sink.attach("out", self.out)

    def batch(self, *items: Any) -> Wired:
        """Put ``items`` into the entry lane and seal it, as a batch run does."""
        for item in items:
            self.entry.fill(item)
        self.entry.seal()
        return self

    def scheduler(self, feeders: list[Node] | None = None) -> Scheduler:
        return Scheduler(self.nodes, feeders or [], self.sink, [], "run")


def wire(backend: Backend, *names: str, **options: Any) -> Wired:
    return Wired(backend, list(names), **options)


async def settle() -> None:
    """Let the event loop run its ready callbacks (no wall-clock waiting)."""
    for _ in range(5):
        await asyncio.sleep(0)


def test_out_of_order_completions_leave_in_input_order() -> None:
    async def main() -> None:
        backend = ManualBackend()
        w = wire(backend, "p", concurrency=3).batch(0, 1, 2)
        task = asyncio.create_task(w.scheduler().run())
        await settle()
        assert [arg for arg, _ in backend.submitted] == [0, 1, 2]  # concurrency 3: all in flight
        backend.submitted[2][1].set_result("c")
        backend.submitted[1][1].set_result("b")
        await settle()
        assert w.sink.results == {}  # 0 is not done: nothing may leave yet
        backend.submitted[0][1].set_result("a")
        await task
        assert w.sink.results == {"out": ["a", "b", "c"]}
        assert w.nodes[0].finished and w.out.closed

    asyncio.run(main())


def test_concurrency_limits_firings_in_flight() -> None:
    async def main() -> None:
        backend = ManualBackend()
        w = wire(backend, "p", concurrency=2).batch(0, 1, 2, 3, 4)
        task = asyncio.create_task(w.scheduler().run())
        await settle()
        assert len(backend.submitted) == 2
        backend.submitted[0][1].set_result(0)
        await settle()
        assert len(backend.submitted) == 3
        for i in range(1, 5):
            await settle()
            backend.submitted[i][1].set_result(i)
        await task
        assert w.sink.results == {"out": [0, 1, 2, 3, 4]}

    asyncio.run(main())


def test_full_output_lane_stops_the_producer_until_a_take() -> None:
    async def main() -> None:
        backend = ManualBackend()
        fed = iter(range(10))
        w = wire(backend, "a", "b", capacity=2, streaming=True)
        src = feeder("in", fed, {"input": [w.entry]}, backend)
        sched = w.scheduler([src])
        task = asyncio.create_task(sched.run())
        # Resolve every firing as soon as it appears, but never consume the results.
        for _ in range(30):
            await settle()
            for _arg, fut in backend.submitted:
                if not fut.done():
                    fut.set_result(_arg)
        # Lanes hold at most their capacity; the source was pulled only as far as room allowed.
        assert all(len(lane.items) <= 2 for lane in w.lanes[1:])
        assert next(fed) < 10
        sched.stop()
        with pytest.raises(ExecutionError, match="stopped"):
            await task

    asyncio.run(main())


def test_failure_of_an_awaited_firing_halts_with_the_cause() -> None:
    async def main() -> None:
        backend = ManualBackend()
        w = wire(backend, "p").batch(1)
        task = asyncio.create_task(w.scheduler().run())
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
        w = wire(backend, "p")  # the entry lane is never sealed: nothing can ever happen
        with pytest.raises(ExecutionError, match="stalled"):
            await w.scheduler().run()

    asyncio.run(main())
