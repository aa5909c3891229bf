"""Exceptions and error strategies really act."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest

from mpipe import (
    CircuitBreakerStrategy,
    CircuitOpenError,
    CompositeStrategy,
    ConfigurationError,
    ErrorAction,
    ErrorStrategy,
    ExecutionError,
    GraphExecutor,
    HaltStrategy,
    PipelineError,
    ProcessingGraph,
    ProcessorError,
    ProcessorTimeoutError,
    RetryStrategy,
    SimpleProcessor,
    SkipStrategy,
    ValidationError,
    WorkerCrashedError,
    create_simple_pipeline,
)


class Flaky:
    """Fails the first ``failures`` calls per input, and records every call."""

    def __init__(self, failures: int, exc: type[Exception] = ValueError) -> None:
        self.failures = failures
        self.exc = exc
        self.calls: list[Any] = []

    def __call__(self, x: Any) -> Any:
        self.calls.append(x)
        if self.calls.count(x) <= self.failures:
            raise self.exc(f"flaky on {x!r}")
        return x


def graph_with(fn: Any, strategy: Any = None, **config: Any) -> ProcessingGraph:
    g = create_simple_pipeline([("p", fn)])
    if config:
        proc = SimpleProcessor(fn, "p", **config)
        proc.create_default_pipes()
        g = ProcessingGraph()
        g.add_processor(proc)
    g.error_strategy = strategy
    return g


def stream(g: ProcessingGraph, items: Any, **kw: Any) -> dict[str, list[Any]]:
    return asyncio.run(GraphExecutor(g, **kw).execute_stream({"p": items}))


def fake_sleep(strategy: RetryStrategy) -> list[float]:
    delays: list[float] = []

    async def sleep(d: float) -> None:
        delays.append(d)

    strategy._sleep = sleep
    return delays


def test_default_is_halt_with_cause_and_processor() -> None:
    g = graph_with(Flaky(99))
    with pytest.raises(ExecutionError) as info:
        GraphExecutor(g).run(1)
    err = info.value
    assert err.failed_processors == ["p"]
    assert isinstance(err.cause, ValueError) and err.__cause__ is err.cause
    assert "processor 'p' failed: ValueError: flaky on 1" in str(err)
    assert json.loads(json.dumps(err.to_dict()))["failed_processors"] == ["p"]


def test_halt_cancels_what_is_still_running() -> None:
    cancelled = asyncio.Event()

    async def slow(x: int) -> int:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return x

    def boom(x: int) -> int:
        raise RuntimeError("boom")

    g = ProcessingGraph(error_strategy=HaltStrategy())
    for pid, fn in (("slow", slow), ("boom", boom)):
        p = SimpleProcessor(fn, pid)
        p.create_default_pipes()
        g.add_processor(p)

    async def main() -> None:
        with pytest.raises(ExecutionError, match="'boom' failed"):
            await GraphExecutor(g).execute(1)
        assert cancelled.is_set()
        await asyncio.sleep(0)
        assert asyncio.all_tasks() == {asyncio.current_task()}

    asyncio.run(main())


def test_halt_callback_is_called() -> None:
    seen: list[str] = []
    g = graph_with(Flaky(9), HaltStrategy(halt_callback=lambda e, pid, ctx: seen.append(pid)))
    with pytest.raises(ExecutionError):
        GraphExecutor(g).run(1)
    assert seen == ["p"]


def test_retry_reruns_the_same_input_with_exponential_backoff() -> None:
    flaky = Flaky(3)
    strategy = RetryStrategy(max_retries=3, initial_delay=0.5, backoff_multiplier=3, max_delay=2.0)
    delays = fake_sleep(strategy)
    assert stream(graph_with(flaky, strategy), ["x"]) == {"p:output": ["x"]}
    assert flaky.calls == ["x"] * 4
    assert delays == [0.5, 1.5, 2.0]
    assert strategy.retry_count == 3


def test_retry_gives_up_after_max_retries() -> None:
    flaky = Flaky(10)
    strategy = RetryStrategy(max_retries=2, initial_delay=0)
    with pytest.raises(ExecutionError, match="flaky on 1"):
        GraphExecutor(graph_with(flaky, strategy)).run(1)
    assert flaky.calls == [1, 1, 1]


def test_retry_only_on_listed_exceptions() -> None:
    flaky = Flaky(1, exc=KeyError)
    strategy = RetryStrategy(max_retries=3, initial_delay=0, retry_on=[ValueError])
    with pytest.raises(ExecutionError):
        GraphExecutor(graph_with(flaky, strategy)).run(1)
    assert flaky.calls == [1]


def test_real_backoff_sleeps_and_keeps_order() -> None:
    flaky = Flaky(1)
    strategy = RetryStrategy(max_retries=1, initial_delay=0.001)
    assert stream(graph_with(flaky, strategy), [1, 2, 3]) == {"p:output": [1, 2, 3]}


def test_retry_of_a_generator_does_not_repeat_what_it_emitted() -> None:
    tries = 0

    def gen(n: int) -> Iterator[int]:
        nonlocal tries
        tries += 1
        for i in range(n):
            if i == 2 and tries == 1:
                raise ValueError("mid-stream")
            yield i

    strategy = RetryStrategy(max_retries=1, initial_delay=0)
    assert stream(graph_with(gen, strategy), [4]) == {"p:output": [0, 1, 2, 3]}
    assert tries == 2


def test_skip_drops_the_firing_and_goes_on() -> None:
    skipped: list[Any] = []
    strategy = SkipStrategy(skip_callback=lambda e, pid, ctx: skipped.append(ctx["input"]))

    def odd_fails(x: int) -> int:
        if x % 2:
            raise ValueError(x)
        return x

    assert stream(graph_with(odd_fails, strategy), range(6)) == {"p:output": [0, 2, 4]}
    assert skipped == [{"input": 1}, {"input": 3}, {"input": 5}]
    assert strategy.skip_count == 3


def test_skip_halts_past_max_skips() -> None:
    strategy = SkipStrategy(max_skips=2)
    with pytest.raises(ExecutionError):
        stream(graph_with(Flaky(1), strategy), range(5))


def test_skip_count_is_per_run() -> None:
    strategy = SkipStrategy(max_skips=1)
    g = graph_with(Flaky(1), strategy)
    ex = GraphExecutor(g)
    assert ex.run(1) == {}
    assert ex.run(2) == {}


def test_circuit_breaker_fails_fast_without_calling() -> None:
    calls = 0

    def always_fails(x: int) -> int:
        nonlocal calls
        calls += 1
        raise ValueError(x)

    breaker = CircuitBreakerStrategy(failure_threshold=3, recovery_timeout=60)
    assert stream(graph_with(always_fails, breaker), range(10)) == {}
    assert calls == 3
    assert breaker.state("p") == "open"


def test_circuit_breaker_half_open_probes_then_closes() -> None:
    now = [0.0]
    breaker = CircuitBreakerStrategy(failure_threshold=2, recovery_timeout=10, success_threshold=2)
    breaker._clock = lambda: now[0]
    failing = {"on": True}
    calls: list[int] = []

    def service(x: int) -> int:
        calls.append(x)
        if failing["on"]:
            raise ValueError(x)
        return x

    g = graph_with(service, breaker)
    assert stream(g, [1, 2, 3]) == {}
    assert calls == [1, 2] and breaker.state("p") == "open"
    now[0] = 11.0
    failing["on"] = False
    assert breaker.state("p") == "half_open"
    assert stream(g, [4, 5, 6]) == {"p:output": [4, 5, 6]}
    assert breaker.state("p") == "closed"


def test_circuit_breaker_reopens_on_a_failed_probe() -> None:
    now = [0.0]
    breaker = CircuitBreakerStrategy(failure_threshold=1, recovery_timeout=5)
    breaker._clock = lambda: now[0]
    g = graph_with(Flaky(99), breaker)
    stream(g, [1])
    now[0] = 6.0
    stream(g, [2])
    assert breaker.state("p") == "open"


def test_composite_retries_twice_then_skips() -> None:
    retry = RetryStrategy(max_retries=2, initial_delay=0)
    strategy = CompositeStrategy([retry, SkipStrategy()])
    flaky = Flaky(99)
    assert stream(graph_with(flaky, strategy), [7, 8]) == {}
    assert flaky.calls == [7, 7, 7, 8, 8, 8]


def test_composite_all_order_tells_everyone() -> None:
    seen: list[str] = []

    class Recorder(ErrorStrategy):
        async def handle_error(
            self, error: BaseException, processor_id: str, context: dict[str, Any]
        ) -> bool:
            seen.append(processor_id)
            return False

    strategy = CompositeStrategy([SkipStrategy(), Recorder()], strategy_order="all")
    assert stream(graph_with(Flaky(1), strategy), [1]) == {}
    assert seen == ["p"]


def test_per_processor_strategy_overrides_the_graph() -> None:
    g = ProcessingGraph(error_strategy=HaltStrategy())
    for pid in ("a", "b"):
        p = SimpleProcessor(Flaky(1), pid)
        p.create_default_pipes()
        g.add_processor(p)
    g.connect("a", "output", "b", "input")
    g.set_error_strategy("a", RetryStrategy(max_retries=1, initial_delay=0))
    with pytest.raises(ExecutionError) as info:
        GraphExecutor(g).run(1)
    assert info.value.failed_processors == ["b"]
    g.set_error_strategy("b", SkipStrategy())
    assert GraphExecutor(g).run(2) == {}


def test_strategy_in_processor_config() -> None:
    p = SimpleProcessor(Flaky(1), "p", error_strategy=SkipStrategy())
    p.create_default_pipes()
    g = ProcessingGraph()
    g.add_processor(p)
    assert GraphExecutor(g).run(1) == {}


def test_context_carries_attempt_input_and_run_id() -> None:
    contexts: list[dict[str, Any]] = []

    class Spy(ErrorStrategy):
        async def handle_error(
            self, error: BaseException, processor_id: str, context: dict[str, Any]
        ) -> ErrorAction:
            contexts.append(dict(context))
            return ErrorAction.RETRY if context["attempt"] < 3 else ErrorAction.SKIP

    stream(graph_with(Flaky(99), Spy()), ["in"])
    assert [c["attempt"] for c in contexts] == [1, 2, 3]
    assert all(c["input"] == {"input": "in"} and c["item_index"] == 0 for c in contexts)
    assert len({c["run_id"] for c in contexts}) == 1


def test_strategy_with_a_bad_answer_halts_clearly() -> None:
    class Bad(ErrorStrategy):
        async def handle_error(
            self, error: BaseException, processor_id: str, context: dict[str, Any]
        ) -> Any:
            return "maybe"

    with pytest.raises(ExecutionError, match="must answer True, False or an ErrorAction"):
        GraphExecutor(graph_with(Flaky(1), Bad())).run(1)


def test_timeout_on_an_async_firing() -> None:
    async def hang(x: int) -> int:
        await asyncio.sleep(3600)
        return x

    g = graph_with(hang, None, timeout=0.05)
    with pytest.raises(ExecutionError) as info:
        GraphExecutor(g).run(1)
    assert isinstance(info.value.cause, ProcessorTimeoutError)
    assert "ran past its timeout of 0.05 s" in str(info.value.cause)
    g.error_strategy = SkipStrategy()
    assert GraphExecutor(g).run(1) == {}


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: RetryStrategy(max_retries=-1), "max_retries"),
        (lambda: RetryStrategy(initial_delay=-1), "initial_delay"),
        (lambda: RetryStrategy(backoff_multiplier=0.5), "backoff_multiplier"),
        (lambda: SkipStrategy(max_skips=-2), "max_skips"),
        (lambda: CircuitBreakerStrategy(failure_threshold=0), "failure_threshold"),
        (lambda: CompositeStrategy([]), "at least one"),
        (lambda: CompositeStrategy([SkipStrategy()], strategy_order="random"), "strategy_order"),
        (lambda: CompositeStrategy([object()]), "not an error strategy"),  # type: ignore[list-item]
    ],
)
def test_bad_strategy_parameters(make: Any, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        make()


def test_exceptions_describe_themselves() -> None:
    cases = [
        PipelineError("m", k=1),
        ProcessorError("m", "p"),
        ValidationError("bad", ["one", "two"]),
        ExecutionError("m", ["p"], cause=ValueError("v")),
        ConfigurationError("m", field="processors[0].x"),
        ProcessorTimeoutError("m", "p"),
        WorkerCrashedError("m", "p", exitcode=-9, item_index=3),
        CircuitOpenError("m", "p"),
    ]
    for exc in cases:
        d = json.loads(json.dumps(exc.to_dict()))
        assert d["type"] == type(exc).__name__
        assert isinstance(exc, PipelineError)
    assert ValidationError("bad", ["one", "two"]).to_dict()["validation_errors"] == ["one", "two"]
    assert str(ValidationError("bad", ["one", "two"])) == "bad: one; two"
    assert WorkerCrashedError("m", "p", exitcode=-9).to_dict()["exitcode"] == -9
