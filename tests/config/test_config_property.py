"""Property: whatever the config, the loader builds a graph or raises ConfigurationError.

Random values, configs assembled from plausible parts, mutations of those, and random file text
(YAML and JSON). Never another exception, never a hang (the per-test timeout guards that).
A hundred examples per property (five hundred in all) by default; set ``MPIPE_CONFIG_EXAMPLES``
(e.g. 5000) for the full run.
"""

from __future__ import annotations

import copy
import itertools
import os
from pathlib import Path
from typing import Any

import cfg_helpers  # noqa: F401  (registers "scale"; its functions are referenced below)
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mpipe import ConfigLoader, ConfigurationError, ProcessingGraph

EXAMPLES = int(os.environ.get("MPIPE_CONFIG_EXAMPLES", "100"))
pytestmark = pytest.mark.slow

SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

NAMES = st.sampled_from(["a", "b", "c", "input", "output", "x", ""])
TYPES = st.sampled_from(
    [
        "simple",
        "text_transformer",
        "data_filter",
        "aggregator",
        "scale",
        "unknown_type",
        "cfg_helpers:Offset",
        "cfg_helpers:double",
        "cfg_helpers:NotAProcessor",
        "cfg_helpers:missing",
        "no_such_module_for_tests:Thing",
        "mpipe:SimpleProcessor",
        "mpipe:Pipe",
        "json:loads",
        "bad reference:",
    ]
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.sampled_from(
        [
            "passthrough",
            "uppercase",
            "title",
            "numbers_only",
            "sum",
            "combine",
            "cfg_helpers:double",
            "cfg_helpers:slow",
            "cfg_helpers:not_callable",
            "skip",
            "retry",
            "thread",
            "inline",
        ]
    ),
)
JSON = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.one_of(st.text(max_size=6), NAMES), children, max_size=4),
    ),
    max_leaves=12,
)
PARAM_KEYS = st.sampled_from(
    ["function", "transformation", "condition", "aggregation", "factor", "offset", "other"]
)
STRATEGY = st.one_of(
    st.sampled_from(["skip", "retry", "halt", "circuit_breaker", "explode"]),
    st.fixed_dictionaries(
        {"type": st.sampled_from(["skip", "retry", "halt", "circuit_breaker", "composite", "x"])},
        optional={
            "max_retries": st.integers(-1, 3),
            "initial_delay": st.floats(-1, 1),
            "max_skips": st.integers(-1, 3),
            "failure_threshold": st.integers(-1, 3),
            "strategies": st.lists(
                st.sampled_from(["skip", "retry", {"type": "halt"}]), max_size=2
            ),
            "retry_on": st.lists(
                st.sampled_from(["ValueError", "NoSuchError", "cfg_helpers:Flaky", "x:"]),
                max_size=2,
            ),
            "skip_callback": st.sampled_from(
                ["cfg_helpers:record_skip", "cfg_helpers:not_callable"]
            ),
        },
    ),
)


#: Processor types with parameters they accept (the valid-leaning half of the generator).
GOOD = st.sampled_from(
    [
        ("simple", {"function": "passthrough"}),
        ("simple", {"function": "cfg_helpers:double"}),
        ("text_transformer", {"transformation": "title"}),
        ("text_transformer", {}),
        ("data_filter", {"condition": "non_empty"}),
        ("aggregator", {"aggregation": "sum"}),
        ("scale", {"factor": 2}),
        ("cfg_helpers:Offset", {"offset": 1}),
    ]
)


VALID_STRATEGY = st.one_of(
    st.sampled_from(["skip", "retry", "halt", "circuit_breaker"]),
    st.fixed_dictionaries(
        {"type": st.sampled_from(["retry"])},
        optional={"max_retries": st.integers(0, 3), "initial_delay": st.floats(0, 1)},
    ),
    st.fixed_dictionaries(
        {
            "type": st.just("composite"),
            "strategies": st.lists(st.sampled_from(["retry", "skip"]), min_size=1, max_size=2),
        }
    ),
)


@st.composite
def processor(draw: st.DrawFn, pid: str, valid: bool) -> dict[str, Any]:
    if valid or draw(st.booleans()):
        kind, params = draw(GOOD)
        proc: dict[str, Any] = {
            "processor_id": pid,
            "processor_type": kind,
            "parameters": dict(params),
        }
    else:
        proc = {"processor_id": pid, "processor_type": draw(TYPES)}
        if draw(st.booleans()):
            proc["parameters"] = draw(st.dictionaries(PARAM_KEYS, SCALARS, max_size=3))
        for key in ("input_pipes", "output_pipes"):
            if draw(st.booleans()):
                proc[key] = draw(st.lists(NAMES, max_size=3))
    optional = {
        "execution": st.sampled_from(["inline", "thread", "process", "dask", "gpu"]),
        "timeout": st.sampled_from([1, 0.5, 30, 0, -1, "1"]),
        "max_concurrent": st.sampled_from([1, 4, 0, -1]),
        "error_strategy": st.one_of(st.sampled_from(["skip", "retry", "halt"]), STRATEGY),
    }
    if valid:
        optional = {
            "execution": st.sampled_from(["inline", "thread", "process", "dask"]),
            "timeout": st.sampled_from([1, 0.5, 30]),
            "max_concurrent": st.sampled_from([1, 4]),
            "error_strategy": VALID_STRATEGY,
        }
    for key, strategy in optional.items():
        if draw(st.integers(0, 5)) == 0:
            proc[key] = draw(strategy)
    return proc


@st.composite
def config(draw: st.DrawFn, valid: bool = False) -> dict[str, Any]:
    """A config; with ``valid`` one that must build."""
    ids = draw(
        st.lists(st.sampled_from(["p0", "p1", "p2", "p3"]), min_size=1, max_size=4, unique=True)
    )
    if not valid and draw(st.integers(0, 9)) == 0:
        ids.append(ids[0])  # a duplicate id, now and then
    procs = [draw(processor(pid, valid)) for pid in ids]
    conns = []
    if valid or draw(st.booleans()):
        # A chain over the default pipes: valid when the processors are.
        for a, b in itertools.pairwise(ids):
            if a != b and draw(st.integers(0, 3)):
                conns.append(
                    {
                        "from_processor": a,
                        "from_output": "output",
                        "to_processor": b,
                        "to_input": "input",
                    }
                )
    else:
        conns = [
            {
                "from_processor": draw(st.sampled_from([*ids, "zz"])),
                "from_output": draw(NAMES),
                "to_processor": draw(st.sampled_from([*ids, "zz"])),
                "to_input": draw(NAMES),
            }
            for _ in range(draw(st.integers(0, 4)))
        ]
    data: dict[str, Any] = {"processors": procs, "connections": conns}
    if draw(st.booleans()):
        data["graph_id"] = draw(st.text(min_size=1 if valid else 0, max_size=5))
    if draw(st.integers(0, 3)) == 0:
        data["error_strategy"] = draw(VALID_STRATEGY if valid else STRATEGY)
    if valid:
        if draw(st.booleans()):
            data["executor"] = {"backend": draw(st.sampled_from(["inline", "thread"]))}
        if draw(st.booleans()):
            data["monitoring"] = {
                "enabled": True,
                "log_level": draw(st.sampled_from(["INFO", "debug"])),
            }
        return data
    if draw(st.integers(0, 3)) == 0:
        data["executor"] = draw(
            st.fixed_dictionaries(
                {},
                optional={
                    "backend": st.sampled_from(["inline", "thread", "x"]),
                    "max_workers": st.integers(-1, 4),
                },
            )
        )
    for section in ("monitoring", "checkpoints"):
        if draw(st.integers(0, 5)) == 0:
            data[section] = draw(JSON)
    return data


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, (*prefix, i))
    return out


@st.composite
def mutated(draw: st.DrawFn) -> Any:
    data = copy.deepcopy(draw(config(valid=draw(st.booleans()))))
    for _ in range(draw(st.integers(1, 4))):
        paths = _paths(data)
        path = draw(st.sampled_from(paths))
        if not path:
            if draw(st.integers(0, 9)) == 0:
                data = draw(JSON)
            continue
        parent = data
        for key in path[:-1]:
            parent = parent[key]
        if draw(st.booleans()):
            parent[path[-1]] = copy.deepcopy(draw(JSON))
        elif isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent.pop(path[-1])
    return data


def check(data: Any) -> None:
    loader = ConfigLoader()
    try:
        graph = loader.create_graph_from_config(data)
    except ConfigurationError as exc:
        assert exc.message
        return
    assert isinstance(graph, ProcessingGraph)
    assert not graph.validate()


@SETTINGS
@given(JSON)
def test_random_values(data: Any) -> None:
    check(data)


@SETTINGS
@given(config(valid=True))
def test_valid_configs_build(data: dict[str, Any]) -> None:
    graph = ConfigLoader().create_graph_from_config(data)
    assert sorted(graph.nodes) == sorted(p["processor_id"] for p in data["processors"])
    assert len(graph.connections) == len(data["connections"])


@SETTINGS
@given(config())
def test_assembled_configs(data: dict[str, Any]) -> None:
    check(data)


@SETTINGS
@given(mutated())
def test_mutated_configs(data: Any) -> None:
    check(data)


@SETTINGS
@given(
    st.one_of(
        st.text(max_size=80),
        st.sampled_from(
            [
                "processors: [",
                "!!python/object/apply:os.getcwd []",
                "processors: !!binary aGVsbG8=",
                "processors: !!set {a, b}",
                "processors: [{processor_id: a, processor_type: simple,"
                " parameters: {function: 2020-01-01}}]",
                "? [1, 2]\n: x",
                "&a [*a]",
                "processors: &x [*x]",
            ]
        ),
    ),
    st.sampled_from([".yaml", ".json"]),
)
def test_random_file_text(tmp_path: Path, text: str, suffix: str) -> None:
    path = tmp_path / f"config{suffix}"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        cfg = ConfigLoader().load_from_file(path)
    except ConfigurationError as exc:
        assert exc.message
        return
    check(cfg)


# -- the monitoring and checkpoints sections ------------------------------------------------------

REFS = st.sampled_from(
    ["cfg_helpers:has_errors", "os:getcwd", "os:sep", "nope", "no_such_mod:x", "os:missing", ""]
)
ALERT = st.one_of(
    st.fixed_dictionaries(
        {},
        optional={
            "name": st.one_of(st.sampled_from(["a", "b", ""]), JSON),
            "condition": st.one_of(REFS, JSON),
            "action": REFS,
            "cooldown": st.one_of(st.integers(-2, 5), st.floats(), JSON),
        },
    ),
    JSON,
)
MONITORING = st.one_of(
    st.fixed_dictionaries(
        {},
        optional={
            "enabled": st.one_of(st.booleans(), JSON),
            "max_events": st.one_of(st.integers(-1, 5), JSON),
            "log_level": st.one_of(st.sampled_from(["info", "LOUD", "Warning"]), JSON),
            "sample_interval": st.one_of(st.floats(), JSON),
            "alerts": st.one_of(st.lists(ALERT, max_size=3), JSON),
            "extra": JSON,
        },
    ),
    JSON,
)
CHECKPOINTS = st.one_of(
    st.fixed_dictionaries(
        {},
        optional={
            "enabled": st.one_of(st.booleans(), JSON),
            "storage_path": st.one_of(st.none(), st.text(max_size=3), JSON),
            "max_checkpoints": st.one_of(st.integers(-1, 5), st.floats(), JSON),
            "allow_pickle": st.one_of(st.booleans(), JSON),
            "extra": JSON,
        },
    ),
    JSON,
)


@SETTINGS
@given(MONITORING, CHECKPOINTS)
def test_random_sections(tmp_path: Path, monitoring: Any, checkpoints: Any) -> None:
    loader = ConfigLoader()
    if isinstance(checkpoints, dict) and isinstance(checkpoints.get("storage_path"), str):
        # Any folder name, but inside the test's folder (a manager creates its folder).
        checkpoints["storage_path"] = str(tmp_path / f"c{checkpoints['storage_path']!r}")
    for section, build in (
        (monitoring, loader.create_monitor_from_config),
        (checkpoints, loader.create_checkpoint_manager_from_config),
    ):
        try:
            made = build(section)
        except ConfigurationError as exc:
            assert exc.message and exc.details["problems"]
            continue
        assert made is None or type(made).__name__ in ("Monitor", "CheckpointManager")
