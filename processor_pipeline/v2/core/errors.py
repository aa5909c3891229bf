"""processor_pipeline.v2.core.errors: exceptions and the error tracker. Names only; served by mpipe."""

from mpipe import (
    ConfigurationError,
    ErrorTracker,
    ExecutionError,
    GraphError,
    PipeError,
    PipelineError,
    ProcessorError,
    ValidationError,
)
from mpipe import (
    PipelineTimeoutError as TimeoutError,
)

__all__ = [
    "ConfigurationError",
    "ErrorTracker",
    "ExecutionError",
    "GraphError",
    "PipeError",
    "PipelineError",
    "ProcessorError",
    "TimeoutError",
    "ValidationError",
]
