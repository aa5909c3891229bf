"""The config dataclasses, and the problem list every config error is made of.

A config file becomes a :class:`GraphConfig` (plain data, nothing instantiated); building the graph
is a second step. Every problem found along the way is a :class:`Problem` naming its field path
(``processors[2].parameters.transformation``), and all problems of one step are raised together in
one :class:`~mpipe.ConfigurationError`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .._errors import ConfigurationError
from .._model._pipe import DEFAULT_MAX_BYTES

__all__ = [
    "ConnectionConfig",
    "GraphConfig",
    "Problem",
    "ProcessorConfig",
    "config_error",
    "field_path",
    "short_repr",
    "sort_problems",
]


@dataclass
class ProcessorConfig:
    """One processor of a config.

    Attributes:
        processor_id: The processor's id, unique in the graph.
        processor_type: A registered type name (``"simple"``, ``"text_transformer"``, a class
            registered by :class:`ProcessorMeta`...) or a ``"module:Class"`` reference.
        parameters: Keyword arguments for the processor.
        input_pipes: Names of its input pipes (default ``["input"]``).
        output_pipes: Names of its output pipes (default ``["output"]``).
        execution: Where its firings run (``inline``, ``thread``, ``process``, ``dask``), or None
            for the executor's default.
        timeout: Seconds a firing may take, or None.
        max_concurrent: Firings in flight at once, or None for the backend's default.
        error_strategy: Its own error strategy (a name or a mapping with ``type``), or None for
            the graph's.
    """

    processor_id: str
    processor_type: str
    parameters: dict[str, Any] = field(default_factory=dict)
    input_pipes: list[str] = field(default_factory=lambda: ["input"])
    output_pipes: list[str] = field(default_factory=lambda: ["output"])
    execution: str | None = None
    timeout: float | None = None
    max_concurrent: int | None = None
    error_strategy: str | dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """The processor as a config mapping (optional fields only when set)."""
        out: dict[str, Any] = {
            "processor_id": self.processor_id,
            "processor_type": self.processor_type,
            "parameters": dict(self.parameters),
            "input_pipes": list(self.input_pipes),
            "output_pipes": list(self.output_pipes),
        }
        for name in ("execution", "timeout", "max_concurrent", "error_strategy"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        return out


@dataclass
class ConnectionConfig:
    """One connection: an output pipe of one processor to an input pipe of another.

    Attributes:
        from_processor: The producing processor's id.
        from_output: Its output pipe.
        to_processor: The consuming processor's id.
        to_input: Its input pipe.
        max_size: Capacity of the connection's pipe, in items.
        max_bytes: Capacity of the connection's pipe, in bytes (None: in items only).
    """

    from_processor: str
    from_output: str
    to_processor: str
    to_input: str
    max_size: int = 1000
    max_bytes: int | None = DEFAULT_MAX_BYTES

    def to_dict(self) -> dict[str, Any]:
        """The connection as a config mapping."""
        out: dict[str, Any] = {
            "from_processor": self.from_processor,
            "from_output": self.from_output,
            "to_processor": self.to_processor,
            "to_input": self.to_input,
        }
        if self.max_size != 1000:
            out["max_size"] = self.max_size
        if self.max_bytes != DEFAULT_MAX_BYTES:
            out["max_bytes"] = self.max_bytes
        return out


@dataclass
class GraphConfig:
    """A whole config: the graph and how to run it.

    Attributes:
        graph_id: The graph's id, or None to generate one.
        processors: The processors, in file order.
        connections: The connections, in file order.
        error_strategy: The graph-wide error strategy (a name or a mapping with ``type``).
        monitoring: The ``monitoring`` section, as written.
        checkpoints: The ``checkpoints`` section, as written.
        executor: The ``executor`` section (``backend``, ``max_workers``).
        source: Where the config came from (a file path), for messages.
    """

    graph_id: str | None = None
    processors: list[ProcessorConfig] = field(default_factory=list)
    connections: list[ConnectionConfig] = field(default_factory=list)
    error_strategy: str | dict[str, Any] | None = None
    monitoring: dict[str, Any] = field(default_factory=dict)
    checkpoints: dict[str, Any] = field(default_factory=dict)
    executor: dict[str, Any] = field(default_factory=dict)
    source: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The config as a mapping that :meth:`ConfigLoader.load_from_dict` reads back."""
        out: dict[str, Any] = {}
        if self.graph_id is not None:
            out["graph_id"] = self.graph_id
        out["processors"] = [p.to_dict() for p in self.processors]
        out["connections"] = [c.to_dict() for c in self.connections]
        if self.error_strategy is not None:
            out["error_strategy"] = self.error_strategy
        for name in ("executor", "monitoring", "checkpoints"):
            value = getattr(self, name)
            if value:
                out[name] = dict(value)
        return out


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a config: where (a field path) and what was expected."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


_SECTIONS = (
    "graph_id",
    "processors",
    "connections",
    "error_strategy",
    "executor",
    "monitoring",
    "checkpoints",
)


def _problem_key(problem: Problem) -> tuple[Any, ...]:
    """File order: sections as documented, list items by index, then names."""
    parts = re.findall(r"\[(\d+)\]|([^.\[\]]+)", problem.field)
    key: list[tuple[int, int, str]] = []
    for index, name in parts:
        if index:
            key.append((0, int(index), ""))
        elif not key and name in _SECTIONS:
            key.append((1, _SECTIONS.index(name), name))
        else:
            key.append((2, 0, name))
    return tuple(key)


def sort_problems(problems: Iterable[Problem]) -> list[Problem]:
    """Problems without repeats, in the order their fields appear in a config."""
    return sorted(dict.fromkeys(problems), key=_problem_key)


def field_path(parts: Iterable[str | int]) -> str:
    """Join a field path: ``["processors", 2, "x"]`` -> ``"processors[2].x"``; root: ``config``."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "config"


def short_repr(value: Any, limit: int = 60) -> str:
    """A repr cut to ``limit`` characters, for messages."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def config_error(problems: Sequence[Problem], source: str | None) -> ConfigurationError:
    """One error carrying every problem; ``field`` is the first problem's, ``details['problems']``
    lists them all as ``{"field", "message"}`` mappings."""
    where = f"config {source!r}" if source else "config"
    count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
    text = "; ".join(str(p) for p in problems)
    return ConfigurationError(
        f"invalid {where} ({count}): {text}",
        field=problems[0].field if problems else None,
        problems=[{"field": p.field, "message": p.message} for p in problems],
    )
