"""processor_pipeline.v2.core.processor: processors. Names only; served by mpipe."""

from mpipe import (
    AsyncProcessor,
    BaseProcessor,
    GeneratorProcessor,
    SimpleProcessor,
)

__all__ = [
    "AsyncProcessor",
    "BaseProcessor",
    "GeneratorProcessor",
    "SimpleProcessor",
]
