"""Error strategies from config: ``"skip"`` or ``{"type": "retry", "max_retries": 2, ...}``."""

from __future__ import annotations

from typing import Any

from .._errors import ConfigurationError
from .._model._strategies import (
    CircuitBreakerStrategy,
    CompositeStrategy,
    ErrorStrategy,
    HaltStrategy,
    RetryStrategy,
    SkipStrategy,
)
from ._model import field_path
from ._refs import resolve_exception, resolve_reference

__all__ = ["build_strategy"]

_CLASSES: dict[str, type[ErrorStrategy]] = {
    "skip": SkipStrategy,
    "retry": RetryStrategy,
    "halt": HaltStrategy,
    "circuit_breaker": CircuitBreakerStrategy,
}


def build_strategy(spec: Any, path: list[str | int]) -> ErrorStrategy:
    """An error strategy from its config (already checked against the schema).

    Args:
        spec: A strategy name or a mapping with ``type`` and the strategy's parameters.
        path: The field path of ``spec``, for errors.

    Raises:
        ConfigurationError: A parameter the strategy rejects or a reference that does not
            resolve; ``field`` names it.
    """
    where = field_path(path)
    if isinstance(spec, str):
        spec = {"type": spec}
    if not isinstance(spec, dict) or not isinstance(spec.get("type"), str):
        raise ConfigurationError(
            f"expected a strategy name or a mapping with a 'type', got {spec!r}", where
        )
    params = {k: v for k, v in spec.items() if k != "type"}
    kind = spec["type"]
    if kind == "composite":
        inner = params.pop("strategies", None)
        if not isinstance(inner, list):
            raise ConfigurationError(
                "a composite strategy needs a list of 'strategies'",
                field_path([*path, "strategies"]),
            )
        params["strategies"] = [
            build_strategy(s, [*path, "strategies", i]) for i, s in enumerate(inner)
        ]
        cls: type[ErrorStrategy] = CompositeStrategy
    elif kind in _CLASSES:
        cls = _CLASSES[kind]
    else:
        raise ConfigurationError(
            f"unknown strategy type {kind!r}; expected one of "
            f"{', '.join([*_CLASSES, 'composite'])}",
            field_path([*path, "type"]),
        )
    for name in ("skip_callback", "halt_callback"):
        if name in params:
            fn = resolve_reference(params[name], field_path([*path, name]))
            if not callable(fn):
                raise ConfigurationError(
                    f"{params[name]!r} is not callable", field_path([*path, name])
                )
            params[name] = fn
    if "retry_on" in params:
        params["retry_on"] = [
            resolve_exception(n, field_path([*path, "retry_on", i]))
            for i, n in enumerate(params["retry_on"])
        ]
    try:
        return cls(**params)
    except ConfigurationError as exc:
        raise ConfigurationError(exc.message, where) from None
    except TypeError as exc:
        raise ConfigurationError(f"{kind} strategy: {exc}", where) from None
