"""Monitor events: what happened, when, to which processor, and how loud."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

__all__ = ["EventType", "LogLevel", "MonitorEvent", "as_event_type", "as_log_level"]


class EventType(Enum):
    """The kinds of event a :class:`~mpipe.Monitor` records."""

    GRAPH_START = "graph_start"
    GRAPH_COMPLETE = "graph_complete"
    GRAPH_ERROR = "graph_error"
    PROCESSOR_START = "processor_start"
    PROCESSOR_COMPLETE = "processor_complete"
    PROCESSOR_ERROR = "processor_error"
    PROCESSOR_RETRY = "processor_retry"
    PROCESSOR_SKIP = "processor_skip"
    PIPE_DATA_FLOW = "pipe_data_flow"
    PIPE_FULL = "pipe_full"
    CHECKPOINT_CREATE = "checkpoint_create"
    CHECKPOINT_RESTORE = "checkpoint_restore"
    BREAKPOINT_HIT = "breakpoint_hit"
    WORKER_START = "worker_start"
    WORKER_CRASH = "worker_crash"
    SYSTEM_METRICS = "system_metrics"
    ALERT = "alert"


class LogLevel(Enum):
    """How loud an event is; the values are the :mod:`logging` levels."""

    DEBUG = logging.DEBUG
    INFO = logging.INFO
    WARNING = logging.WARNING
    ERROR = logging.ERROR
    CRITICAL = logging.CRITICAL


_EVENT_TYPES = {e.value: e for e in EventType}


def as_event_type(value: EventType | str) -> EventType:
    """An :class:`EventType` from itself, its value or its name (any case).

    Raises:
        ValueError: Not an event type; the message lists the known ones.
    """
    if isinstance(value, EventType):
        return value
    if isinstance(value, str):
        found = _EVENT_TYPES.get(value.lower())
        if found is not None:
            return found
    known = ", ".join(sorted(_EVENT_TYPES))
    raise ValueError(f"unknown event type {value!r}; expected an EventType or one of: {known}")


def as_log_level(value: LogLevel | str | int) -> LogLevel:
    """A :class:`LogLevel` from itself, its name in any case, or a :mod:`logging` level number.

    Raises:
        ValueError: Not a log level; the message lists the known names.
    """
    if isinstance(value, LogLevel):
        return value
    if isinstance(value, str):
        try:
            return LogLevel[value.strip().upper()]
        except KeyError:
            pass
    elif isinstance(value, int) and not isinstance(value, bool):
        for level in LogLevel:
            if level.value == value:
                return level
    names = ", ".join(level.name for level in LogLevel)
    raise ValueError(f"unknown log level {value!r}; expected a LogLevel or one of: {names}")


@dataclass
class MonitorEvent:
    """One recorded event.

    Attributes:
        event_type: What happened.
        processor_id: The processor (or pipe, for pipe events) concerned, if any.
        data: JSON-compatible details.
        level: How loud the event is.
        timestamp: Wall-clock time (``time.time()``) of the event.
    """

    event_type: EventType
    processor_id: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    level: LogLevel = LogLevel.INFO
    timestamp: float = field(default_factory=time.time)

    def to_dict(self) -> dict[str, Any]:
        """The event as a JSON-compatible dict (keys ``timestamp``, ``event_type``,
        ``processor_id``, ``data``, ``level``)."""
        return {
            "timestamp": self.timestamp,
            "event_type": self.event_type.value,
            "processor_id": self.processor_id,
            "data": self.data,
            "level": self.level.name,
        }
