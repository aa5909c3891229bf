"""Running graphs — inputs, results, streams, dataflow order, lifetime, stopping.

One suite, run against every backend, so that backends cannot drift apart.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from mpipe import (
    ConfigurationError,
    ExecutionError,
    GraphExecutor,
    PipelineError,
    ProcessingGraph,
    SimpleProcessor,
    SkipStrategy,
    ValidationError,
    create_simple_pipeline,
)

BACKENDS = ["inline", "thread", "process", "dask"]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> Iterator[str]:
    if request.param == "dask":
        # The session's LocalCluster, named through Dask's own setting (what ``dask_address=``
        # defaults to), so that the suite's ``GraphExecutor(g, backend=backend)`` reaches it.
        import dask

        address = request.getfixturevalue("dask_cluster")
        with dask.config.set({"scheduler-address": address}):
            yield "dask"
        return
    yield str(request.param)


def chain(*fns: tuple[str, Callable[..., Any]]) -> ProcessingGraph:
    return create_simple_pipeline(list(fns))


def add(
    g: ProcessingGraph, pid: str, fn: Callable[..., Any], inputs: list[str] | None = None, **kw: Any
) -> None:
    p = SimpleProcessor(fn, pid, **kw)
    p.create_default_pipes(inputs, ["output"])
    g.add_processor(p)


class TestBatch:
    def test_linear(self, backend: str) -> None:
        g = chain(("a", lambda x: x + 1), ("b", lambda x: x * 10))
        assert GraphExecutor(g, backend=backend).run(1) == {"b:output": 20}

    def test_fan_out_gives_each_consumer_every_item(self, backend: str) -> None:
        g = ProcessingGraph()
        add(g, "src", lambda x: x)
        add(g, "l", lambda x: ("l", x))
        add(g, "r", lambda x: ("r", x))
        g.connect("src", "output", "l", "input")
        g.connect("src", "output", "r", "input")
        assert GraphExecutor(g, backend=backend).run(5) == {
            "l:output": ("l", 5),
            "r:output": ("r", 5),
        }

    def test_every_sink_output_is_reported(self, backend: str) -> None:
        g = ProcessingGraph()
        add(g, "a", lambda x: x + 1)
        add(g, "b", lambda x: x + 2)
        assert GraphExecutor(g, backend=backend).run({"a": 1, "b": 1}) == {
            "a:output": 2,
            "b:output": 3,
        }

    def test_unnamed_sources_get_the_whole_mapping(self, backend: str) -> None:
        g = ProcessingGraph()
        add(g, "a", lambda d: sorted(d))
        add(g, "b", lambda d: d)
        result = GraphExecutor(g, backend=backend).run({"x": 1, "y": 2})
        assert result == {"a:output": ["x", "y"], "b:output": {"x": 1, "y": 2}}
        result = GraphExecutor(g, backend=backend).run({"a": [3, 1]})
        assert result == {"a:output": [1, 3], "b:output": {"a": [3, 1]}}

    def test_non_mapping_input_goes_to_every_source(self, backend: str) -> None:
        g = ProcessingGraph()
        add(g, "a", lambda x: x + 1)
        add(g, "b", lambda x: x * 2)
        assert GraphExecutor(g, backend=backend).run(3) == {"a:output": 4, "b:output": 6}


class TestInputErrors:
    def test_unknown_keys_next_to_known_ones(self) -> None:
        g = chain(("a", lambda x: x))
        with pytest.raises(ValidationError, match="unknown input key.*'nope'") as info:
            GraphExecutor(g).run({"a": 1, "nope": 2})
        assert info.value.validation_errors

    def test_entry_given_twice(self) -> None:
        g = chain(("a", lambda x: x))
        with pytest.raises(ValidationError, match="given twice"):
            GraphExecutor(g).run({"a": 1, "a:input": 2})

    def test_multi_input_source_needs_all_its_pipes(self) -> None:
        g = ProcessingGraph()
        add(g, "j", lambda d: d, ["x", "y"])
        with pytest.raises(ValidationError, match="exactly its input pipes"):
            GraphExecutor(g).run({"j": {"x": 1}})

    def test_unfed_inner_input_pipe(self) -> None:
        g = ProcessingGraph()
        add(g, "a", lambda x: x)
        add(g, "j", lambda d: d, ["from_a", "extra"])
        g.connect("a", "output", "j", "from_a")
        with pytest.raises(ValidationError, match="j:extra is not connected and gets no input"):
            GraphExecutor(g).run({"a": 1})
        assert GraphExecutor(g).run({"a": 1, "j:extra": 2}) == {
            "j:output": {"from_a": 1, "extra": 2}
        }

    def test_invalid_graph_fails_before_anything_runs(self) -> None:
        ran: list[int] = []
        g = ProcessingGraph()
        add(g, "a", ran.append)
        add(g, "b", ran.append)
        g.connect("a", "output", "b", "input")
        g.connect("b", "output", "a", "input")
        with pytest.raises(ValidationError, match="cycle"):
            GraphExecutor(g).run(1)
        assert ran == []

    def test_stream_inputs_must_be_iterables(self) -> None:
        g = chain(("a", lambda x: x))

        async def main() -> None:
            await GraphExecutor(g).execute_stream({"a": "text"})

        with pytest.raises(ValidationError, match="must be an iterable"):
            asyncio.run(main())

    def test_bad_executor_options(self) -> None:
        g = chain(("a", lambda x: x))
        with pytest.raises(ConfigurationError, match="backend: execution must be one of"):
            GraphExecutor(g, backend="gpu")
        with pytest.raises(ConfigurationError, match="max_workers must be a positive integer"):
            GraphExecutor(g, max_workers=0)
        with pytest.raises(ConfigurationError, match="monitor must be a RunHooks"):
            GraphExecutor(g, monitor=object())

    @pytest.mark.parametrize(
        ("option", "value", "message"),
        [
            ("start_method", "forkserver", "start_method must be 'spawn'"),
            ("start_method", "fork", "start_method must be 'spawn'"),
            ("arena_size", 1000, "arena_size must be at least 1 MiB"),
            ("arena_size", "64MiB", "arena_size must be at least 1 MiB"),
            ("arena_size", True, "arena_size must be at least 1 MiB"),
        ],
    )
    def test_process_options_are_checked_when_the_executor_is_made(
        self, option: str, value: object, message: str
    ) -> None:
        # Refused at once, whatever the placement, not when a first process run starts a pool.
        with pytest.raises(ConfigurationError, match=message) as info:
            GraphExecutor(chain(("a", lambda x: x)), **{option: value})  # type: ignore[arg-type]
        assert info.value.field == option  # type: ignore[attr-defined]

    def test_a_process_pool_made_without_an_arena_size_takes_the_default(self) -> None:
        from mpipe._backends._process._backend import ARENA_SIZE, ProcessBackend

        assert ProcessBackend(1, arena_size=None).arena_size == ARENA_SIZE
        assert ProcessBackend(1).arena_size == ARENA_SIZE


class TestStreams:
    def test_stream_yields_as_items_arrive(self, backend: str) -> None:
        g = chain(("a", lambda x: x + 1), ("b", lambda x: x * 2))

        async def main() -> list[tuple[str, Any]]:
            return [kv async for kv in GraphExecutor(g, backend=backend).stream({"a": range(5)})]

        assert asyncio.run(main()) == [("b:output", 2 * (i + 1)) for i in range(5)]

    def test_async_iterable_input(self, backend: str) -> None:
        g = chain(("a", lambda x: -x))

        async def numbers() -> AsyncIterator[int]:
            for i in range(4):
                await asyncio.sleep(0)
                yield i

        out = asyncio.run(GraphExecutor(g, backend=backend).execute_stream({"a": numbers()}))
        assert out == {"a:output": [0, -1, -2, -3]}

    def test_fan_in_zips_in_order(self, backend: str) -> None:
        g = ProcessingGraph()
        add(g, "x", lambda v: v)
        add(g, "y", lambda v: v * 100)
        add(g, "j", lambda d: d["x"] + d["y"], ["x", "y"])
        g.connect("x", "output", "j", "x")
        g.connect("y", "output", "j", "y")
        out = asyncio.run(
            GraphExecutor(g, backend=backend).execute_stream({"x": range(5), "y": range(5)})
        )
        assert out == {"j:output": [i + 100 * i for i in range(5)]}

    def test_zip_ends_with_the_shortest_input_even_if_another_is_endless(
        self, backend: str
    ) -> None:
        g = ProcessingGraph()
        add(g, "x", lambda v: v)
        add(g, "y", lambda v: v)
        add(g, "j", lambda d: (d["x"], d["y"]), ["x", "y"])
        g.connect("x", "output", "j", "x", max_size=4)
        g.connect("y", "output", "j", "y", max_size=4)
        out = asyncio.run(
            GraphExecutor(g, backend=backend).execute_stream(
                {"x": range(3), "y": itertools.count()}
            )
        )
        assert out == {"j:output": [(0, 0), (1, 1), (2, 2)]}

    def test_leaving_a_stream_early_stops_the_run(self, backend: str) -> None:
        pulled = 0

        def endless() -> Any:
            nonlocal pulled
            for i in itertools.count():
                pulled += 1
                yield i

        g = chain(("a", lambda x: x))
        ex = GraphExecutor(g, backend=backend)

        async def main() -> list[Any]:
            got = []
            agen = ex.stream({"a": endless()})
            async for _key, item in agen:
                got.append(item)
                if len(got) == 3:
                    break
            await agen.aclose()
            return got

        assert asyncio.run(main()) == [0, 1, 2]
        assert ex.get_execution_status()["state"] == "stopped"
        assert pulled < 3000  # bounded by pipe capacity, not endless

    def test_generator_sink_in_batch_gives_a_list(self, backend: str) -> None:
        g = chain(("gen", lambda n: iter(range(n))))
        g.get_processor("gen").func = lambda n: (i for i in range(n))  # type: ignore[attr-defined]
        assert GraphExecutor(g, backend=backend).run(3) == {"gen:output": [0, 1, 2]}


class TestDataflow:
    def test_branches_start_when_inputs_are_ready_not_level_by_level(self) -> None:
        # c (level 0) waits for b (level 1): a level-by-level executor would deadlock.
        b_ran = asyncio.Event()

        async def a(x: int) -> int:
            return x

        async def b(x: int) -> int:
            b_ran.set()
            return x

        async def c(x: int) -> str:
            await asyncio.wait_for(b_ran.wait(), 5)
            return "c saw b"

        g = ProcessingGraph()
        add(g, "a", a)
        add(g, "b", b)
        add(g, "c", c)
        g.connect("a", "output", "b", "input")
        out = GraphExecutor(g).run({"a": 1, "c": 1})
        assert out == {"b:output": 1, "c:output": "c saw b"}

    def test_stream_stages_overlap(self) -> None:
        # Stage 2 handles item 0 before stage 1 has seen item 2: pipeline parallelism.
        log: list[tuple[str, int]] = []

        async def s1(x: int) -> int:
            log.append(("s1", x))
            await asyncio.sleep(0)
            return x

        async def s2(x: int) -> int:
            log.append(("s2", x))
            return x

        g = chain(("s1", s1), ("s2", s2))
        asyncio.run(GraphExecutor(g).execute_stream({"s1": range(5)}))
        assert log.index(("s2", 0)) < log.index(("s1", 2))

    def test_threads_overlap_independent_branches(self) -> None:
        barrier = threading.Barrier(2, timeout=5)

        def meet(x: int) -> int:
            barrier.wait()  # both branches must be running at once
            return x

        g = ProcessingGraph()
        add(g, "l", meet)
        add(g, "r", meet)
        assert GraphExecutor(g, backend="thread", max_workers=2).run(1) == {
            "l:output": 1,
            "r:output": 1,
        }

    @pytest.mark.slow
    def test_long_stream_holds_memory_bounded_by_pipe_capacity(self) -> None:
        # 100,000 items of ~10 KB (1 GB in all) through 5 stages: count live payloads.
        live = 0
        peak = 0

        class Payload:
            __slots__ = ("data",)

            def __init__(self) -> None:
                nonlocal live, peak
                self.data = bytes(10_000)
                live += 1
                peak = max(peak, live)

            def __del__(self) -> None:
                nonlocal live
                live -= 1

        def source() -> Any:
            for _ in range(100_000):
                yield Payload()

        g = ProcessingGraph()
        for i in range(5):
            add(g, f"s{i}", lambda p: p)
            if i:
                g.connect(f"s{i - 1}", "output", f"s{i}", "input", max_size=8)
        g.get_processor("s0").input_pipes["input"].max_size = 8
        g.get_processor("s4").output_pipes["output"].max_size = 8

        async def consume() -> int:
            n = 0
            async for _key, _item in GraphExecutor(g).stream({"s0": source()}):
                n += 1
            return n

        assert asyncio.run(consume()) == 100_000
        # 5 pipes of 8 plus the entry pipe and items in hand: far below 100,000.
        assert peak <= 8 * 7 + 10, peak
        for pipe in g.pipes.values():
            assert pipe.get_metrics()["peak_size"] <= 8


class TestLifetime:
    def test_async_with_keeps_backends_for_several_runs(self) -> None:
        g = chain(("a", lambda x: x + 1))

        async def main() -> list[Any]:
            async with GraphExecutor(g, backend="thread") as ex:
                first = await ex.execute(1)
                backend = ex._backends["thread"]
                second = await ex.execute(2)
                assert ex._backends["thread"] is backend and backend.started
            assert not backend.started
            return [first, second]

        assert asyncio.run(main()) == [{"a:output": 2}, {"a:output": 3}]

    def test_each_run_releases_its_backends_without_async_with(self) -> None:
        g = chain(("a", lambda x: x))
        ex = GraphExecutor(g, backend="thread")
        ex.run(1)
        assert not ex._backends["thread"].started
        assert not [t for t in threading.enumerate() if t.name.startswith("mpipe-thread")]

    def test_runs_do_not_overlap(self) -> None:
        gate = asyncio.Event()

        async def wait(x: int) -> int:
            await gate.wait()
            return x

        g = chain(("a", wait))
        ex = GraphExecutor(g)

        async def main() -> None:
            task = asyncio.create_task(ex.execute(1))
            await asyncio.sleep(0)
            with pytest.raises(PipelineError, match="already running"):
                await ex.execute(2)
            gate.set()
            assert await task == {"a:output": 1}

        asyncio.run(main())

    def test_run_refuses_a_running_loop(self) -> None:
        g = chain(("a", lambda x: x))

        async def main() -> None:
            with pytest.raises(PipelineError, match="running event loop"):
                GraphExecutor(g).run(1)

        asyncio.run(main())

    def test_graph_changes_between_runs_are_seen(self) -> None:
        g = chain(("a", lambda x: x + 1))
        ex = GraphExecutor(g)
        assert ex.run(1) == {"a:output": 2}
        add(g, "b", lambda x: x * 10)
        g.connect("a", "output", "b", "input")
        assert ex.run(1) == {"b:output": 20}
        g.get_processor("b").func = lambda x: -x  # type: ignore[attr-defined]
        assert ex.run(1) == {"b:output": -2}

    # Not on Dask: its client's own machinery is not ours to judge.
    @pytest.mark.parametrize("placement", ["inline", "thread", "process"])
    def test_runs_leave_no_reference_cycles(self, placement: str) -> None:
        """What a run builds is freed when it ends, by reference counting alone, whether the
        run succeeds or fails: a cycle (the scheduler holding a method bound to itself, or the
        failure whose traceback holds the scheduler's frames) would leave it to the garbage
        collector, whose passes then cost every later run."""
        g = chain(("a", lambda x: x + 1), ("b", lambda x: x * 2))
        bad = chain(("a", lambda x: x + 1), ("b", _fails))

        async def runs(ex: GraphExecutor, failing: GraphExecutor) -> None:
            assert await ex.execute(1) == {"b:output": 4}
            assert await ex.execute_stream({"a": range(20)}) == {
                "b:output": [2 * (x + 1) for x in range(20)]
            }
            assert len([item async for item in ex.stream({"a": range(20)})]) == 20
            try:
                await failing.execute(1)
            except ExecutionError as exc:
                assert "bad item 2" in str(exc)
            else:
                raise AssertionError("the failing run did not fail")
            assert failing.get_execution_status()["failed_processor"] == "b"

        async def main() -> list[Any]:
            async with (
                GraphExecutor(g, backend=placement) as ex,
                GraphExecutor(bad, backend=placement) as failing,
            ):
                await runs(ex, failing)  # warm: the pool, the plan, caches
                # Whatever earlier tests left (a dropped graph's idle plans are freed one pass
                # after the graph) goes before the count starts.
                while gc.collect():
                    pass
                gc.disable()
                gc.set_debug(gc.DEBUG_SAVEALL)
                try:
                    await runs(ex, failing)
                    gc.collect()
                    # Ours only: other threads of the test process (a shared Dask cluster's
                    # event loop) may leave their own garbage meanwhile.
                    return [o for o in gc.garbage if type(o).__module__.startswith("mpipe")]
                finally:
                    gc.set_debug(0)
                    gc.garbage.clear()
                    gc.enable()

        assert asyncio.run(main()) == []


def _fails(x: int) -> int:
    raise ValueError(f"bad item {x}")


class TestStopping:
    def test_stop_execution_cancels_everything(self) -> None:
        cancelled = asyncio.Event()

        async def forever(x: int) -> int:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                cancelled.set()
                raise
            return x

        g = chain(("a", forever))
        ex = GraphExecutor(g)

        async def main() -> None:
            task = asyncio.create_task(ex.execute(1))
            await asyncio.sleep(0.01)
            assert ex.get_execution_status()["state"] == "running"
            await ex.stop_execution()
            with pytest.raises(ExecutionError, match="stopped"):
                await task
            assert cancelled.is_set()
            assert ex.get_execution_status()["state"] == "stopped"
            await asyncio.sleep(0)
            assert asyncio.all_tasks() == {asyncio.current_task()}

        asyncio.run(main())

    def test_cancelling_execute_leaves_no_task(self) -> None:
        async def forever(x: int) -> int:
            await asyncio.sleep(3600)
            return x

        g = ProcessingGraph()
        add(g, "a", forever)
        add(g, "b", forever)
        ex = GraphExecutor(g)

        async def main() -> None:
            task = asyncio.create_task(ex.execute(1))
            await asyncio.sleep(0.01)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await asyncio.sleep(0)
            assert asyncio.all_tasks() == {asyncio.current_task()}

        asyncio.run(main())

    def test_status_reports_progress(self) -> None:
        g = chain(("a", lambda x: x), ("b", lambda x: x))
        ex = GraphExecutor(g)
        assert ex.get_execution_status()["state"] == "idle"
        ex.run(1)
        status = ex.get_execution_status()
        assert status["state"] == "completed"
        assert status["processors"]["b"]["firings_started"] == 1
        assert status["elapsed"] >= 0


def test_a_failing_input_stream_keeps_its_exception() -> None:
    def bad() -> Any:
        yield 1
        raise KeyError("lost")

    g = chain(("a", lambda x: x))
    with pytest.raises(ExecutionError, match="<input a> failed: KeyError") as info:
        asyncio.run(GraphExecutor(g).execute_stream({"a": bad()}))
    assert isinstance(info.value.cause, KeyError)
    assert info.value.failed_processors == []


def test_two_executors_of_one_graph_take_turns() -> None:
    g = chain(("a", lambda x: x + 1), ("b", lambda x: x * 2))
    first, second = GraphExecutor(g), GraphExecutor(g)
    for i in range(3):
        assert first.run(i) == {"b:output": (i + 1) * 2}
        assert second.run(i) == {"b:output": (i + 1) * 2}


@pytest.mark.parametrize("placement", ["inline", "thread"])
def test_two_executors_of_one_graph_run_at_once(placement: str) -> None:
    """Each executor's plan owns its nodes and lanes: runs of one graph from two executors,
    interleaved on one event loop, never see each other's items."""

    async def step(x: int) -> int:
        await asyncio.sleep(0)  # let the other run move between every two firings
        return x + 1

    def double(x: int) -> int:
        return x * 2

    g = chain(("a", step), ("b", double))
    g.get_processor("b").execution = placement  # type: ignore[attr-defined]

    async def main() -> tuple[dict[str, Any], dict[str, Any]]:
        first, second = GraphExecutor(g), GraphExecutor(g)
        return await asyncio.gather(
            first.execute_stream({"a": range(200)}),
            second.execute_stream({"a": range(1000, 1200)}),
        )

    one, two = asyncio.run(main())
    assert one == {"b:output": [(x + 1) * 2 for x in range(200)]}
    assert two == {"b:output": [(x + 1) * 2 for x in range(1000, 1200)]}
    assert g.pipes["a:output->b:input"].get_metrics()["items_in"] == 400


def test_taps_added_or_removed_between_runs_are_seen() -> None:
    g = chain(("a", lambda x: x + 1), ("b", lambda x: x * 2))
    ex = GraphExecutor(g)
    assert ex.run(1) == {"b:output": 4}  # compiled without taps
    seen: list[Any] = []
    g.pipes["a:output->b:input"].add_tap("t", seen.append)
    g.get_processor("b").output_pipes["output"].add_tap("u", seen.append)
    ex.run(2)
    assert seen == [3, 6]
    g.pipes["a:output->b:input"].remove_tap("t")
    ex.run(3)
    assert seen == [3, 6, 8]


def test_a_stream_stage_that_fails_mid_run_keeps_order_and_the_rest() -> None:
    """Inline stages run the items that wait several at a time; a failure, a skip, or a
    generator among them still leaves every other item in order."""

    def picky(x: int) -> Any:
        if x % 7 == 3:
            raise ValueError(x)
        if x % 11 == 5:
            return (y for y in (x, x))  # a generator: its items stream out in its place
        return x

    g = chain(("a", lambda x: x), ("b", picky), ("c", lambda x: x * 10))
    g.set_error_strategy("b", SkipStrategy())
    out = asyncio.run(GraphExecutor(g).execute_stream({"a": range(100)}))
    want = []
    for x in range(100):
        if x % 7 == 3:
            continue
        want += [x * 10, x * 10] if x % 11 == 5 else [x * 10]
    assert out == {"c:output": want}
    assert g.get_processor("b").get_metrics()["firings"] == 100  # type: ignore[attr-defined]


def test_observers_hear_every_firing_of_a_stream_stage() -> None:
    from mpipe import RunHooks

    class Count(RunHooks):
        def __init__(self) -> None:
            self.started: list[tuple[str, int]] = []
            self.ended: list[tuple[str, int]] = []

        def firing_start(self, processor_id: str, index: int, start: float) -> None:
            self.started.append((processor_id, index))

        def firing_end(
            self, processor_id: str, index: int, start: float, end: float, worker: str, error: Any
        ) -> None:
            assert end >= start
            self.ended.append((processor_id, index))

    hooks = Count()
    g = chain(("a", lambda x: x + 1), ("b", lambda x: x * 2))
    out = asyncio.run(GraphExecutor(g, hooks=[hooks]).execute_stream({"a": range(300)}))
    assert out == {"b:output": [(x + 1) * 2 for x in range(300)]}
    want = [(p, i) for p in ("a", "b") for i in range(300)]
    assert sorted(hooks.started) == want and sorted(hooks.ended) == want
