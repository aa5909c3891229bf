"""Alert rules over a monitor's metrics.

A rule is a condition on the metrics summary and an action. Rules are evaluated when the
monitor records a process sample (every ~0.5 s of a live run), an error, retry, skip or crash,
and at run start and end; :meth:`AlertManager.check_alerts` evaluates them on demand. A rule that
fired stays quiet for ``cooldown`` seconds.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ._core import Monitor
from ._events import EventType, LogLevel

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
    condition: Callable[[dict[str, Any]], Any]
    action: Callable[[dict[str, Any]], Any] | None
    cooldown: float
    last_fired: float | None = None
    fired: int = 0


@dataclass
class Alert:
    """One firing of an alert rule."""

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


class AlertManager:
    """Evaluates alert rules against a :class:`~mpipe.Monitor` as it records events.

    Args:
        monitor: The monitor whose metrics the rules read.

    Raises:
        TypeError: ``monitor`` is not a Monitor.
    """

    def __init__(self, monitor: Monitor) -> None:
        if not isinstance(monitor, Monitor):
            raise TypeError(f"AlertManager needs a Monitor, got {type(monitor).__name__}")
        self.monitor = monitor
        self._rules: dict[str, _Rule] = {}
        self._active: dict[str, Alert] = {}
        self._ids = itertools.count(1)
        self._evaluating = False
        monitor._listeners.append(self._on_event)

    def add_alert_rule(
        self,
        name: str,
        condition: Callable[[dict[str, Any]], Any],
        action: Callable[[dict[str, Any]], Any] | None = None,
        cooldown: float = 0,
    ) -> None:
        """Add (or replace) a rule.

        Args:
            name: The rule's name.
            condition: ``condition(summary) -> bool`` over :meth:`Monitor.get_metrics_summary`.
            action: ``action(alert_dict)`` called when the rule fires (besides the ``alert``
                event and the active-alert list).
            cooldown: Seconds after a firing during which the rule does not fire again.

        Raises:
            ValueError: An empty name or a negative cooldown.
            TypeError: ``condition`` or ``action`` is not callable.
        """
        if not isinstance(name, str) or not name:
            raise ValueError(f"alert rule name must be a non-empty string, got {name!r}")
        if not callable(condition):
            raise TypeError(f"alert rule {name!r}: condition must be callable, got {condition!r}")
        if action is not None and not callable(action):
            raise TypeError(f"alert rule {name!r}: action must be callable, got {action!r}")
        if not isinstance(cooldown, (int, float)) or isinstance(cooldown, bool) or cooldown < 0:
            raise ValueError(
                f"alert rule {name!r}: cooldown must be >= 0 seconds, got {cooldown!r}"
            )
        self._rules[name] = _Rule(name, condition, action, float(cooldown))

    def remove_alert_rule(self, name: str) -> None:
        """Remove a rule.

        Raises:
            KeyError: No rule of that name.
        """
        if self._rules.pop(name, None) is None:
            raise KeyError(f"no alert rule named {name!r}")

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

    def _on_event(self, kind: str) -> None:
        if kind in _TRIGGERS and not self._evaluating:
            self.check_alerts()

    def check_alerts(self) -> list[dict[str, Any]]:
        """Evaluate every rule now; return the alerts that fired."""
        if not self._rules:
            return []
        self._evaluating = True  # the alert events below must not re-enter evaluation
        try:
            summary = self.monitor.get_metrics_summary()
            fired = []
            now = time.monotonic()
            for rule in list(self._rules.values()):
                if rule.last_fired is not None and now - rule.last_fired < rule.cooldown:
                    continue
                try:
                    hit = bool(rule.condition(summary))
                except Exception:
                    _log.exception("alert rule %r: condition failed", rule.name)
                    continue
                if not hit:
                    continue
                rule.last_fired = now
                rule.fired += 1
                alert = Alert(
                    f"alert-{next(self._ids)}", rule.name, time.time(), {"times_fired": rule.fired}
                )
                self._active[alert.alert_id] = alert
                as_dict = alert.to_dict()
                self.monitor.log_event(EventType.ALERT, None, as_dict, LogLevel.WARNING)
                if rule.action is not None:
                    try:
                        rule.action(as_dict)
                    except Exception:
                        _log.exception("alert rule %r: action failed", rule.name)
                fired.append(as_dict)
            return fired
        finally:
            self._evaluating = False
