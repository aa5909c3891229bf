"""Error strategies: skip, retry with backoff, halt, circuit breaker, and a composite.

Run: python examples/error_strategies.py
"""

import asyncio

from mpipe import (
    CircuitBreakerStrategy,
    CompositeStrategy,
    ExecutionError,
    GraphExecutor,
    HaltStrategy,
    RetryStrategy,
    SkipStrategy,
    create_simple_pipeline,
)


def parse(text: str) -> int:
    return int(text)  # fails on anything that is not a number


def run(strategy: object, items: list[str]) -> dict[str, list[object]]:
    graph = create_simple_pipeline([("parse", parse), ("square", lambda n: n * n)])
    graph.set_error_strategy("parse", strategy)
    return asyncio.run(GraphExecutor(graph).execute_stream({"parse": items}))


items = ["1", "two", "3"]
print("skip:", run(SkipStrategy(), items))

attempts = {"n": 0}


def flaky(n: int) -> int:
    attempts["n"] += 1
    if attempts["n"] < 3:
        raise ConnectionError("temporary")
    return n


graph = create_simple_pipeline([("fetch", flaky)])
graph.set_error_strategy("fetch", RetryStrategy(max_retries=3, initial_delay=0.01))
print("retry:", GraphExecutor(graph).run({"fetch": 7}), "after", attempts["n"], "attempts")

try:
    run(HaltStrategy(), items)
except ExecutionError as exc:
    print("halt:", exc, "| failed:", exc.failed_processors, "| cause:", repr(exc.cause))

breaker = CircuitBreakerStrategy(failure_threshold=2, recovery_timeout=60)
print(
    "circuit breaker + skip:",
    run(CompositeStrategy([breaker, SkipStrategy()], "all"), ["x", "y", "1"]),
)
print("circuit open:", not breaker.allow("parse"))

retry_then_skip = CompositeStrategy([RetryStrategy(max_retries=1, initial_delay=0), SkipStrategy()])
print("retry then skip:", run(retry_then_skip, items))
