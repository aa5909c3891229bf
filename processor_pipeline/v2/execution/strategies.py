"""processor_pipeline.v2.execution.strategies: error strategies. Names only; served by mpipe."""

from mpipe import (
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
