"""The public surface: declared once in mpipe.__all__, re-exported by processor_pipeline.v2."""

from __future__ import annotations

import mpipe
import processor_pipeline.v2 as v2

SPEC_NAMES = {
    # What code written against the v2 API imports.
    "ProcessingGraph",
    "GraphExecutor",
    "ProcessorInterface",
    "PipeInterface",
    "MonitorInterface",
    "CheckpointInterface",
    "ErrorHandlerInterface",
    "GraphInterface",
    "BaseProcessor",
    "SimpleProcessor",
    "AsyncProcessor",
    "ProcessorState",
    "Pipe",
    "PipeType",
    "PipeFactory",
    "PipelineError",
    "ProcessorError",
    "GraphError",
    "ValidationError",
    "ExecutionError",
    "PipeError",
    "ConfigurationError",
    "ProcessorTimeoutError",
    "WorkerCrashedError",
    "ErrorStrategy",
    "ErrorAction",
    "SkipStrategy",
    "RetryStrategy",
    "HaltStrategy",
    "CircuitBreakerStrategy",
    "CompositeStrategy",
    "create_simple_pipeline",
    "create_parallel_pipeline",
    "create_diamond_pipeline",
    "run_simple_pipeline",
    "visualize_graph",
    # The rest of the v2 surface that mpipe implements under the same names.
    "AdaptiveStrategy",
    "Breakpoint",
    "Checkpoint",
    "DebugSession",
    "ErrorTracker",
    "GeneratorProcessor",
    "PipeNetwork",
    "PipeState",
    "PipeTap",
    "ProcessorFactoryInterface",
    "ProcessorRegistryInterface",
    "create_default_error_strategy",
    "create_example_config",
    "debug_processor_execution",
    "load_graph_from_file",
    "profile_graph_execution",
    "validate_and_fix_graph",
}


def test_all_is_sorted_unique_and_importable() -> None:
    names = [n for n in mpipe.__all__ if n != "__version__"]
    assert names == sorted(names)
    assert len(set(mpipe.__all__)) == len(mpipe.__all__)
    for name in mpipe.__all__:
        assert hasattr(mpipe, name), name


def test_spec_names_are_public() -> None:
    assert set(mpipe.__all__) >= SPEC_NAMES


def test_v2_reexports_the_same_objects() -> None:
    # Plus the v2 name of mpipe's PipelineTimeoutError, which mpipe itself never exports: it
    # would shadow the builtin in ``from mpipe import *``.
    assert set(v2.__all__) == {*mpipe.__all__, "TimeoutError"}
    for name in mpipe.__all__:
        assert getattr(v2, name) is getattr(mpipe, name), name
    assert v2.TimeoutError is mpipe.PipelineTimeoutError
    assert "TimeoutError" not in mpipe.__all__ and not hasattr(mpipe, "TimeoutError")


def test_public_names_have_docstrings() -> None:
    for name in mpipe.__all__:
        obj = getattr(mpipe, name)
        if callable(obj):
            assert (obj.__doc__ or "").strip(), f"{name} has no docstring"
