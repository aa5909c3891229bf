"""Loading configs: files, dicts, every section, and every problem named by its field path."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cfg_helpers  # noqa: F401  (registers the "scale" processor type)
import pytest
import yaml

from mpipe import (
    CheckpointManager,
    ConfigLoader,
    ConfigurationError,
    ConnectionConfig,
    GraphConfig,
    GraphExecutor,
    Monitor,
    ProcessorConfig,
    RetryStrategy,
    SkipStrategy,
)
from mpipe._config import load_schema

CHAIN: dict[str, Any] = {
    "graph_id": "chain",
    "processors": [
        {
            "processor_id": "strip",
            "processor_type": "text_transformer",
            "parameters": {"transformation": "strip"},
        },
        {
            "processor_id": "upper",
            "processor_type": "text_transformer",
            "parameters": {"transformation": "uppercase"},
        },
    ],
    "connections": [
        {
            "from_processor": "strip",
            "from_output": "output",
            "to_processor": "upper",
            "to_input": "input",
        }
    ],
}


def problems_of(exc: pytest.ExceptionInfo[ConfigurationError]) -> dict[str, str]:
    return {p["field"]: p["message"] for p in exc.value.details["problems"]}


def test_load_yaml_and_json_files_give_the_same_config(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(CHAIN))
    (tmp_path / "c.json").write_text(json.dumps(CHAIN))
    (tmp_path / "c.yml").write_text(yaml.safe_dump(CHAIN))
    loader = ConfigLoader()
    configs = [loader.load_from_file(tmp_path / n) for n in ("c.yaml", "c.json", "c.yml")]
    assert configs[0].to_dict() == configs[1].to_dict() == configs[2].to_dict()
    assert configs[0].source == str(tmp_path / "c.yaml")
    graph = loader.create_graph_from_config(configs[0])
    assert GraphExecutor(graph).run({"strip": "  hi  "}) == {"upper:output": "HI"}


def test_load_from_dict_fills_defaults_and_round_trips() -> None:
    cfg = ConfigLoader().load_from_dict(
        {"processors": [{"processor_id": "a", "processor_type": "aggregator"}]}
    )
    assert cfg.graph_id is None
    (p,) = cfg.processors
    assert (p.parameters, p.input_pipes, p.output_pipes) == ({}, ["input"], ["output"])
    assert (p.execution, p.timeout, p.max_concurrent, p.error_strategy) == (None,) * 4
    assert cfg.connections == [] and cfg.executor == {} and cfg.monitoring == {}
    again = ConfigLoader().load_from_dict(cfg.to_dict())
    assert again == cfg


def test_every_section_is_carried_into_the_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # the checkpoint folder "ckpt" is relative to the current folder
    data = {
        **CHAIN,
        "description": "all sections",
        "error_strategy": {"type": "skip", "max_skips": 3},
        "executor": {"backend": "thread", "max_workers": 2},
        "monitoring": {"enabled": True, "max_events": 50, "log_level": "debug"},
        "checkpoints": {"enabled": True, "storage_path": "ckpt", "max_checkpoints": 5},
    }
    data["processors"] = [
        {
            **data["processors"][0],
            "execution": "thread",
            "timeout": 2,
            "max_concurrent": 3,
            "error_strategy": "retry",
        },
        data["processors"][1],
    ]
    data["connections"] = [{**data["connections"][0], "max_size": 7, "max_bytes": 4096}]
    loader = ConfigLoader()
    cfg = loader.load_from_dict(data)
    assert cfg.executor == {"backend": "thread", "max_workers": 2}
    assert cfg.monitoring == {"enabled": True, "max_events": 50, "log_level": "debug"}
    assert cfg.checkpoints == {"enabled": True, "storage_path": "ckpt", "max_checkpoints": 5}
    first = cfg.processors[0]
    assert (first.execution, first.timeout, first.max_concurrent) == ("thread", 2.0, 3)
    assert cfg.connections[0].max_size == 7
    assert cfg.connections[0].max_bytes == 4096
    assert cfg.connections[0].to_dict()["max_bytes"] == 4096

    graph = loader.create_graph_from_config(cfg)
    assert isinstance(graph.error_strategy, SkipStrategy) and graph.error_strategy.max_skips == 3
    assert isinstance(graph.error_strategies["strip"], RetryStrategy)
    strip = graph.get_processor("strip")
    assert (strip.execution, strip.timeout, strip.max_concurrent) == ("thread", 2.0, 3)  # type: ignore[attr-defined]
    assert graph.pipes["strip:output->upper:input"].max_size == 7
    assert graph.pipes["strip:output->upper:input"].max_bytes == 4096

    executor = loader.create_executor_from_config(cfg, graph)
    assert (executor.backend, executor.max_workers) == ("thread", 2)
    assert executor.run({"strip": " x "}) == {"upper:output": "X"}
    assert isinstance(executor.monitor, Monitor) and executor.monitor.max_events == 50
    assert isinstance(executor.checkpoint_manager, CheckpointManager)
    assert len(list((tmp_path / "ckpt").glob("*.arrow"))) == 3  # the run's manifest, 2 outputs
    overridden = loader.create_executor_from_config(cfg, graph, backend="inline", max_workers=None)
    assert (overridden.backend, overridden.max_workers) == ("inline", 2)


def test_dataclasses_build_a_graph_directly() -> None:
    cfg = GraphConfig(
        graph_id="by_hand",
        processors=[
            ProcessorConfig("a", "simple", {"function": "passthrough"}),
            ProcessorConfig("b", "simple", {"function": "to_string"}),
        ],
        connections=[ConnectionConfig("a", "output", "b", "input")],
    )
    graph = ConfigLoader().create_graph_from_config(cfg)
    assert graph.graph_id == "by_hand"
    assert GraphExecutor(graph).run({"a": 5}) == {"b:output": "5"}


def test_hand_made_dataclass_is_checked_like_a_file() -> None:
    cfg = GraphConfig(processors=[ProcessorConfig("a", "simple", {"function": 3})])
    with pytest.raises(ConfigurationError) as exc:
        ConfigLoader().create_graph_from_config(cfg)
    assert "processors[0].parameters.function" in problems_of(exc)


def _with(**changes: Any) -> dict[str, Any]:
    data = json.loads(json.dumps(CHAIN))
    for path, value in changes.items():
        target: Any = data
        keys = path.split("__")
        for k in keys[:-1]:
            target = target[int(k)] if k.isdigit() else target[k]
        last = keys[-1]
        if value is _DELETE:
            del target[int(last) if last.isdigit() else last]
        elif last.isdigit():
            target[int(last)] = value
        else:
            target[last] = value
    return data


_DELETE = object()

BAD_CONFIGS = [
    # (config, field path, words the message must contain)
    (_with(processors__0__processor_type=7), "processors[0].processor_type", "expected a string"),
    (
        _with(processors__1__parameters={"transformation": "upper"}),
        "processors[1].parameters.transformation",
        "expected one of uppercase",
    ),
    (
        _with(processors__1__parameters={"transformation": "strip", "extra": 1}),
        "processors[1].parameters.extra",
        "unknown field",
    ),
    (_with(processors__0__processor_id=_DELETE), "processors[0].processor_id", "required"),
    (_with(processors__0__timeout=0), "processors[0].timeout", "> 0"),
    (_with(processors__0__timeout="5"), "processors[0].timeout", "expected a number"),
    (_with(processors__0__execution="gpu"), "processors[0].execution", "inline, thread"),
    (_with(processors__0__max_concurrent=0), "processors[0].max_concurrent", ">= 1"),
    (_with(processors__0__input_pipes=["a", "a"]), "processors[0].input_pipes", "repeated"),
    (_with(processors__0__input_pipes="input"), "processors[0].input_pipes", "expected a list"),
    (_with(processors__0__paramters={}), "processors[0].paramters", "unknown field"),
    (_with(processors__1__processor_id="strip"), "processors[1].processor_id", "duplicate"),
    (_with(connections__0__to_processor="nope"), "connections[0].to_processor", "no processor"),
    (_with(connections__0__from_output="out"), "connections[0].from_output", "no output pipe"),
    (_with(connections__0__to_input="in"), "connections[0].to_input", "no input pipe"),
    (_with(connections__0__max_size=0), "connections[0].max_size", ">= 1"),
    (_with(connections__0__max_bytes=0), "connections[0].max_bytes", ">= 1"),
    (_with(connections__0__max_bytes="64MiB"), "connections[0].max_bytes", "integer"),
    (_with(connections__0__to_input=_DELETE), "connections[0].to_input", "required"),
    (_with(processors=[]), "processors", "at least 1"),
    (_with(processors=_DELETE), "processors", "required"),
    (_with(graph_id=""), "graph_id", "non-empty"),
    (_with(surprise=1), "surprise", "unknown field"),
    (_with(error_strategy="explode"), "error_strategy", "expected one of skip"),
    (
        _with(error_strategy={"type": "retry", "max_retries": -1}),
        "error_strategy.max_retries",
        ">= 0",
    ),
    (_with(error_strategy={"type": "retry", "tries": 1}), "error_strategy.tries", "unknown field"),
    (_with(error_strategy={"max_retries": 1}), "error_strategy.type", "required"),
    (
        _with(error_strategy={"type": "retry", "backoff_multiplier": 0.5}),
        "error_strategy.backoff_multiplier",
        ">= 1",
    ),
    (_with(error_strategy={"type": "composite"}), "error_strategy.strategies", "required"),
    (
        _with(error_strategy={"type": "composite", "strategies": ["nope"]}),
        "error_strategy.strategies[0]",
        "expected one of",
    ),
    (
        _with(error_strategy={"type": "skip", "skip_callback": "not a ref"}),
        "error_strategy.skip_callback",
        "'module:attr'",
    ),
    (
        _with(error_strategy={"type": "circuit_breaker", "failure_threshold": 0}),
        "error_strategy.failure_threshold",
        ">= 1",
    ),
    (_with(executor={"backend": "gpu"}), "executor.backend", "expected one of inline"),
    (_with(executor={"max_workers": 0}), "executor.max_workers", ">= 1"),
    (_with(executor={"workers": 2}), "executor.workers", "unknown field"),
    (_with(monitoring={"log_level": "loud"}), "monitoring.log_level", "log level"),
    (_with(monitoring={"max_events": "many"}), "monitoring.max_events", "expected an integer"),
    (_with(checkpoints={"allow_pickle": "yes"}), "checkpoints.allow_pickle", "true or false"),
    (_with(checkpoints={"storage_path": 3}), "checkpoints.storage_path", "a string or null"),
    (_with(processors__0=[1, 2]), "processors[0]", "expected a mapping"),
]


@pytest.mark.parametrize(("data", "field", "words"), BAD_CONFIGS)
def test_bad_config_names_the_field(data: dict[str, Any], field: str, words: str) -> None:
    with pytest.raises(ConfigurationError) as exc:
        ConfigLoader().create_graph_from_config(data)
    problems = problems_of(exc)
    assert field in problems, problems
    assert words in problems[field]
    assert f"{field}: " in str(exc.value)


def test_every_problem_is_reported_at_once() -> None:
    data = _with(
        processors__0__processor_type=7,
        processors__1__parameters={"transformation": "upper"},
        connections__0__to_processor="nope",
        executor={"backend": "gpu"},
    )
    with pytest.raises(ConfigurationError) as exc:
        ConfigLoader().load_from_dict(data)
    assert set(problems_of(exc)) == {
        "processors[0].processor_type",
        "processors[1].parameters.transformation",
        "connections[0].to_processor",
        "executor.backend",
    }
    assert "4 problems" in str(exc.value)
    assert exc.value.field == "processors[0].processor_type"  # the first, in file order
    fields = list(problems_of(exc))
    assert fields.index("processors[1].parameters.transformation") < fields.index(
        "executor.backend"
    )


def test_build_problems_are_reported_at_once() -> None:
    data = {
        "processors": [
            {"processor_id": "a", "processor_type": "cfg_helpers:NoSuchClass"},
            {"processor_id": "b", "processor_type": "simple", "parameters": {"function": "nope"}},
            {"processor_id": "c", "processor_type": "cfg_helpers:NotAProcessor"},
            {"processor_id": "d", "processor_type": "scale", "parameters": {"factor": "x"}},
            {
                "processor_id": "e",
                "processor_type": "simple",
                "parameters": {"function": "cfg_helpers:not_callable"},
            },
        ],
        "error_strategy": {"type": "retry", "retry_on": ["NoSuchError"]},
    }
    with pytest.raises(ConfigurationError) as exc:
        ConfigLoader().create_graph_from_config(data)
    problems = problems_of(exc)
    assert "has no attribute 'NoSuchClass'" in problems["processors[0].processor_type"]
    assert "unknown function 'nope'" in problems["processors[1].parameters.function"]
    assert "not a processor class" in problems["processors[2].processor_type"]
    assert "factor must be a number" in problems["processors[3].parameters.factor"]
    assert "not callable" in problems["processors[4].parameters.function"]
    assert "exception class" in problems["error_strategy.retry_on[0]"]


def test_unknown_types_are_reported_when_loading_with_the_other_problems() -> None:
    data = _with(processors__0__processor_type="no_such_type", executor={"backend": "gpu"})
    with pytest.raises(ConfigurationError) as exc:
        ConfigLoader().load_from_dict(data)
    problems = problems_of(exc)
    assert "unknown processor type 'no_such_type'" in problems["processors[0].processor_type"]
    assert "text_transformer" in problems["processors[0].processor_type"]
    assert "executor.backend" in problems


def test_a_cycle_is_a_configuration_error() -> None:
    data = _with()
    data["connections"].append(
        {
            "from_processor": "upper",
            "from_output": "output",
            "to_processor": "strip",
            "to_input": "input",
        }
    )
    with pytest.raises(ConfigurationError) as exc:
        ConfigLoader().create_graph_from_config(data)
    assert "cycle" in problems_of(exc)["connections"]


def test_an_input_fed_twice_is_named() -> None:
    data = _with()
    data["processors"].append(
        {
            "processor_id": "other",
            "processor_type": "simple",
            "parameters": {"function": "passthrough"},
        }
    )
    data["connections"].append(
        {
            "from_processor": "other",
            "from_output": "output",
            "to_processor": "upper",
            "to_input": "input",
        }
    )
    with pytest.raises(ConfigurationError) as exc:
        ConfigLoader().load_from_dict(data)
    assert "already fed by connections[0]" in problems_of(exc)["connections[1].to_input"]


@pytest.mark.parametrize(
    ("name", "content", "words"),
    [
        ("c.yaml", "processors: [\n  - {processor_id: a\n", "malformed YAML at line"),
        ("c.json", '{"processors": [}', "malformed JSON"),
        ("c.yaml", "!!python/object/apply:os.system ['true']\n", "YAML tag not allowed"),
        ("c.yaml", "processors: !!python/name:os.system\n", "YAML tag not allowed"),
        ("c.yaml", "- just\n- a list\n", "must be a mapping"),
        (
            "c.yaml",
            "processors:\n  - processor_id: a\n    processor_id: b\n",
            "malformed YAML at line 3, column 5: key 'processor_id' appears twice",
        ),
        ("c.yaml", "", "must be a mapping"),
        ("c.toml", "processors = []", "unsupported file type '.toml'"),
    ],
)
def test_bad_files_are_configuration_errors(
    tmp_path: Path, name: str, content: str, words: str
) -> None:
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(ConfigurationError, match=words):
        ConfigLoader().load_from_file(path)


def test_unreadable_files_are_configuration_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"cannot read config .*No such file"):
        ConfigLoader().load_from_file(tmp_path / "missing.yaml")
    (tmp_path / "dir.yaml").mkdir()
    with pytest.raises(ConfigurationError, match="cannot read config"):
        ConfigLoader().load_from_file(tmp_path / "dir.yaml")


def test_the_published_schema_is_a_valid_json_schema_and_ships_in_the_package() -> None:
    import jsonschema

    schema = load_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$defs"]["processor"]["required"] == ["processor_id", "processor_type"]
    shipped = Path(__file__).parents[2] / "mpipe" / "config.schema.json"
    assert json.loads(shipped.read_text()) == schema
    # Every example config validates against the published schema as an editor would check it.
    examples = sorted((Path(__file__).parents[2] / "examples").glob("*.y*ml"))
    assert examples
    for path in examples:
        jsonschema.validate(yaml.safe_load(path.read_text()), schema)
