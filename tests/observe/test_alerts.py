"""Alert rules: event rules get each MonitorEvent, metrics rules the summary; both respect
cooldown and can be cleared."""

from __future__ import annotations

from typing import Any

import pytest

from mpipe import AlertManager, EventType, GraphExecutor, Monitor, MonitorEvent, SkipStrategy

from ._graphs import chain, inc


def _bad(x: int) -> int:
    raise ValueError("no")


def _bad_on_odd(x: int) -> int:
    if x % 2:
        raise ValueError(f"odd {x}")
    return x


def test_event_rule_gets_each_event_as_the_v2_api_writes_it(run: Any) -> None:
    monitor = Monitor(log_level="critical")
    alerts = AlertManager(monitor)
    seen: list[MonitorEvent] = []
    alerts.add_alert_rule(
        "high_error_rate",
        condition=lambda event: event.event_type == EventType.PROCESSOR_ERROR,
        action=seen.append,
    )
    graph = chain(("a", inc), ("b", _bad_on_odd))
    graph.set_error_strategy("b", SkipStrategy())
    out = run(GraphExecutor(graph, monitor).execute_stream({"a": range(4)}))
    assert out == {"b:output": [2, 4]}  # 1 and 3 became 2 and 4; 2 and 4 became odd: skipped
    assert [e.processor_id for e in seen] == ["b", "b"]
    assert all(isinstance(e, MonitorEvent) for e in seen)
    assert [e.data["error"] for e in seen] == ["ValueError: odd 1", "ValueError: odd 3"]
    active = alerts.get_active_alerts()
    assert [a["rule"] for a in active] == ["high_error_rate"] * 2
    assert active[0]["data"]["event"]["event_type"] == "processor_error"
    assert active[1]["data"]["times_fired"] == 2
    assert len(monitor.get_recent_events(100, "alert")) == 2


def test_alert_events_never_trigger_rules() -> None:
    monitor = Monitor()
    alerts = AlertManager(monitor)
    seen: list[str] = []
    alerts.add_alert_rule("every event", lambda e: True, lambda e: seen.append(e.event_type.value))
    monitor.log_event(EventType.CHECKPOINT_CREATE, "p", {"n": 1})
    monitor.log_event("breakpoint_hit", "p")
    assert seen == ["checkpoint_create", "breakpoint_hit"]  # not the two alerts they made
    assert monitor.events_by_type["alert"] == 2


def test_event_rule_cooldown_and_kinds() -> None:
    monitor = Monitor()
    alerts = AlertManager(monitor)
    seen: list[MonitorEvent] = []
    alerts.add_alert_rule("quiet", lambda e: True, seen.append, cooldown=3600)
    alerts.add_metrics_rule("summary", lambda s: True)
    for _ in range(3):
        monitor.log_event("checkpoint_create", "p")
    assert len(seen) == 1
    assert alerts.get_alert_rules() == [
        {"name": "quiet", "kind": "event", "cooldown": 3600.0, "times_fired": 1},
        {"name": "summary", "kind": "metrics", "cooldown": 0.0, "times_fired": 0},
    ]
    alerts.add_metrics_rule("quiet", lambda s: False)  # one namespace: replaces the event rule
    monitor.log_event("checkpoint_create", "p")
    assert len(seen) == 1 and [r["kind"] for r in alerts.get_alert_rules()] == ["metrics"] * 2


def test_metrics_rule_fires_on_errors_during_a_run(run: Any) -> None:
    monitor = Monitor()
    alerts = AlertManager(monitor)
    fired: list[dict[str, Any]] = []
    alerts.add_metrics_rule("errors", lambda s: s["total_errors"] > 0, fired.append)
    alerts.add_metrics_rule("never", lambda s: False, fired.append)
    graph = chain(("a", inc), ("b", _bad))
    graph.set_error_strategy("b", SkipStrategy())
    run(GraphExecutor(graph, monitor).execute_stream({"a": range(3)}))
    # cooldown 0: every evaluation after the first error fires again
    assert len(fired) >= 3 and {a["rule"] for a in fired} == {"errors"}
    events = monitor.get_recent_events(1000, "alert")
    assert len(events) == len(fired) and events[0]["level"] == "WARNING"
    assert len(alerts.get_active_alerts()) == len(fired)


def test_cooldown_keeps_a_rule_quiet() -> None:
    monitor = Monitor()
    alerts = AlertManager(monitor)
    fired: list[dict[str, Any]] = []
    alerts.add_metrics_rule("always", lambda s: True, fired.append, cooldown=3600)
    alerts.add_metrics_rule("every time", lambda s: True, cooldown=0)
    for _ in range(4):
        alerts.check_alerts()
    assert len(fired) == 1
    rules = [a["rule"] for a in alerts.get_active_alerts()]
    assert rules.count("always") == 1 and rules.count("every time") == 4


def test_clear_and_remove() -> None:
    monitor = Monitor()
    alerts = AlertManager(monitor)
    alerts.add_metrics_rule("r", lambda s: s["total_events"] >= 0)
    (alert,) = alerts.check_alerts()
    assert alerts.get_active_alerts() == [alert]
    alerts.clear_alert(alert["alert_id"])
    assert alerts.get_active_alerts() == []
    with pytest.raises(KeyError, match="no active alert"):
        alerts.clear_alert(alert["alert_id"])
    alerts.remove_alert_rule("r")
    assert alerts.check_alerts() == []
    with pytest.raises(KeyError, match="no alert rule named 'r'"):
        alerts.remove_alert_rule("r")


def test_failing_condition_and_action_are_logged_not_raised(
    caplog: pytest.LogCaptureFixture,
) -> None:
    alerts = AlertManager(Monitor())

    def broken(summary: dict[str, Any]) -> bool:
        raise RuntimeError("condition bug")

    def bad_action(alert: dict[str, Any]) -> None:
        raise RuntimeError("action bug")

    alerts.add_metrics_rule("broken", broken)
    alerts.add_metrics_rule("bad action", lambda s: True, bad_action)
    assert [a["rule"] for a in alerts.check_alerts()] == ["bad action"]
    assert "condition bug" in caplog.text and "action bug" in caplog.text
    alerts.add_alert_rule("broken event", broken)
    alerts.add_alert_rule("bad event action", lambda e: True, bad_action)
    alerts.monitor.log_event("checkpoint_create")
    failures = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert failures == [
        "alert rule 'broken': condition failed",
        "alert rule 'bad action': action failed",
        "alert rule 'broken event': condition failed",
        "alert rule 'bad event action': action failed",
    ]


@pytest.mark.parametrize("kind", ["add_alert_rule", "add_metrics_rule"])
def test_bad_rules(kind: str) -> None:
    add = getattr(AlertManager(Monitor()), kind)
    with pytest.raises(ValueError, match="name"):
        add("", lambda s: True)
    with pytest.raises(TypeError, match="condition must be callable"):
        add("x", "s > 1")
    with pytest.raises(TypeError, match="action must be callable"):
        add("x", lambda s: True, 5)
    with pytest.raises(ValueError, match="cooldown"):
        add("x", lambda s: True, cooldown=-1)


def test_bad_monitor() -> None:
    with pytest.raises(TypeError, match="needs a Monitor"):
        AlertManager(object())  # type: ignore[arg-type]
