"""The processor registry, the factory that builds from it, and the self-registering metaclass.

Names in the registry are what a config's ``processor_type`` may say. The registry also holds
named functions, which the ``simple`` type's ``function`` parameter may name (``passthrough``).
"""

from __future__ import annotations

import inspect
from abc import ABCMeta
from collections.abc import Callable, Mapping
from typing import Any

from .._errors import ConfigurationError
from .._model._interfaces import (
    ProcessorFactoryInterface,
    ProcessorInterface,
    ProcessorRegistryInterface,
)

__all__ = [
    "ProcessorFactory",
    "ProcessorMeta",
    "ProcessorRegistry",
    "UnknownProcessorTypeError",
    "global_factory",
    "global_registry",
]


class UnknownProcessorTypeError(ConfigurationError, KeyError):
    """No processor class is registered under the name asked for.

    A :class:`~mpipe.ConfigurationError` that is also a :class:`KeyError`, the error a lookup
    of a missing name raises in the registry interface.
    """

    def __str__(self) -> str:  # the message as is, not quoted as KeyError would
        return self.message


def _check_name(name: Any, what: str) -> str:
    if not isinstance(name, str) or not name.strip():
        raise ConfigurationError(f"{what} name must be a non-empty string, got {name!r}", "name")
    return name


class ProcessorRegistry(ProcessorRegistryInterface):
    """Processor classes and functions by name.

    Registering a name again replaces the earlier entry (so a class redefined in a notebook
    keeps working); unregistering a name that is not registered does nothing.
    """

    def __init__(self) -> None:
        self._classes: dict[str, type[ProcessorInterface]] = {}
        self._functions: dict[str, Callable[..., Any]] = {}

    # -- processor classes ----------------------------------------------------------------------

    def register_processor(self, name: str, processor_class: type[ProcessorInterface]) -> None:
        """Register a processor class under ``name``.

        Raises:
            ConfigurationError: An empty name, or ``processor_class`` is not a processor class
                (a ConfigurationError is also a ValueError).
        """
        _check_name(name, "processor type")
        if not (
            isinstance(processor_class, type) and issubclass(processor_class, ProcessorInterface)
        ):
            raise ConfigurationError(
                f"register_processor({name!r}, ...) needs a ProcessorInterface subclass, "
                f"got {processor_class!r}",
                "processor_class",
            )
        self._classes[name] = processor_class

    def get_processor_class(self, name: str) -> type[ProcessorInterface]:
        """The class registered under ``name``.

        Raises:
            UnknownProcessorTypeError: Nothing is registered under ``name`` (a
                ConfigurationError and a KeyError); the message lists what is.
        """
        try:
            return self._classes[name]
        except (KeyError, TypeError):
            raise UnknownProcessorTypeError(
                f"unknown processor type {name!r}; registered types: "
                f"{', '.join(self.list_registered_processors()) or 'none'}",
                "processor_type",
            ) from None

    def list_registered_processors(self) -> dict[str, type[ProcessorInterface]]:
        """Every registered processor type: name -> class, sorted by name (a copy)."""
        return dict(sorted(self._classes.items()))

    def is_registered(self, name: str) -> bool:
        """Whether a processor class is registered under ``name``."""
        return isinstance(name, str) and name in self._classes

    def unregister_processor(self, name: str) -> None:
        """Forget the class registered under ``name``; a name not registered is ignored."""
        if isinstance(name, str):
            self._classes.pop(name, None)

    # -- functions ----------------------------------------------------------------------------

    def register_function(self, name: str, fn: Callable[..., Any]) -> None:
        """Register a function that ``simple`` processors may name in their ``function``.

        Raises:
            ConfigurationError: An empty name, or ``fn`` is not callable.
        """
        _check_name(name, "function")
        if not callable(fn):
            raise ConfigurationError(
                f"register_function({name!r}, ...) needs a callable, got {fn!r}", "fn"
            )
        self._functions[name] = fn

    def get_function(self, name: str) -> Callable[..., Any]:
        """The function registered under ``name``.

        Raises:
            ConfigurationError: Nothing is registered under ``name``.
        """
        try:
            return self._functions[name]
        except (KeyError, TypeError):
            raise ConfigurationError(
                f"unknown function {name!r}; expected a registered function "
                f"({', '.join(self.list_registered_functions()) or 'none'}) or 'module:attr'",
                "function",
            ) from None

    def list_registered_functions(self) -> list[str]:
        """Every registered function name, sorted."""
        return sorted(self._functions)

    def unregister_function(self, name: str) -> None:
        """Forget the function registered under ``name``.

        Raises:
            ConfigurationError: Nothing is registered under ``name``.
        """
        self.get_function(name)
        del self._functions[name]


class ProcessorFactory(ProcessorFactoryInterface):
    """Builds processors from registered names.

    Args:
        registry: Where names are looked up (default: :data:`global_registry`).
    """

    def __init__(self, registry: ProcessorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else global_registry

    def create_processor(
        self, name: str, processor_id: str | None = None, **kwargs: Any
    ) -> ProcessorInterface:
        """A new processor of the type registered under ``name``.

        Args:
            name: The registered type name.
            processor_id: The new processor's id.
            **kwargs: The processor's parameters.

        Raises:
            ConfigurationError: Unknown name, or parameters the class does not accept.
        """
        cls: Any = self.registry.get_processor_class(name)
        try:
            inspect.signature(cls).bind(processor_id=processor_id, **kwargs)
        except TypeError as exc:
            raise ConfigurationError(
                f"processor type {name!r} ({cls.__name__}) does not accept these parameters: {exc}",
                "parameters",
            ) from None
        except ValueError:  # no signature to check (a builtin): let the call decide
            pass
        proc: ProcessorInterface = cls(processor_id=processor_id, **kwargs)
        return proc

    def create_processor_from_config(self, config: Mapping[str, Any]) -> ProcessorInterface:
        """A new processor from ``{"name": type, "processor_id": id, **parameters}``.

        The caller's mapping is read, not changed; ``processor_id`` may be left out (an id is
        then generated).

        Raises:
            ConfigurationError: ``config`` is not a mapping with a ``name``, or as for
                :meth:`create_processor`.
        """
        if not isinstance(config, Mapping) or "name" not in config:
            raise ConfigurationError(
                f"create_processor_from_config needs a mapping with a 'name', got {config!r}",
                "name",
            )
        params = dict(config)
        name = params.pop("name")
        processor_id = params.pop("processor_id", None)
        return self.create_processor(name, processor_id, **params)

    def get_processor_info(self, name: str) -> dict[str, Any]:
        """What is known of the type registered under ``name``.

        Keys: ``name``, ``class``, ``module``, ``metadata`` (its ``get_processor_metadata()``),
        ``docstring`` (the class's whole docstring), ``description`` (its first line) and
        ``parameters`` (what its constructor takes besides ``processor_id``).

        Raises:
            ConfigurationError: Unknown name.
        """
        cls = self.registry.get_processor_class(name)
        try:
            params = [
                p.name
                for p in inspect.signature(cls).parameters.values()
                if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name != "processor_id"
            ]
        except (TypeError, ValueError):
            params = []
        metadata = getattr(cls, "get_processor_metadata", None)
        doc = inspect.getdoc(cls) or ""
        return {
            "name": name,
            "class": cls.__name__,
            "module": cls.__module__,
            "docstring": doc,
            "description": doc.split("\n", 1)[0],
            "parameters": params,
            "metadata": dict(metadata()) if callable(metadata) else {},
        }


class ProcessorMeta(ABCMeta):
    """Metaclass of processor classes that register themselves in :data:`global_registry`.

    A concrete class created with ``metaclass=ProcessorMeta`` (or deriving from one that was) is
    registered under ``get_processor_metadata()["name"]`` (by default the class name). Abstract
    classes are not registered.
    """

    def __init__(cls, name: str, bases: tuple[type, ...], namespace: dict[str, Any]) -> None:
        super().__init__(name, bases, namespace)
        if inspect.isabstract(cls) or not issubclass(cls, ProcessorInterface):
            return
        metadata = cls.get_processor_metadata()
        global_registry.register_processor(metadata.get("name") or name, cls)


#: The registry configs are read against (built-in types and metaclass-registered classes).
global_registry = ProcessorRegistry()

#: A factory over :data:`global_registry`.
global_factory = ProcessorFactory(global_registry)
