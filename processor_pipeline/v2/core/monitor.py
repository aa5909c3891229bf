"""processor_pipeline.v2.core.monitor: monitoring: events, taps, alerts. Names only; served by mpipe."""

from mpipe import (
    AlertManager,
    EventType,
    LogLevel,
    Monitor,
    MonitorEvent,
    PipeTap,
)

__all__ = [
    "AlertManager",
    "EventType",
    "LogLevel",
    "Monitor",
    "MonitorEvent",
    "PipeTap",
]
