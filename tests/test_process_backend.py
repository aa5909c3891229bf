"""The process backend: real worker processes, real shared memory, real crashes.

A fault-injection table pairs each way a firing can go wrong with the error the user sees and
what the strategy makes of it; after every test the autouse fixture checks that no child process
and no shared memory is left, and this module checks file descriptors too.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import psutil
import pyarrow as pa
import pytest
from conftest import own_children, worker_fds

from mpipe import (
    BaseProcessor,
    ConfigurationError,
    ExecutionError,
    GraphExecutor,
    ProcessingGraph,
    ProcessorTimeoutError,
    RetryStrategy,
    SimpleProcessor,
    SkipStrategy,
    WorkerCrashedError,
)

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def no_fd_leak() -> Iterator[None]:
    before = worker_fds()
    yield
    for _ in range(50):
        if worker_fds() <= before:
            break
        time.sleep(0.02)
    assert worker_fds() <= before, "file descriptors leaked"


def process_graph(fn: Any, strategy: Any = None, **config: Any) -> ProcessingGraph:
    g = ProcessingGraph(error_strategy=strategy)
    p = SimpleProcessor(fn, "p", execution="process", **config)
    p.create_default_pipes()
    g.add_processor(p)
    return g


def run_stream(g: ProcessingGraph, items: list[Any], **kw: Any) -> dict[str, list[Any]]:
    return asyncio.run(GraphExecutor(g, max_workers=2, **kw).execute_stream({"p": items}))


# -- what a firing can do wrong, and what the user must see ------------------------------------


def raises(x: int) -> int:
    if x == 2:
        raise ValueError(f"bad item {x}")
    return x


def exits(x: int) -> int:
    if x == 2:
        os._exit(7)
    return x


def segfaults(x: int) -> int:
    if x == 2:
        ctypes.string_at(0)
    return x


def hangs(x: int) -> int:
    if x == 2:
        mark = os.environ.get("MPIPE_TEST_MARK")
        if mark:  # tell the test the firing is running in its worker
            open(mark, "w").close()
        time.sleep(3600)
    return x


def wait_for(condition: Any, within: float = 30.0) -> None:
    """Wait until ``condition()`` holds (a state another process reaches), or fail."""
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "the condition never held"
        time.sleep(0.01)


def bad_output(x: int) -> Any:
    if x == 2:
        return {"live generator": (i for i in range(3))}  # cannot leave the process
    return x


CRASH_CASES = [
    # (processor function, extra config, error type the user sees, text in the message)
    (raises, {}, ValueError, "bad item 2"),
    (exits, {}, WorkerCrashedError, "exit code 7"),
    (segfaults, {}, WorkerCrashedError, "killed by SIGSEGV"),
    (hangs, {"timeout": 0.5}, ProcessorTimeoutError, "ran past its timeout of 0.5 s"),
    (bad_output, {}, Exception, "generator"),
]


@pytest.mark.parametrize(
    ("fn", "config", "error", "text"), CRASH_CASES, ids=lambda c: getattr(c, "__name__", None)
)
def test_fault_halts_with_a_clear_error(
    fn: Any, config: dict[str, Any], error: type, text: str
) -> None:
    g = process_graph(fn, **config)
    with pytest.raises(ExecutionError) as info:
        run_stream(g, [0, 1, 2, 3])
    cause = info.value.cause
    assert isinstance(cause, error), repr(cause)
    assert text in str(cause)
    assert info.value.failed_processors == ["p"]


@pytest.mark.parametrize(
    ("fn", "config", "error", "text"), CRASH_CASES, ids=lambda c: getattr(c, "__name__", None)
)
def test_fault_skipped_and_the_run_goes_on(
    fn: Any, config: dict[str, Any], error: type, text: str
) -> None:
    seen: list[BaseException] = []
    strategy = SkipStrategy(skip_callback=lambda e, pid, ctx: seen.append(e))
    out = run_stream(process_graph(fn, strategy, **config), [0, 1, 2, 3, 4])
    assert out == {"p:output": [0, 1, 3, 4]}
    assert len(seen) == 1 and isinstance(seen[0], error)


def test_crash_details() -> None:
    with pytest.raises(ExecutionError) as info:
        run_stream(process_graph(exits), [2])
    crash = info.value.cause
    assert isinstance(crash, WorkerCrashedError)
    assert crash.exitcode == 7 and crash.processor_id == "p" and crash.item_index == 0
    assert "worker-" in str(crash) and "while running processor 'p', item 0" in str(crash)


def test_without_pidfds_a_pipe_sees_workers_exit(monkeypatch: pytest.MonkeyPatch) -> None:
    # Where pidfd_open is refused (old kernels, some container sandboxes), a worker's exit is
    # seen as the end of file of a pipe only it holds the write end of.
    from mpipe._backends._process import _launch

    monkeypatch.setattr(_launch, "USE_PIDFD", False)
    assert run_stream(process_graph(lambda x: x + 1), [1, 2]) == {"p:output": [2, 3]}
    with pytest.raises(ExecutionError) as info:
        run_stream(process_graph(exits), [2])
    crash = info.value.cause
    assert isinstance(crash, WorkerCrashedError) and crash.exitcode == 7


def _environment(names: tuple[str, ...]) -> dict[str, str | None]:
    return {name: os.environ.get(name) for name in names}


def _worker_environment(*names: str) -> dict[str, str | None]:
    """What a worker of a two-worker pool has in its environment for ``names``."""
    g = ProcessingGraph()
    p = SimpleProcessor(_environment, "p", execution="process")
    p.create_default_pipes()
    g.add_processor(p)
    out: dict[str, str | None] = run_stream(g, [names])["p:output"][0]
    return out


def test_workers_get_their_share_of_the_cores_for_numeric_thread_pools(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # One thread pool per core in each of W workers would run W threads per core.
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "3")  # the parent's own setting wins
    share = str(max(1, len(os.sched_getaffinity(0)) // 2))
    assert _worker_environment("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS") == {
        "OMP_NUM_THREADS": share,
        "OPENBLAS_NUM_THREADS": "3",
    }


def test_workers_keep_their_heaps_free_memory_while_they_work(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # glibc's defaults map and unmap every block of 128 KiB and more: numpy's temporaries would
    # fault their pages in afresh on every call.
    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_", raising=False)
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "1048576")  # the parent's own setting wins
    assert _worker_environment("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_") == {
        "MALLOC_MMAP_THRESHOLD_": str(32 << 20),
        "MALLOC_TRIM_THRESHOLD_": "1048576",
    }
    # A parent that tunes glibc's malloc through its tunables keeps its choice whole.
    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_")
    monkeypatch.setenv("GLIBC_TUNABLES", "glibc.malloc.trim_threshold=1048576")
    assert _worker_environment("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_") == {
        "MALLOC_MMAP_THRESHOLD_": None,
        "MALLOC_TRIM_THRESHOLD_": None,
    }


def test_retry_reruns_a_crashed_firing_on_a_fresh_worker() -> None:
    marker = f"/tmp/mpipe-test-crash-{os.getpid()}"

    def crash_once(x: int) -> int:
        if x == 1 and not os.path.exists(marker):
            open(marker, "w").close()
            os._exit(3)
        return x * 10

    try:
        strategy = RetryStrategy(max_retries=1, initial_delay=0)
        out = run_stream(process_graph(crash_once, strategy), [0, 1, 2])
    finally:
        if os.path.exists(marker):
            os.remove(marker)
    assert out == {"p:output": [0, 10, 20]}


def test_remote_traceback_is_the_cause() -> None:
    with pytest.raises(ExecutionError) as info:
        run_stream(process_graph(raises), [2])
    remote = info.value.cause.__cause__
    assert type(remote).__name__ == "RemoteTraceback"
    assert "in raises" in str(remote) and "ValueError: bad item 2" in str(remote)


def test_unserializable_input_names_the_culprit() -> None:
    g = process_graph(lambda x: x)
    with pytest.raises(ExecutionError) as info:
        run_stream(g, [{"ok": 1, "gen": (i for i in range(3))}])
    assert "['gen'] (a generator)" in str(info.value.cause)


def test_unserializable_processor_is_refused_before_the_run() -> None:
    ran: list[int] = []
    pending = (i for i in range(3))  # a live generator cannot travel to another process

    def uses_generator(x: int) -> int:
        return x + next(pending)

    g = ProcessingGraph()
    first = SimpleProcessor(ran.append, "first")
    first.create_default_pipes()
    p = SimpleProcessor(uses_generator, "p", execution="process")
    p.create_default_pipes()
    g.add_processor(first)
    g.add_processor(p)
    g.connect("first", "output", "p", "input")
    with pytest.raises(
        ConfigurationError, match="processor 'p' cannot be sent to a worker process"
    ):
        GraphExecutor(g, max_workers=1).run(1)
    assert ran == []


# -- semantics the other backends share --------------------------------------------------------


def test_lambdas_closures_and_local_classes_work() -> None:
    factor = 3

    class Box:
        def __init__(self, v: int) -> None:
            self.v = v

    g = process_graph(lambda x: Box(x * factor))
    out = run_stream(g, [1, 2])
    assert [b.v for b in out["p:output"]] == [3, 6]


def test_stateful_processor_keeps_its_state_in_one_worker() -> None:
    class Counter(BaseProcessor):
        def __init__(self, pid: str) -> None:
            super().__init__(pid, execution="process")
            self.count = 0

        async def process_data(self, input_data: dict[str, Any]) -> Any:
            self.count += 1
            return (self.count, os.getpid())

    g = ProcessingGraph()
    c = Counter("p")
    c.create_default_pipes()
    g.add_processor(c)
    out = asyncio.run(GraphExecutor(g, max_workers=2).execute_stream({"p": range(6)}))
    counts = [n for n, _ in out["p:output"]]
    assert counts == [1, 2, 3, 4, 5, 6]
    assert len({pid for _, pid in out["p:output"]}) == 1


def test_generators_stream_from_the_worker() -> None:
    def count_up(n: int) -> Iterator[int]:
        yield from range(n)

    g = process_graph(count_up)
    assert run_stream(g, [3, 40]) == {"p:output": [0, 1, 2, *range(40)]}


def _counts_then_marks(n: int) -> Iterator[int]:
    try:
        yield from range(n)
    finally:  # runs in the worker when the generator is closed
        open(os.environ["MPIPE_TEST_MARK"], "w").close()


def test_a_generator_nobody_reads_any_more_is_closed_in_its_worker(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Leaving a stream early drops the worker's generator (it would otherwise stay suspended
    in the worker, holding what it holds, for the life of the pool)."""
    mark = tmp_path / "closed"
    monkeypatch.setenv("MPIPE_TEST_MARK", str(mark))
    g = process_graph(_counts_then_marks)

    async def main() -> None:
        async with GraphExecutor(g, max_workers=1) as ex:
            async for _key, item in ex.stream({"p": [10**9]}):
                assert item == 0
                break
            while not mark.exists():  # the worker closes it on the pool's word
                await asyncio.sleep(0.01)

    asyncio.run(main())


def test_async_functions_run_in_the_worker() -> None:
    async def slow(x: int) -> int:
        await asyncio.sleep(0)
        return x + 1

    assert run_stream(process_graph(slow), [1, 2]) == {"p:output": [2, 3]}


def test_many_tiny_items_keep_their_order() -> None:
    out = run_stream(process_graph(lambda x: x * 2), list(range(20_000)))
    assert out == {"p:output": [x * 2 for x in range(20_000)]}


def test_independent_branches_run_in_parallel() -> None:
    def busy(x: float) -> int:
        end = time.perf_counter() + x
        while time.perf_counter() < end:
            pass
        return os.getpid()

    g = ProcessingGraph()
    for pid in ("l", "r"):
        p = SimpleProcessor(busy, pid, execution="process")
        p.create_default_pipes()
        g.add_processor(p)
    out = GraphExecutor(g, max_workers=2).run(0.3)
    assert out["l:output"] != out["r:output"]  # two workers at once


def test_arrays_and_tables_come_back_from_shared_memory() -> None:
    arr = np.arange(1_000_000, dtype=np.float64)
    table = pa.table({"x": np.arange(100_000)})
    g = process_graph(lambda v: v)

    async def main() -> None:
        async with GraphExecutor(g, max_workers=1) as ex:
            backend = ex._backends.get("process")
            out = await ex.execute_stream({"p": [arr, table]})
            backend = ex._backends["process"]
            base, size = backend._arena.address, backend._arena.capacity
            got_arr, got_table = out["p:output"]
            assert np.array_equal(got_arr, arr)
            assert base <= got_arr.__array_interface__["data"][0] < base + size
            assert got_table.equals(table)
            assert base <= got_table.column(0).chunk(0).buffers()[1].address < base + size

    asyncio.run(main())


def test_pool_is_reused_inside_async_with() -> None:
    g = process_graph(lambda x: os.getpid())

    async def main() -> tuple[set[int], set[int]]:
        async with GraphExecutor(g, max_workers=2) as ex:
            a = await ex.execute_stream({"p": range(4)})
            b = await ex.execute_stream({"p": range(4)})
        return set(a["p:output"]), set(b["p:output"])

    first, second = asyncio.run(main())
    assert first & second


def test_stop_execution_leaves_no_worker() -> None:
    g = process_graph(hangs)

    async def main() -> None:
        ex = GraphExecutor(g, max_workers=2)
        task = asyncio.create_task(ex.execute(2))
        for _ in range(600):  # until the hanging firing is in a worker
            await asyncio.sleep(0.05)
            status = ex.get_execution_status()
            if status["state"] == "running" and status["processors"]["p"]["in_flight"]:
                break
        assert own_children()
        await ex.stop_execution()
        with pytest.raises(ExecutionError, match="stopped"):
            await task

    asyncio.run(main())


# -- the parent's own death and interruption ------------------------------------------------------

SCRIPT = textwrap.dedent(
    """
    import sys, time
    from mpipe import SimpleProcessor, ProcessingGraph, GraphExecutor

    def hang(x, mark=sys.argv[1]):
        open(mark, "w").close()  # the firing runs in its worker
        time.sleep(3600)

    g = ProcessingGraph()
    p = SimpleProcessor(hang, "p", execution="process")
    p.create_default_pipes()
    g.add_processor(p)
    print("starting", flush=True)
    GraphExecutor(g, max_workers=2).run(1)
    """
)


def _start_script(tmp_path: Any) -> tuple[subprocess.Popen[str], list[int]]:
    """The script, once its firing runs in a worker (its two workers' pids)."""
    mark = tmp_path / "running"
    proc = subprocess.Popen(
        [sys.executable, "-c", SCRIPT, str(mark)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_for(mark.exists)
    workers = [c.pid for c in psutil.Process(proc.pid).children()]
    assert len(workers) == 2, "the script's workers did not start"
    return proc, workers


def _gone(pids: list[int], within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not any(
            psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE
            for p in pids
        ):
            return True
        time.sleep(0.05)
    return False


def test_workers_exit_when_the_parent_is_killed(tmp_path: Any) -> None:
    proc, workers = _start_script(tmp_path)
    proc.kill()
    proc.communicate(timeout=10)
    assert _gone(workers, within=2.0)


def test_ctrl_c_in_a_script_leaves_no_worker(tmp_path: Any) -> None:
    proc, workers = _start_script(tmp_path)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode != 0
    assert "KeyboardInterrupt" in err
    assert _gone(workers, within=2.0)


def test_stop_while_workers_are_starting() -> None:
    g = process_graph(hangs)

    async def main() -> None:
        ex = GraphExecutor(g, max_workers=1)
        task = asyncio.create_task(ex.execute(2))
        await asyncio.sleep(0)  # the run is claimed; its pool is starting
        await ex.stop_execution()
        with pytest.raises(ExecutionError, match="stopped"):
            await task

    asyncio.run(main())


def test_cancelling_the_run_stops_the_pool(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    mark = tmp_path / "running"
    monkeypatch.setenv("MPIPE_TEST_MARK", str(mark))
    g = process_graph(hangs)

    async def main() -> None:
        task = asyncio.create_task(GraphExecutor(g, max_workers=2).execute(2))
        while not mark.exists():  # until the hanging firing runs in its worker
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert not own_children()


def test_workers_that_cannot_start_are_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from mpipe._backends._process import _launch

    monkeypatch.setattr(_launch, "WORKER_CODE", "import sys; sys.exit(3)")
    with pytest.raises(WorkerCrashedError, match=r"could not start \(exit code 3\)"):
        GraphExecutor(process_graph(lambda x: x), max_workers=2).run(1)


def test_workers_import_the_parents_mpipe_whatever_the_current_directory(tmp_path: Any) -> None:
    # A script run from a folder that holds another mpipe/ (a source checkout without the
    # compiled extension, after a plain install): the parent imports the installed package,
    # found on its path (PYTHONPATH stands in for site-packages here). Its workers must import
    # that same package, not the folder that ``python -c`` would put first on their path.
    import mpipe

    decoy = tmp_path / "checkout"
    (decoy / "mpipe").mkdir(parents=True)
    (decoy / "mpipe" / "__init__.py").write_text(
        "raise ImportError('the decoy mpipe of the current directory was imported')\n"
    )
    script = tmp_path / "job.py"
    script.write_text(
        textwrap.dedent(
            """
            import os
            import mpipe
            from mpipe import GraphExecutor, ProcessingGraph, SimpleProcessor

            def where(x):
                import mpipe as m
                return os.path.dirname(m.__file__)

            g = ProcessingGraph()
            p = SimpleProcessor(where, "p", execution="process")
            p.create_default_pipes()
            g.add_processor(p)
            print(GraphExecutor(g, max_workers=1).run(0)["p:output"])
            print(os.path.dirname(mpipe.__file__))
            """
        )
    )
    root = os.path.dirname(os.path.dirname(os.path.abspath(mpipe.__file__)))
    env = {**os.environ, "PYTHONPATH": root}
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=decoy,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    in_worker, in_parent = done.stdout.split()
    assert in_worker == in_parent == os.path.dirname(os.path.abspath(mpipe.__file__))


# -- answers without a future (FiringSlot.on_reply) ------------------------------------------------


def double(x: int) -> int:
    return 2 * x


def test_backend_answers_through_on_reply_once() -> None:
    from mpipe._backends import FiringSlot
    from mpipe._backends._process._backend import ProcessBackend

    async def main() -> None:
        backend = ProcessBackend(1)
        await backend.start()
        try:
            replies: list[tuple[Any, Any]] = []
            done = asyncio.Event()

            def on_reply(slot: Any, value: Any, error: BaseException | None) -> None:
                replies.append((value, error))
                done.set()

            slot = FiringSlot("p", 0)
            slot.on_reply = on_reply
            assert backend.submit(double, 21, slot) is None  # answered through on_reply only
            await asyncio.wait_for(done.wait(), 10)
            assert replies == [(42, None)] and slot.on_reply is None
            failing = FiringSlot("p", 1)
            failing.on_reply = on_reply
            done.clear()
            backend.submit(raises, 2, failing)
            await asyncio.wait_for(done.wait(), 10)
            value, error = replies[-1]
            assert value is None and "bad item 2" in str(error)
            plain = await backend.submit(double, 5, FiringSlot("p", 2))  # no on_reply: awaitable
            assert plain == 10
        finally:
            await backend.close()

    asyncio.run(main())
    assert not own_children()


def _crash_first_mark_others(x: int) -> int:
    if x == 0:
        time.sleep(1.0)
        os._exit(1)
    with open(os.environ["MPIPE_TEST_MARK"], "a") as f:
        f.write(f"{x}\n")
    return x


def test_a_run_that_ended_does_not_rerun_its_queued_calls(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Item 0 crashes its worker after the run has already failed elsewhere: item 1, queued
    behind it, belonged to the failed run and must not run on the replacement worker."""
    mark = tmp_path / "ran"
    monkeypatch.setenv("MPIPE_TEST_MARK", str(mark))

    async def fails_soon(x: int) -> int:
        await asyncio.sleep(0.3)
        raise ValueError("the run fails here")

    g = ProcessingGraph()
    p = SimpleProcessor(_crash_first_mark_others, "p", execution="process", timeout=30)
    q = SimpleProcessor(fails_soon, "q")
    for proc in (p, q):
        proc.create_default_pipes()
        g.add_processor(proc)

    async def main() -> None:
        async with GraphExecutor(g, max_workers=1) as ex:
            with pytest.raises(ExecutionError, match="the run fails here"):
                await ex.execute_stream({"p": [0, 1], "q": [0]})
            # A call sent now queues behind item 0 in the one worker; when that worker dies,
            # whatever never started is sent again, in order, to its replacement: once this
            # call is answered, item 1 would have run there too, had it been resent.
            from mpipe._backends import FiringSlot

            backend = ex._backends["process"]
            assert await backend.submit(double, 21, FiringSlot("probe", 0)) == 42

    asyncio.run(main())
    assert not mark.exists()
    assert not own_children()


def _sleeps(x: int) -> int:
    time.sleep(x)
    return x


def test_a_pending_look_survives_a_dead_worker_and_a_closing_pool() -> None:
    """After sending a worker work the pool looks at its responses once, an event-loop turn
    later (``ProcessBackend._look``). A worker killed, or the pool closed, before that look runs:
    every call is still answered exactly once, and the event loop reports no error."""
    from mpipe._backends import FiringSlot
    from mpipe._backends._process._backend import ProcessBackend

    async def main() -> None:
        loop = asyncio.get_running_loop()
        loop_errors: list[dict[str, Any]] = []
        loop.set_exception_handler(lambda _loop, context: loop_errors.append(context))
        replies: dict[int, list[Any]] = {}

        def on_reply(slot: Any, value: Any, error: BaseException | None) -> None:
            replies.setdefault(slot.index, []).append(value if error is None else error)

        def submit(backend: ProcessBackend, fn: Any, arg: Any, index: int) -> FiringSlot:
            slot = FiringSlot("p", index)
            slot.on_reply = on_reply
            backend.submit(fn, arg, slot)
            return slot

        backend = ProcessBackend(2)
        await backend.start()
        try:
            slot = submit(backend, _sleeps, 5, 0)
            (worker,) = [w for w in backend._workers.values() if w.name == slot.worker]
            assert worker.looking  # the look is due, not run yet
            worker.process.kill()
            for _ in range(500):
                if 0 in replies:
                    break
                await asyncio.sleep(0.01)
            assert len(replies[0]) == 1 and isinstance(replies[0][0], WorkerCrashedError)
            assert not worker.looking
            for i in range(1, 50):
                submit(backend, double, i, i)
        finally:
            await backend.close()  # in the same turn as the 49 sends and their looks
        await asyncio.sleep(0.05)
        assert sorted(replies) == list(range(50))
        assert all(len(answers) == 1 for answers in replies.values())
        assert all(replies[i] == [2 * i] or isinstance(replies[i][0], Exception) for i in replies)
        assert loop_errors == []

    asyncio.run(main())
    assert not own_children()
