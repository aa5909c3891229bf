"""Every module path of the v2 package imports, with every public name it lists, as v2 code
writes the imports; each name is mpipe's own object, and the package exposes them all too."""

from __future__ import annotations

import builtins
import importlib

import pytest

import mpipe
import processor_pipeline.v2 as v2

#: The v2 package's public names, per module.
V2_MODULES: dict[str, list[str]] = {
    "core.interfaces": [
        "ProcessorRegistryInterface",
        "ProcessorFactoryInterface",
        "PipeType",
        "ProcessorState",
        "PipeInterface",
        "ProcessorInterface",
        "MonitorInterface",
        "CheckpointInterface",
        "ErrorHandlerInterface",
        "GraphInterface",
    ],
    "core.pipe": ["PipeState", "Pipe", "PipeFactory", "PipeNetwork"],
    "core.processor": ["BaseProcessor", "AsyncProcessor", "SimpleProcessor", "GeneratorProcessor"],
    "core.graph": ["GraphNode", "ProcessingGraph", "GraphExecutor"],
    "core.monitor": ["LogLevel", "EventType", "MonitorEvent", "PipeTap", "Monitor", "AlertManager"],
    "core.checkpoint": ["Checkpoint", "Breakpoint", "CheckpointManager", "DebugSession"],
    "core.errors": [
        "PipelineError",
        "ProcessorError",
        "GraphError",
        "ValidationError",
        "ExecutionError",
        "PipeError",
        "TimeoutError",
        "ConfigurationError",
        "ErrorTracker",
    ],
    "core.registry": [
        "ProcessorRegistry",
        "ProcessorFactory",
        "ProcessorMeta",
        "global_registry",
        "global_factory",
    ],
    "execution.strategies": [
        "ErrorStrategy",
        "SkipStrategy",
        "RetryStrategy",
        "HaltStrategy",
        "CircuitBreakerStrategy",
        "CompositeStrategy",
        "AdaptiveStrategy",
        "create_default_error_strategy",
    ],
    "config.loader": [
        "ProcessorConfig",
        "ConnectionConfig",
        "GraphConfig",
        "ConfigLoader",
        "load_graph_from_file",
        "create_example_config",
    ],
    "utils.helpers": [
        "create_simple_pipeline",
        "create_parallel_pipeline",
        "create_diamond_pipeline",
        "run_simple_pipeline",
        "visualize_graph",
        "debug_processor_execution",
        "validate_and_fix_graph",
        "profile_graph_execution",
    ],
}


def _mpipe_object(name: str) -> object:
    return mpipe.PipelineTimeoutError if name == "TimeoutError" else getattr(mpipe, name)


@pytest.mark.parametrize("module", sorted(V2_MODULES))
def test_module_imports_every_name_as_v2_code_writes_it(module: str) -> None:
    names = V2_MODULES[module]
    namespace: dict[str, object] = {}
    exec(f"from processor_pipeline.v2.{module} import {', '.join(names)}", namespace)
    mod = importlib.import_module(f"processor_pipeline.v2.{module}")
    assert sorted(mod.__all__) == sorted(names)
    for name in names:
        assert namespace[name] is _mpipe_object(name), f"{module}.{name}"
    star: dict[str, object] = {}
    exec(f"from processor_pipeline.v2.{module} import *", star)
    assert set(star) - {"__builtins__"} == set(names)


def test_the_package_and_its_subpackages_expose_every_name() -> None:
    every = {name for names in V2_MODULES.values() for name in names}
    assert every <= set(v2.__all__)
    for name in every:
        assert getattr(v2, name) is _mpipe_object(name), name
    for module, names in V2_MODULES.items():
        package = importlib.import_module(f"processor_pipeline.v2.{module.split('.')[0]}")
        for name in names:
            assert getattr(package, name) is _mpipe_object(name), f"{module}: {name}"


def test_v2_timeout_error_is_a_pipeline_error_not_the_builtin() -> None:
    from processor_pipeline.v2.core.errors import PipelineError, TimeoutError

    assert issubclass(TimeoutError, PipelineError)
    assert TimeoutError is not builtins.TimeoutError
    assert not issubclass(TimeoutError, builtins.TimeoutError)
    assert mpipe.ProcessorTimeoutError is not TimeoutError  # mpipe keeps its own name
    error = TimeoutError("waited too long", 2.5, processor_id="p", context={"pipe": "x"})
    out = error.to_dict()
    assert {
        "error_type",
        "message",
        "processor_id",
        "context",
        "timestamp",
        "cause",
        "timeout_duration",
    } <= set(out)
    assert (out["error_type"], out["timeout_duration"], out["context"]) == (
        "PipelineTimeoutError",
        2.5,
        {"pipe": "x"},
    )
    assert out["processor_id"] == "p" and out["cause"] is None
