"""Execution: error strategies (names only; served by mpipe)."""

from .strategies import (
    AdaptiveStrategy,
    CircuitBreakerStrategy,
    CompositeStrategy,
    ErrorStrategy,
    HaltStrategy,
    RetryStrategy,
    SkipStrategy,
    create_default_error_strategy,
)

__all__ = [
    "AdaptiveStrategy",
    "CircuitBreakerStrategy",
    "CompositeStrategy",
    "ErrorStrategy",
    "HaltStrategy",
    "RetryStrategy",
    "SkipStrategy",
    "create_default_error_strategy",
]
