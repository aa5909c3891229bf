"""Alert rules: conditions on a monitor's events, or on its metrics summary.

Two kinds of rule, one namespace of names:

- *event rules* (:meth:`AlertManager.add_alert_rule`): ``condition(event)`` and
  ``action(event)`` get each :class:`~mpipe.MonitorEvent` as the monitor records it, e.g.
  ``condition=lambda event: event.event_type == EventType.PROCESSOR_ERROR``;
- *metrics rules* (:meth:`AlertManager.add_metrics_rule`): ``condition(summary)`` gets
  :meth:`Monitor.get_metrics_summary` and ``action(alert)`` the alert's dict. They are evaluated
  when the monitor records a process sample (every ~0.5 s of a live run), an error, retry, skip or
  crash, at run start and end, and on :meth:`AlertManager.check_alerts`.

A rule that fired stays quiet for ``cooldown`` seconds. Every firing records an ``alert`` event
and an active alert (until cleared); the alert events never trigger rules themselves.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ._core import Monitor
from ._eventlog import Record, record_event
from ._events import EventType, LogLevel, MonitorEvent

__all__ = ["Alert", "AlertManager"]

_log = logging.getLogger("mpipe")

_TRIGGERS = frozenset(
    kind.value
    for kind in {
        EventType.SYSTEM_METRICS,
        EventType.PROCESSOR_ERROR,
        EventType.PROCESSOR_RETRY,
        EventType.PROCESSOR_SKIP,
        EventType.WORKER_CRASH,
        EventType.GRAPH_START,
        EventType.GRAPH_COMPLETE,
        EventType.GRAPH_ERROR,
    }
)


@dataclass
class _Rule:
    name: str
    condition: Callable[[Any], Any]
    action: Callable[[Any], Any] | None
    cooldown: float
    on_events: bool
    last_fired: float | None = None
    fired: int = 0


@dataclass
class Alert:
    """One firing of an alert rule.

    Attributes:
        alert_id: The alert's id, for :meth:`AlertManager.clear_alert`.
        rule: The rule's name.
        timestamp: Wall-clock time of the firing.
        data: ``times_fired`` (the rule's firings so far), and for an event rule ``event`` (the
            event's dict).
    """

    alert_id: str
    rule: str
    timestamp: float
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The alert as a JSON-compatible dict."""
        return {
            "alert_id": self.alert_id,
            "rule": self.rule,
            "timestamp": self.timestamp,
            "data": self.data,
        }


def _check_rule(name: Any, condition: Any, action: Any, cooldown: Any) -> None:
    if not isinstance(name, str) or not name:
        raise ValueError(f"alert rule name must be a non-empty string, got {name!r}")
    if not callable(condition):
        raise TypeError(f"alert rule {name!r}: condition must be callable, got {condition!r}")
    if action is not None and not callable(action):
        raise TypeError(f"alert rule {name!r}: action must be callable, got {action!r}")
    if not isinstance(cooldown, (int, float)) or isinstance(cooldown, bool) or cooldown < 0:
        raise ValueError(f"alert rule {name!r}: cooldown must be >= 0 seconds, got {cooldown!r}")


class AlertManager:
    """Evaluates alert rules against a :class:`~mpipe.Monitor` as it records events.

    Args:
        monitor: The monitor whose events and metrics the rules read.

    Raises:
        TypeError: ``monitor`` is not a Monitor.
    """

    def __init__(self, monitor: Monitor) -> None:
        if not isinstance(monitor, Monitor):
            raise TypeError(f"AlertManager needs a Monitor, got {type(monitor).__name__}")
        self.monitor = monitor
        self._rules: dict[str, _Rule] = {}
        self._on_events: list[_Rule] = []
        self._on_metrics: list[_Rule] = []
        self._active: dict[str, Alert] = {}
        self._ids = itertools.count(1)
        self._evaluating = False
        monitor._listeners.append(self._on_event)

    def add_alert_rule(
        self,
        name: str,
        condition: Callable[[MonitorEvent], Any],
        action: Callable[[MonitorEvent], Any] | None = None,
        cooldown: float = 0,
    ) -> None:
        """Add (or replace) a rule over the monitor's events.

        Args:
            name: The rule's name (shared with metrics rules: the same name replaces either).
            condition: ``condition(event) -> bool``, called with each
                :class:`~mpipe.MonitorEvent` as it is recorded (``event.event_type``,
                ``event.processor_id``, ``event.data``, ``event.timestamp``, ``event.level``).
            action: ``action(event)``, called with the event that made the rule fire (besides
                the ``alert`` event and the active-alert list).
            cooldown: Seconds after a firing during which the rule does not fire again.

        Raises:
            ValueError: An empty name or a negative cooldown.
            TypeError: ``condition`` or ``action`` is not callable.
        """
        self._add(name, condition, action, cooldown, on_events=True)

    def add_metrics_rule(
        self,
        name: str,
        condition: Callable[[dict[str, Any]], Any],
        action: Callable[[dict[str, Any]], Any] | None = None,
        cooldown: float = 0,
    ) -> None:
        """Add (or replace) a rule over the monitor's metrics summary (error rate, throughput,
        memory).

        Args:
            name: The rule's name (shared with event rules: the same name replaces either).
            condition: ``condition(summary) -> bool`` over :meth:`Monitor.get_metrics_summary`.
            action: ``action(alert_dict)``, called when the rule fires.
            cooldown: Seconds after a firing during which the rule does not fire again.

        Raises:
            ValueError: An empty name or a negative cooldown.
            TypeError: ``condition`` or ``action`` is not callable.
        """
        self._add(name, condition, action, cooldown, on_events=False)

    def _add(
        self,
        name: str,
        condition: Callable[[Any], Any],
        action: Callable[[Any], Any] | None,
        cooldown: float,
        on_events: bool,
    ) -> None:
        _check_rule(name, condition, action, cooldown)
        self._rules[name] = _Rule(name, condition, action, float(cooldown), on_events)
        self._sort()

    def _sort(self) -> None:
        self._on_events = [r for r in self._rules.values() if r.on_events]
        self._on_metrics = [r for r in self._rules.values() if not r.on_events]

    def remove_alert_rule(self, name: str) -> None:
        """Remove a rule (of either kind).

        Raises:
            KeyError: No rule of that name.
        """
        if self._rules.pop(name, None) is None:
            raise KeyError(f"no alert rule named {name!r}")
        self._sort()

    def get_alert_rules(self) -> list[dict[str, Any]]:
        """Every rule: ``name``, ``kind`` (``"event"`` or ``"metrics"``), ``cooldown`` and
        ``times_fired``."""
        return [
            {
                "name": r.name,
                "kind": "event" if r.on_events else "metrics",
                "cooldown": r.cooldown,
                "times_fired": r.fired,
            }
            for r in self._rules.values()
        ]

    def get_active_alerts(self) -> list[dict[str, Any]]:
        """Alerts fired and not cleared, oldest first."""
        return [a.to_dict() for a in self._active.values()]

    def clear_alert(self, alert_id: str) -> None:
        """Dismiss an active alert.

        Raises:
            KeyError: No active alert with that id.
        """
        if self._active.pop(alert_id, None) is None:
            raise KeyError(f"no active alert with id {alert_id!r}")

    def _on_event(self, record: Record) -> None:
        if self._evaluating:
            return  # an alert event recorded while rules are evaluated
        if self._on_events:
            self._evaluate(self._on_events, record_event(record))
        if self._on_metrics and record[1] in _TRIGGERS:
            self.check_alerts()

    def check_alerts(self) -> list[dict[str, Any]]:
        """Evaluate every metrics rule now; return the alerts that fired."""
        if not self._on_metrics:
            return []
        return self._evaluate(self._on_metrics, None)

    def _evaluate(self, rules: list[_Rule], event: MonitorEvent | None) -> list[dict[str, Any]]:
        """Evaluate ``rules`` on ``event`` (event rules) or on the summary (``event`` None)."""
        self._evaluating = True  # the alert events below must not re-enter evaluation
        try:
            subject: Any = event if event is not None else self.monitor.get_metrics_summary()
            fired = []
            now = time.monotonic()
            for rule in list(rules):
                if rule.last_fired is not None and now - rule.last_fired < rule.cooldown:
                    continue
                try:
                    hit = bool(rule.condition(subject))
                except Exception:
                    _log.exception("alert rule %r: condition failed", rule.name)
                    continue
                if not hit:
                    continue
                rule.last_fired = now
                rule.fired += 1
                data: dict[str, Any] = {"times_fired": rule.fired}
                if event is not None:
                    data["event"] = event.to_dict()
                alert = Alert(f"alert-{next(self._ids)}", rule.name, time.time(), data)
                self._active[alert.alert_id] = alert
                as_dict = alert.to_dict()
                self.monitor.log_event(EventType.ALERT, None, as_dict, LogLevel.WARNING)
                if rule.action is not None:
                    try:
                        rule.action(event if event is not None else as_dict)
                    except Exception:
                        _log.exception("alert rule %r: action failed", rule.name)
                fired.append(as_dict)
            return fired
        finally:
            self._evaluating = False
