"""processor_pipeline.v2.core.pipe: pipes, their states and factory, and pipe networks. Names only; served by mpipe."""

from mpipe import (
    Pipe,
    PipeFactory,
    PipeNetwork,
    PipeState,
)

__all__ = [
    "Pipe",
    "PipeFactory",
    "PipeNetwork",
    "PipeState",
]
