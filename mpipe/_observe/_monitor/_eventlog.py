"""The event log: events kept in a bounded ring, counted by type, logged, sent to handlers."""

from __future__ import annotations

import logging
import os
import time
from collections import deque
from collections.abc import Callable, Iterable
from operator import itemgetter
from pathlib import Path
from typing import Any

import orjson

from ..._model._observer_errors import ObserverErrors
from ._events import EventType, LogLevel, MonitorEvent, as_event_type, as_log_level

__all__ = ["EventLog", "Record", "record_event"]

_log = logging.getLogger("mpipe")

#: Default level of each event type (``log_event`` without ``level``).
_DEFAULT_LEVELS = {
    EventType.GRAPH_ERROR: LogLevel.ERROR,
    EventType.PROCESSOR_ERROR: LogLevel.ERROR,
    EventType.WORKER_CRASH: LogLevel.ERROR,
    EventType.PROCESSOR_RETRY: LogLevel.WARNING,
    EventType.PROCESSOR_SKIP: LogLevel.WARNING,
    EventType.ALERT: LogLevel.WARNING,
    EventType.PIPE_FULL: LogLevel.DEBUG,
    EventType.PIPE_DATA_FLOW: LogLevel.DEBUG,
    EventType.SYSTEM_METRICS: LogLevel.DEBUG,
}

# An event as kept: (timestamp, event type value, processor id, data, logging level number).
# Plain strings and ints, not enums: enum hashing and ``.value`` cost microseconds apiece.
_Record = tuple[float, str, "str | None", "dict[str, Any]", int]
_KINDS = {e.value: e for e in EventType}
_LEVELS = {level.value: level for level in LogLevel}


#: An event as kept (see ``_Record``), the argument of the log's listeners.
Record = _Record


def _event(record: _Record) -> MonitorEvent:
    timestamp, kind, pid, data, level = record
    return MonitorEvent(_KINDS[kind], pid, data, _LEVELS[level], timestamp)


def record_event(record: _Record) -> MonitorEvent:
    """The :class:`MonitorEvent` of a kept record."""
    return _event(record)


def _as_record(entry: Any) -> _Record:
    """An event record, from itself or from a quiet note ``(ts, kind, pid, key, n, level)``."""
    if len(entry) == 5:
        return entry  # type: ignore[no-any-return]
    ts, kind, pid, key, number, level = entry
    return (ts, kind, pid, {key: number}, level)


def _as_text(value: Any) -> str:
    """orjson's fallback for event data it cannot write: the value's repr."""
    return repr(value)


class EventLog:
    """Keeps events; the base of :class:`~mpipe.Monitor`.

    Args:
        max_events: Events kept (the oldest are dropped first; counters keep counting).
        log_level: Events at this level or above are also logged to the ``"mpipe"`` logger.

    Raises:
        ValueError: ``max_events`` is not a positive integer, or ``log_level`` is unknown.
    """

    def __init__(self, max_events: int = 10000, log_level: LogLevel | str = "INFO") -> None:
        if not isinstance(max_events, int) or isinstance(max_events, bool) or max_events < 1:
            raise ValueError(f"max_events must be a positive integer, got {max_events!r}")
        self.max_events = max_events
        self._threshold = 0
        self.log_level = as_log_level(log_level)
        self._events: deque[_Record] = deque(maxlen=max_events)
        self._total = 0
        self._by_type: dict[str, int] = {}
        # Quiet notes: frequent events (a processor's start and completion) that nobody hears
        # live are kept as bare tuples and folded into the log, in time order, when it is read.
        # Only the newest max_events notes can outlive a fold, so the deque drops the rest.
        self._notes: deque[tuple[float, str, str | None, str, int, int]] = deque(maxlen=max_events)
        self._noted: dict[str, int] = {}  # notes per type since the last fold
        self._loud: dict[int, bool] = {}
        # Whether INFO notes may go the quiet way (monitoring on, INFO not logged); refreshed
        # at each run's start and when monitoring is switched.
        self._quiet = False
        self.monitoring = True
        self._handlers: dict[str, list[Callable[[MonitorEvent], Any]]] = {}
        # A handler's first failure is logged in full, later ones counted (reported at a run's
        # end and when monitoring stops).
        self._handler_errors = ObserverErrors()
        # Internal listeners (the alert manager) handed the record of every event.
        self._listeners: list[Callable[[_Record], None]] = []

    # -- events ------------------------------------------------------------------------------------

    def log_event(
        self,
        event_type: EventType | str,
        processor_id: str | None = None,
        data: dict[str, Any] | None = None,
        level: LogLevel | str | None = None,
    ) -> None:
        """Record one event, tell its handlers, and log it when loud enough.

        Args:
            event_type: An :class:`EventType` or its value (``"processor_error"``).
            processor_id: The processor (or pipe) concerned.
            data: JSON-compatible details.
            level: The event's level; by default ERROR for errors and crashes, WARNING for
                retries, skips and alerts, DEBUG for pipe and system-metrics events, else INFO.

        Nothing is recorded while monitoring is stopped.

        Raises:
            ValueError: Unknown event type or level.
        """
        kind = as_event_type(event_type)
        lvl = _DEFAULT_LEVELS.get(kind, LogLevel.INFO) if level is None else as_log_level(level)
        self._emit(kind.value, processor_id, data if data is not None else {}, lvl.value)

    @property
    def log_level(self) -> LogLevel:
        """Events at this level or above are logged to the ``"mpipe"`` logger."""
        return _LEVELS[self._threshold]

    @log_level.setter
    def log_level(self, value: LogLevel | str) -> None:
        self._threshold = as_log_level(value).value
        if hasattr(self, "_quiet"):  # not while __init__ sets the first level
            self._loud.clear()
            self._refresh_quiet()

    def _emit(self, kind: str, processor_id: str | None, data: dict[str, Any], level: int) -> None:
        # Events are kept as tuples; MonitorEvent objects are made only for handlers and
        # readers, so an event nobody listens to costs a tuple and a few counters.
        if not self.monitoring:
            return
        record = (time.time(), kind, processor_id, data, level)
        self._events.append(record)
        self._total += 1
        by_type = self._by_type
        by_type[kind] = by_type.get(kind, 0) + 1
        if level >= self._threshold and _log.isEnabledFor(level):
            _log.log(level, "%s %s %s", kind, processor_id or "-", data)
        handlers = self._handlers.get(kind)
        if handlers:
            event = _event(record)
            for handler in handlers:
                try:
                    handler(event)
                except Exception:
                    name = getattr(handler, "__qualname__", None) or repr(handler)
                    self._handler_errors.failed(f"event handler {name!r} on {kind} events")
        for listener in self._listeners:
            listener(record)

    def _note(self, kind: str, processor_id: str | None, key: str, number: int, level: int) -> None:
        """``_emit(kind, processor_id, {key: number}, level)`` at a fraction of the cost when no
        handler, listener or logger hears ``kind`` live (see ``_fold_notes``)."""
        if not self.monitoring:
            return
        loud = self._loud.get(level)
        if loud is None:
            loud = self._loud[level] = level >= self._threshold and _log.isEnabledFor(level)
        if loud or self._listeners or kind in self._handlers:
            self._emit(kind, processor_id, {key: number}, level)
            return
        self._notes.append((time.time(), kind, processor_id, key, number, level))
        noted = self._noted
        noted[kind] = noted.get(kind, 0) + 1

    def _hear_loggers(self) -> None:
        """Ask the logging configuration again which levels are logged (at each run's start)."""
        self._loud.clear()
        self._refresh_quiet()

    def _refresh_quiet(self) -> None:
        info = LogLevel.INFO.value
        self._quiet = self.monitoring and not (info >= self._threshold and _log.isEnabledFor(info))

    def _drain(self) -> None:
        """Turn records kept elsewhere into notes (a subclass's; called before any read)."""

    def _fold_notes(self) -> None:
        """Move quiet notes into the event log, in time order, and count them."""
        self._drain()
        notes = self._notes
        if not self._noted:
            return
        by_type = self._by_type
        for kind, n in self._noted.items():
            by_type[kind] = by_type.get(kind, 0) + n
            self._total += n
        self._noted = {}
        # Only the newest max_events of events and notes together are kept: merge by time,
        # keep the tail, and turn just the notes that survive into event records.
        # A sort, not a merge of sorted lists: notes come in runs (a run log's starts, then
        # its ends) and may carry times read from the performance counter (see _runlog),
        # which a wall-clock step can put out of order with the others. The parts are sorted
        # runs, so the sort merges them in linear time in practice.
        merged: Iterable[Any] = sorted([*self._events, *notes], key=itemgetter(0))
        kept: deque[Any] = deque(merged, maxlen=self.max_events)
        self._events = deque(map(_as_record, kept), maxlen=self.max_events)
        notes.clear()

    @property
    def total_events(self) -> int:
        """Events recorded since the last :meth:`clear_events` (dropped ones included)."""
        self._drain()
        return self._total + sum(self._noted.values())

    @property
    def events(self) -> list[MonitorEvent]:
        """The kept events, oldest first."""
        self._fold_notes()
        return [_event(r) for r in self._events]

    @property
    def events_by_type(self) -> dict[str, int]:
        """How many events of each type were recorded (dropped ones included)."""
        self._fold_notes()
        return dict(self._by_type)

    def add_event_handler(
        self, event_type: EventType | str, handler: Callable[[MonitorEvent], Any]
    ) -> None:
        """Call ``handler(event)`` for every later event of ``event_type``.

        A handler that raises does not disturb the run: its first failure is logged with the
        traceback, later ones are counted and logged as one line at the run's end. Whether a
        run reports processor starts and completions live is settled when it starts: a handler
        for those added while a run is live hears them from the next run on (the live run
        still records them as events).

        Raises:
            ValueError: Unknown event type.
            TypeError: ``handler`` is not callable.
        """
        kind = as_event_type(event_type)
        if not callable(handler):
            raise TypeError(f"event handler must be callable, got {handler!r}")
        self._handlers.setdefault(kind.value, []).append(handler)

    def remove_event_handler(
        self, event_type: EventType | str, handler: Callable[[MonitorEvent], Any]
    ) -> None:
        """Stop calling ``handler`` for ``event_type``; a handler not added is ignored."""
        handlers = self._handlers.get(as_event_type(event_type).value, [])
        if handler in handlers:
            handlers.remove(handler)

    def get_recent_events(
        self, count: int = 100, event_type: EventType | str | None = None
    ) -> list[dict[str, Any]]:
        """The latest ``count`` events (oldest first), of one type when ``event_type`` is given."""
        if not isinstance(count, int) or count < 0:
            raise ValueError(f"count must be a non-negative integer, got {count!r}")
        self._fold_notes()
        if event_type is None:
            chosen = list(self._events)
        else:
            kind = as_event_type(event_type)
            chosen = [r for r in self._events if r[1] == kind.value]
        return [_event(r).to_dict() for r in chosen[len(chosen) - count :]] if count else []

    def export_events(
        self, format: str = "json", path: str | os.PathLike[str] | None = None
    ) -> str:
        """Every kept event as JSON lines (one JSON object per line, oldest first).

        Args:
            format: ``"json"`` or ``"jsonl"`` (both JSON lines).
            path: Also write the text to this file.

        Raises:
            ValueError: Another format.
        """
        if format not in ("json", "jsonl"):
            raise ValueError(f"unknown export format {format!r}; expected 'json' or 'jsonl'")
        self._fold_notes()
        lines = [orjson.dumps(_event(r).to_dict(), default=_as_text) for r in self._events]
        text = b"".join(line + b"\n" for line in lines).decode()
        if path is not None:
            Path(path).write_text(text)
        return text

    def clear_events(self) -> None:
        """Forget every kept event and the event counters (metrics stay)."""
        self._drain()
        self._events.clear()
        self._notes.clear()
        self._noted = {}
        self._total = 0
        self._by_type.clear()
