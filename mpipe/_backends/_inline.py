"""The inline backend: firings run in the event loop itself (sync calls block it briefly)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ._base import Backend, FiringSlot


class InlineBackend(Backend):
    """Runs each firing directly in the event-loop thread: the lowest overhead per firing."""

    name = "inline"

    def submit(self, fn: Callable[[Any], Any], arg: Any, slot: FiringSlot) -> Any:
        return fn(arg)
