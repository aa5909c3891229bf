"""Error strategies from config, graph-wide and per processor, observed through real runs."""

from __future__ import annotations

import asyncio
from typing import Any

import cfg_helpers
import pytest

from mpipe import (
    CircuitBreakerStrategy,
    CompositeStrategy,
    ConfigLoader,
    ExecutionError,
    GraphExecutor,
    HaltStrategy,
    RetryStrategy,
    SkipStrategy,
)


def graph_config(
    function: str, strategy: Any = None, own: Any = None, **extra: Any
) -> dict[str, Any]:
    """``work`` (running ``function``) -> ``out`` (passthrough)."""
    work: dict[str, Any] = {
        "processor_id": "work",
        "processor_type": "simple",
        "parameters": {"function": function},
        **extra,
    }
    if own is not None:
        work["error_strategy"] = own
    data: dict[str, Any] = {
        "processors": [
            work,
            {
                "processor_id": "out",
                "processor_type": "simple",
                "parameters": {"function": "passthrough"},
            },
        ],
        "connections": [
            {
                "from_processor": "work",
                "from_output": "output",
                "to_processor": "out",
                "to_input": "input",
            }
        ],
    }
    if strategy is not None:
        data["error_strategy"] = strategy
    return data


def stream(config: dict[str, Any], items: list[Any]) -> dict[str, list[Any]]:
    graph = ConfigLoader().create_graph_from_config(config)
    return asyncio.run(GraphExecutor(graph).execute_stream({"work": items}))


@pytest.mark.parametrize(
    ("spec", "cls"),
    [
        ("skip", SkipStrategy),
        ("retry", RetryStrategy),
        ("halt", HaltStrategy),
        ("circuit_breaker", CircuitBreakerStrategy),
        ({"type": "composite", "strategies": ["retry", "skip"]}, CompositeStrategy),
    ],
)
def test_each_strategy_type_is_built(spec: Any, cls: type) -> None:
    graph = ConfigLoader().create_graph_from_config(graph_config("passthrough", spec, spec))
    assert isinstance(graph.error_strategy, cls)
    assert isinstance(graph.error_strategies["work"], cls)
    assert graph.error_strategy is not graph.error_strategies["work"]


def test_strategy_parameters_reach_the_strategy() -> None:
    config = graph_config(
        "passthrough",
        {
            "type": "retry",
            "max_retries": 4,
            "initial_delay": 0.5,
            "max_delay": 2,
            "backoff_multiplier": 3,
            "retry_on": ["ValueError", "builtins:KeyError"],
        },
        {
            "type": "circuit_breaker",
            "failure_threshold": 2,
            "recovery_timeout": 9,
            "success_threshold": 1,
        },
    )
    graph = ConfigLoader().create_graph_from_config(config)
    retry = graph.error_strategy
    assert isinstance(retry, RetryStrategy)
    assert (retry.max_retries, retry.initial_delay, retry.max_delay, retry.backoff_multiplier) == (
        4,
        0.5,
        2.0,
        3.0,
    )
    assert retry.retry_on == (ValueError, KeyError)
    breaker = graph.error_strategies["work"]
    assert isinstance(breaker, CircuitBreakerStrategy)
    assert (breaker.failure_threshold, breaker.recovery_timeout, breaker.success_threshold) == (
        2,
        9.0,
        1,
    )


def test_graph_wide_skip_drops_failed_firings() -> None:
    cfg_helpers.SKIPPED.clear()
    config = graph_config(
        "cfg_helpers:explode",
        {"type": "skip", "skip_callback": "cfg_helpers:record_skip"},
    )
    assert stream(config, [1, 2, 3]) == {}
    assert cfg_helpers.SKIPPED == ["work", "work", "work"]


def test_skip_past_max_skips_halts() -> None:
    config = graph_config("cfg_helpers:explode", {"type": "skip", "max_skips": 1})
    with pytest.raises(ExecutionError, match="explode got 2"):
        stream(config, [1, 2, 3])


def test_per_processor_retry_overrides_the_graph_halt() -> None:
    cfg_helpers.flaky_twice.calls = 0
    config = graph_config(
        "cfg_helpers:flaky_twice", "halt", {"type": "retry", "max_retries": 2, "initial_delay": 0}
    )
    assert stream(config, [10]) == {"out:output": [11]}
    assert cfg_helpers.flaky_twice.calls == 3


def test_retry_gives_up_after_max_retries() -> None:
    cfg_helpers.flaky_twice.calls = 0
    config = graph_config(
        "cfg_helpers:flaky_twice", None, {"type": "retry", "max_retries": 1, "initial_delay": 0}
    )
    with pytest.raises(ExecutionError, match="flaky call 2") as exc:
        stream(config, [10])
    assert exc.value.failed_processors == ["work"]


def test_retry_on_only_retries_the_named_exceptions() -> None:
    cfg_helpers.flaky_twice.calls = 0
    config = graph_config(
        "cfg_helpers:flaky_twice",
        None,
        {"type": "retry", "max_retries": 5, "initial_delay": 0, "retry_on": ["ValueError"]},
    )
    with pytest.raises(ExecutionError, match="flaky call 1"):
        stream(config, [10])


def test_default_is_halt_naming_the_processor_with_the_cause() -> None:
    with pytest.raises(ExecutionError) as exc:
        stream(graph_config("cfg_helpers:explode"), [1])
    assert exc.value.failed_processors == ["work"]
    assert isinstance(exc.value.cause, ValueError)


def test_composite_retry_then_skip() -> None:
    cfg_helpers.flaky_twice.calls = 0
    config = graph_config(
        "cfg_helpers:explode",
        {
            "type": "composite",
            "strategy_order": "sequential",
            "strategies": [{"type": "retry", "max_retries": 1, "initial_delay": 0}, "skip"],
        },
    )
    assert stream(config, [1, 2]) == {}


def test_circuit_breaker_opens_after_threshold() -> None:
    config = graph_config(
        "cfg_helpers:explode",
        None,
        {
            "type": "composite",
            "strategy_order": "all",
            "strategies": [
                {"type": "circuit_breaker", "failure_threshold": 1, "recovery_timeout": 3600},
                "skip",
            ],
        },
    )
    graph = ConfigLoader().create_graph_from_config(config)
    out = asyncio.run(GraphExecutor(graph).execute_stream({"work": [1, 2, 3]}))
    assert out == {}
    breaker = graph.error_strategies["work"].strategies[0]
    assert not breaker.allow("work")  # open: later firings fail fast


def test_timeout_from_config_is_a_processor_timeout() -> None:
    from mpipe import ProcessorTimeoutError

    config = graph_config("cfg_helpers:slow", None, "skip", timeout=0.01)
    assert stream(config, [1, 2]) == {}
    with pytest.raises(ExecutionError) as exc:
        stream(graph_config("cfg_helpers:slow", timeout=0.01), [1])
    assert isinstance(exc.value.cause, ProcessorTimeoutError)
