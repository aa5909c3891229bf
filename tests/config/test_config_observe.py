"""The ``monitoring`` and ``checkpoints`` sections: monitors, alert rules, checkpoint managers."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import cfg_helpers
import pytest
import yaml

from mpipe import (
    AlertManager,
    CheckpointManager,
    ConfigLoader,
    ConfigurationError,
    LogLevel,
    Monitor,
)

TWO_STEPS: dict[str, Any] = {
    "graph_id": "two",
    "processors": [
        {
            "processor_id": "first",
            "processor_type": "simple",
            "parameters": {"function": "cfg_helpers:counted"},
        },
        {
            "processor_id": "second",
            "processor_type": "simple",
            "parameters": {"function": "cfg_helpers:fail_when_armed"},
        },
    ],
    "connections": [
        {
            "from_processor": "first",
            "from_output": "output",
            "to_processor": "second",
            "to_input": "input",
        }
    ],
}


def with_sections(**sections: Any) -> dict[str, Any]:
    return {**json.loads(json.dumps(TWO_STEPS)), **sections}


def problems_of(exc: pytest.ExceptionInfo[ConfigurationError]) -> dict[str, str]:
    return {p["field"]: p["message"] for p in exc.value.details["problems"]}


@pytest.fixture(autouse=True)
def _reset_helpers() -> None:
    cfg_helpers.ALERTS.clear()
    cfg_helpers.CALLS.clear()
    cfg_helpers.ARMED[0] = False


# -- the monitor ---------------------------------------------------------------------------


def test_monitor_from_a_section_takes_its_settings() -> None:
    monitor = ConfigLoader().create_monitor_from_config(
        {"max_events": 7, "log_level": "warning", "sample_interval": 2}
    )
    assert isinstance(monitor, Monitor)
    assert monitor.max_events == 7
    assert monitor.log_level is LogLevel.WARNING
    assert monitor._ticker.interval == 2.0
    assert monitor.alert_manager is None  # type: ignore[attr-defined]


def test_monitor_defaults_whole_configs_and_disabled_sections() -> None:
    loader = ConfigLoader()
    default = loader.create_monitor_from_config()
    assert isinstance(default, Monitor) and default.max_events == 10000
    assert loader.create_monitor_from_config({"enabled": False}) is None
    whole = loader.create_monitor_from_config(with_sections(monitoring={"max_events": 3}))
    assert isinstance(whole, Monitor) and whole.max_events == 3
    cfg = loader.load_from_dict(with_sections(monitoring={"enabled": False}))
    assert loader.create_monitor_from_config(cfg) is None


def test_alert_rules_from_the_config_fire_during_a_run() -> None:
    loader = ConfigLoader()
    data = with_sections(
        error_strategy="skip",
        monitoring={
            "alerts": [
                {
                    "name": "errors",
                    "condition": "cfg_helpers:has_errors",
                    "action": "cfg_helpers:remember_alert",
                    "cooldown": 60,
                },
                {"name": "quiet", "condition": "cfg_helpers:has_errors"},
            ]
        },
    )
    executor = loader.create_executor_from_config(data)
    monitor = executor.monitor
    assert isinstance(monitor, Monitor)
    alerts = monitor.alert_manager  # type: ignore[attr-defined]
    assert isinstance(alerts, AlertManager)
    cfg_helpers.ARMED[0] = True
    executor.run(1)
    assert [a["rule"] for a in cfg_helpers.ALERTS] == ["errors"]  # once: the cooldown holds
    fired = [a["rule"] for a in alerts.get_active_alerts()]
    assert fired.count("errors") == 1 and fired.count("quiet") >= 2  # "quiet": no cooldown
    assert monitor.get_metrics_summary()["events_by_type"]["alert"] == len(fired)


@pytest.mark.parametrize(
    ("section", "field", "words"),
    [
        ({"alerts": [{"name": "a", "condition": "nope"}]}, "alerts[0].condition", "reference"),
        ({"alerts": [{"name": "a"}]}, "alerts[0].condition", "required field is missing"),
        (
            {"alerts": [{"name": "a", "condition": "os:sep"}]},
            "alerts[0].condition",
            "not a callable",
        ),
        (
            {"alerts": [{"name": "a", "condition": "cfg_helpers:no_such"}]},
            "alerts[0].condition",
            "has no attribute 'no_such'",
        ),
        (
            {"alerts": [{"name": "a", "condition": "os:getcwd", "action": "cfg_helpers:ARMED"}]},
            "alerts[0].action",
            "not a callable",
        ),
        (
            {"alerts": [{"name": "a", "condition": "os:getcwd", "cooldown": -1}]},
            "alerts[0].cooldown",
            "expected a number >= 0",
        ),
        (
            {"alerts": [{"name": "a", "condition": "os:getcwd", "when": 1}]},
            "alerts[0].when",
            "unknown field",
        ),
        (
            {
                "alerts": [
                    {"name": "a", "condition": "os:getcwd"},
                    {"name": "a", "condition": "os:getcwd"},
                ]
            },
            "alerts[1].name",
            "duplicate alert rule name 'a' (also monitoring.alerts[0])",
        ),
        ({"alerts": {"name": "a"}}, "alerts", "expected a list"),
        ({"sample_interval": 0}, "sample_interval", "expected a number > 0"),
        ({"max_events": 0}, "max_events", "expected a number >= 1"),
        ({"log_level": "loud"}, "log_level", "a log level"),
        ({"enabled": "yes"}, "enabled", "true or false"),
        ({"trace": "t.json"}, "trace", "unknown field; expected one of: enabled, max_events"),
    ],
)
def test_bad_monitoring_sections_name_the_field(
    section: dict[str, Any], field: str, words: str
) -> None:
    loader = ConfigLoader()
    # The section alone, and inside a whole config: the same field path.
    for arg in (section, with_sections(monitoring=section)):
        with pytest.raises(ConfigurationError) as exc:
            loader.create_monitor_from_config(arg)
        problems = problems_of(exc)
        assert words in problems[f"monitoring.{field}"], problems


def test_every_problem_of_a_file_is_reported_at_once_in_file_order(tmp_path: Path) -> None:
    data = with_sections(
        monitoring={"alerts": [{"name": "a", "condition": 3}], "max_events": -1},
        checkpoints={"max_checkpoints": 0, "extra": True},
    )
    data["processors"][0]["processor_type"] = "bogus"
    path = tmp_path / "g.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigurationError) as exc:
        ConfigLoader().load_from_file(path)
    assert list(problems_of(exc)) == [
        "processors[0].processor_type",
        "monitoring.alerts[0].condition",
        "monitoring.max_events",
        "checkpoints.extra",
        "checkpoints.max_checkpoints",
    ]
    assert str(exc.value).startswith(f"invalid config '{path}' (5 problems)")


def test_a_section_that_is_not_a_mapping() -> None:
    with pytest.raises(ConfigurationError) as exc:
        ConfigLoader().create_checkpoint_manager_from_config(["ckpt"])  # type: ignore[arg-type]
    assert problems_of(exc) == {"checkpoints": "expected a mapping; got a list ['ckpt']"}


# -- the checkpoint manager ---------------------------------------------------------------------


def test_checkpoint_manager_from_a_section(tmp_path: Path) -> None:
    loader = ConfigLoader()
    folder = tmp_path / "ckpt"
    manager = loader.create_checkpoint_manager_from_config(
        {"storage_path": str(folder), "max_checkpoints": 3, "allow_pickle": True}
    )
    assert isinstance(manager, CheckpointManager)
    assert manager.storage_path == folder and folder.is_dir()
    assert manager.max_checkpoints == 3 and manager.allow_pickle
    memory = loader.create_checkpoint_manager_from_config({})
    assert isinstance(memory, CheckpointManager) and memory.storage_path is None
    assert loader.create_checkpoint_manager_from_config({"enabled": False}) is None


@pytest.mark.parametrize(
    ("section", "field", "words"),
    [
        ({"storage_path": ""}, "storage_path", "expected a non-empty string"),
        ({"storage_path": 3}, "storage_path", "expected a string or null"),
        ({"max_checkpoints": 1.5}, "max_checkpoints", "expected an integer"),
        ({"allow_pickle": 1}, "allow_pickle", "expected true or false"),
        ({"folder": "x"}, "folder", "unknown field; expected one of: enabled, storage_path"),
    ],
)
def test_bad_checkpoint_sections_name_the_field(
    section: dict[str, Any], field: str, words: str
) -> None:
    with pytest.raises(ConfigurationError) as exc:
        ConfigLoader().create_checkpoint_manager_from_config(section)
    assert words in problems_of(exc)[f"checkpoints.{field}"]


def test_a_storage_path_that_is_a_file_is_a_configuration_error(tmp_path: Path) -> None:
    file = tmp_path / "taken"
    file.write_text("x")
    data = with_sections(checkpoints={"storage_path": str(file)})
    with pytest.raises(ConfigurationError) as exc:
        ConfigLoader().create_executor_from_config(data)
    assert problems_of(exc) == {
        "checkpoints.storage_path": f"checkpoint folder '{file}' is a file, not a folder"
    }


# -- the executor builder -----------------------------------------------------------------------


def test_the_executor_gets_what_the_sections_ask_for(tmp_path: Path) -> None:
    loader = ConfigLoader()
    plain = loader.create_executor_from_config(TWO_STEPS)
    assert plain.monitor is None and plain.checkpoint_manager is None
    off = loader.create_executor_from_config(
        with_sections(monitoring={"enabled": False}, checkpoints={"enabled": False})
    )
    assert off.monitor is None and off.checkpoint_manager is None
    data = with_sections(
        monitoring={"max_events": 50}, checkpoints={"storage_path": str(tmp_path / "c")}
    )
    on = loader.create_executor_from_config(data)
    assert isinstance(on.monitor, Monitor) and on.monitor.max_events == 50
    assert isinstance(on.checkpoint_manager, CheckpointManager)
    mine = Monitor()
    manager = CheckpointManager()
    given = loader.create_executor_from_config(data, monitor=mine, checkpoint_manager=manager)
    assert given.monitor is mine and given.checkpoint_manager is manager


def test_a_checkpointed_config_run_resumes_without_rerunning_what_completed(
    tmp_path: Path,
) -> None:
    loader = ConfigLoader()
    data = with_sections(
        monitoring={"enabled": True}, checkpoints={"storage_path": str(tmp_path / "ckpt")}
    )
    cfg_helpers.ARMED[0] = True
    first = loader.create_executor_from_config(data)
    with pytest.raises(Exception, match="armed"):
        first.run(1)
    run_id = first.get_execution_status()["run_id"]
    assert cfg_helpers.CALLS == [1]
    cfg_helpers.ARMED[0] = False
    # A new executor (as a new process would build it) finds the run in the folder.
    second = loader.create_executor_from_config(data)
    resumed = asyncio.run(second.execute(1, resume=run_id))
    assert list(resumed.values()) == [2]
    assert cfg_helpers.CALLS == [1]  # "first" completed in the failed run: not run again
    assert second.get_execution_status()["run_id"] == run_id
    assert isinstance(second.monitor, Monitor)
    assert second.monitor.get_metrics_summary()["events_by_type"]["checkpoint_restore"] == 1
