"""Processors, their argument shapes, outputs, callbacks and config."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from mpipe import (
    AsyncProcessor,
    BaseProcessor,
    ConfigurationError,
    GraphExecutor,
    ProcessingGraph,
    ProcessorState,
    SimpleProcessor,
)


def single(proc: Any) -> ProcessingGraph:
    g = ProcessingGraph()
    g.add_processor(proc)
    return g


def run(graph: ProcessingGraph, data: Any, **kw: Any) -> dict[str, Any]:
    return asyncio.run(GraphExecutor(graph, **kw).execute(data))


def test_one_input_pipe_gets_the_item_itself() -> None:
    p = SimpleProcessor(lambda x: x * 2, "double")
    p.create_default_pipes()
    assert run(single(p), {"double": 21}) == {"double:output": 42}


def test_several_input_pipes_get_a_dict() -> None:
    p = SimpleProcessor(lambda d: d["a"] - d["b"], "minus")
    p.create_default_pipes(["a", "b"], ["output"])
    assert run(single(p), {"minus": {"a": 5, "b": 3}}) == {"minus:output": 2}
    assert run(single(p), {"minus:a": 10, "minus:b": 1}) == {"minus:output": 9}
    assert run(single(p), {"a": 7, "b": 7}) == {"minus:output": 0}


def test_no_input_pipes_get_the_sources_input() -> None:
    p = SimpleProcessor(lambda x: x + "!", "shout")
    p.create_default_pipes([], ["output"])
    assert run(single(p), "hey") == {"shout:output": "hey!"}


def test_async_function() -> None:
    async def slow_double(x: int) -> int:
        await asyncio.sleep(0)
        return 2 * x

    p = SimpleProcessor(slow_double, "d")
    p.create_default_pipes()
    assert run(single(p), 4) == {"d:output": 8}


def test_generator_yields_one_item_each() -> None:
    def explode(n: int) -> Iterator[int]:
        yield from range(n)

    p = SimpleProcessor(explode, "explode")
    p.create_default_pipes()
    assert run(single(p), 3) == {"explode:output": [0, 1, 2]}


def test_async_generator_yields_one_item_each() -> None:
    async def explode(n: int) -> AsyncIterator[int]:
        for i in range(n):
            await asyncio.sleep(0)
            yield i * 10

    p = SimpleProcessor(explode, "explode")
    p.create_default_pipes()
    assert run(single(p), 3) == {"explode:output": [0, 10, 20]}


def test_multi_output_routing() -> None:
    class Split(BaseProcessor):
        async def process_data(self, input_data: dict[str, Any]) -> Any:
            x = input_data["input"]
            if x == "both":
                return "to every pipe"
            return {"even": x} if x % 2 == 0 else {"odd": x}

    g = ProcessingGraph()
    s = Split("split")
    s.create_default_pipes(["input"], ["even", "odd"])
    g.add_processor(s)
    out = asyncio.run(GraphExecutor(g).execute_stream({"split": [1, 2, 3, 4, "both"]}))
    assert out == {"split:odd": [1, 3, "to every pipe"], "split:even": [2, 4, "to every pipe"]}


def test_dict_with_other_keys_goes_down_every_pipe() -> None:
    p = SimpleProcessor(lambda x: {"not_a_pipe": x}, "p")
    p.create_default_pipes(["input"], ["a", "b"])
    assert run(single(p), 1) == {"p:a": {"not_a_pipe": 1}, "p:b": {"not_a_pipe": 1}}


def test_async_processor_overlaps_but_keeps_input_order() -> None:
    in_flight = 0
    peak = 0

    class Slow(AsyncProcessor):
        async def process_data(self, input_data: dict[str, Any]) -> Any:
            nonlocal in_flight, peak
            in_flight += 1
            peak = max(peak, in_flight)
            x = input_data["input"]
            # Later items finish first: 0 waits longest.
            for _ in range(10 - x):
                await asyncio.sleep(0)
            in_flight -= 1
            return x

    p = Slow("slow", max_concurrent=4)
    p.create_default_pipes()
    out = asyncio.run(GraphExecutor(single(p)).execute_stream({"slow": range(10)}))
    assert out == {"slow:output": list(range(10))}
    assert peak == 4


def test_callbacks_see_each_firing() -> None:
    events: list[tuple[str, Any]] = []
    p = SimpleProcessor(lambda x: 10 // x, "div")
    p.create_default_pipes()
    for event in ("start", "complete", "error"):
        p.add_callback(event, lambda proc, arg, event=event: events.append((event, arg)))
    run(single(p), 2)
    assert events == [("start", {"input": 2}), ("complete", 5)]
    with pytest.raises(ConfigurationError, match="callback event must be one of"):
        p.add_callback("finish", print)
    with pytest.raises(ConfigurationError, match="not callable"):
        p.add_callback("start", 3)  # type: ignore[arg-type]


def test_metrics_and_state() -> None:
    p = SimpleProcessor(lambda x: x, "p")
    p.create_default_pipes()
    assert p.state is ProcessorState.IDLE
    asyncio.run(GraphExecutor(single(p)).execute_stream({"p": range(5)}))
    m = p.get_metrics()
    assert m["firings"] == 5 and m["errors"] == 0 and m["items_out"] == 5
    assert m["state"] == "completed"
    assert p.state is ProcessorState.COMPLETED
    import json

    json.dumps(m)  # JSON-compatible values only


def test_process_by_hand() -> None:
    p = SimpleProcessor(lambda x: x + 1, "p")
    p.create_default_pipes()
    assert asyncio.run(p.process({"input": 1})) == 2
    assert p.get_metrics()["firings"] == 1


def test_lifecycle_hooks_run_once_per_run() -> None:
    calls: list[str] = []

    class Tracked(BaseProcessor):
        async def initialize(self) -> None:
            calls.append("init")

        async def process_data(self, input_data: dict[str, Any]) -> Any:
            calls.append("fire")
            return input_data["input"]

        async def cleanup(self) -> None:
            calls.append("cleanup")

    p = Tracked("t")
    p.create_default_pipes()
    asyncio.run(GraphExecutor(single(p)).execute_stream({"t": [1, 2]}))
    assert calls == ["init", "fire", "fire", "cleanup"]


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"execution": "gpu"}, "execution must be one of inline, thread, process, dask"),
        ({"cpu_bound": "yes"}, "cpu_bound must be true or false"),
        ({"cpu_bound": True, "execution": "thread"}, "cpu_bound=True asks for"),
        ({"timeout": -1}, "timeout must be a positive number"),
        ({"max_concurrent": 0}, "max_concurrent must be a positive integer"),
    ],
)
def test_bad_config_is_named(config: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        SimpleProcessor(lambda x: x, "p", **config)


def test_every_execution_value_is_accepted() -> None:
    for value in ("inline", "thread", "process", "dask"):
        assert SimpleProcessor(lambda x: x, execution=value).execution == value
    assert SimpleProcessor(lambda x: x, cpu_bound=True).execution == "process"


def test_non_callable_function_is_named() -> None:
    with pytest.raises(ConfigurationError, match="SimpleProcessor 'bad': func must be callable"):
        SimpleProcessor("not a function", "bad")  # type: ignore[arg-type]


def test_ids_are_generated_and_unique() -> None:
    a = SimpleProcessor(lambda x: x)
    b = SimpleProcessor(lambda x: x)
    assert a.processor_id != b.processor_id
    assert a.processor_id.startswith("lambda_")
