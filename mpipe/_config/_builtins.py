"""The built-in processor types a config can name, and the built-in named functions.

``simple`` (a function by name or ``"module:attr"``), ``text_transformer``, ``data_filter`` and
``aggregator``. They register themselves through :class:`ProcessorMeta`, as user classes do.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from numbers import Number
from typing import Any, cast

import orjson

from .._errors import ConfigurationError, ProcessorError
from .._model._processors import BaseProcessor, SimpleProcessor
from ._refs import is_reference, resolve_reference
from ._registry import ProcessorMeta, global_registry

__all__ = ["Aggregator", "DataFilter", "FunctionProcessor", "TextTransformer", "resolve_function"]


def _choice(value: Any, choices: tuple[str, ...], what: str, name: str) -> str:
    if value not in choices:
        raise ConfigurationError(
            f"{what}: {name} must be one of {', '.join(choices)}; got {value!r}", name
        )
    return str(value)


def resolve_function(spec: Any, field: str = "function") -> Callable[..., Any]:
    """A callable from a registered function name, a ``"module:attr"`` reference or a callable.

    Raises:
        ConfigurationError: Unknown name, unresolvable reference, or not callable.
    """
    if callable(spec):
        return cast(Callable[..., Any], spec)
    if not isinstance(spec, str):
        raise ConfigurationError(
            f"expected a function name or 'module:attr', got {type(spec).__name__} {spec!r}", field
        )
    fn = (
        resolve_reference(spec, field) if is_reference(spec) else global_registry.get_function(spec)
    )
    if not callable(fn):
        raise ConfigurationError(f"{spec!r} is not callable (it is a {type(fn).__name__})", field)
    return fn


class FunctionProcessor(SimpleProcessor, metaclass=ProcessorMeta):
    """A processor running one function, named in a config (type ``simple``).

    Args:
        processor_id: The processor's id.
        function: A registered function name (``passthrough``...), a ``"module:attr"``
            reference, or a callable.
        **config: As for :class:`~mpipe.BaseProcessor`.
    """

    def __init__(self, processor_id: str | None = None, function: Any = None, **config: Any):
        if function is None:
            raise ConfigurationError(
                f"simple processor {processor_id!r} needs a 'function' parameter", "function"
            )
        super().__init__(resolve_function(function), processor_id, **config)
        #: The function's name as configured (or the callable's ``__name__``).
        self.function = function if isinstance(function, str) else getattr(function, "__name__", "")

    @classmethod
    def get_processor_metadata(cls) -> dict[str, Any]:
        return {"name": "simple", "description": "Runs one function per firing", "version": "1.0"}


_TEXT = {
    "uppercase": str.upper,
    "lowercase": str.lower,
    "reverse": lambda s: s[::-1],
    "strip": str.strip,
    "title": str.title,
    "length": len,
}


class TextTransformer(SimpleProcessor, metaclass=ProcessorMeta):
    """Transforms a string item (type ``text_transformer``).

    Args:
        processor_id: The processor's id.
        transformation: ``uppercase``, ``lowercase``, ``reverse``, ``strip``, ``title`` or
            ``length`` (default ``uppercase``).
        **config: As for :class:`~mpipe.BaseProcessor`.

    Raises:
        ConfigurationError: Unknown transformation.
    """

    def __init__(
        self, processor_id: str | None = None, transformation: str = "uppercase", **config: Any
    ):
        what = f"text_transformer {processor_id!r}"
        self.transformation = _choice(transformation, tuple(_TEXT), what, "transformation")
        super().__init__(self._transform, processor_id, **config)

    def _transform(self, item: Any) -> Any:
        if not isinstance(item, str):
            raise ProcessorError(
                f"text_transformer {self.processor_id!r} ({self.transformation}) needs a string, "
                f"got {type(item).__name__} {item!r:.60}",
                self.processor_id,
            )
        return _TEXT[self.transformation](item)

    @classmethod
    def get_processor_metadata(cls) -> dict[str, Any]:
        return {"name": "text_transformer", "description": "Transforms strings", "version": "1.0"}


def _is_number(x: Any) -> bool:
    return isinstance(x, Number) and not isinstance(x, bool)


def _non_empty(x: Any) -> bool:
    if x is None:
        return False
    try:
        return len(x) > 0
    except TypeError:
        return True


_CONDITIONS: dict[str, Callable[[Any], bool]] = {
    "strings_only": lambda x: isinstance(x, str),
    "numbers_only": _is_number,
    "non_empty": _non_empty,
    "not_none": lambda x: x is not None,
}


def _one(item: Any) -> Iterator[Any]:
    yield item


def _none() -> Iterator[Any]:
    yield from ()


class DataFilter(SimpleProcessor, metaclass=ProcessorMeta):
    """Keeps what meets a condition (type ``data_filter``).

    A list or tuple item is filtered element by element and passed on as a list; any other item
    passes whole or is dropped from the stream.

    Args:
        processor_id: The processor's id.
        condition: ``strings_only``, ``numbers_only``, ``non_empty`` or ``not_none`` (default
            ``not_none``).
        **config: As for :class:`~mpipe.BaseProcessor`.

    Raises:
        ConfigurationError: Unknown condition.
    """

    def __init__(self, processor_id: str | None = None, condition: str = "not_none", **config: Any):
        what = f"data_filter {processor_id!r}"
        self.condition = _choice(condition, tuple(_CONDITIONS), what, "condition")
        super().__init__(self._filter, processor_id, **config)

    def _filter(self, item: Any) -> Any:
        keep = _CONDITIONS[self.condition]
        if isinstance(item, (list, tuple)):
            return [x for x in item if keep(x)]
        # A generator of zero or one items: the scheduler emits what it yields.
        return _one(item) if keep(item) else _none()

    @classmethod
    def get_processor_metadata(cls) -> dict[str, Any]:
        return {"name": "data_filter", "description": "Filters items", "version": "1.0"}


class Aggregator(BaseProcessor, metaclass=ProcessorMeta):
    """Combines its inputs into one value (type ``aggregator``).

    The values are the items of its input pipes in pipe order; with one input pipe, the
    elements of a list or tuple item (or the item alone).

    Args:
        processor_id: The processor's id.
        aggregation: ``combine`` (mappings merged into one; otherwise input pipe name -> item),
            ``sum``, ``count`` or ``list`` (default ``combine``).
        **config: As for :class:`~mpipe.BaseProcessor`.

    Raises:
        ConfigurationError: Unknown aggregation.
    """

    stateful = False

    def __init__(
        self, processor_id: str | None = None, aggregation: str = "combine", **config: Any
    ) -> None:
        what = f"aggregator {processor_id!r}"
        self.aggregation = _choice(
            aggregation, ("combine", "sum", "count", "list"), what, "aggregation"
        )
        super().__init__(processor_id, **config)

    async def process_data(self, input_data: dict[str, Any]) -> Any:
        """Aggregate one firing's inputs."""
        if len(input_data) == 1:
            (item,) = input_data.values()
            values = list(item) if isinstance(item, (list, tuple)) else [item]
        else:
            values = list(input_data.values())
        if self.aggregation == "count":
            return len(values)
        if self.aggregation == "list":
            return values
        if self.aggregation == "sum":
            bad = [v for v in values if not _is_number(v)]
            if bad:
                raise ProcessorError(
                    f"aggregator {self.processor_id!r} (sum) needs numbers, got {bad[0]!r:.60}",
                    self.processor_id,
                )
            return sum(values)
        if values and all(isinstance(v, dict) for v in values):
            merged: dict[Any, Any] = {}
            for v in values:
                merged.update(v)
            return merged
        return dict(input_data) if len(input_data) > 1 else values

    @classmethod
    def get_processor_metadata(cls) -> dict[str, Any]:
        return {"name": "aggregator", "description": "Combines inputs", "version": "1.0"}


def _passthrough(item: Any) -> Any:
    return item


def _to_string(item: Any) -> str:
    return item if isinstance(item, str) else str(item)


def _to_json(item: Any) -> str:
    return orjson.dumps(item, option=orjson.OPT_SERIALIZE_NUMPY).decode()


def _length(item: Any) -> int:
    return len(item)


def _sum(item: Any) -> Any:
    return sum(item.values() if isinstance(item, dict) else item)


for _name, _fn in {
    "passthrough": _passthrough,
    "to_string": _to_string,
    "to_json": _to_json,
    "length": _length,
    "sum": _sum,
}.items():
    global_registry.register_function(_name, _fn)
