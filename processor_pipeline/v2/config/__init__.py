"""Configuration (names only; served by mpipe)."""

from .loader import (
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
