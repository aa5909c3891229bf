"""Custom processors: a BaseProcessor subclass, an AsyncProcessor, and a class that registers
itself with ProcessorMeta so that configs can name it.

Run: python examples/custom_processors.py
"""

import asyncio
from typing import Any

from mpipe import (
    AsyncProcessor,
    BaseProcessor,
    ConfigLoader,
    GraphExecutor,
    ProcessingGraph,
    ProcessorMeta,
    global_registry,
)


class RunningTotal(BaseProcessor):
    """Keeps state between firings: the sum of everything seen so far."""

    async def initialize(self) -> None:
        self.total = 0

    async def process_data(self, input_data: dict[str, Any]) -> Any:
        self.total += input_data["input"]
        return self.total


class SlowLookup(AsyncProcessor):
    """Firings overlap (up to max_concurrent at once); outputs still leave in input order."""

    async def process_data(self, input_data: dict[str, Any]) -> Any:
        await asyncio.sleep(0.001 * (5 - input_data["input"] % 5))
        return input_data["input"] * 10


class Clamp(BaseProcessor, metaclass=ProcessorMeta):
    """Limits numbers to [low, high]; registered as "clamp" for configs."""

    def __init__(
        self, processor_id: str | None = None, low: float = 0, high: float = 1, **config: Any
    ):
        super().__init__(processor_id, **config)
        self.low, self.high = low, high

    @classmethod
    def get_processor_metadata(cls) -> dict[str, Any]:
        return {"name": "clamp", "description": "Limits numbers to [low, high]", "version": "1.0"}

    async def process_data(self, input_data: dict[str, Any]) -> Any:
        return min(max(input_data["input"], self.low), self.high)


graph = ProcessingGraph("custom")
lookup = SlowLookup("lookup", max_concurrent=4)
total = RunningTotal("total")
for p in (lookup, total):
    p.create_default_pipes()
    graph.add_processor(p)
graph.connect("lookup", "output", "total", "input")
out = asyncio.run(GraphExecutor(graph).execute_stream({"lookup": range(6)}))
print("running totals:", out["total:output"])
assert out["total:output"] == [0, 10, 30, 60, 100, 150]
print("metrics:", total.get_metrics())

print("registered types:", list(global_registry.list_registered_processors()))
config = {
    "graph_id": "clamped",
    "processors": [
        {"processor_id": "clamp", "processor_type": "clamp", "parameters": {"low": 0, "high": 100}},
    ],
}
clamped = ConfigLoader().create_graph_from_config(config)
out = asyncio.run(GraphExecutor(clamped).execute_stream({"clamp": [-5, 50, 500]}))
print("clamped:", out["clamp:output"])
assert out["clamp:output"] == [0, 50, 100]
