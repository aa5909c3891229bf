"""processor_pipeline.v2.core.registry: the processor registry and factory. Names only; served by mpipe."""

from mpipe import (
    ProcessorFactory,
    ProcessorMeta,
    ProcessorRegistry,
    global_factory,
    global_registry,
)

__all__ = [
    "ProcessorFactory",
    "ProcessorMeta",
    "ProcessorRegistry",
    "global_factory",
    "global_registry",
]
