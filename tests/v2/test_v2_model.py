"""The v2 model names at work: registry and factory, pipes and pipe networks, graph nodes,
generator processors, keyword checks, strategies and errors."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from processor_pipeline.v2.core.errors import (
    ConfigurationError,
    ExecutionError,
    PipeError,
    PipelineError,
    ProcessorError,
    TimeoutError,
)
from processor_pipeline.v2.core.graph import GraphExecutor, GraphNode, ProcessingGraph
from processor_pipeline.v2.core.interfaces import (
    ErrorHandlerInterface,
    ProcessorFactoryInterface,
    ProcessorRegistryInterface,
    ProcessorState,
)
from processor_pipeline.v2.core.pipe import Pipe, PipeFactory, PipeNetwork, PipeState
from processor_pipeline.v2.core.processor import (
    BaseProcessor,
    GeneratorProcessor,
    SimpleProcessor,
)
from processor_pipeline.v2.core.registry import ProcessorFactory, ProcessorRegistry
from processor_pipeline.v2.execution.strategies import (
    AdaptiveStrategy,
    CircuitBreakerStrategy,
    CompositeStrategy,
    HaltStrategy,
    RetryStrategy,
    SkipStrategy,
    create_default_error_strategy,
)

from ._graphs import chain, inc

# -- registry and factory ------------------------------------------------------------------------


class Doubler(BaseProcessor):
    """Doubles its input.

    Second paragraph of the docstring.
    """

    async def process_data(self, input_data: dict[str, Any]) -> Any:
        return input_data["input"] * self.config.get("times", 2)


def test_registry_follows_the_interface() -> None:
    registry = ProcessorRegistry()
    assert isinstance(registry, ProcessorRegistryInterface)
    registry.register_processor("double", Doubler)
    registry.register_processor("double", Doubler)  # a duplicate overwrites
    assert registry.is_registered("double")
    listed = registry.list_registered_processors()
    assert listed == {"double": Doubler}
    listed["other"] = Doubler  # a copy
    assert not registry.is_registered("other")
    with pytest.raises(ValueError, match="ProcessorInterface subclass"):
        registry.register_processor("bad", dict)  # type: ignore[arg-type]
    with pytest.raises(KeyError):
        registry.get_processor_class("missing")
    registry.unregister_processor("missing")  # nothing happens
    registry.unregister_processor("double")
    assert not registry.is_registered("double")


def test_factory_follows_the_interface() -> None:
    registry = ProcessorRegistry()
    registry.register_processor("double", Doubler)
    factory = ProcessorFactory(registry)
    assert isinstance(factory, ProcessorFactoryInterface)
    p = factory.create_processor("double", "d1", times=3)
    assert p.processor_id == "d1" and p.config == {"times": 3}
    config = {"name": "double", "processor_id": "d2", "times": 4}
    q = factory.create_processor_from_config(config)
    assert q.processor_id == "d2" and asyncio.run(q.process({"input": 2})) == 8
    assert config == {"name": "double", "processor_id": "d2", "times": 4}  # not changed
    with pytest.raises(ValueError, match="'name'"):
        factory.create_processor_from_config({"processor_id": "x"})
    info = factory.get_processor_info("double")
    assert {"name", "class", "module", "metadata", "docstring"} <= set(info)
    assert info["docstring"].startswith("Doubles its input.") and "Second" in info["docstring"]
    assert (info["class"], info["module"]) == ("Doubler", __name__)


def test_strategy_names() -> None:
    assert SkipStrategy().get_strategy_name() == "skip"
    assert CircuitBreakerStrategy().get_strategy_name() == "circuit_breaker"
    assert AdaptiveStrategy(HaltStrategy()).get_strategy_name() == "adaptive"

    class Custom(ErrorHandlerInterface):
        async def handle_error(self, error: BaseException, pid: str, context: Any) -> bool:
            return True

    assert Custom().get_strategy_name() == "custom"


# -- pipes ---------------------------------------------------------------------------------------


def test_pipe_states_full_and_closed() -> None:
    pipe = Pipe("p", max_size=1)
    assert pipe.state is PipeState.OPEN
    pipe.put(1)
    assert pipe.state is PipeState.FULL and pipe.get_status()["is_full"]
    with pytest.raises(PipeError, match="still full") as caught:
        pipe.put(2, timeout=0.01)  # a full pipe makes the producer wait, here in vain
    assert isinstance(caught.value, TimeoutError) and caught.value.operation == "put"
    assert pipe.state is PipeState.FULL
    pipe.clear()
    assert pipe.state is PipeState.OPEN and pipe.is_empty()
    pipe.put(3)
    assert pipe.get() == 3 and pipe.state is PipeState.OPEN
    pipe.close()
    assert pipe.state is PipeState.CLOSED
    assert PipeState.ERROR.value == "error"


def test_get_with_timeout_waits_then_raises_the_v2_timeout_error() -> None:
    pipe = Pipe("slow")
    start = time.monotonic()
    with pytest.raises(TimeoutError) as caught:
        pipe.get(timeout=0.05)
    assert time.monotonic() - start >= 0.05  # it waited the whole timeout
    err = caught.value
    assert isinstance(err, PipeError) and isinstance(err, PipelineError)
    assert (err.timeout_duration, err.pipe_id, err.operation) == (0.05, "slow", "get")
    with pytest.raises(TimeoutError):
        asyncio.run(pipe.aget(timeout=0.01))
    # An item that arrives while get waits is taken.
    got: list[Any] = []
    waiter = threading.Thread(target=lambda: got.append(pipe.get(timeout=30)))
    waiter.start()
    pipe.put("late")
    waiter.join()
    assert got == ["late"]


def test_pipe_status_keys() -> None:
    pipe = PipeFactory.create_streaming_pipe()
    assert pipe.max_size == 10 and uuid.UUID(pipe.pipe_id)
    pipe.add_tap("t", lambda item: None)
    status = pipe.get_status()
    assert {
        "pipe_id",
        "state",
        "pipe_type",
        "size",
        "max_size",
        "is_empty",
        "is_full",
        "created_at",
        "last_activity",
        "total_items_processed",
        "total_bytes_processed",
        "active_taps",
    } <= set(status)
    assert status["last_activity"] is None and status["active_taps"] == 1
    pipe.put("abc")
    status = pipe.get_status()
    assert status["total_items_processed"] == 1 and status["total_bytes_processed"] == 3
    assert status["last_activity"] is not None and not status["is_empty"]


def test_pipe_network_topology_and_errors() -> None:
    network = PipeNetwork()
    a, b = Pipe("a"), Pipe("b")
    network.add_pipe(a)
    network.add_pipe(b)
    network.connect_pipes("a", "b")
    network.connect_pipes("a", "b")  # duplicates are allowed
    with pytest.raises(PipeError, match="no pipe 'z'") as caught:
        network.connect_pipes("a", "z")
    assert caught.value.operation == "connect"
    a.put(1)
    status = network.get_network_status()
    assert status["total_pipes"] == 2 and status["total_connections"] == 2
    assert status["connections"] is network.connections
    assert status["pipe_statuses"]["a"]["total_items_processed"] == 1
    with pytest.raises(PipeError, match="needs a Pipe"):
        network.add_pipe("a")  # type: ignore[arg-type]


def test_pipe_network_of_a_graph_reports_the_live_run() -> None:
    graph = chain(("a", inc), ("b", inc), ("c", inc))
    network = PipeNetwork()
    for pipe in graph.pipes.values():
        network.add_pipe(pipe)
    assert PipeNetwork.from_graph(graph).connections == {
        "a:output->b:input": ["b:output->c:input"],
        "b:output->c:input": [],
    }
    seen: list[dict[str, Any]] = []

    def peek(x: int) -> int:
        if not seen:  # c's first firing: the run is live
            seen.append(network.get_network_status()["pipe_statuses"])
        return x

    graph.get_processor("c").func = peek  # type: ignore[attr-defined]
    out = asyncio.run(GraphExecutor(graph).execute_stream({"a": range(3)}))
    assert out == {"c:output": [2, 3, 4]}
    live = seen[0]["b:output->c:input"]
    assert live["total_items_processed"] >= 1 and live["last_activity"] is not None
    after = network.get_network_status()["pipe_statuses"]
    assert after["a:output->b:input"]["total_items_processed"] == 3
    assert after["b:output->c:input"]["items_out"] == 3 and after["b:output->c:input"]["is_empty"]


# -- graph nodes ------------------------------------------------------------------------------


def test_graph_node_levels_and_neighbours() -> None:
    graph = chain(("a", inc), ("b", inc))
    assert graph.nodes["a"].execution_level == -1
    graph.validate()
    assert [graph.nodes[p].execution_level for p in ("a", "b")] == [0, 1]
    node = GraphNode(SimpleProcessor(inc, "solo"))
    node.add_dependency("x")
    node.add_dependent("y")
    assert (node.dependencies, node.dependents, node.execution_level) == ({"x"}, {"y"}, -1)
    node.remove_dependency("x")
    node.remove_dependent("y")
    node.remove_dependent("never there")
    assert node.dependencies == set() and node.dependents == set()


# -- generator processors -------------------------------------------------------------------------


class Counter(GeneratorProcessor):
    async def _process_generator(self, input_data: Any) -> AsyncIterator[Any]:
        for i in range(self.config["n"]):
            yield i


class Splitter(GeneratorProcessor):
    async def _process_generator(self, input_data: Any) -> AsyncIterator[Any]:
        for word in input_data["input"].split():
            yield {"words": word, "lengths": len(word)}
        yield "both"


def test_generator_source_runs_once_on_an_empty_input() -> None:
    counter = Counter("counter", n=3)
    assert counter.config == {"n": 3}
    counter.create_default_pipes([], ["output"])
    graph = ProcessingGraph()
    graph.add_processor(counter)
    assert asyncio.run(GraphExecutor(graph).execute({})) == {"counter:output": [0, 1, 2]}
    assert counter.get_metrics()["items_out"] == 3


@pytest.mark.parametrize("backend", ["inline", "thread"])
def test_generator_yields_are_routed_by_output_pipe(backend: str) -> None:
    splitter = Splitter("split")
    splitter.create_default_pipes(["input"], ["words", "lengths"])
    graph = ProcessingGraph()
    graph.add_processor(splitter)
    out = asyncio.run(GraphExecutor(graph, backend=backend).execute_stream({"split": ["ab c"]}))
    assert out == {"split:words": ["ab", "c", "both"], "split:lengths": [2, 1, "both"]}
    assert splitter.get_metrics()["items_out"] == 3


def test_default_generator_yields_each_input_value_in_a_chain() -> None:
    gen = GeneratorProcessor("gen")
    gen.create_default_pipes(["x", "y"], ["output"])
    after = SimpleProcessor(inc, "after")
    after.create_default_pipes()
    graph = ProcessingGraph()
    for p in (gen, after):
        graph.add_processor(p)
    graph.connect("gen", "output", "after", "input")
    out = asyncio.run(GraphExecutor(graph).execute({"gen": {"x": 1, "y": 10}}))
    assert out == {"after:output": [2, 11]}


def test_generator_process_by_hand() -> None:
    gen = GeneratorProcessor("gen")
    assert asyncio.run(gen.process_data({"input": 1})) is None
    assert asyncio.run(gen.process({"a": 1, "b": 2})) == [1, 2]
    assert gen.state is ProcessorState.COMPLETED and gen.get_metrics()["items_out"] == 2

    class Broken(GeneratorProcessor):
        async def _process_generator(self, input_data: Any) -> AsyncIterator[Any]:
            yield 1
            raise ValueError("bad data")

    broken = Broken("broken")
    with pytest.raises(ProcessorError, match="'broken' failed after 1 item") as caught:
        asyncio.run(broken.process())
    assert isinstance(caught.value.__cause__, ValueError)
    assert broken.state is ProcessorState.ERROR and caught.value.processor_id == "broken"


# -- options mpipe reads ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("keyword", "meant"),
    [
        ("cpu_bund", "cpu_bound"),
        ("timout", "timeout"),
        ("Timeout", "timeout"),
        ("max_concurency", "max_concurrent"),
        ("exectuion", "execution"),
        ("error_stratgy", "error_strategy"),
    ],
)
def test_a_near_miss_of_an_option_is_an_error_naming_it(keyword: str, meant: str) -> None:
    with pytest.raises(ConfigurationError, match=f"did you mean '{meant}'") as caught:
        SimpleProcessor(inc, "a", **{keyword: 1})
    assert caught.value.field == keyword and f"{keyword!r}" in caught.value.message


def test_own_keywords_and_real_options_stay() -> None:
    p = SimpleProcessor(inc, "a", factor=3, executor="mine", cpu_bound=True, timeout=2)
    assert p.config == {"factor": 3, "executor": "mine", "cpu_bound": True, "timeout": 2}
    assert p.execution == "process" and p.timeout == 2.0


# -- strategies ---------------------------------------------------------------------------------


def _always_fails(x: int) -> int:
    raise ValueError(f"no {x}")


def test_adaptive_strategy_switches_when_a_rule_holds() -> None:
    halt = HaltStrategy()
    adaptive = AdaptiveStrategy(SkipStrategy(), adaptation_window=2)
    adaptive.add_adaptation_rule(lambda history: len(history) >= 2, halt)
    graph = chain(("a", inc), ("b", _always_fails))
    graph.set_error_strategy("b", adaptive)
    with pytest.raises(ExecutionError) as caught:
        asyncio.run(GraphExecutor(graph).execute_stream({"a": range(5)}))
    # The first error was skipped; the second made the rule hold, and the halt took over.
    assert caught.value.failed_processors == ["b"]
    assert adaptive.current_strategy is halt
    history = list(adaptive.error_history)
    assert len(history) == 2  # capped at the window
    assert [h["error_type"] for h in history] == ["ValueError", "ValueError"]
    assert {"error_type", "processor_id", "timestamp", "context"} == set(history[0])
    assert history[0]["processor_id"] == "b" and "attempt" in history[0]["context"]


def test_adaptive_strategy_checks_its_arguments() -> None:
    with pytest.raises(ConfigurationError, match="not an error strategy"):
        AdaptiveStrategy("skip")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="adaptation_window"):
        AdaptiveStrategy(SkipStrategy(), adaptation_window=0)
    with pytest.raises(ConfigurationError, match="callable"):
        AdaptiveStrategy(SkipStrategy()).add_adaptation_rule(3, SkipStrategy())  # type: ignore[arg-type]


def test_default_error_strategy_retries_really_rerun_the_firing() -> None:
    strategy = create_default_error_strategy()
    assert isinstance(strategy, CompositeStrategy) and strategy.strategy_order == "sequential"
    retry, skip = strategy.strategies
    assert isinstance(retry, RetryStrategy) and (retry.max_retries, retry.initial_delay) == (2, 0.5)
    assert isinstance(skip, SkipStrategy) and skip.max_skips == 10
    retry.initial_delay = 0.0  # the test does not wait out the backoff
    attempts: dict[int, int] = {}

    def flaky(x: int) -> int:
        attempts[x] = attempts.get(x, 0) + 1
        if x == 0 and attempts[x] < 3:
            raise ValueError("not yet")
        if x == 1:
            raise ValueError("never")
        return x * 10

    graph = chain(("a", inc), ("b", flaky))
    graph.nodes["a"].processor.func = lambda x: x  # type: ignore[attr-defined]
    graph.set_error_strategy("b", strategy)
    out = asyncio.run(GraphExecutor(graph).execute_stream({"a": [0, 1, 2]}))
    assert out == {"b:output": [0, 20]}  # 0 succeeded on its third try; 1 was skipped
    assert attempts == {0: 3, 1: 3, 2: 1}
