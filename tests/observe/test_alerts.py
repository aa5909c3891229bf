"""Alert rules: fire on a condition over the metrics, respect cooldown, can be cleared."""

from __future__ import annotations

from typing import Any

import pytest

from mpipe import AlertManager, GraphExecutor, Monitor, SkipStrategy

from ._graphs import chain, inc


def _bad(x: int) -> int:
    raise ValueError("no")


def test_rule_fires_on_errors_during_a_run(run: Any) -> None:
    monitor = Monitor()
    alerts = AlertManager(monitor)
    fired: list[dict[str, Any]] = []
    alerts.add_alert_rule("errors", lambda s: s["total_errors"] > 0, fired.append)
    alerts.add_alert_rule("never", lambda s: False, fired.append)
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
    alerts.add_alert_rule("always", lambda s: True, fired.append, cooldown=3600)
    alerts.add_alert_rule("every time", lambda s: True, cooldown=0)
    for _ in range(4):
        alerts.check_alerts()
    assert len(fired) == 1
    rules = [a["rule"] for a in alerts.get_active_alerts()]
    assert rules.count("always") == 1 and rules.count("every time") == 4


def test_clear_and_remove() -> None:
    monitor = Monitor()
    alerts = AlertManager(monitor)
    alerts.add_alert_rule("r", lambda s: s["total_events"] >= 0)
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

    alerts.add_alert_rule("broken", broken)
    alerts.add_alert_rule("bad action", lambda s: True, bad_action)
    assert [a["rule"] for a in alerts.check_alerts()] == ["bad action"]
    assert "condition bug" in caplog.text and "action bug" in caplog.text


def test_bad_rules() -> None:
    alerts = AlertManager(Monitor())
    with pytest.raises(ValueError, match="name"):
        alerts.add_alert_rule("", lambda s: True)
    with pytest.raises(TypeError, match="condition must be callable"):
        alerts.add_alert_rule("x", "s > 1")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="action must be callable"):
        alerts.add_alert_rule("x", lambda s: True, 5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="cooldown"):
        alerts.add_alert_rule("x", lambda s: True, cooldown=-1)
    with pytest.raises(TypeError, match="needs a Monitor"):
        AlertManager(object())  # type: ignore[arg-type]
