"""A diamond DAG, drawn, run once, then run over a stream (all stages work at once).

Run: python examples/dag.py
"""

import asyncio

from mpipe import GraphExecutor, create_diamond_pipeline, visualize_graph

graph = create_diamond_pipeline(
    source=("split", lambda text: text.split()),
    left=("count", len),
    right=("longest", lambda words: max(words, key=len)),
    join=("report", lambda d: f"{d['count']} words, longest: {d['longest']}"),
    graph_id="words",
)
print(visualize_graph(graph))
print(visualize_graph(graph, format="mermaid"))
print("levels:", graph.get_execution_order())

executor = GraphExecutor(graph)
print(executor.run({"split": "the quick brown fox jumps"}))

lines = ["a bb ccc", "dddd e", "ffffff gg hhh iiii"]
out = asyncio.run(executor.execute_stream({"split": lines}))
for line in out["report:output"]:
    print(line)
assert out["report:output"][0] == "3 words, longest: ccc"
