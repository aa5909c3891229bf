"""The ``monitoring`` and ``checkpoints`` sections: a Monitor and a CheckpointManager from a config.

A section asks for its object when it is present, not empty, and ``enabled`` is not false. Alert
rules name their condition and action as ``"module:attr"`` references.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from .._errors import ConfigurationError
from .._observe._checkpoints import CheckpointError, CheckpointManager
from .._observe._monitor import AlertManager, Monitor
from ._model import Problem, config_error, field_path
from ._refs import resolve_reference

__all__ = ["alert_problems", "build_checkpoint_manager", "build_monitor", "wanted"]


def wanted(section: Mapping[str, Any]) -> bool:
    """Whether a section asks for its object: present, not empty, and not ``enabled: false``."""
    return bool(section) and section.get("enabled", True) is not False


def alert_problems(section: Any) -> list[Problem]:
    """What the schema cannot check in ``monitoring``: alert rule names used twice."""
    alerts = section.get("alerts") if isinstance(section, Mapping) else None
    problems: list[Problem] = []
    first: dict[str, int] = {}
    for i, rule in enumerate(alerts if isinstance(alerts, list) else []):
        name = rule.get("name") if isinstance(rule, Mapping) else None
        if not isinstance(name, str):
            continue
        if name in first:
            problems.append(
                Problem(
                    field_path(["monitoring", "alerts", i, "name"]),
                    f"duplicate alert rule name {name!r} (also monitoring.alerts[{first[name]}])",
                )
            )
        else:
            first[name] = i
    return problems


def _callable(reference: str, at: list[str | int]) -> Callable[..., Any]:
    field = field_path(at)
    obj = resolve_reference(reference, field)
    if not callable(obj):
        raise ConfigurationError(
            f"reference {reference!r} names {type(obj).__name__} {obj!r}, not a callable", field
        )
    return obj  # type: ignore[no-any-return]


def build_monitor(section: Mapping[str, Any], source: str | None = None) -> Monitor | None:
    """A :class:`Monitor` (with its alert rules) for a checked ``monitoring`` section.

    Returns None when the section says ``enabled: false``. The rules are metrics rules
    (``condition(summary)``, see :meth:`AlertManager.add_metrics_rule`); their
    :class:`AlertManager` is the monitor's ``alert_manager`` attribute (None without rules).

    Raises:
        ConfigurationError: A reference that cannot be resolved or is not callable, or a
            setting the monitor refuses; every problem at once, each naming its field.
    """
    if section.get("enabled", True) is False:
        return None
    problems: list[Problem] = []
    rules = []
    for i, rule in enumerate(section.get("alerts") or []):
        at: list[str | int] = ["monitoring", "alerts", i]
        try:
            condition = _callable(rule["condition"], [*at, "condition"])
            action = _callable(rule["action"], [*at, "action"]) if "action" in rule else None
        except ConfigurationError as exc:
            problems.append(Problem(exc.field or field_path(at), exc.message))
            continue
        rules.append((rule["name"], condition, action, float(rule.get("cooldown", 0))))
    try:
        monitor = Monitor(
            max_events=int(section.get("max_events", 10000)),
            log_level=section.get("log_level", "INFO"),
            sample_interval=float(section.get("sample_interval", 0.5)),
        )
    except ValueError as exc:  # the schema checks these; a monitor may refuse more
        problems.append(Problem("monitoring", str(exc)))
    if problems:
        raise config_error(problems, source)
    manager = None
    if rules:
        manager = AlertManager(monitor)
        for name, condition, action, cooldown in rules:
            manager.add_metrics_rule(name, condition, action, cooldown)
    # Documented as the way to reach the rules' manager (it lives as long as the monitor).
    setattr(monitor, "alert_manager", manager)  # noqa: B010
    return monitor


def build_checkpoint_manager(
    section: Mapping[str, Any], source: str | None = None
) -> CheckpointManager | None:
    """A :class:`CheckpointManager` for a checked ``checkpoints`` section.

    Returns None when the section says ``enabled: false``. Without ``storage_path`` the
    checkpoints are kept in memory; a relative path is relative to the current directory.

    Raises:
        ConfigurationError: The folder cannot be used (a file, not creatable, not writable).
    """
    if section.get("enabled", True) is False:
        return None
    try:
        return CheckpointManager(
            section.get("storage_path"),
            max_checkpoints=int(section.get("max_checkpoints", 1000)),
            allow_pickle=bool(section.get("allow_pickle", False)),
        )
    except CheckpointError as exc:
        field = "checkpoints.storage_path" if "folder" in exc.message else "checkpoints"
        raise config_error([Problem(field, exc.message)], source) from exc
