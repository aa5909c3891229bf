"""The v2 config and helper names at work: config dataclasses, files, the example config, the
pipeline shapes, and the debug, validate and profile helpers."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from processor_pipeline.v2.config.loader import (
    ConfigLoader,
    ConnectionConfig,
    GraphConfig,
    ProcessorConfig,
    create_example_config,
    load_graph_from_file,
)
from processor_pipeline.v2.core.checkpoint import CheckpointManager
from processor_pipeline.v2.core.errors import ConfigurationError
from processor_pipeline.v2.core.graph import GraphExecutor, ProcessingGraph
from processor_pipeline.v2.core.interfaces import ProcessorState
from processor_pipeline.v2.core.processor import SimpleProcessor
from processor_pipeline.v2.utils.helpers import (
    create_diamond_pipeline,
    create_parallel_pipeline,
    debug_processor_execution,
    profile_graph_execution,
    run_simple_pipeline,
    validate_and_fix_graph,
)

from ._graphs import chain, inc

# -- configs ------------------------------------------------------------------------------------


def test_config_dataclasses_in_the_v2_field_order() -> None:
    procs = [
        ProcessorConfig("up", "text_transformer", {"transformation": "uppercase"}, ["in"], ["out"]),
        ProcessorConfig("rev", "text_transformer", {"transformation": "reverse"}, ["in"], ["out"]),
    ]
    conns = [ConnectionConfig("up", "out", "rev", "in")]
    cfg = GraphConfig("g", procs, conns, {"type": "skip"}, {"enabled": False}, {"enabled": False})
    assert (cfg.monitoring, cfg.checkpoints) == ({"enabled": False}, {"enabled": False})
    graph = ConfigLoader().create_graph_from_config(cfg)
    assert asyncio.run(GraphExecutor(graph).execute("abc")) == {"rev:out": "CBA"}


def test_example_config_loads_and_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    cfg = create_example_config()
    assert cfg["graph_id"] == "example_processing_graph"
    assert [p["processor_id"] for p in cfg["processors"]] == [
        "text_input",
        "text_transformer",
        "text_filter",
    ]
    assert cfg["monitoring"] == {"enabled": True, "log_level": "info", "max_events": 1000}
    assert cfg["checkpoints"]["storage_path"] == "./checkpoints"
    assert cfg["error_strategy"]["strategies"][1] == {"type": "skip", "max_skips": 5}
    assert create_example_config() == cfg and create_example_config() is not cfg
    path = tmp_path / "example.json"
    path.write_text(json.dumps(cfg))
    graph = load_graph_from_file(path)
    assert graph.get_execution_order() == [["text_input"], ["text_transformer"], ["text_filter"]]
    assert asyncio.run(GraphExecutor(graph).execute("hello")) == {"text_filter:output": "HELLO"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["example.json"]  # no ./checkpoints


def test_load_graph_from_yaml_and_its_errors(tmp_path: Path) -> None:
    path = tmp_path / "g.yml"
    path.write_text(
        yaml.safe_dump(
            {
                "processors": [
                    {
                        "processor_id": "a",
                        "processor_type": "simple",
                        "parameters": {"function": "length"},
                    },
                    {
                        "processor_id": "b",
                        "processor_type": "aggregator",
                        "parameters": {"aggregation": "list"},
                    },
                ],
                "connections": [
                    {
                        "from_processor": "a",
                        "from_output": "output",
                        "to_processor": "b",
                        "to_input": "input",
                    }
                ],
            }
        )
    )
    graph = load_graph_from_file(str(path))
    assert isinstance(graph, ProcessingGraph)
    assert asyncio.run(GraphExecutor(graph).execute("four")) == {"b:output": [4]}
    with pytest.raises(ConfigurationError, match="cannot read config"):
        load_graph_from_file(tmp_path / "missing.yaml")
    (tmp_path / "bad.yaml").write_text("processors: [")
    with pytest.raises(ConfigurationError, match="malformed YAML"):
        load_graph_from_file(tmp_path / "bad.yaml")
    (tmp_path / "g.txt").write_text("{}")
    with pytest.raises(ConfigurationError, match="unsupported file type"):
        load_graph_from_file(tmp_path / "g.txt")


# -- pipeline shapes ---------------------------------------------------------------------------


def test_parallel_pipeline_feeds_every_branch_and_aggregates_in_order() -> None:
    graph = create_parallel_pipeline(
        [("up", str.upper), ("len", len), ("rev", lambda s: s[::-1])],
        lambda d: f"{d['input_0']}/{d['input_1']}/{d['input_2']}",
    )
    assert sorted(graph.nodes) == ["aggregator", "len", "rev", "source", "up"]
    assert list(graph.get_processor("aggregator").input_pipes) == ["input_0", "input_1", "input_2"]
    result = asyncio.run(run_simple_pipeline(graph, "abc"))
    assert result == {"aggregator:output": "ABC/3/cba"}
    plain = create_parallel_pipeline([("up", str.upper), ("len", len)], graph_id="p")
    assert asyncio.run(GraphExecutor(plain).execute({"source": "ab"})) == {
        "up:output": "AB",
        "len:output": 2,
    }
    with pytest.raises(ConfigurationError, match="not both"):
        create_parallel_pipeline([("a", len)], aggregator=dict, combine=dict)


def test_diamond_pipeline_from_functions_routes_a_dict_by_key() -> None:
    graph = create_diamond_pipeline(
        lambda text: {"left": text.upper(), "right": len(text)},
        lambda s: s + "!",
        lambda n: n * 10,
        lambda d: (d["left"], d["right"]),
    )
    assert graph.get_execution_order() == [
        ["splitter"],
        ["left_branch", "right_branch"],
        ["merger"],
    ]
    assert asyncio.run(run_simple_pipeline(graph, "ab")) == {"merger:output": ("AB!", 20)}
    both = create_diamond_pipeline(str.strip, str.upper, str.lower, lambda d: d)
    assert asyncio.run(run_simple_pipeline(both, " Ab ")) == {
        "merger:output": {"left": "AB", "right": "ab"}
    }
    with pytest.raises(ConfigurationError, match="not a mix"):
        create_diamond_pipeline(str.strip, ("l", str.upper), str.lower, dict)
    with pytest.raises(ConfigurationError, match="exactly once"):
        create_diamond_pipeline(str.strip, str.upper, str.lower, dict, source=str.strip)


# -- debug, validate, profile ---------------------------------------------------------------------


def test_debug_processor_execution_runs_it_and_checkpoints_in_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    proc = SimpleProcessor(str.upper, "up")
    proc.create_default_pipes()
    report = debug_processor_execution(proc, "hello")
    assert report["execution_successful"] and report["output"] == "HELLO"
    assert (report["processor_id"], report["input_data"]) == ("up", "hello")
    assert report["initial_state"] == report["final_state"] == ProcessorState.IDLE.value
    assert report["metrics_before"]["firings"] == 0 and report["metrics_after"]["firings"] == 1
    manager = report["checkpoint_manager"]
    assert manager.storage_path is None
    assert manager.restore_checkpoint(report["checkpoint_id"]) == "hello"
    assert list(tmp_path.iterdir()) == []  # nothing written to the current directory


def test_debug_processor_execution_reports_a_failure_and_uses_a_given_manager(
    tmp_path: Path,
) -> None:
    def boom(x: Any) -> Any:
        raise ValueError("broken step")

    proc = SimpleProcessor(boom, "boom")
    proc.create_default_pipes(["a", "b"], ["output"])
    manager = CheckpointManager(tmp_path)
    report = debug_processor_execution(proc, {"a": 1, "b": 2}, checkpoint_manager=manager)
    assert not report["execution_successful"] and "output" not in report
    assert report["error"] == {"type": "ValueError", "message": "broken step"}
    assert manager.list_checkpoints()[0]["checkpoint_id"] == report["checkpoint_id"]
    quiet = debug_processor_execution(proc, {"a": 1, "b": 2}, create_checkpoint=False)
    assert "checkpoint_id" not in quiet and "checkpoint_manager" not in quiet
    with pytest.raises(ConfigurationError, match="input pipes"):
        debug_processor_execution(proc, 5)


def test_debug_processor_execution_inside_a_running_loop() -> None:
    def gen(n: int) -> Any:
        yield from range(n)

    proc = SimpleProcessor(gen, "gen")

    async def main() -> dict[str, Any]:
        return debug_processor_execution(proc, 3, create_checkpoint=False)

    assert asyncio.run(main())["output"] == [0, 1, 2]


def test_validate_and_fix_graph() -> None:
    assert validate_and_fix_graph(chain(("a", inc), ("b", inc))) == (True, [], [])
    graph = chain(("a", inc), ("b", inc), ("c", inc))
    graph.connect("c", "output", "a", "input")  # a cycle
    graph.connect("a", "result", "c", "side")  # pipes nobody declares
    ok, errors, hints = validate_and_fix_graph(graph)
    assert not ok and len(errors) == len(hints) == 3
    by_error = dict(zip(errors, hints, strict=True))
    assert any("cycle" in e and "break the cycle" in h for e, h in by_error.items())
    assert any("no output pipe 'result'" in e and "output pipe" in h for e, h in by_error.items())
    assert any("no input pipe 'side'" in e and "input pipe" in h for e, h in by_error.items())
    fan_in = chain(("a", inc), ("b", inc))
    extra = SimpleProcessor(inc, "x")
    extra.create_default_pipes()
    fan_in.add_processor(extra)
    fan_in.connect("x", "output", "b", "input")
    ok, errors, hints = validate_and_fix_graph(fan_in)
    assert not ok and "fed by 2" in errors[0] and "exactly one connection" in hints[0]
    assert graph.connections[-1] == ("a", "result", "c", "side")  # nothing repaired


def test_profile_graph_execution() -> None:
    graph = chain(("a", inc), ("b", inc))
    profile = profile_graph_execution(graph, 1, iterations=3)
    assert profile["iterations"] == 3 and len(profile["execution_results"]) == 3
    assert profile["average_time"] == pytest.approx(profile["total_time"] / 3)
    first = profile["execution_results"][0]
    assert first["success"] and first["result_keys"] == ["b:output"] and first["iteration"] == 0
    times = profile["processor_times"]
    assert set(times) == {"a", "b"} and times["a"]["items_processed"] == 3
    assert times["b"]["average_per_item"] == pytest.approx(times["b"]["total_processing_time"] / 3)
    failing = profile_graph_execution(chain(("a", lambda x: 1 / x)), 0)
    assert not failing["execution_results"][0]["success"]
    assert "ZeroDivisionError" in failing["execution_results"][0]["error"]
    with pytest.raises(ConfigurationError, match="iterations"):
        profile_graph_execution(graph, 1, iterations=0)

    async def inside() -> None:
        profile_graph_execution(graph, 1)

    with pytest.raises(RuntimeError, match="running"):
        asyncio.run(inside())
