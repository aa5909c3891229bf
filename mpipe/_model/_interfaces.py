"""The abstract interfaces of the processor pipeline API.

Implementations in mpipe derive from these; user code may implement them too (a processor that
is not a :class:`~mpipe.BaseProcessor`, a custom monitor or checkpoint store).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
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
    "ProcessorInterface",
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


class GraphInterface(ABC):
    """What the executor needs of a graph."""

    @abstractmethod
    def validate(self) -> list[str]:
        """Every problem of the graph, empty when it is valid."""

    @abstractmethod
    def get_execution_order(self) -> list[list[str]]:
        """Processor ids in topological levels."""
