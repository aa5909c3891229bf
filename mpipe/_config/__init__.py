"""Pipelines as files: the config format, the loader, and the processor registry; also the
helpers that build, debug, validate and profile graphs (``_helpers``, ``_diagnose``)."""

from ._example import create_example_config
from ._loader import ConfigLoader, load_graph_from_file
from ._model import ConnectionConfig, GraphConfig, ProcessorConfig
from ._registry import (
    ProcessorFactory,
    ProcessorMeta,
    ProcessorRegistry,
    global_factory,
    global_registry,
)
from ._schema import load_schema

__all__ = [
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
    "load_schema",
]
