"""Observability: the monitor, its events and metrics, alert rules, traces, live progress."""

from __future__ import annotations

from ._alerts import Alert, AlertManager
from ._core import Monitor
from ._events import EventType, LogLevel, MonitorEvent
from ._progress import ProgressDisplay
from ._taps import PipeTap

__all__ = [
    "Alert",
    "AlertManager",
    "EventType",
    "LogLevel",
    "Monitor",
    "MonitorEvent",
    "PipeTap",
    "ProgressDisplay",
]
