"""processor_pipeline.v2.core.interfaces: abstract interfaces and enums. Names only; served by mpipe."""

from mpipe import (
    CheckpointInterface,
    ErrorHandlerInterface,
    GraphInterface,
    MonitorInterface,
    PipeInterface,
    PipeType,
    ProcessorFactoryInterface,
    ProcessorInterface,
    ProcessorRegistryInterface,
    ProcessorState,
)

__all__ = [
    "CheckpointInterface",
    "ErrorHandlerInterface",
    "GraphInterface",
    "MonitorInterface",
    "PipeInterface",
    "PipeType",
    "ProcessorFactoryInterface",
    "ProcessorInterface",
    "ProcessorRegistryInterface",
    "ProcessorState",
]
