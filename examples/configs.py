"""Pipelines as files: load a YAML and a JSON config, run them, and see how a broken config is
reported (every problem at once, each with its field path).

Run: python examples/configs.py
The same from the command line:
    mpipe validate examples/text_pipeline.yaml
    mpipe run examples/text_pipeline.yaml --input '{"clean": "  hello config world  "}'
    mpipe viz examples/numbers_pipeline.json --format mermaid
"""

from pathlib import Path

from mpipe import ConfigLoader, ConfigurationError

here = Path(__file__).parent
loader = ConfigLoader()

config = loader.load_from_file(here / "text_pipeline.yaml")
executor = loader.create_executor_from_config(config)
result = executor.run({"clean": "  hello config world  "})
print(result)
assert result == {"report:output": {"text": "HELLO CONFIG WORLD", "length": 18}}

config = loader.load_from_file(here / "numbers_pipeline.json")
graph = loader.create_graph_from_config(config)
print(graph.get_graph_info()["execution_order"])
result = loader.create_executor_from_config(config, graph).run([1, "a", 2.5, None, 4])
print(result)
assert result == {"summary:output": {"total": 7.5, "count": 3}}

broken = config.to_dict()
broken["processors"][0]["parameters"]["condition"] = "evens_only"
broken["processors"][1]["processor_type"] = "no_such_type"
broken["connections"][0]["to_processor"] = "totl"
try:
    loader.create_graph_from_config(broken)
except ConfigurationError as exc:
    for problem in exc.details["problems"]:
        print(f"  {problem['field']}: {problem['message']}")
