"""The abstract interfaces of the processor pipeline API.

Implementations in mpipe derive from these; user code may implement them too (a processor that
is not a :class:`~mpipe.BaseProcessor`, a custom monitor or checkpoint store).
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Mapping
from enum import Enum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._pipe import Pipe

__all__ = [
    "CheckpointInterface",
    "ErrorHandlerInterface",
    "GraphInterface",
    "MonitorInterface",
    "PipeInterface",
    "ProcessorFactoryInterface",
    "ProcessorInterface",
    "ProcessorRegistryInterface",
    "ProcessorState",
]


class ProcessorState(Enum):
    """Where a processor is in its life."""

    IDLE = "idle"
    RUNNING = "running"
    COMPLETED = "completed"
    ERROR = "error"
    PAUSED = "paused"


class ProcessorInterface(ABC):
    """What the executor needs of a processor."""

    processor_id: str
    input_pipes: dict[str, Pipe]
    output_pipes: dict[str, Pipe]
    state: ProcessorState

    @abstractmethod
    def register_input_pipe(self, name: str, pipe: Pipe) -> None:
        """Declare an input pipe under ``name``."""

    @abstractmethod
    def register_output_pipe(self, name: str, pipe: Pipe) -> None:
        """Declare an output pipe under ``name``."""

    @abstractmethod
    async def initialize(self) -> None:
        """Prepare for a run (open files, load models)."""

    @abstractmethod
    async def process(self, input_data: dict[str, Any]) -> Any:
        """Run one firing on ``input_data`` (input pipe name -> item) and return its output."""

    @abstractmethod
    async def cleanup(self) -> None:
        """Release what ``initialize`` acquired."""

    @abstractmethod
    def get_metrics(self) -> dict[str, Any]:
        """Counters of the processor's work, JSON-compatible."""

    @classmethod
    def get_processor_metadata(cls) -> dict[str, Any]:
        """Describe the processor class (name, description); used by the registry."""
        doc = (cls.__doc__ or "").strip().splitlines()
        return {"name": cls.__name__, "description": doc[0] if doc else "", "version": "1.0"}


class PipeInterface(ABC):
    """What a pipe offers (implemented by :class:`~mpipe.Pipe`)."""

    @abstractmethod
    async def aput(self, item: Any, timeout: float | None = None) -> None:
        """Put an item, awaiting room."""

    @abstractmethod
    async def aget(self, timeout: float | None = None) -> Any:
        """Take an item, awaiting one."""

    @abstractmethod
    def close(self) -> None:
        """Accept no more items."""


class MonitorInterface(ABC):
    """What the executor tells a monitor."""

    @abstractmethod
    def log_event(
        self,
        event_type: Any,
        processor_id: str | None = None,
        data: dict[str, Any] | None = None,
        level: Any = None,
    ) -> None:
        """Record one event."""


class CheckpointInterface(ABC):
    """A store of checkpoints."""

    @abstractmethod
    def create_checkpoint(
        self, name: str, processor_id: str, data: Any, metadata: dict[str, Any] | None = None
    ) -> str:
        """Save ``data`` and return the new checkpoint's id."""

    @abstractmethod
    def restore_checkpoint(self, checkpoint_id: str) -> Any:
        """Load the data saved under ``checkpoint_id``."""


class ErrorHandlerInterface(ABC):
    """Decides what happens when a firing fails."""

    @abstractmethod
    async def handle_error(
        self, error: BaseException, processor_id: str, context: dict[str, Any]
    ) -> Any:
        """Return ``True`` (skip), ``False`` (halt) or an :class:`~mpipe.ErrorAction`."""

    def get_strategy_name(self) -> str:
        """The strategy's short name: its class name without ``Strategy``, in snake case
        (``CircuitBreakerStrategy`` -> ``"circuit_breaker"``). Override to name it otherwise."""
        name = type(self).__name__
        if name.endswith("Strategy") and name != "Strategy":
            name = name[: -len("Strategy")]
        return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


class GraphInterface(ABC):
    """What the executor needs of a graph."""

    @abstractmethod
    def validate(self) -> list[str]:
        """Every problem of the graph, empty when it is valid."""

    @abstractmethod
    def get_execution_order(self) -> list[list[str]]:
        """Processor ids in topological levels."""


class ProcessorRegistryInterface(ABC):
    """A store of processor classes by name (implemented by :class:`~mpipe.ProcessorRegistry`)."""

    @abstractmethod
    def register_processor(self, name: str, processor_class: type[ProcessorInterface]) -> None:
        """Register ``processor_class`` under ``name`` (replacing an earlier entry)."""

    @abstractmethod
    def get_processor_class(self, name: str) -> type[ProcessorInterface]:
        """The class registered under ``name``; raises :class:`KeyError` when there is none."""

    @abstractmethod
    def list_registered_processors(self) -> dict[str, type[ProcessorInterface]]:
        """A copy of the registry: name -> class."""

    @abstractmethod
    def is_registered(self, name: str) -> bool:
        """Whether a class is registered under ``name``."""

    @abstractmethod
    def unregister_processor(self, name: str) -> None:
        """Forget ``name``; an unknown name is ignored."""


class ProcessorFactoryInterface(ABC):
    """Builds processors from registered names (implemented by :class:`~mpipe.ProcessorFactory`)."""

    @abstractmethod
    def create_processor(
        self, name: str, processor_id: str | None = None, **kwargs: Any
    ) -> ProcessorInterface:
        """A new processor of the type registered under ``name``."""

    @abstractmethod
    def create_processor_from_config(self, config: Mapping[str, Any]) -> ProcessorInterface:
        """A new processor from ``{"name": type, "processor_id": id, **parameters}``."""

    @abstractmethod
    def get_processor_info(self, name: str) -> dict[str, Any]:
        """What is known of the type registered under ``name``."""
