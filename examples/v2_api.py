"""Code written for the processor pipeline v2 API, run by mpipe as is: imports from the v2
module paths, a tap on each step's output pipe, an alert on every processor error, a generator
processor, and the helpers that debug, validate and profile a graph.

Run: python examples/v2_api.py
"""

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from processor_pipeline.v2.core.graph import GraphExecutor, ProcessingGraph
from processor_pipeline.v2.core.monitor import AlertManager, EventType, Monitor
from processor_pipeline.v2.core.processor import GeneratorProcessor, SimpleProcessor
from processor_pipeline.v2.execution.strategies import SkipStrategy
from processor_pipeline.v2.utils.helpers import (
    debug_processor_execution,
    profile_graph_execution,
    validate_and_fix_graph,
)


class Lines(GeneratorProcessor):
    """Yields the lines of a text, one output item each."""

    async def _process_generator(self, input_data: Any) -> AsyncIterator[str]:
        for line in input_data["input"].splitlines():
            yield line


def parse(line: str) -> int:
    return int(line)  # "x" fails: the skip strategy drops that line


graph = ProcessingGraph("v2_style")
steps = [
    Lines("lines"),
    SimpleProcessor(parse, "parse"),
    SimpleProcessor(lambda n: n * n, "square"),
]
for step in steps:
    step.create_default_pipes(["input"], ["output"])
    graph.add_processor(step)
graph.connect("lines", "output", "parse", "input")
graph.connect("parse", "output", "square", "input")
graph.set_error_strategy("parse", SkipStrategy())

# A tap on each processor's declared output pipe, the way the v2 docs tap pipes.
seen: dict[str, list[Any]] = {}
monitor = Monitor(log_level="critical")
for step in steps:
    monitor.tap_pipe(step.output_pipes["output"], seen.setdefault(step.processor_id, []).append)

# An alert rule over events, written the v2 way.
alerts = AlertManager(monitor)
alerts.add_alert_rule(
    "processor_error",
    condition=lambda event: event.event_type == EventType.PROCESSOR_ERROR,
    action=lambda event: print(f"alert: {event.processor_id} failed: {event.data['error']}"),
)

result = asyncio.run(GraphExecutor(graph, monitor).execute({"lines": "1\n2\nx\n4"}))
print("result:", result)
for pid, items in seen.items():
    print(f"tap on {pid}:output saw {items}")
assert result == {"square:output": [1, 4, 16]}

report = debug_processor_execution(graph.get_processor("parse"), "7")
print("debug parse('7'):", report["execution_successful"], report["output"])
print("valid:", validate_and_fix_graph(graph))
profile = profile_graph_execution(graph, {"lines": "3\n5"}, iterations=3)
print(f"profiled {profile['iterations']} runs, {profile['average_time'] * 1e3:.2f} ms each")
