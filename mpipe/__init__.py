"""mpipe: a local, multi-process DAG executor for Python.

A graph of processors connected by pipes runs under an asyncio dataflow scheduler; independent
branches and stream stages overlap. This module declares the whole public API.
"""

from typing import TYPE_CHECKING, Any

from ._engine._executor import GraphExecutor
from ._engine._helpers import (
    create_diamond_pipeline,
    create_parallel_pipeline,
    create_simple_pipeline,
    run_simple_pipeline,
)
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
from ._model._graph import GraphNode, ProcessingGraph
from ._model._interfaces import (
    CheckpointInterface,
    ErrorHandlerInterface,
    GraphInterface,
    MonitorInterface,
    PipeInterface,
    ProcessorInterface,
    ProcessorState,
)
from ._model._pipe import Pipe, PipeFactory, PipeState, PipeType
from ._model._processors import AsyncProcessor, BaseProcessor, SimpleProcessor
from ._model._strategies import (
    CircuitBreakerStrategy,
    CircuitOpenError,
    CompositeStrategy,
    ErrorAction,
    ErrorStrategy,
    HaltStrategy,
    RetryStrategy,
    SkipStrategy,
)
from ._observe._breakpoints import BreakpointAbort, BreakpointHit
from ._observe._checkpoints import CheckpointError, CheckpointManager, CheckpointWarning
from ._observe._hooks import RunHooks, RunInfo
from ._observe._monitor import (
    Alert,
    AlertManager,
    EventType,
    LogLevel,
    Monitor,
    MonitorEvent,
    ProgressDisplay,
)
from ._observe._visualize import visualize_graph
from ._transport._errors import ArenaFullError, PayloadTooLargeError, TransportError

if TYPE_CHECKING:
    from ._config import (
        ConfigLoader,
        ConnectionConfig,
        GraphConfig,
        ProcessorConfig,
        ProcessorFactory,
        ProcessorMeta,
        ProcessorRegistry,
        global_factory,
        global_registry,
    )

# Loaded on first use (PEP 562): the config layer pulls in jsonschema, which a worker process
# or a script that builds graphs in code never needs.
_LAZY = dict.fromkeys(
    (
        "ConfigLoader",
        "ConnectionConfig",
        "GraphConfig",
        "ProcessorConfig",
        "ProcessorFactory",
        "ProcessorMeta",
        "ProcessorRegistry",
        "global_factory",
        "global_registry",
    ),
    "._config",
)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'mpipe' has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


__version__ = "0.1.0"

__all__ = [
    "Alert",
    "AlertManager",
    "ArenaFullError",
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
    "ConfigLoader",
    "ConfigurationError",
    "ConnectionConfig",
    "ErrorAction",
    "ErrorHandlerInterface",
    "ErrorStrategy",
    "EventType",
    "ExecutionError",
    "GraphConfig",
    "GraphError",
    "GraphExecutor",
    "GraphInterface",
    "GraphNode",
    "HaltStrategy",
    "LogLevel",
    "Monitor",
    "MonitorEvent",
    "MonitorInterface",
    "PayloadTooLargeError",
    "Pipe",
    "PipeError",
    "PipeFactory",
    "PipeInterface",
    "PipeState",
    "PipeType",
    "PipelineError",
    "ProcessingGraph",
    "ProcessorConfig",
    "ProcessorError",
    "ProcessorFactory",
    "ProcessorInterface",
    "ProcessorMeta",
    "ProcessorRegistry",
    "ProcessorState",
    "ProcessorTimeoutError",
    "ProgressDisplay",
    "RetryStrategy",
    "RunHooks",
    "RunInfo",
    "SimpleProcessor",
    "SkipStrategy",
    "TransportError",
    "ValidationError",
    "WorkerCrashedError",
    "__version__",
    "create_diamond_pipeline",
    "create_parallel_pipeline",
    "create_simple_pipeline",
    "global_factory",
    "global_registry",
    "run_simple_pipeline",
    "visualize_graph",
]
