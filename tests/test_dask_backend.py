"""The Dask backend on a real LocalCluster — data stays on the cluster, errors reach
the strategy, bad input is a clear error. (The shared executor suite runs on it too.)"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from mpipe import (
    ConfigurationError,
    ExecutionError,
    GraphExecutor,
    HaltStrategy,
    PipelineError,
    ProcessingGraph,
    ProcessorTimeoutError,
    RetryStrategy,
    SimpleProcessor,
    SkipStrategy,
    WorkerCrashedError,
    create_simple_pipeline,
)
from mpipe._backends._dask import DaskRef
from mpipe._observe._hooks import RunHooks

distributed = pytest.importorskip("distributed")

#: Items of the big-data test: 16 MB each.
BIG = 2_000_000


def add(g: ProcessingGraph, pid: str, fn: Any, inputs: list[str] | None = None, **kw: Any) -> None:
    p = SimpleProcessor(fn, pid, **kw)
    p.create_default_pipes(inputs, ["output"])
    g.add_processor(p)


class Firings(RunHooks):
    """Records every firing's end: (processor, index, worker, error)."""

    def __init__(self) -> None:
        self.ends: list[tuple[str, int, str, BaseException | None]] = []

    def firing_end(
        self,
        processor_id: str,
        index: int,
        start: float,
        end: float,
        worker: str,
        error: BaseException | None,
    ) -> None:
        assert end >= start
        self.ends.append((processor_id, index, worker, error))


# -- data stays on the cluster -----------------------------------------------------------------


class Received:
    """Counts the bytes of every message this process reads from a Dask connection (the
    client's, and the in-process scheduler's of the session's LocalCluster)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        import distributed.comm.tcp as tcp

        self.bytes = 0
        original = tcp.from_frames

        async def counting(frames: Any, *args: Any, **kwargs: Any) -> Any:
            self.bytes += sum(memoryview(f).nbytes for f in frames)
            return await original(frames, *args, **kwargs)

        monkeypatch.setattr(tcp, "from_frames", counting)


def _three_stages(middle: str) -> ProcessingGraph:
    # The first two stages each make a 16 MB array per item; the sink makes a float.
    g = create_simple_pipeline(
        [
            ("make", lambda seed: np.full(BIG, float(seed))),
            ("double", lambda a: a * 2.0),
            ("total", lambda a: float(a.sum())),
        ]
    )
    g.get_processor("double").execution = middle  # type: ignore[attr-defined]
    return g


def _received_by_a_run(address: str, middle: str, monkeypatch: pytest.MonkeyPatch) -> int:
    items = 3

    async def main() -> int:
        async with GraphExecutor(_three_stages(middle), backend="dask", dask_address=address) as ex:
            await ex.execute(0)  # connect and warm up before measuring
            with monkeypatch.context() as patch:
                received = Received(patch)
                out = await ex.execute_stream({"make": range(items)})
            assert out == {"total:output": [2.0 * BIG * i for i in range(items)]}
            return received.bytes

    return asyncio.run(main())


@pytest.mark.slow
def test_intermediate_data_stays_on_the_cluster(
    dask_cluster: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    array = BIG * 8
    # Every stage on the cluster: what arrives is task bookkeeping and three floats, far less
    # than even one of the six arrays made.
    on_cluster = _received_by_a_run(dask_cluster, "dask", monkeypatch)
    assert on_cluster < array / 16, on_cluster
    # The same graph with its middle stage in the parent: the measure sees the arrays come home.
    through_parent = _received_by_a_run(dask_cluster, "inline", monkeypatch)
    assert through_parent >= 3 * array, through_parent


def test_references_flow_between_dask_stages_and_values_reach_local_ones(
    dask_cluster: str,
) -> None:
    seen: list[Any] = []

    def local(a: Any) -> int:
        seen.append(type(a))  # runs in this process: it must get the value, not a reference
        return int(a.sum())

    g = create_simple_pipeline(
        [
            ("make", lambda n: np.arange(n)),
            ("double", lambda a: a * 2),
            ("local", local),
            ("back", lambda n: n + 1),
        ]
    )
    for pid in ("make", "double", "back"):
        g.get_processor(pid).execution = "dask"  # type: ignore[attr-defined]
    ex = GraphExecutor(g, dask_address=dask_cluster)
    assert ex.run(10) == {"back:output": 91}
    assert seen == [np.ndarray]
    nodes = {n.node_id: n for n in ex._compiled.nodes}  # type: ignore[union-attr]
    assert nodes["local"].fetch is not None and not nodes["local"].fast
    assert nodes["back"].fetch is None  # fed by an inline node: plain values


def test_arrow_tables_travel_between_stages(dask_cluster: str) -> None:
    g = create_simple_pipeline(
        [
            ("table", lambda n: pa.table({"v": list(range(n))})),
            ("filter", lambda t: t.filter(pc.greater(t["v"], 2))),
            ("rows", lambda t: t.num_rows),
        ]
    )
    assert GraphExecutor(g, backend="dask", dask_address=dask_cluster).run(10) == {"rows:output": 7}


def test_multi_output_routing_and_generators_keep_their_meaning(dask_cluster: str) -> None:
    g = ProcessingGraph()
    split = SimpleProcessor(lambda x: {"even": x} if x % 2 == 0 else {"odd": x}, "split")
    split.create_default_pipes(["input"], ["even", "odd"])
    g.add_processor(split)
    add(g, "explode", lambda x: (x * 10 + i for i in range(2)))
    add(g, "twice", lambda x: [x, x])
    add(g, "odd", lambda x: -x)
    g.connect("split", "even", "explode", "input")
    g.connect("explode", "output", "twice", "input")  # each yielded item is one item
    g.connect("split", "odd", "odd", "input")

    async def main() -> dict[str, list[Any]]:
        ex = GraphExecutor(g, backend="dask", dask_address=dask_cluster)
        return await ex.execute_stream({"split": range(5)})

    assert asyncio.run(main()) == {
        "twice:output": [[v, v] for v in (0, 1, 20, 21, 40, 41)],
        "odd:output": [-1, -3],
    }


def test_without_published_shapes_the_backend_asks_the_cluster(
    dask_cluster: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Tasks publish their shape as an event; when none arrives, a tiny task asks for it.
    from mpipe._backends._dask import DaskBackend

    asked: list[str] = []
    original = DaskBackend._describe

    async def describe(self: DaskBackend, *args: Any) -> Any:
        asked.append(args[-1].processor_id)
        return await original(self, *args)

    monkeypatch.setattr(DaskBackend, "_on_shape", lambda self, event: None)
    monkeypatch.setattr(DaskBackend, "_describe", describe)
    g = ProcessingGraph()
    split = SimpleProcessor(lambda x: {"b": x} if x else {"a": x}, "split")
    split.create_default_pipes(["input"], ["a", "b"])
    g.add_processor(split)
    add(g, "a", lambda x: ("a", x))
    add(g, "b", lambda x: ("b", x))
    g.connect("split", "a", "a", "input")
    g.connect("split", "b", "b", "input")
    out = asyncio.run(
        GraphExecutor(g, backend="dask", dask_address=dask_cluster).execute_stream(
            {"split": range(3)}
        )
    )
    assert out == {"a:output": [("a", 0)], "b:output": [("b", 1), ("b", 2)]}
    assert asked == ["split"] * 3


def test_every_firing_is_heard_with_its_dask_worker(dask_cluster: str) -> None:
    hooks = Firings()
    g = create_simple_pipeline([("a", lambda x: x + 1), ("b", lambda x: x * 2)])
    ex = GraphExecutor(g, backend="dask", dask_address=dask_cluster, hooks=[hooks])
    out = asyncio.run(ex.execute_stream({"a": range(6)}))
    assert out == {"b:output": [2 * (i + 1) for i in range(6)]}
    assert sorted((p, i) for p, i, _, _ in hooks.ends) == [
        (p, i) for p in ("a", "b") for i in range(6)
    ]
    workers = {w for _, _, w, _ in hooks.ends}
    assert all(w.startswith("tcp://") for w in workers), workers
    assert ex._backends["dask"].metrics()["backend"] == "dask"


def test_a_client_can_be_given(dask_cluster: str) -> None:
    g = create_simple_pipeline([("a", lambda x: x + 1)])

    async def main() -> dict[str, Any]:
        async with distributed.Client(dask_cluster, asynchronous=True) as client:
            out = await GraphExecutor(g, backend="dask", dask_client=client).execute(1)
            assert client.status == "running"  # not ours to close
            return out

    assert asyncio.run(main()) == {"a:output": 2}
    with distributed.Client(dask_cluster) as sync_client:  # runs its own loop thread
        assert GraphExecutor(g, backend="dask", dask_client=sync_client).run(2) == {"a:output": 3}


@pytest.mark.slow
def test_without_an_address_the_executor_starts_and_stops_a_local_cluster(
    dask_cluster: str,  # started first: it owns multiprocessing's shared helper process
) -> None:
    g = create_simple_pipeline([("a", lambda x: os.getpid())])

    async def main() -> tuple[int, list[int]]:
        async with GraphExecutor(g, backend="dask", max_workers=1) as ex:
            pid = (await ex.execute(0))["a:output"]
            return pid, ex._backends["dask"].worker_pids()

    pid, workers = asyncio.run(main())
    assert workers == [pid] and pid != os.getpid()  # its one worker process ran the firing
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == "zombie"


@pytest.mark.slow
def test_a_local_cluster_leaves_the_callers_environment_alone(
    dask_cluster: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Dask's nannies write their workers' variables into the process that starts them; a
    # process pool started after (mpipe's too) would inherit them.
    for name in ("MALLOC_TRIM_THRESHOLD_", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("MPIPE_TEST_OWN", raising=False)
    before = dict(os.environ)
    g = create_simple_pipeline([("a", lambda x: os.environ.get("MALLOC_TRIM_THRESHOLD_"))])

    async def main() -> Any:
        # A variable of the caller's own, set while the cluster starts, stays.
        asyncio.get_running_loop().call_later(0.05, os.environ.__setitem__, "MPIPE_TEST_OWN", "1")
        async with GraphExecutor(g, backend="dask", max_workers=1) as ex:
            value = (await ex.execute(0))["a:output"]
            assert dict(os.environ) == {**before, "MPIPE_TEST_OWN": "1"}  # the cluster runs
            return value

    try:
        assert asyncio.run(main()) is not None  # the cluster's own worker keeps Dask's settings
        assert dict(os.environ) == {**before, "MPIPE_TEST_OWN": "1"}
    finally:
        os.environ.pop("MPIPE_TEST_OWN", None)


@pytest.mark.slow
def test_a_worker_dask_restarts_writes_its_variables_again_and_closing_takes_them_back(
    dask_cluster: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_", raising=False)
    before = dict(os.environ)
    g = create_simple_pipeline([("a", lambda x: x + 1)])

    async def main() -> None:
        async with GraphExecutor(g, backend="dask", max_workers=1) as ex:
            assert (await ex.execute(0))["a:output"] == 1
            backend = ex._backends["dask"]
            (pid,) = backend.worker_pids()
            os.kill(pid, signal.SIGKILL)  # its nanny starts another, writing the variables
            for _ in range(200):
                if backend.worker_pids() not in ([], [pid]):
                    break
                await asyncio.sleep(0.05)
            assert backend.worker_pids() not in ([], [pid])
            assert os.environ.get("MALLOC_TRIM_THRESHOLD_") is not None
        assert dict(os.environ) == before

    asyncio.run(main())


# -- error strategies --------------------------------------------------------------------------


def test_retry_resubmits_the_firing(dask_cluster: str, tmp_path: Path) -> None:
    marks = str(tmp_path)

    def flaky(x: int) -> int:
        mark = os.path.join(marks, str(x))
        if not os.path.exists(mark):  # the first try of each item fails, on whichever worker
            open(mark, "w").close()
            raise ValueError(f"first try of {x}")
        return x * 2

    g = create_simple_pipeline([("flaky", flaky)])
    g.set_error_strategy("flaky", RetryStrategy(max_retries=2, initial_delay=0.0))
    out = asyncio.run(
        GraphExecutor(g, backend="dask", dask_address=dask_cluster).execute_stream(
            {"flaky": range(3)}
        )
    )
    assert out == {"flaky:output": [0, 2, 4]}


def test_skip_drops_the_firing(dask_cluster: str) -> None:
    def picky(x: int) -> int:
        if x == 1:
            raise ValueError("no ones")
        return x

    g = create_simple_pipeline([("picky", picky), ("after", lambda x: x + 100)])
    g.set_error_strategy("picky", SkipStrategy())
    out = asyncio.run(
        GraphExecutor(g, backend="dask", dask_address=dask_cluster).execute_stream(
            {"picky": range(3)}
        )
    )
    assert out == {"after:output": [100, 102]}


def test_halt_names_the_processor_with_the_remote_traceback(dask_cluster: str) -> None:
    def boom(x: int) -> int:
        raise KeyError(f"bad item {x}")

    g = create_simple_pipeline([("ok", lambda x: x), ("boom", boom)])
    g.set_error_strategy("boom", HaltStrategy())
    with pytest.raises(ExecutionError, match="processor 'boom' failed: KeyError") as info:
        GraphExecutor(g, backend="dask", dask_address=dask_cluster).run(7)
    assert info.value.failed_processors == ["boom"]
    cause = info.value.cause
    assert isinstance(cause, KeyError)
    assert "on a Dask worker" in str(cause.__cause__) and "boom" in str(cause.__cause__)


def _halt_first(x: int) -> int:
    if x == 0:
        raise ValueError("item 0 is bad")
    import time

    time.sleep(0.2)  # the others are still pending on the cluster when item 0 fails
    return x


@pytest.mark.slow
def test_halt_cancels_the_tasks_still_pending(dask_cluster: str) -> None:
    g = create_simple_pipeline([("halting", _halt_first)])
    g.set_error_strategy("halting", HaltStrategy())

    async def main() -> list[str]:
        async with GraphExecutor(g, backend="dask", dask_address=dask_cluster) as ex:
            with pytest.raises(ExecutionError, match="item 0 is bad"):
                await ex.execute_stream({"halting": range(8)})
            backend = ex._backends["dask"]
            for _ in range(500):  # the cancelled firings unwind on the next turns of the loop
                if not backend._pending:  # type: ignore[attr-defined]
                    break
                await asyncio.sleep(0.01)
            await asyncio.gather(*backend._background)  # type: ignore[attr-defined]
            client = backend._client  # type: ignore[attr-defined]

            def mpipe_tasks(dask_scheduler: Any) -> list[str]:
                return [
                    str(k)
                    for k, ts in dask_scheduler.tasks.items()
                    if "halting" in str(k) and ts.who_wants and ts.state != "erred"
                ]

            return list(await client.run_on_scheduler(mpipe_tasks))

    # Nobody wants the run's other tasks any more: the pending ones were cancelled (the failed
    # one is still referenced by the error's traceback).
    assert asyncio.run(main()) == []


@pytest.mark.slow
def test_a_firing_past_its_timeout_is_a_timeout_error(dask_cluster: str) -> None:
    def sleepy(x: int) -> int:
        import time

        time.sleep(0.5)
        return x

    g = create_simple_pipeline([("sleepy", sleepy)])
    g.get_processor("sleepy").timeout = 0.1  # type: ignore[attr-defined]
    with pytest.raises(ExecutionError, match="ran past its timeout of 0.1 s") as info:
        GraphExecutor(g, backend="dask", dask_address=dask_cluster).run(1)
    assert isinstance(info.value.cause, ProcessorTimeoutError)


@pytest.mark.slow
def test_a_worker_dying_mid_task_is_a_crash_for_the_strategy(dask_cluster: str) -> None:
    def die_on_one(x: int) -> int:
        if x == 1:
            os._exit(3)
        return x

    # One firing in flight: Dask fails every task the dying worker held (it cannot tell which
    # one killed it), and this test is about the one that did.
    g = create_simple_pipeline([("fragile", die_on_one)])
    g.get_processor("fragile").max_concurrent = 1  # type: ignore[attr-defined]
    g.set_error_strategy("fragile", SkipStrategy())
    hooks = Firings()
    ex = GraphExecutor(g, backend="dask", dask_address=dask_cluster, hooks=[hooks])
    try:
        out = asyncio.run(ex.execute_stream({"fragile": range(3)}))
    finally:
        # The nanny replaces the worker; later tests get the full cluster back.
        with distributed.Client(dask_cluster) as client:
            client.wait_for_workers(2, timeout=30)
    assert out == {"fragile:output": [0, 2]}
    errors = [e for _, i, _, e in hooks.ends if e is not None]
    assert len(errors) == 1 and isinstance(errors[0], WorkerCrashedError)
    assert "died while running processor 'fragile', item 1" in str(errors[0])


# -- bad input ---------------------------------------------------------------------------------


def test_an_unreachable_scheduler_is_a_clear_error() -> None:
    g = create_simple_pipeline([("a", lambda x: x)])
    ex = GraphExecutor(
        g,
        backend="dask",
        dask_address="tcp://127.0.0.1:9",  # the discard port: nobody listens
        dask_options={"connect_timeout": 0.5},
    )
    with pytest.raises(
        PipelineError, match=r"cannot reach the Dask scheduler at tcp://127\.0\.0\.1:9"
    ):
        ex.run(1)


RUNNING = threading.Event()
RELEASE = threading.Event()


def _slow(x: int) -> int:
    RUNNING.set()  # in-process workers (threads): the test sees this
    RELEASE.wait(10)
    return x


@pytest.mark.slow
def test_a_cluster_that_loses_all_its_workers_fails_the_run() -> None:
    g = create_simple_pipeline([("slow", _slow)])

    async def main() -> None:
        async with distributed.LocalCluster(
            n_workers=1, processes=False, asynchronous=True, dashboard_address=":0"
        ) as cluster:
            ex = GraphExecutor(
                g,
                backend="dask",
                dask_address=cluster.scheduler_address,
                dask_options={"no_workers_timeout": 0.5},
            )
            run = asyncio.ensure_future(ex.execute(1))
            try:
                await asyncio.to_thread(RUNNING.wait, 10)
                for worker in list(cluster.workers.values()):  # every worker leaves mid-task
                    await worker.close(executor_wait=False)
                await run
            finally:
                RELEASE.set()

    with pytest.raises(ExecutionError, match="has no workers left") as info:
        asyncio.run(main())
    assert isinstance(info.value.cause, WorkerCrashedError)


def test_a_processor_that_cannot_be_serialized_is_refused_before_the_run() -> None:
    lock = threading.Lock()
    g = create_simple_pipeline([("locked", lambda x: (lock, x)[1])])
    with pytest.raises(
        ConfigurationError, match="processor 'locked' cannot be serialized for Dask"
    ):
        GraphExecutor(g, backend="dask", dask_address="tcp://127.0.0.1:9").run(1)


def test_bad_dask_options_are_named() -> None:
    g = create_simple_pipeline([("a", lambda x: x)])
    with pytest.raises(ConfigurationError, match="unknown option.*'speed'"):
        GraphExecutor(g, backend="dask", dask_options={"speed": 11})
    with pytest.raises(ConfigurationError, match="dask_address or dask_client, not both"):
        GraphExecutor(g, backend="dask", dask_address="tcp://x:1", dask_client=object())
    with pytest.raises(ConfigurationError, match="dask_address must be a scheduler address"):
        GraphExecutor(g, backend="dask", dask_address=8786)  # type: ignore[arg-type]
    ex = GraphExecutor(g, backend="dask", dask_options={"connect_timeout": -1})
    with pytest.raises(ConfigurationError, match="connect_timeout must be a positive number"):
        ex.run(1)


def test_without_distributed_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed now fails
    g = create_simple_pipeline([("a", lambda x: x)])
    with pytest.raises(ConfigurationError, match=r"pip install 'processor-pipeline\[dask\]'"):
        GraphExecutor(g, backend="dask").run(1)


def test_a_reference_prints_its_key() -> None:
    class Fake:
        key = "mpipe-a-0-x"

    assert repr(DaskRef(Fake())) == "DaskRef('mpipe-a-0-x')"


def test_the_trace_shows_dask_workers_as_tracks(dask_cluster: str, tmp_path: Any) -> None:
    import json

    from mpipe import Monitor

    g = create_simple_pipeline([("a", lambda x: x + 1), ("b", lambda x: x * 2)])
    for p in g.get_all_processors().values():
        p.execution = "dask"  # type: ignore[attr-defined]
    monitor = Monitor()
    assert GraphExecutor(g, monitor=monitor, dask_address=dask_cluster).run(3) == {"b:output": 8}
    path = tmp_path / "trace.json"
    monitor.export_trace(path)
    data = json.loads(path.read_text())
    events = data["traceEvents"] if isinstance(data, dict) else data
    tracks = {
        e["args"]["name"] for e in events if e.get("ph") == "M" and "name" in e.get("args", {})
    }
    assert any(name.startswith("tcp://") for name in tracks), tracks
    spans = [e for e in events if e.get("ph") == "X" and e.get("name") in ("a", "b")]
    assert {e["name"] for e in spans} == {"a", "b"}
