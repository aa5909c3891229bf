"""The process backend against the process pools a user would pick instead, in the same run.

Run: ``python -m pytest benchmarks/bench_process.py --benchmark-only -q -p no:randomly``

What is measured is a *warm* pool: every pool (mpipe's, inside ``async with GraphExecutor(...)``,
and every anchor's) is started before timing and serves every round. Worker start-up is not
what these benchmarks measure. Each round gets fresh inputs; the summary prints, per group,
each entry's median time per unit and its ratio to mpipe (``> 1``: mpipe is ahead), then
the goals, met or not. Pools are sized to the usable cores.

- *round trip*: one tiny firing (``x + 1`` on an int), sent and answered, one at a time:
  ``GraphExecutor.execute`` on a one-processor graph, the backend's own ``submit`` (the pool
  and transport without the scheduler), an ``os.pipe`` ping-pong of 32 bytes between the parent
  and a forked child (the goal's anchor). mpipe and the ping-pong are each measured twice: with
  the parent on one core and the other process (the worker, the echo child) on another, as a
  pool runs (``two_cores`` in ``_anchors.py``: the kernel otherwise puts the two processes on
  one core or on two at random, ~6 or ~40 us for the ping-pong here), and where the kernel puts
  them (``OS placement``, for reference). Then ``ProcessPoolExecutor.submit``,
  ``multiprocess.Pool.apply``, loky's executor (joblib's engine) and ``joblib.Parallel`` of one
  task, ``mpire.WorkerPool.apply``, and a Dask ``LocalCluster`` (processes, one thread each)
  ``client.submit``, where the kernel puts them.
- *stream*: 20,000 tiny items through one process stage running a lambda, against each anchor
  at its best batching (``multiprocess.Pool.map``, ``joblib.Parallel`` with automatic batches,
  ``mpire.WorkerPool.map``, Dask bag), and ``ProcessPoolExecutor.map`` with ``chunksize=1``
  (the setting most often quoted) and with chunks of ``n / (4 x workers)``.
- *big payloads*: a 256 MiB numpy array and a 256 MiB Arrow table (``MPIPE_BENCH_BIG_MIB``;
  the goal is judged at 1024) through an identity process stage and back, with the executor's
  defaults (the arena grows to the payload), against one ``np.copyto`` of the same bytes into a
  warm buffer, and the anchors doing the same.
- *CPU-bound*: eight firings per core of ~0.2 s of pure-Python work each; ``serial`` runs
  them one after the other in the parent, so ``serial``'s ratio is mpipe's speedup.

The memory benchmark (a 3-stage pipeline streaming record batches) is
``bench_process_memory.py``.
"""

from __future__ import annotations

import contextlib
import itertools
import os
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import multiprocess
import numpy as np
import pyarrow as pa
import pytest
from _anchors import (
    WarmExecutor,
    burn,
    calibrate_burn,
    cores,
    dask_client,
    echo_child,
    identity,
    inc,
    line_graph,
    print_now,
    two_cores,
)
from _knobs import SCALE, scaled
from joblib import Parallel, delayed
from joblib.externals.loky import get_reusable_executor
from mpire.pool import WorkerPool

from mpipe._backends import FiringSlot

MiB = 1 << 20
_fresh = itertools.count(1)
N_CORES = cores()


def _start() -> int:
    """A fresh base for a round's inputs."""
    return next(_fresh) * 1_000_000


# -- round trip of one tiny firing -------------------------------------------------------------

RT = "process: round trip of one tiny firing"
RT_N = scaled(500, 5)
#: Calls of the round trips that take milliseconds each.
RT_FEW = scaled(100, 2)


def _ints(n: int) -> Any:
    def make() -> range:
        start = _start()
        return range(start, start + n)

    return make


@pytest.mark.parametrize("placed", [True, False], ids=["two-cores", "os-placement"])
def test_round_trip_mpipe_execute(record: Any, placed: bool) -> None:
    with WarmExecutor(line_graph([inc]), backend="process", max_workers=1) as warm:
        ex = warm.ex
        warm.run(ex.execute({"s0": 0}))  # starts the process backend

        async def body(xs: range) -> None:
            for x in xs:
                out = await ex.execute({"s0": x})
                assert out["s0:output"] == x + 1

        name = "mpipe execute()" if placed else "~ mpipe execute(), OS placement"
        pins = two_cores(*warm.backend.worker_pids()) if placed else contextlib.nullcontext()
        with pins:
            record(RT, name, lambda xs: warm.run(body(xs)), _ints(RT_N), RT_N)


def test_round_trip_mpipe_submit(record: Any) -> None:
    with WarmExecutor(line_graph([inc]), backend="process", max_workers=1) as warm:
        warm.run(warm.ex.execute({"s0": 0}))  # starts the process backend
        backend = warm.backend

        async def body(xs: range) -> None:
            for x in xs:
                assert await backend.submit(inc, x, FiringSlot("s0", x)) == x + 1

        record(RT, "~ mpipe backend.submit()", lambda xs: warm.run(body(xs)), _ints(RT_N), RT_N)


@pytest.mark.parametrize("placed", [True, False], ids=["two-cores", "os-placement"])
def test_round_trip_os_pipe(record: Any, placed: bool) -> None:
    with echo_child() as (w, r, pid):

        def body(xs: range) -> None:
            for x in xs:
                message = x.to_bytes(32, "little")
                os.write(w, message)
                assert os.read(r, 32) == message

        name = "os.pipe ping-pong (32 B)" if placed else "~ os.pipe ping-pong, OS placement"
        with two_cores(pid) if placed else contextlib.nullcontext():
            record(RT, name, body, _ints(RT_N), RT_N)


def test_round_trip_process_pool_executor(record: Any) -> None:
    with ProcessPoolExecutor(1) as pool:
        pool.submit(inc, 0).result()

        def body(xs: range) -> None:
            for x in xs:
                assert pool.submit(inc, x).result() == x + 1

        record(RT, "ProcessPoolExecutor.submit", body, _ints(RT_N), RT_N)


def test_round_trip_multiprocess_pool(record: Any) -> None:
    with multiprocess.Pool(1) as pool:

        def body(xs: range) -> None:
            for x in xs:
                assert pool.apply(inc, (x,)) == x + 1

        record(RT, "multiprocess.Pool.apply", body, _ints(RT_N), RT_N)


def test_round_trip_loky(record: Any) -> None:
    pool = get_reusable_executor(max_workers=1)
    pool.submit(inc, 0).result()

    def body(xs: range) -> None:
        for x in xs:
            assert pool.submit(inc, x).result() == x + 1

    try:
        record(RT, "joblib's loky executor.submit", body, _ints(RT_N), RT_N)
    finally:
        # joblib's Parallel wants an executor it made itself (with its temp-folder manager).
        pool.shutdown(wait=True, kill_workers=True)


def test_round_trip_joblib_parallel(record: Any) -> None:
    with Parallel(n_jobs=N_CORES) as parallel:

        def body(xs: range) -> None:
            for x in xs:
                assert parallel([delayed(inc)(x)]) == [x + 1]

        record(RT, "joblib Parallel, one task", body, _ints(RT_FEW), RT_FEW)


def test_round_trip_mpire(record: Any) -> None:
    with WorkerPool(1, keep_alive=True) as pool:
        pool.apply(inc, (0,))

        def body(xs: range) -> None:
            for x in xs:
                assert pool.apply(inc, (x,)) == x + 1

        record(RT, "mpire WorkerPool.apply", body, _ints(RT_N), RT_N)


def test_round_trip_dask(record: Any) -> None:
    with dask_client(1) as client:
        client.submit(inc, 0, pure=False).result()

        def body(xs: range) -> None:
            for x in xs:
                assert client.submit(inc, x, pure=False).result() == x + 1

        record(RT, "dask LocalCluster submit", body, _ints(RT_FEW), RT_FEW)


# -- a stream of tiny items through one process stage ---------------------------------------------

ST_N = scaled(20_000, 50)
ST = f"process: stream of {ST_N:,} tiny items, one stage"


def test_stream_mpipe(record: Any) -> None:
    graph = line_graph([lambda x: x + 1])
    with WarmExecutor(graph, backend="process", max_workers=N_CORES) as warm:
        ex = warm.ex

        def body(xs: range) -> None:
            out = warm.run(ex.execute_stream({"s0": xs}))["s0:output"]
            assert out[0] == xs[0] + 1 and out[-1] == xs[-1] + 1 and len(out) == ST_N

        record(ST, "mpipe", body, _ints(ST_N), ST_N)


def test_stream_multiprocess_map(record: Any) -> None:
    with multiprocess.Pool(N_CORES) as pool:

        def body(xs: range) -> None:
            out = pool.map(lambda x: x + 1, xs)
            assert out[-1] == xs[-1] + 1 and len(out) == ST_N

        record(ST, "multiprocess.Pool.map (auto chunks)", body, _ints(ST_N), ST_N)


def test_stream_joblib(record: Any) -> None:
    with Parallel(n_jobs=N_CORES, batch_size="auto") as parallel:

        def body(xs: range) -> None:
            f = delayed(lambda x: x + 1)
            out = parallel(f(x) for x in xs)
            assert out[-1] == xs[-1] + 1 and len(out) == ST_N

        record(ST, "joblib Parallel (auto batches)", body, _ints(ST_N), ST_N)


def test_stream_mpire(record: Any) -> None:
    with WorkerPool(N_CORES, keep_alive=True, use_dill=True) as pool:

        def body(xs: range) -> None:
            out = pool.map(lambda x: x + 1, xs)
            assert out[-1] == xs[-1] + 1 and len(out) == ST_N

        record(ST, "mpire WorkerPool.map (auto chunks)", body, _ints(ST_N), ST_N)


@pytest.mark.parametrize("chunks", ["1", "n/(4 workers)"])
def test_stream_process_pool_executor(record: Any, chunks: str) -> None:
    chunksize = 1 if chunks == "1" else ST_N // (4 * N_CORES)
    with ProcessPoolExecutor(N_CORES) as pool:
        list(pool.map(inc, range(N_CORES)))

        def body(xs: range) -> None:
            out = list(pool.map(inc, xs, chunksize=chunksize))
            assert out[-1] == xs[-1] + 1 and len(out) == ST_N

        record(
            ST,
            f"ProcessPoolExecutor.map(chunksize={chunks}) *",
            body,
            _ints(ST_N),
            ST_N,
            rounds=3 if chunksize == 1 else 5,
        )


def test_stream_dask_bag(record: Any) -> None:
    import dask.bag as db

    with dask_client(N_CORES) as client:

        def body(xs: range) -> None:
            bag = db.from_sequence(  # type: ignore[no-untyped-call]
                xs, npartitions=4 * N_CORES
            ).map(lambda x: x + 1)
            out = bag.compute(scheduler=client.get)
            assert out[-1] == xs[-1] + 1 and len(out) == ST_N

        record(ST, "dask bag.map on LocalCluster", body, _ints(ST_N), ST_N)


# -- big payloads through an identity process stage ---------------------------------------------

BIG = int(os.environ.get("MPIPE_BENCH_BIG_MIB", str(scaled(256)))) * MiB
ROWS = BIG // 8


@pytest.fixture(scope="module")
def big_base() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 1 << 62, ROWS, dtype=np.int64)


def _big_inputs(kind: str, base: np.ndarray) -> Any:
    """Each round a new array (or table over one): distinct bytes, nothing cached."""

    def make() -> Any:
        array = base + next(_fresh)
        return array if kind == "numpy" else pa.table({"x": array})

    return make


def _check_big(kind: str, out: Any, sent: Any) -> None:
    if kind == "numpy":
        assert out.nbytes == BIG and out[-1] == sent[-1]
    else:
        assert out.num_rows == ROWS and out.column(0)[-1] == sent.column(0)[-1]


def _big_group(kind: str) -> str:
    what = "numpy array" if kind == "numpy" else "Arrow table"
    return f"process: {BIG // MiB} MiB {what} through an identity stage and back"


KINDS = ["numpy", "arrow"]


@pytest.mark.parametrize("kind", KINDS)
def test_big_memcpy(record: Any, big_base: np.ndarray, kind: str) -> None:
    dest = np.zeros_like(big_base)  # faulted in, like the arena

    def body(x: Any) -> None:
        src = x if kind == "numpy" else x.column(0).chunk(0).to_numpy()
        np.copyto(dest, src)

    record(
        _big_group(kind), "one np.copyto (warm destination)", body, _big_inputs(kind, big_base), 1
    )


@pytest.mark.parametrize("kind", KINDS)
def test_big_mpipe(record: Any, big_base: np.ndarray, kind: str) -> None:
    graph = line_graph([identity])
    with WarmExecutor(graph, backend="process", max_workers=N_CORES) as warm:
        ex = warm.ex

        def body(x: Any) -> None:
            _check_big(kind, warm.run(ex.execute({"s0": x}))["s0:output"], x)

        record(_big_group(kind), "mpipe", body, _big_inputs(kind, big_base), 1)


@pytest.mark.parametrize("kind", KINDS)
def test_big_process_pool_executor(record: Any, big_base: np.ndarray, kind: str) -> None:
    with ProcessPoolExecutor(N_CORES) as pool:
        pool.submit(inc, 0).result()

        def body(x: Any) -> None:
            _check_big(kind, pool.submit(identity, x).result(), x)

        record(_big_group(kind), "ProcessPoolExecutor", body, _big_inputs(kind, big_base), 1, 3)


@pytest.mark.parametrize("kind", KINDS)
def test_big_multiprocess_pool(record: Any, big_base: np.ndarray, kind: str) -> None:
    with multiprocess.Pool(N_CORES) as pool:

        def body(x: Any) -> None:
            _check_big(kind, pool.apply(identity, (x,)), x)

        record(_big_group(kind), "multiprocess.Pool", body, _big_inputs(kind, big_base), 1, 3)


@pytest.mark.parametrize("kind", KINDS)
def test_big_joblib(record: Any, big_base: np.ndarray, kind: str) -> None:
    with Parallel(n_jobs=N_CORES) as parallel:

        def body(x: Any) -> None:
            _check_big(kind, parallel([delayed(identity)(x)])[0], x)

        record(_big_group(kind), "joblib Parallel", body, _big_inputs(kind, big_base), 1, 3)


@pytest.mark.parametrize("kind", KINDS)
def test_big_mpire(record: Any, big_base: np.ndarray, kind: str) -> None:
    with WorkerPool(N_CORES, keep_alive=True) as pool:
        pool.apply(inc, (0,))

        def body(x: Any) -> None:
            _check_big(kind, pool.apply(identity, (x,)), x)

        record(_big_group(kind), "mpire", body, _big_inputs(kind, big_base), 1, 3)


@pytest.mark.parametrize("kind", KINDS)
def test_big_dask(record: Any, big_base: np.ndarray, kind: str) -> None:
    with dask_client(N_CORES) as client:

        def body(x: Any) -> None:
            # Scattering first is Dask's advice for big data (a 256 MiB graph warns).
            data = client.scatter(x, hash=False)
            _check_big(kind, client.submit(identity, data, pure=False).result(), x)

        record(_big_group(kind), "dask LocalCluster", body, _big_inputs(kind, big_base), 1, 3)


# -- CPU-bound firings --------------------------------------------------------------------------

CPU_SECONDS = 0.2 * SCALE
CPU = f"process: {8 * N_CORES} CPU-bound firings of ~{CPU_SECONDS:.3g} s on {N_CORES} cores"
CPU_N = 8 * N_CORES


@pytest.fixture(scope="module")
def burn_steps() -> int:
    return calibrate_burn(CPU_SECONDS)


def _specs(steps: int) -> Any:
    return lambda: [(_start() + i, steps) for i in range(CPU_N)]


def _check_cpu(out: list[int], specs: list[tuple[int, int]]) -> None:
    assert len(out) == CPU_N and out[0] == burn(specs[0])


def test_cpu_serial(record: Any, burn_steps: int) -> None:
    record(
        CPU,
        "serial (in the parent) *",
        lambda s: [burn(x) for x in s],
        _specs(burn_steps),
        CPU_N,
        3,
    )


def test_cpu_mpipe(record: Any, burn_steps: int) -> None:
    with WarmExecutor(line_graph([burn]), backend="process", max_workers=N_CORES) as warm:
        ex = warm.ex

        def body(specs: list[tuple[int, int]]) -> None:
            _check_cpu(warm.run(ex.execute_stream({"s0": specs}))["s0:output"], specs)

        record(CPU, "mpipe", body, _specs(burn_steps), CPU_N)


def test_cpu_process_pool_executor(record: Any, burn_steps: int) -> None:
    with ProcessPoolExecutor(N_CORES) as pool:
        list(pool.map(inc, range(N_CORES)))

        def body(specs: list[tuple[int, int]]) -> None:
            _check_cpu(list(pool.map(burn, specs)), specs)

        record(CPU, "ProcessPoolExecutor.map", body, _specs(burn_steps), CPU_N)


def test_cpu_multiprocess_pool(record: Any, burn_steps: int) -> None:
    with multiprocess.Pool(N_CORES) as pool:

        def body(specs: list[tuple[int, int]]) -> None:
            _check_cpu(pool.map(burn, specs, chunksize=1), specs)

        record(CPU, "multiprocess.Pool.map(chunksize=1)", body, _specs(burn_steps), CPU_N)


def test_cpu_joblib(record: Any, burn_steps: int) -> None:
    with Parallel(n_jobs=N_CORES) as parallel:

        def body(specs: list[tuple[int, int]]) -> None:
            _check_cpu(parallel(delayed(burn)(s) for s in specs), specs)

        record(CPU, "joblib Parallel", body, _specs(burn_steps), CPU_N)


def test_cpu_mpire(record: Any, burn_steps: int) -> None:
    with WorkerPool(N_CORES, keep_alive=True) as pool:

        def body(specs: list[tuple[int, int]]) -> None:
            # mpire unpacks a tuple into arguments: wrap each spec.
            _check_cpu(pool.map(burn, [(s,) for s in specs], chunk_size=1), specs)

        record(CPU, "mpire WorkerPool.map(chunk_size=1)", body, _specs(burn_steps), CPU_N)


def test_cpu_dask(record: Any, burn_steps: int) -> None:
    with dask_client(N_CORES) as client:
        client.submit(inc, 0, pure=False).result()

        def body(specs: list[tuple[int, int]]) -> None:
            _check_cpu(client.gather(client.map(burn, specs, pure=False)), specs)

        record(CPU, "dask LocalCluster map", body, _specs(burn_steps), CPU_N)


# -- the goals, judged on this run's figures ---------------------------------------------------


@pytest.fixture(scope="module", autouse=True)
def goals(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    from conftest import _RESULTS

    def us(group: str, name: str) -> float | None:
        entry = _RESULTS.get(group, {}).get(name)
        return None if entry is None else float(entry["per_unit_us"])

    lines = []

    def judge(label: str, ok: bool | None, detail: str) -> None:
        verdict = "n/a" if ok is None else ("met" if ok else "NOT met")
        lines.append(f"  {verdict:8s} {label}: {detail}")

    rt, pipe = us(RT, "mpipe execute()"), us(RT, "os.pipe ping-pong (32 B)")
    if rt is not None and pipe is not None:
        judge(
            "round trip < 50 us and <= 1.5x os.pipe",
            rt < 50 and rt <= 1.5 * pipe,
            f"{rt:.1f} us, {rt / pipe:.2f}x os.pipe ({pipe:.1f} us)",
        )
    st = us(ST, "mpipe")
    lambdas = [
        "multiprocess.Pool.map (auto chunks)",
        "joblib Parallel (auto batches)",
        "mpire WorkerPool.map (auto chunks)",
    ]
    others = {n: us(ST, n) for n in lambdas}
    if st is not None and all(v is not None for v in others.values()):
        worst = min(v for v in others.values() if v is not None) / st
        judge(
            "stream ahead of every lambda-capable anchor",
            worst > 1,
            f"{1e6 / st:,.0f} items/s; slowest ratio {worst:.2f}x (anchor time / mpipe)",
        )
    for kind in KINDS:
        group = _big_group(kind)
        big, copy = us(group, "mpipe"), us(group, "one np.copyto (warm destination)")
        if big is not None and copy is not None:
            judge(
                f"{kind}: round trip <= 1.5x one memcpy",
                big <= 1.5 * copy,
                f"{big / 1e3:.1f} ms, {big / copy:.2f}x memcpy ({copy / 1e3:.1f} ms)",
            )
    cpu, serial = us(CPU, "mpipe"), us(CPU, "serial (in the parent) *")
    anchors = [v for n, v in _RESULTS.get(CPU, {}).items() if n != "mpipe" and "serial" not in n]
    if cpu is not None and serial is not None and anchors:
        best = min(float(a["per_unit_us"]) for a in anchors)
        speedup = serial / cpu
        judge(
            f"CPU-bound speedup >= 0.95 x {N_CORES} and no worse than the best anchor",
            speedup >= 0.95 * N_CORES and cpu <= best,
            f"speedup {speedup:.2f} (best anchor {serial / best:.2f})",
        )
    if lines:
        load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
        text = "\n".join([f"\nthe process backend's goals (load average {load}):", *lines])
        print_now(request, text)
