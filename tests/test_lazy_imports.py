"""``import mpipe`` loads only the exceptions; every other public name loads its layer on first
use, and the public API is the same as if everything were imported at once."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import mpipe

#: Modules that ``import mpipe`` (or ``import processor_pipeline.v2``) must not load: the
#: engine, the observers, the config layer and the heavy third-party packages they use.
HEAVY = (
    "asyncio",
    "numpy",
    "pyarrow",
    "dill",
    "jsonschema",
    "mpipe._engine",
    "mpipe._observe",
    "mpipe._model",
    "mpipe._config",
    "mpipe._backends",
)


def modules_after(code: str) -> set[str]:
    """The modules a fresh interpreter has loaded after running ``code``."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(mpipe.__file__)))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport json, sys; print(json.dumps(sorted(sys.modules)))"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return set(json.loads(out.stdout.splitlines()[-1]))


@pytest.mark.parametrize("code", ["import mpipe", "import processor_pipeline.v2"])
def test_import_loads_no_layer(code: str) -> None:
    loaded = modules_after(code)
    assert "mpipe" in loaded
    assert sorted(m for m in HEAVY if m in loaded) == []


def test_a_name_loads_only_its_layer() -> None:
    loaded = modules_after("import mpipe; mpipe.ProcessingGraph")
    assert "mpipe._model._graph" in loaded
    assert sorted(m for m in ("numpy", "mpipe._engine", "mpipe._config") if m in loaded) == []


def test_a_monitored_run_loads_no_numpy() -> None:
    # A process pool's workers import numpy as they start when their parent has imported it:
    # mpipe's own monitor must not be the reason. It loads numpy when its metrics are read; the
    # run, and its live series counting thousands of firings at once (as a dashboard reads
    # it), load none.
    loaded = modules_after(
        "import asyncio, mpipe\n"
        "monitor = mpipe.Monitor()\n"
        "ex = mpipe.GraphExecutor(mpipe.create_simple_pipeline([('a', abs)]), monitor=monitor)\n"
        "out = asyncio.run(ex.execute_stream({'a': range(3000)}))\n"
        "assert len(out['a:output']) == 3000\n"
        "assert monitor.series.snapshot()[-1][3] == (3000,)"
    )
    assert "mpipe._observe._monitor._series" in loaded
    assert sorted(m for m in ("numpy", "pyarrow") if m in loaded) == []


def test_v2_submodule_loads_only_its_names() -> None:
    loaded = modules_after("from processor_pipeline.v2.core.graph import ProcessingGraph")
    assert "mpipe._engine._executor" in loaded
    assert sorted(m for m in ("jsonschema", "mpipe._config") if m in loaded) == []


def test_every_public_name_resolves_in_a_fresh_process() -> None:
    code = (
        "import mpipe\n"
        "missing = [n for n in mpipe.__all__ if getattr(mpipe, n, None) is None]\n"
        "assert not missing, missing\n"
        "assert set(mpipe.__all__) <= set(dir(mpipe)), set(mpipe.__all__) - set(dir(mpipe))\n"
    )
    assert "mpipe._config" in modules_after(code)


def test_public_names_are_declared_once_and_cached() -> None:
    lazy = set(mpipe._LAZY)
    eager = {n for n in mpipe.__all__ if n not in lazy}
    # Only the exceptions (and the version) are bound when the package is imported.
    assert all(n == "__version__" or n.endswith("Error") for n in eager), eager
    assert lazy <= set(mpipe.__all__)
    assert set(mpipe.__all__) <= set(dir(mpipe))
    first = mpipe.GraphExecutor
    assert vars(mpipe)["GraphExecutor"] is first  # cached: the next access is a plain lookup
    assert first.__module__ == "mpipe._engine._executor"


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'NoSuchName'"):
        mpipe.NoSuchName  # noqa: B018
    import processor_pipeline.v2 as v2
    import processor_pipeline.v2.core as core

    with pytest.raises(AttributeError, match="no attribute 'NoSuchName'"):
        v2.NoSuchName  # noqa: B018
    with pytest.raises(AttributeError, match="no attribute 'NoSuchName'"):
        core.NoSuchName  # noqa: B018
