"""processor_pipeline.v2.config.loader: graph configs from files and dicts. Names only; served by mpipe."""

from mpipe import (
    ConfigLoader,
    ConnectionConfig,
    GraphConfig,
    ProcessorConfig,
    create_example_config,
    load_graph_from_file,
)

__all__ = [
    "ConfigLoader",
    "ConnectionConfig",
    "GraphConfig",
    "ProcessorConfig",
    "create_example_config",
    "load_graph_from_file",
]
