"""mpipe: a local, multi-process DAG executor for Python.

A graph of processors connected by pipes runs under an asyncio dataflow scheduler; independent
branches and stream stages overlap. This module declares the whole public API.
"""

from ._breakpoints import BreakpointAbort, BreakpointHit
from ._checkpoints import CheckpointError, CheckpointManager, CheckpointWarning
from ._errors import (
    ConfigurationError,
    ExecutionError,
    GraphError,
    PipeError,
    PipelineError,
    ProcessorError,
    ProcessorTimeoutError,
    ValidationError,
    WorkerCrashedError,
)
from ._executor import GraphExecutor
from ._graph import GraphNode, ProcessingGraph
from ._helpers import (
    create_diamond_pipeline,
    create_parallel_pipeline,
    create_simple_pipeline,
    run_simple_pipeline,
)
from ._hooks import RunHooks, RunInfo
from ._interfaces import (
    CheckpointInterface,
    ErrorHandlerInterface,
    GraphInterface,
    MonitorInterface,
    PipeInterface,
    ProcessorInterface,
    ProcessorState,
)
from ._monitor import (
    Alert,
    AlertManager,
    EventType,
    LogLevel,
    Monitor,
    MonitorEvent,
    ProgressDisplay,
)
from ._pipe import Pipe, PipeFactory, PipeState, PipeType
from ._processors import AsyncProcessor, BaseProcessor, SimpleProcessor
from ._strategies import (
    CircuitBreakerStrategy,
    CircuitOpenError,
    CompositeStrategy,
    ErrorAction,
    ErrorStrategy,
    HaltStrategy,
    RetryStrategy,
    SkipStrategy,
)
from ._visualize import visualize_graph

__version__ = "0.1.0"

__all__ = [
    "Alert",
    "AlertManager",
    "AsyncProcessor",
    "BaseProcessor",
    "BreakpointAbort",
    "BreakpointHit",
    "CheckpointError",
    "CheckpointInterface",
    "CheckpointManager",
    "CheckpointWarning",
    "CircuitBreakerStrategy",
    "CircuitOpenError",
    "CompositeStrategy",
    "ConfigurationError",
    "ErrorAction",
    "ErrorHandlerInterface",
    "ErrorStrategy",
    "EventType",
    "ExecutionError",
    "GraphError",
    "GraphExecutor",
    "GraphInterface",
    "GraphNode",
    "HaltStrategy",
    "LogLevel",
    "Monitor",
    "MonitorEvent",
    "MonitorInterface",
    "Pipe",
    "PipeError",
    "PipeFactory",
    "PipeInterface",
    "PipeState",
    "PipeType",
    "PipelineError",
    "ProcessingGraph",
    "ProcessorError",
    "ProcessorInterface",
    "ProcessorState",
    "ProcessorTimeoutError",
    "ProgressDisplay",
    "RetryStrategy",
    "RunHooks",
    "RunInfo",
    "SimpleProcessor",
    "SkipStrategy",
    "ValidationError",
    "WorkerCrashedError",
    "__version__",
    "create_diamond_pipeline",
    "create_parallel_pipeline",
    "create_simple_pipeline",
    "run_simple_pipeline",
    "visualize_graph",
]
