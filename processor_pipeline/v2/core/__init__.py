"""The core of the processor pipeline v2 API (names only; served by mpipe).

Each name loads its submodule on first use, so that importing one submodule
(``processor_pipeline.v2.core.graph``, say) does not import the others' layers of mpipe.
"""

from typing import TYPE_CHECKING

from mpipe._lazy import lazy_names

if TYPE_CHECKING:
    from .checkpoint import (
        Breakpoint,
        Checkpoint,
        CheckpointManager,
        DebugSession,
    )
    from .errors import (
        ConfigurationError,
        ErrorTracker,
        ExecutionError,
        GraphError,
        PipeError,
        PipelineError,
        ProcessorError,
        TimeoutError,
        ValidationError,
    )
    from .graph import (
        GraphExecutor,
        GraphNode,
        ProcessingGraph,
    )
    from .interfaces import (
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
    from .monitor import (
        AlertManager,
        EventType,
        LogLevel,
        Monitor,
        MonitorEvent,
        PipeTap,
    )
    from .pipe import (
        Pipe,
        PipeFactory,
        PipeNetwork,
        PipeState,
    )
    from .processor import (
        AsyncProcessor,
        BaseProcessor,
        GeneratorProcessor,
        SimpleProcessor,
    )
    from .registry import (
        ProcessorFactory,
        ProcessorMeta,
        ProcessorRegistry,
        global_factory,
        global_registry,
    )

#: Each name and the submodule that serves it.
_LAZY: dict[str, str] = {
    "Breakpoint": ".checkpoint",
    "Checkpoint": ".checkpoint",
    "CheckpointManager": ".checkpoint",
    "DebugSession": ".checkpoint",
    "ConfigurationError": ".errors",
    "ErrorTracker": ".errors",
    "ExecutionError": ".errors",
    "GraphError": ".errors",
    "PipeError": ".errors",
    "PipelineError": ".errors",
    "ProcessorError": ".errors",
    "TimeoutError": ".errors",
    "ValidationError": ".errors",
    "GraphExecutor": ".graph",
    "GraphNode": ".graph",
    "ProcessingGraph": ".graph",
    "CheckpointInterface": ".interfaces",
    "ErrorHandlerInterface": ".interfaces",
    "GraphInterface": ".interfaces",
    "MonitorInterface": ".interfaces",
    "PipeInterface": ".interfaces",
    "PipeType": ".interfaces",
    "ProcessorFactoryInterface": ".interfaces",
    "ProcessorInterface": ".interfaces",
    "ProcessorRegistryInterface": ".interfaces",
    "ProcessorState": ".interfaces",
    "AlertManager": ".monitor",
    "EventType": ".monitor",
    "LogLevel": ".monitor",
    "Monitor": ".monitor",
    "MonitorEvent": ".monitor",
    "PipeTap": ".monitor",
    "Pipe": ".pipe",
    "PipeFactory": ".pipe",
    "PipeNetwork": ".pipe",
    "PipeState": ".pipe",
    "AsyncProcessor": ".processor",
    "BaseProcessor": ".processor",
    "GeneratorProcessor": ".processor",
    "SimpleProcessor": ".processor",
    "ProcessorFactory": ".registry",
    "ProcessorMeta": ".registry",
    "ProcessorRegistry": ".registry",
    "global_factory": ".registry",
    "global_registry": ".registry",
}


__all__ = [
    "AlertManager",
    "AsyncProcessor",
    "BaseProcessor",
    "Breakpoint",
    "Checkpoint",
    "CheckpointInterface",
    "CheckpointManager",
    "ConfigurationError",
    "DebugSession",
    "ErrorHandlerInterface",
    "ErrorTracker",
    "EventType",
    "ExecutionError",
    "GeneratorProcessor",
    "GraphError",
    "GraphExecutor",
    "GraphInterface",
    "GraphNode",
    "LogLevel",
    "Monitor",
    "MonitorEvent",
    "MonitorInterface",
    "Pipe",
    "PipeError",
    "PipeFactory",
    "PipeInterface",
    "PipeNetwork",
    "PipeState",
    "PipeTap",
    "PipeType",
    "PipelineError",
    "ProcessingGraph",
    "ProcessorError",
    "ProcessorFactory",
    "ProcessorFactoryInterface",
    "ProcessorInterface",
    "ProcessorMeta",
    "ProcessorRegistry",
    "ProcessorRegistryInterface",
    "ProcessorState",
    "SimpleProcessor",
    "TimeoutError",
    "ValidationError",
    "global_factory",
    "global_registry",
]

__getattr__, __dir__ = lazy_names(__name__, _LAZY, globals())
