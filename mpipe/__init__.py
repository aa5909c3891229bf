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
    PipelineTimeoutError,
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
    ProcessorFactoryInterface,
    ProcessorInterface,
    ProcessorRegistryInterface,
    ProcessorState,
)
from ._model._network import PipeNetwork
from ._model._pipe import Pipe, PipeFactory, PipeState, PipeType
from ._model._processors import (
    AsyncProcessor,
    BaseProcessor,
    GeneratorProcessor,
    SimpleProcessor,
)
from ._model._strategies import (
    AdaptiveStrategy,
    CircuitBreakerStrategy,
    CircuitOpenError,
    CompositeStrategy,
    ErrorAction,
    ErrorStrategy,
    HaltStrategy,
    RetryStrategy,
    SkipStrategy,
    create_default_error_strategy,
)
from ._observe._breakpoints import Breakpoint, BreakpointAbort, BreakpointHit
from ._observe._checkpoints import (
    Checkpoint,
    CheckpointError,
    CheckpointManager,
    CheckpointWarning,
)
from ._observe._debug import DebugSession
from ._observe._hooks import RunHooks, RunInfo
from ._observe._monitor import (
    Alert,
    AlertManager,
    EventType,
    LogLevel,
    Monitor,
    MonitorEvent,
    PipeTap,
    ProgressDisplay,
)
from ._observe._tracker import ErrorTracker
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
        create_example_config,
        global_factory,
        global_registry,
        load_graph_from_file,
    )
    from ._config._diagnose import (
        debug_processor_execution,
        profile_graph_execution,
        validate_and_fix_graph,
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
        "create_example_config",
        "global_factory",
        "global_registry",
        "load_graph_from_file",
    ),
    "._config",
)
_LAZY.update(
    dict.fromkeys(
        ("debug_processor_execution", "profile_graph_execution", "validate_and_fix_graph"),
        "._config._diagnose",
    )
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
    "AdaptiveStrategy",
    "Alert",
    "AlertManager",
    "ArenaFullError",
    "AsyncProcessor",
    "BaseProcessor",
    "Breakpoint",
    "BreakpointAbort",
    "BreakpointHit",
    "Checkpoint",
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
    "DebugSession",
    "ErrorAction",
    "ErrorHandlerInterface",
    "ErrorStrategy",
    "ErrorTracker",
    "EventType",
    "ExecutionError",
    "GeneratorProcessor",
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
    "PipeNetwork",
    "PipeState",
    "PipeTap",
    "PipeType",
    "PipelineError",
    "PipelineTimeoutError",
    "ProcessingGraph",
    "ProcessorConfig",
    "ProcessorError",
    "ProcessorFactory",
    "ProcessorFactoryInterface",
    "ProcessorInterface",
    "ProcessorMeta",
    "ProcessorRegistry",
    "ProcessorRegistryInterface",
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
    "create_default_error_strategy",
    "create_diamond_pipeline",
    "create_example_config",
    "create_parallel_pipeline",
    "create_simple_pipeline",
    "debug_processor_execution",
    "global_factory",
    "global_registry",
    "load_graph_from_file",
    "profile_graph_execution",
    "run_simple_pipeline",
    "validate_and_fix_graph",
    "visualize_graph",
]
