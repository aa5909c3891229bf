"""Pipelines as files: the config format, the loader, and the processor registry."""

from ._loader import ConfigLoader
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
    "global_factory",
    "global_registry",
    "load_schema",
]
