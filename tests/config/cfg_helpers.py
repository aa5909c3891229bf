"""Functions and classes that the config tests name as ``"cfg_helpers:attr"`` references."""

from __future__ import annotations

import asyncio
from typing import Any

from mpipe import BaseProcessor, Pipe, ProcessorInterface, ProcessorMeta, ProcessorState


def double(x: Any) -> Any:
    """Twice the item."""
    return x * 2


async def slow(x: Any) -> Any:
    """Never finishes in time for a small ``timeout``: waits on an event nobody sets."""
    await asyncio.Event().wait()
    return x


def explode(x: Any) -> Any:
    """Always fails."""
    raise ValueError(f"explode got {x!r}")


class Flaky:
    """Fails the first ``n`` calls, then returns the item plus one; reset with ``reset()``."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.calls = 0

    def __call__(self, x: Any) -> Any:
        self.calls += 1
        if self.calls <= self.n:
            raise RuntimeError(f"flaky call {self.calls}")
        return x + 1


#: Fails twice, then works (tests reset ``calls``).
flaky_twice = Flaky(2)

SKIPPED: list[str] = []


def record_skip(error: BaseException, processor_id: str, context: dict[str, Any]) -> None:
    """A skip callback that remembers which processor skipped."""
    SKIPPED.append(processor_id)


not_callable = 42


class Scale(BaseProcessor, metaclass=ProcessorMeta):
    """Multiplies the item by ``factor`` (registers itself as ``scale``)."""

    def __init__(self, processor_id: str | None = None, factor: float = 1.0, **config: Any):
        if not isinstance(factor, (int, float)) or isinstance(factor, bool):
            from mpipe import ConfigurationError

            raise ConfigurationError(f"factor must be a number, got {factor!r}", "factor")
        super().__init__(processor_id, **config)
        self.factor = factor

    @classmethod
    def get_processor_metadata(cls) -> dict[str, Any]:
        return {"name": "scale", "description": "Multiplies by a factor", "version": "1.0"}

    async def process_data(self, input_data: dict[str, Any]) -> Any:
        (item,) = input_data.values()
        return item * self.factor


class Offset(BaseProcessor):
    """Adds ``offset`` (not registered: used as ``"cfg_helpers:Offset"``)."""

    def __init__(self, processor_id: str | None = None, offset: int = 0, **config: Any):
        super().__init__(processor_id, **config)
        self.offset = offset

    async def process_data(self, input_data: dict[str, Any]) -> Any:
        (item,) = input_data.values()
        return item + self.offset


class NotAProcessor:
    """Something that is not a processor class."""


class Foreign(ProcessorInterface):
    """A processor that is not a BaseProcessor: implements the interface by hand.

    With ``picky=True`` it refuses any input pipe named other than ``"input"``.
    """

    def __init__(self, processor_id: str | None = None, picky: bool = False) -> None:
        self.processor_id = processor_id or "foreign"
        self.input_pipes = {}
        self.output_pipes = {}
        self.state = ProcessorState.IDLE
        self.picky = picky

    def register_input_pipe(self, name: str, pipe: Pipe) -> None:
        if self.picky and name != "input":
            raise KeyError(f"refuses input pipe {name!r}")
        self.input_pipes[name] = pipe

    def register_output_pipe(self, name: str, pipe: Pipe) -> None:
        self.output_pipes[name] = pipe

    async def initialize(self) -> None:
        pass

    async def process(self, input_data: dict[str, Any]) -> Any:
        return {"seen": input_data}

    async def cleanup(self) -> None:
        pass

    def get_metrics(self) -> dict[str, Any]:
        return {}


# -- monitoring and checkpoints -------------------------------------------------------------

#: Alerts that ``remember_alert`` received.
ALERTS: list[dict[str, Any]] = []


def has_errors(summary: dict[str, Any]) -> bool:
    """An alert condition: some firing failed."""
    return bool(summary["total_errors"])


def remember_alert(alert: dict[str, Any]) -> None:
    """An alert action that keeps the alert."""
    ALERTS.append(alert)


#: Calls of ``counted`` (tests clear it).
CALLS: list[Any] = []

#: While true, ``fail_when_armed`` fails (tests set and reset it).
ARMED = [False]


def counted(x: Any) -> Any:
    """Passes the item on and remembers it was called."""
    CALLS.append(x)
    return x


def fail_when_armed(x: Any) -> Any:
    """Fails while ``ARMED[0]``; otherwise the item plus one."""
    if ARMED[0]:
        raise RuntimeError("armed")
    return x + 1


def fail_if_env(x: Any) -> Any:
    """Fails while the environment variable ``CFG_HELPERS_FAIL`` is set (for subprocesses)."""
    import os

    if os.environ.get("CFG_HELPERS_FAIL"):
        raise RuntimeError("CFG_HELPERS_FAIL is set")
    return x + 1
