"""A worker process imports what it serves with (the transport, the protocol, the codec), and
the payload libraries (numpy, pyarrow) its parent has imported; anything else (dill, the other
payload library) only when a payload or a callable needs it. A closing pool's workers exit
without tearing their interpreter down, yet flush their output and run ``atexit``."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from typing import Any

import pytest
from conftest import own_children
from worker_probe import leave_marks, loaded_modules, loaded_modules_and_double, start_thread

from mpipe._backends import FiringSlot
from mpipe._backends._process._backend import ProcessBackend

pytestmark = pytest.mark.slow

#: What a worker never needs before a payload asks for it.
NOT_AT_START = (
    "dill",
    "asyncio",
    "jsonschema",
    "mpipe._engine",
    "mpipe._observe",
    "mpipe._config",
    "mpipe._model._graph",
    "mpipe._model._processors",
    "mpipe._cli",
    "mpipe._backends._thread",
    "mpipe._backends._process._backend",
)


def heavy(modules: list[str]) -> list[str]:
    return [m for m in NOT_AT_START if m in modules]


def ask(*calls: tuple[Any, Any]) -> list[Any]:
    """Run ``(fn, arg)`` calls one after another in one worker; their answers."""

    async def main() -> list[Any]:
        backend = ProcessBackend(1)
        await backend.start()
        try:
            return [
                await backend.submit(fn, arg, FiringSlot("p", i))
                for i, (fn, arg) in enumerate(calls)
            ]
        finally:
            await backend.close()

    answers = asyncio.run(main())
    assert not own_children()
    return answers


def test_a_started_worker_has_imported_no_layer_it_does_not_serve_with() -> None:
    (modules,) = ask((loaded_modules, None))
    assert "mpipe._transport._codec" in modules and "mpipe._backends._process._worker" in modules
    assert heavy(modules) == []


def test_a_worker_imports_the_payload_libraries_its_parent_has_imported() -> None:
    import numpy  # noqa: F401
    import pyarrow  # noqa: F401

    (modules,) = ask((loaded_modules, None))  # the worker has both before its first payload
    assert "numpy" in modules and "pyarrow" in modules


def test_a_worker_imports_only_the_payload_libraries_its_parent_has(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import numpy  # noqa: F401

    monkeypatch.setitem(sys.modules, "pyarrow", None)  # the parent blocks pyarrow: not imported
    (modules,) = ask((loaded_modules, None))
    assert "numpy" in modules and "pyarrow" not in modules


def test_a_payload_library_that_fails_to_import_leaves_its_worker_serving(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import import_marks  # noqa: F401  (imported here; the workers' import fails)

    from mpipe._backends._process import _launch

    monkeypatch.setattr(_launch, "PAYLOAD_LIBRARIES", ("import_marks",))
    monkeypatch.setenv("MPIPE_TEST_IMPORT_FAILS", "1")
    ((modules, answer),) = ask((loaded_modules_and_double, 21))
    assert answer == 42 and "import_marks" not in modules


#: A parent that has imported neither numpy nor pyarrow when its pool starts; prints what its
#: worker had loaded after a plain value, then an array, then a table.
_LEAN_PARENT = """
import asyncio, json, sys
from worker_probe import loaded_modules
from mpipe._backends import FiringSlot
from mpipe._backends._process._backend import ProcessBackend

async def main():
    assert "numpy" not in sys.modules and "pyarrow" not in sys.modules
    backend = ProcessBackend(1)
    await backend.start()
    try:
        plain = await backend.submit(loaded_modules, {"a": [1, 2]}, FiringSlot("p", 0))
        import numpy as np
        array = await backend.submit(loaded_modules, np.arange(100_000), FiringSlot("p", 1))
        import pyarrow as pa
        table = pa.table({"x": list(range(1000))})
        tabled = await backend.submit(loaded_modules, table, FiringSlot("p", 2))
    finally:
        await backend.close()
    print(json.dumps([plain, array, tabled]))

asyncio.run(main())
"""


def test_a_lean_parents_workers_load_numpy_and_pyarrow_on_demand() -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    out = subprocess.run(
        [sys.executable, "-c", _LEAN_PARENT],
        cwd=here,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    plain, array, table = json.loads(out.stdout)
    assert "numpy" not in plain and "pyarrow" not in plain and heavy(plain) == []
    assert "numpy" in array and "pyarrow" not in array  # an array in an arena block needs numpy
    assert "pyarrow" in table


def test_a_lambda_still_travels_by_value_and_loads_dill_then() -> None:
    offset = 5
    before, value, after = ask(
        (loaded_modules, None), (lambda x: x + offset, 1), (loaded_modules, None)
    )
    assert "dill" not in before
    assert value == 6
    assert "dill" in after


def test_an_exiting_worker_flushes_its_output_and_runs_atexit(
    tmp_path: Any, capfd: pytest.CaptureFixture[str]
) -> None:
    mark = tmp_path / "mark"
    (pid,) = ask((leave_marks, str(mark)))
    assert mark.read_text() == "atexit ran"
    assert "printed by the worker" in capfd.readouterr().out
    assert isinstance(pid, int)


def test_a_worker_with_threads_of_its_own_exits_the_ordinary_way() -> None:
    (threads,) = ask((start_thread, 0.2))
    assert threads >= 2  # the pool's close waited for the thread: nothing is left (ask checks)


def test_a_fused_call_brings_in_only_its_own_small_module() -> None:
    from mpipe._engine._fused_call import FusedCall

    call = FusedCall(["a", "b"], [str, loaded_modules], [True, True], [(), (("input", 0),)])
    ((modules, _times),) = ask((call, 1))
    engine = [m for m in modules if m.startswith("mpipe._engine")]
    assert engine == ["mpipe._engine", "mpipe._engine._fused_call"]
    assert [m for m in heavy(modules) if not m.startswith("mpipe._engine")] == []


# -- processors load as the pool starts --------------------------------------------------------


def _double_graph() -> Any:
    from import_marks import double

    from mpipe import create_simple_pipeline

    graph = create_simple_pipeline([("double", double)])
    graph.get_processor("double").execution = "process"  # type: ignore[attr-defined]
    return graph


def test_workers_load_their_processors_before_the_first_run(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mpipe import GraphExecutor

    graph = _double_graph()  # this process imports the module first
    monkeypatch.setenv("MPIPE_TEST_IMPORT_MARKS", str(tmp_path))

    async def main() -> tuple[set[int], set[int], int]:
        async with GraphExecutor(graph, max_workers=2) as ex:
            await ex.start()
            workers = set(ex._backends["process"].worker_pids())
            # No run yet: each worker imports the processor's module by itself.
            for _ in range(400):
                if len(list(tmp_path.iterdir())) >= len(workers):
                    break
                await asyncio.sleep(0.025)
            marked = {int(p.name) for p in tmp_path.iterdir()}
            return workers, marked, (await ex.execute(21))["double:output"]

    workers, marked, answer = asyncio.run(main())
    assert len(workers) == 2 and marked == workers
    assert answer == 42
    assert not own_children()


def test_a_processor_a_worker_cannot_load_fails_each_run_with_the_reason(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from mpipe import ExecutionError, GraphExecutor

    _double_graph()  # this process imports the module first
    monkeypatch.setenv("MPIPE_TEST_IMPORT_FAILS", "1")

    async def main() -> list[str]:
        errors = []
        async with GraphExecutor(_double_graph(), max_workers=1) as ex:
            for i in range(2):  # the second call names the callable by its key only
                with pytest.raises(ExecutionError) as info:
                    await ex.execute(i)
                errors.append(f"{info.value} / {info.value.cause!r}")
        return errors

    for error in asyncio.run(main()):
        assert "cannot load callable" in error, error
        assert "import_marks may not be imported in this process" in error, error
    assert not own_children()
