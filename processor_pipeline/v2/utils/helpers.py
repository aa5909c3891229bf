"""processor_pipeline.v2.utils.helpers: helpers that build, run, draw, debug and profile graphs. Names only; served by mpipe."""

from mpipe import (
    create_diamond_pipeline,
    create_parallel_pipeline,
    create_simple_pipeline,
    debug_processor_execution,
    profile_graph_execution,
    run_simple_pipeline,
    validate_and_fix_graph,
    visualize_graph,
)

__all__ = [
    "create_diamond_pipeline",
    "create_parallel_pipeline",
    "create_simple_pipeline",
    "debug_processor_execution",
    "profile_graph_execution",
    "run_simple_pipeline",
    "validate_and_fix_graph",
    "visualize_graph",
]
