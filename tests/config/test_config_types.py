"""Built-in processor types, references, the registry, the factory and ProcessorMeta."""

from __future__ import annotations

import asyncio
from typing import Any

import cfg_helpers
import pytest

from mpipe import (
    BaseProcessor,
    ConfigLoader,
    ConfigurationError,
    GraphExecutor,
    ProcessorConfig,
    ProcessorFactory,
    ProcessorMeta,
    ProcessorRegistry,
    ProcessorTimeoutError,
    SimpleProcessor,
    global_factory,
    global_registry,
)


def one(
    processor_type: str, parameters: dict[str, Any] | None = None, **extra: Any
) -> dict[str, Any]:
    """A one-processor config."""
    proc: dict[str, Any] = {"processor_id": "p", "processor_type": processor_type, **extra}
    if parameters is not None:
        proc["parameters"] = parameters
    return {"graph_id": "one", "processors": [proc]}


def run_one(config: dict[str, Any], item: Any) -> dict[str, Any]:
    graph = ConfigLoader().create_graph_from_config(config)
    return GraphExecutor(graph).run({"p": item})


@pytest.mark.parametrize(
    ("transformation", "item", "expected"),
    [
        ("uppercase", "abc", "ABC"),
        ("lowercase", "AbC", "abc"),
        ("reverse", "abc", "cba"),
        ("strip", "  a b  ", "a b"),
        ("title", "hello world", "Hello World"),
        ("length", "hello", 5),
    ],
)
def test_text_transformer(transformation: str, item: str, expected: Any) -> None:
    config = one("text_transformer", {"transformation": transformation})
    assert run_one(config, item) == {"p:output": expected}


def test_text_transformer_defaults_to_uppercase_and_rejects_non_strings() -> None:
    assert run_one(one("text_transformer"), "x") == {"p:output": "X"}
    with pytest.raises(ConfigurationError, match="transformation must be one of"):
        global_factory.create_processor("text_transformer", "t", transformation="shout")
    from mpipe import ExecutionError

    with pytest.raises(ExecutionError, match="needs a string, got int 5"):
        run_one(one("text_transformer"), 5)


@pytest.mark.parametrize(
    ("condition", "items", "kept"),
    [
        ("strings_only", ["a", 1, None, "b", 2.5], ["a", "b"]),
        ("numbers_only", ["a", 1, None, True, 2.5], [1, 2.5]),
        ("non_empty", ["", "a", [], [1], None, 0, {}], ["a", [1], 0]),
        ("not_none", [None, 0, "", None, False], [0, "", False]),
    ],
)
def test_data_filter_on_lists_and_streams(
    condition: str, items: list[Any], kept: list[Any]
) -> None:
    config = one("data_filter", {"condition": condition})
    # A list item is filtered element by element.
    assert run_one(config, items) == {"p:output": kept}
    # A stream of (non-list) items: those that fail are dropped from the stream.
    scalars = [x for x in items if not isinstance(x, list)]
    graph = ConfigLoader().create_graph_from_config(config)
    out = asyncio.run(GraphExecutor(graph).execute_stream({"p": scalars}))
    assert out.get("p:output", []) == [x for x in kept if not isinstance(x, list)]


def test_data_filter_default_and_dropped_single_item() -> None:
    assert run_one(one("data_filter"), None) == {}
    assert run_one(one("data_filter"), 3) == {"p:output": 3}


@pytest.mark.parametrize(
    ("aggregation", "expected"),
    [("sum", 3), ("count", 2), ("list", [1, 2]), ("combine", {"a": 1, "b": 2})],
)
def test_aggregator_over_several_inputs(aggregation: str, expected: Any) -> None:
    config = one("aggregator", {"aggregation": aggregation}, input_pipes=["a", "b"])
    assert run_one(config, {"a": 1, "b": 2}) == {"p:output": expected}


@pytest.mark.parametrize(
    ("aggregation", "item", "expected"),
    [
        ("sum", [1, 2, 3.5], 6.5),
        ("count", [1, 2, 3], 3),
        ("count", "one", 1),
        ("list", (1, 2), [1, 2]),
        ("combine", [{"a": 1}, {"b": 2}, {"a": 3}], {"a": 3, "b": 2}),
        ("combine", [1, 2], [1, 2]),
    ],
)
def test_aggregator_over_one_input(aggregation: str, item: Any, expected: Any) -> None:
    assert run_one(one("aggregator", {"aggregation": aggregation}), item) == {"p:output": expected}


def test_aggregator_sum_needs_numbers() -> None:
    from mpipe import ExecutionError

    with pytest.raises(ExecutionError, match=r"\(sum\) needs numbers"):
        run_one(one("aggregator", {"aggregation": "sum"}), [1, "x"])


@pytest.mark.parametrize(
    ("function", "item", "expected"),
    [
        ("passthrough", {"k": 1}, {"k": 1}),
        ("to_string", 12, "12"),
        ("to_json", {"a": [1]}, '{"a":[1]}'),
        ("length", [1, 2, 3], 3),
        ("sum", [1, 2, 3], 6),
        ("cfg_helpers:double", 21, 42),
        ("cfg_helpers:Flaky", 0, None),  # a class is callable: instantiating it is the function
    ],
)
def test_simple_with_registered_and_referenced_functions(
    function: str, item: Any, expected: Any
) -> None:
    out = run_one(one("simple", {"function": function}), item)
    if function.endswith("Flaky"):
        assert isinstance(out["p:output"], cfg_helpers.Flaky) and out["p:output"].n == 0
    else:
        assert out == {"p:output": expected}


def test_simple_with_an_async_referenced_function_and_timeout() -> None:
    config = one("simple", {"function": "cfg_helpers:slow"}, timeout=0.05)
    from mpipe import ExecutionError

    with pytest.raises(ExecutionError) as exc:
        run_one(config, 1)
    assert isinstance(exc.value.cause, ProcessorTimeoutError)


@pytest.mark.parametrize(
    ("function", "words"),
    [
        ("nope", "unknown function 'nope'"),
        ("no_such_module_xyz:f", "cannot import module 'no_such_module_xyz'"),
        ("cfg_helpers:missing", "has no attribute 'missing'"),
        ("cfg_helpers:not_callable", "not callable"),
    ],
)
def test_simple_with_bad_functions(function: str, words: str) -> None:
    with pytest.raises(ConfigurationError) as exc:
        ConfigLoader().create_graph_from_config(one("simple", {"function": function}))
    assert exc.value.field == "processors[0].parameters.function"
    assert words in str(exc.value)


def test_module_class_reference_as_processor_type() -> None:
    config = one("cfg_helpers:Offset", {"offset": 10})
    assert run_one(config, 5) == {"p:output": 15}
    graph = ConfigLoader().create_graph_from_config(config)
    assert isinstance(graph.get_processor("p"), cfg_helpers.Offset)


def test_metaclass_registered_class_is_usable_from_a_config() -> None:
    assert global_registry.is_registered("scale")
    assert global_registry.get_processor_class("scale") is cfg_helpers.Scale
    assert run_one(one("scale", {"factor": 3}), 2) == {"p:output": 6}


def test_processor_meta_registers_concrete_classes_only() -> None:
    class Abstract(BaseProcessor, metaclass=ProcessorMeta):
        """Has no process_data: not registered."""

    class Concrete(Abstract):
        """Registered under its class name."""

        async def process_data(self, input_data: dict[str, Any]) -> Any:
            return 1

    try:
        assert not global_registry.is_registered("Abstract")
        assert global_registry.get_processor_class("Concrete") is Concrete
        info = global_factory.get_processor_info("Concrete")
        assert info["class"] == "Concrete" and info["metadata"]["name"] == "Concrete"
        assert info["description"] == "Registered under its class name."
    finally:
        global_registry.unregister_processor("Concrete")
    assert not global_registry.is_registered("Concrete")


def test_registry_api() -> None:
    reg = ProcessorRegistry()
    assert reg.list_registered_processors() == {} and not reg.is_registered("x")
    reg.register_processor("scale", cfg_helpers.Scale)
    reg.register_processor("off", cfg_helpers.Offset)
    listed = reg.list_registered_processors()
    assert listed == {"off": cfg_helpers.Offset, "scale": cfg_helpers.Scale}
    assert list(listed) == ["off", "scale"]  # sorted by name
    listed.clear()  # a copy
    assert reg.is_registered("off")
    assert reg.get_processor_class("off") is cfg_helpers.Offset
    reg.unregister_processor("off")
    assert list(reg.list_registered_processors()) == ["scale"]
    with pytest.raises(
        ConfigurationError, match="unknown processor type 'off'; registered types: scale"
    ) as caught:
        reg.get_processor_class("off")
    assert isinstance(caught.value, KeyError)
    assert str(caught.value) == "unknown processor type 'off'; registered types: scale"
    reg.unregister_processor("off")  # not registered: nothing happens
    assert list(reg.list_registered_processors()) == ["scale"]
    with pytest.raises(ConfigurationError, match="ProcessorInterface subclass") as bad:
        reg.register_processor("bad", cfg_helpers.NotAProcessor)  # type: ignore[arg-type]
    assert isinstance(bad.value, ValueError)
    with pytest.raises(ConfigurationError, match="non-empty string"):
        reg.register_processor("", cfg_helpers.Offset)
    reg.register_function("dbl", cfg_helpers.double)
    assert reg.get_function("dbl") is cfg_helpers.double
    assert reg.list_registered_functions() == ["dbl"]
    reg.unregister_function("dbl")
    with pytest.raises(ConfigurationError, match="unknown function 'dbl'"):
        reg.get_function("dbl")
    with pytest.raises(ConfigurationError, match="needs a callable"):
        reg.register_function("x", 3)  # type: ignore[arg-type]


def test_factory_api() -> None:
    p = global_factory.create_processor("text_transformer", "t1", transformation="reverse")
    assert p.processor_id == "t1" and asyncio.run(p.process({"input": "ab"})) == "ba"
    q = global_factory.create_processor_from_config(
        {"name": "aggregator", "processor_id": "a1", "aggregation": "count"}
    )
    assert q.processor_id == "a1" and q.aggregation == "count"  # type: ignore[attr-defined]
    info = global_factory.get_processor_info("text_transformer")
    assert info["parameters"] == ["transformation"] and info["name"] == "text_transformer"
    strict = ProcessorFactory(_strict_registry())
    assert strict.create_processor("strict", "s").processor_id == "s"
    with pytest.raises(ConfigurationError, match="does not accept these parameters"):
        strict.create_processor("strict", "s", unknown=1)
    with pytest.raises(ConfigurationError, match="needs a mapping with a 'name'"):
        global_factory.create_processor_from_config({"processor_id": "x"})
    with pytest.raises(ConfigurationError, match="unknown processor type 'nope'"):
        global_factory.create_processor("nope")


class _Strict(SimpleProcessor):
    """Accepts no parameters but its id."""

    def __init__(self, processor_id: str | None = None) -> None:
        super().__init__(cfg_helpers.double, processor_id)


def _strict_registry() -> ProcessorRegistry:
    reg = ProcessorRegistry()
    reg.register_processor("strict", _Strict)
    return reg


def test_loader_with_its_own_registry_reports_unknown_parameters() -> None:
    loader = ConfigLoader(_strict_registry())
    with pytest.raises(ConfigurationError) as exc:
        loader.create_graph_from_config(one("strict", {"factor": 2}))
    assert exc.value.field == "processors[0].parameters"
    assert "does not accept these parameters" in str(exc.value)
    # The global registry's types are not visible through this loader.
    with pytest.raises(ConfigurationError, match="unknown processor type 'aggregator'"):
        loader.create_graph_from_config(one("aggregator"))


def test_registered_factory_gets_the_config_and_the_config_pipes_win() -> None:
    seen: list[ProcessorConfig] = []

    def factory(cfg: ProcessorConfig) -> SimpleProcessor:
        seen.append(cfg)
        proc = SimpleProcessor(lambda d: f"{d['left']}+{d['right']}", "whatever")
        proc.create_default_pipes(["wrong"], ["also_wrong"])
        return proc

    loader = ConfigLoader()
    loader.register_processor_factory("joiner", factory)
    config = one(
        "joiner", {"anything": [1, 2]}, input_pipes=["left", "right"], output_pipes=["out"]
    )
    graph = loader.create_graph_from_config(config)
    proc = graph.get_processor("p")
    assert proc.processor_id == "p"
    assert list(proc.input_pipes) == ["left", "right"] and list(proc.output_pipes) == ["out"]
    assert seen[0].parameters == {"anything": [1, 2]} and seen[0].processor_type == "joiner"
    assert GraphExecutor(graph).run({"p": {"left": "a", "right": "b"}}) == {"p:out": "a+b"}
    # Another loader does not know this factory.
    with pytest.raises(ConfigurationError, match="unknown processor type 'joiner'"):
        ConfigLoader().create_graph_from_config(config)


def test_factory_failures_and_bad_registrations_name_the_processor() -> None:
    loader = ConfigLoader()
    loader.register_processor_factory("boom", lambda cfg: 1 / 0)
    loader.register_processor_factory("thing", lambda cfg: "not a processor")  # type: ignore[arg-type,return-value]
    with pytest.raises(ConfigurationError) as exc:
        loader.create_graph_from_config(
            {
                "processors": [
                    {"processor_id": "a", "processor_type": "boom"},
                    {"processor_id": "b", "processor_type": "thing"},
                ]
            }
        )
    problems = {p["field"]: p["message"] for p in exc.value.details["problems"]}
    assert "ZeroDivisionError" in problems["processors[0]"]
    assert "produced str, not a processor" in problems["processors[1].processor_type"]
    with pytest.raises(ConfigurationError, match="must be callable"):
        loader.register_processor_factory("x", 3)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="non-empty string"):
        loader.register_processor_factory("", lambda cfg: None)  # type: ignore[arg-type,return-value]


def test_execution_placement_from_config_reaches_the_executor() -> None:
    config = one("simple", {"function": "cfg_helpers:double"}, execution="thread")
    graph = ConfigLoader().create_graph_from_config(config)
    assert graph.get_processor("p").execution == "thread"  # type: ignore[attr-defined]
    executor = GraphExecutor(graph)
    assert executor.run({"p": 4}) == {"p:output": 8}
    assert executor.get_execution_status()["state"] == "completed"


def test_config_names_are_public_and_documented() -> None:
    import inspect

    import mpipe

    names = [
        "ConfigLoader",
        "ConnectionConfig",
        "GraphConfig",
        "ProcessorConfig",
        "ProcessorFactory",
        "ProcessorMeta",
        "ProcessorRegistry",
        "global_factory",
        "global_registry",
    ]
    assert set(names) <= set(mpipe.__all__)
    assert mpipe.__all__ == sorted(mpipe.__all__)
    for name in names:
        obj = getattr(mpipe, name)
        if inspect.isclass(obj):
            assert inspect.getdoc(obj), name
    import processor_pipeline.v2 as v2

    assert all(getattr(v2, n) is getattr(mpipe, n) for n in names)


def test_loader_registry_functions_are_used_by_simple() -> None:
    from mpipe._config._builtins import FunctionProcessor

    reg = ProcessorRegistry()
    reg.register_processor("simple", FunctionProcessor)
    reg.register_function("triple", lambda x: 3 * x)
    graph = ConfigLoader(reg).create_graph_from_config(one("simple", {"function": "triple"}))
    assert GraphExecutor(graph).run({"p": 2}) == {"p:output": 6}
    assert not global_registry.list_registered_functions().count("triple")


def test_a_foreign_processor_class_from_a_config() -> None:
    config = one("cfg_helpers:Foreign", {}, execution="thread")
    graph = ConfigLoader().create_graph_from_config(config)
    proc = graph.get_processor("p")
    assert isinstance(proc, cfg_helpers.Foreign) and proc.execution == "thread"  # type: ignore[attr-defined]
    assert GraphExecutor(graph).run({"p": 1}) == {"p:output": {"seen": {"input": 1}}}
    with pytest.raises(ConfigurationError) as exc:
        ConfigLoader().create_graph_from_config(one("cfg_helpers:Foreign", {}, timeout=1))
    assert exc.value.field == "processors[0].timeout" and "needs a BaseProcessor" in str(exc.value)
    picky = one("cfg_helpers:Foreign", {"picky": True}, input_pipes=["other"])
    with pytest.raises(ConfigurationError) as exc:
        ConfigLoader().create_graph_from_config(picky)
    assert exc.value.field == "processors[0]" and "KeyError" in str(exc.value)
