"""Quick start: a linear pipeline and a small DAG.

Run: python examples/quick_start.py
"""

import asyncio

from mpipe import (
    GraphExecutor,
    ProcessingGraph,
    SimpleProcessor,
    create_simple_pipeline,
    run_simple_pipeline,
)

pipeline = create_simple_pipeline(
    [
        ("step1", lambda data: data.upper()),
        ("step2", lambda data: data.strip()),
        ("step3", lambda data: f"Processed: {data}"),
    ]
)
result = asyncio.run(run_simple_pipeline(pipeline, "  hello world  "))
print(result)
assert result == {"step3:output": "Processed: HELLO WORLD"}

graph = ProcessingGraph("my_dag")
words = SimpleProcessor(lambda d: d["text"].upper(), "text_processor")
words.create_default_pipes(["input"], ["output"])
numbers = SimpleProcessor(lambda d: d["number"] * 2, "number_processor")
numbers.create_default_pipes(["input"], ["output"])
join = SimpleProcessor(
    lambda d: f"Text: {d['text_input']}, Number: {d['number_input']}", "aggregator"
)
join.create_default_pipes(["text_input", "number_input"], ["output"])
for p in (words, numbers, join):
    graph.add_processor(p)
graph.connect("text_processor", "output", "aggregator", "text_input")
graph.connect("number_processor", "output", "aggregator", "number_input")
result = asyncio.run(
    GraphExecutor(graph).execute(
        {"text_processor": {"text": "hello"}, "number_processor": {"number": 5}}
    )
)
print(result)
assert result == {"aggregator:output": "Text: HELLO, Number: 10"}
