"""The two examples of the v2 API's documentation run unchanged through mpipe and through processor_pipeline.v2."""

from __future__ import annotations

import asyncio
import importlib
from types import ModuleType

import pytest


@pytest.fixture(params=["mpipe", "processor_pipeline.v2"])
def api(request: pytest.FixtureRequest) -> ModuleType:
    return importlib.import_module(request.param)


def test_linear_pipeline(api: ModuleType) -> None:
    pipeline = api.create_simple_pipeline(
        [
            ("step1", lambda data: data.upper()),
            ("step2", lambda data: data.strip()),
            ("step3", lambda data: f"Processed: {data}"),
        ]
    )
    result = asyncio.run(api.run_simple_pipeline(pipeline, "  hello world  "))
    assert result == {"step3:output": "Processed: HELLO WORLD"}


def test_two_branch_dag(api: ModuleType) -> None:
    graph = api.ProcessingGraph("my_dag")
    words = api.SimpleProcessor(lambda d: d["text"].upper(), "text_processor")
    words.create_default_pipes(["input"], ["output"])
    numbers = api.SimpleProcessor(lambda d: d["number"] * 2, "number_processor")
    numbers.create_default_pipes(["input"], ["output"])
    join = api.SimpleProcessor(
        lambda d: f"Text: {d['text_input']}, Number: {d['number_input']}", "aggregator"
    )
    join.create_default_pipes(["text_input", "number_input"], ["output"])
    for p in (words, numbers, join):
        graph.add_processor(p)
    graph.connect("text_processor", "output", "aggregator", "text_input")
    graph.connect("number_processor", "output", "aggregator", "number_input")
    result = asyncio.run(
        api.GraphExecutor(graph).execute(
            {"text_processor": {"text": "hello"}, "number_processor": {"number": 5}}
        )
    )
    assert result == {"aggregator:output": "Text: HELLO, Number: 10"}


def test_base_processor_subclass_reads_input_dict(api: ModuleType) -> None:
    class Summer(api.BaseProcessor):  # type: ignore[name-defined,misc]
        async def process_data(self, input_data: dict[str, int]) -> int:
            return input_data["a"] + input_data["b"] + self.config["bias"]

    graph = api.ProcessingGraph()
    p = Summer("sum", bias=100)
    p.create_default_pipes(["a", "b"], ["output"])
    graph.add_processor(p)
    result = asyncio.run(api.GraphExecutor(graph).execute({"sum": {"a": 1, "b": 2}}))
    assert result == {"sum:output": 103}


def test_custom_error_strategy_subclass(api: ModuleType) -> None:
    seen: list[tuple[str, int]] = []

    class SkipValueErrors(api.ErrorStrategy):  # type: ignore[name-defined,misc]
        async def handle_error(self, error, processor_id, context):  # type: ignore[no-untyped-def]
            seen.append((processor_id, context["attempt"]))
            return isinstance(error, ValueError)

    def picky(x: int) -> int:
        if x % 2:
            raise ValueError(f"odd {x}")
        return x

    graph = api.create_simple_pipeline([("picky", picky)])
    graph.error_strategy = SkipValueErrors()
    out = asyncio.run(api.GraphExecutor(graph).execute_stream({"picky": range(6)}))
    assert out == {"picky:output": [0, 2, 4]}
    assert seen == [("picky", 1)] * 3
