"""Pipe taps as objects: what a tap watches, how much it saw and when."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from ..._model._pipe import Pipe

__all__ = ["PipeTap"]

_log = logging.getLogger("mpipe")


class PipeTap:
    """A watcher of one pipe: its callback is called with every item that passes through.

    :meth:`Monitor.tap_pipe` makes one per tap and installs :meth:`on_data` on the pipe (see
    ``Monitor.pipe_taps``); made by hand, install it with ``pipe.add_tap(tap.tap_id,
    tap.on_data)``.

    Args:
        tap_id: The tap's id.
        pipe: The pipe it watches.
        callback: Called as ``callback(item)``; an exception it raises is logged and swallowed.

    Raises:
        TypeError: ``pipe`` is not a Pipe or ``callback`` is not callable.
    """

    def __init__(self, tap_id: str, pipe: Pipe, callback: Callable[[Any], Any]) -> None:
        if not isinstance(pipe, Pipe):
            raise TypeError(f"PipeTap needs a Pipe, got {type(pipe).__name__}")
        if not callable(callback):
            raise TypeError(f"tap callback must be callable, got {callback!r}")
        self.tap_id = tap_id
        self.pipe = pipe
        self.callback = callback
        self.created_at = time.time()
        self.last_activity: float | None = None
        self.total_data_seen = 0

    def on_data(self, data: Any) -> None:
        """Count ``data`` and hand it to the callback (whose errors are logged, not raised)."""
        self.total_data_seen += 1
        self.last_activity = time.time()
        try:
            self.callback(data)
        except Exception:
            _log.exception("tap %r on pipe %r failed", self.tap_id, self.pipe.pipe_id)

    def get_status(self) -> dict[str, Any]:
        """``tap_id``, ``pipe_id``, ``created_at``, ``last_activity`` (None before any item) and
        ``total_data_seen``."""
        return {
            "tap_id": self.tap_id,
            "pipe_id": self.pipe.pipe_id,
            "created_at": self.created_at,
            "last_activity": self.last_activity,
            "total_data_seen": self.total_data_seen,
        }

    def __repr__(self) -> str:
        return f"PipeTap({self.tap_id!r}, pipe={self.pipe.pipe_id!r}, seen={self.total_data_seen})"
