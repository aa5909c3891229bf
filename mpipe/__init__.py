"""mpipe: a local, multi-process DAG executor for Python.

A graph of processors connected by pipes runs under an asyncio dataflow scheduler; independent
branches and stream stages overlap. This module declares the whole public API.

Only the exceptions are imported with the package; every other name loads its layer on first
use (PEP 562) and is then cached here. ``import mpipe`` therefore stays cheap (no numpy, no
asyncio, no engine), which is what a script that runs one graph, and every worker process of
the process backend, pays before doing any work. Type checkers and IDEs see every name through
the imports under ``TYPE_CHECKING``.
"""

from typing import TYPE_CHECKING

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
from ._lazy import lazy_names
from ._transport._errors import (
    ArenaFullError,
    PayloadTooLargeError,
    TransportError,
)

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
    from ._engine._executor import (
        GraphExecutor,
    )
    from ._engine._helpers import (
        create_diamond_pipeline,
        create_parallel_pipeline,
        create_simple_pipeline,
        run_simple_pipeline,
    )
    from ._model._graph import (
        GraphNode,
        ProcessingGraph,
    )
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
    from ._model._network import (
        PipeNetwork,
    )
    from ._model._pipe import (
        Pipe,
        PipeFactory,
        PipeState,
        PipeType,
    )
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
    from ._observe._breakpoints import (
        Breakpoint,
        BreakpointAbort,
        BreakpointHit,
    )
    from ._observe._checkpoints import (
        Checkpoint,
        CheckpointError,
        CheckpointManager,
        CheckpointWarning,
    )
    from ._observe._debug import (
        DebugSession,
    )
    from ._observe._hooks import (
        RunHooks,
        RunInfo,
    )
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
    from ._observe._tracker import (
        ErrorTracker,
    )
    from ._observe._visualize import (
        visualize_graph,
    )

#: Each lazily loaded public name and the module (relative to this package) that defines it.
_LAZY: dict[str, str] = {
    "GraphExecutor": "._engine._executor",
    "create_diamond_pipeline": "._engine._helpers",
    "create_parallel_pipeline": "._engine._helpers",
    "create_simple_pipeline": "._engine._helpers",
    "run_simple_pipeline": "._engine._helpers",
    "GraphNode": "._model._graph",
    "ProcessingGraph": "._model._graph",
    "CheckpointInterface": "._model._interfaces",
    "ErrorHandlerInterface": "._model._interfaces",
    "GraphInterface": "._model._interfaces",
    "MonitorInterface": "._model._interfaces",
    "PipeInterface": "._model._interfaces",
    "ProcessorFactoryInterface": "._model._interfaces",
    "ProcessorInterface": "._model._interfaces",
    "ProcessorRegistryInterface": "._model._interfaces",
    "ProcessorState": "._model._interfaces",
    "PipeNetwork": "._model._network",
    "Pipe": "._model._pipe",
    "PipeFactory": "._model._pipe",
    "PipeState": "._model._pipe",
    "PipeType": "._model._pipe",
    "AsyncProcessor": "._model._processors",
    "BaseProcessor": "._model._processors",
    "GeneratorProcessor": "._model._processors",
    "SimpleProcessor": "._model._processors",
    "AdaptiveStrategy": "._model._strategies",
    "CircuitBreakerStrategy": "._model._strategies",
    "CircuitOpenError": "._model._strategies",
    "CompositeStrategy": "._model._strategies",
    "ErrorAction": "._model._strategies",
    "ErrorStrategy": "._model._strategies",
    "HaltStrategy": "._model._strategies",
    "RetryStrategy": "._model._strategies",
    "SkipStrategy": "._model._strategies",
    "create_default_error_strategy": "._model._strategies",
    "Breakpoint": "._observe._breakpoints",
    "BreakpointAbort": "._observe._breakpoints",
    "BreakpointHit": "._observe._breakpoints",
    "Checkpoint": "._observe._checkpoints",
    "CheckpointError": "._observe._checkpoints",
    "CheckpointManager": "._observe._checkpoints",
    "CheckpointWarning": "._observe._checkpoints",
    "DebugSession": "._observe._debug",
    "RunHooks": "._observe._hooks",
    "RunInfo": "._observe._hooks",
    "Alert": "._observe._monitor",
    "AlertManager": "._observe._monitor",
    "EventType": "._observe._monitor",
    "LogLevel": "._observe._monitor",
    "Monitor": "._observe._monitor",
    "MonitorEvent": "._observe._monitor",
    "PipeTap": "._observe._monitor",
    "ProgressDisplay": "._observe._monitor",
    "ErrorTracker": "._observe._tracker",
    "visualize_graph": "._observe._visualize",
    "ConfigLoader": "._config",
    "ConnectionConfig": "._config",
    "GraphConfig": "._config",
    "ProcessorConfig": "._config",
    "ProcessorFactory": "._config",
    "ProcessorMeta": "._config",
    "ProcessorRegistry": "._config",
    "create_example_config": "._config",
    "global_factory": "._config",
    "global_registry": "._config",
    "load_graph_from_file": "._config",
    "debug_processor_execution": "._config._diagnose",
    "profile_graph_execution": "._config._diagnose",
    "validate_and_fix_graph": "._config._diagnose",
}


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

__getattr__, __dir__ = lazy_names(__name__, _LAZY, globals())
