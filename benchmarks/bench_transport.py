"""Transport benchmarks: rings against pipes, and the arena against one memcpy.

Run: ``python -m pytest benchmarks/bench_transport.py --benchmark-only -s``

- round trip of a 32-byte message between the same two processes: mpipe ring + doorbell,
  ``os.pipe`` ping-pong, ``multiprocessing.connection.Pipe``;
- messages per second one way (10,000 messages of 32 bytes, then one acknowledgement);
- each of those three ways: processes placed by the scheduler (``free``), pinned to two cores,
  pinned to one core (on a 2-core machine the scheduler often keeps a ping-pong pair on one core,
  where spinning cannot help and a wake-up is a context switch);
- a 256 MiB numpy array and Arrow table written into the arena and read back (zero-copy) against
  one ``np.copyto`` of the same bytes.

The ratios are printed at the end and written to ``build/bench_transport.json``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
from collections.abc import Callable, Iterator
from multiprocessing.connection import Connection, Pipe
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from mpipe._transport import Channel, Codec, open_arena, open_channel

MiB = 1 << 20
MESSAGE = b"m" * 32
BURST = 10_000
BIG = 256 * MiB
RESULTS: dict[str, float] = {}


def _child(body: Callable[[], None]) -> int:
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        code = 0
        try:
            body()
        except BaseException:
            code = 1
        os._exit(code)
    return pid


def _reap(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)


@pytest.fixture(scope="module")
def ring() -> Iterator[tuple[Channel, int]]:
    with open_arena(16 * MiB) as arena, open_channel(arena, 1, capacity=1024) as ch:
        endpoint = ch.endpoint()

        def echo() -> None:
            worker = endpoint.connect()
            while True:
                m = worker.recv()
                if m == b"burst":
                    for _ in range(BURST):
                        worker.recv()
                    worker.send(b"ack")
                else:
                    worker.send(m)  # type: ignore[arg-type]

        pid = _child(echo)
        ch.bind(pid)
        yield ch, pid
        _reap(pid)


@pytest.fixture(scope="module")
def pipe() -> Iterator[tuple[tuple[int, int], int]]:
    from_parent, to_child = os.pipe()  # (read end, write end)
    from_child, to_parent = os.pipe()

    def echo() -> None:
        while True:
            m = os.read(from_parent, 32)
            if m == b"b" * 32:
                got = 0
                while got < BURST * 32:
                    got += len(os.read(from_parent, 65536))
                os.write(to_parent, MESSAGE)
            else:
                os.write(to_parent, m)

    pid = _child(echo)
    yield (to_child, from_child), pid
    _reap(pid)
    for fd in (to_child, from_parent, from_child, to_parent):
        os.close(fd)


@pytest.fixture(scope="module")
def mp_pipe() -> Iterator[tuple[Connection, int]]:
    parent, child = Pipe()

    def echo() -> None:
        while True:
            m = child.recv_bytes()
            if m == b"burst":
                for _ in range(BURST):
                    child.recv_bytes()
                child.send_bytes(b"ack")
            else:
                child.send_bytes(m)

    pid = _child(echo)
    yield parent, pid
    _reap(pid)
    parent.close()
    child.close()


def _record(name: str, benchmark: Any) -> None:
    RESULTS[name] = float(benchmark.stats.stats.mean)


@pytest.fixture(scope="module", autouse=True)
def report(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    lines = []
    pairs = [
        ("256 MiB numpy: arena / np.copyto", "big_numpy", "big_copyto"),
        ("256 MiB Arrow table: arena / np.copyto", "big_arrow", "big_copyto"),
    ]
    for where in PLACEMENTS:
        pairs += [
            (f"round trip [{where}]: ring / os.pipe", f"rt_ring[{where}]", f"rt_pipe[{where}]"),
            (f"round trip [{where}]: ring / mp.Pipe", f"rt_ring[{where}]", f"rt_mp[{where}]"),
            (f"one way [{where}]: ring / os.pipe", f"burst_ring[{where}]", f"burst_pipe[{where}]"),
            (f"one way [{where}]: ring / mp.Pipe", f"burst_ring[{where}]", f"burst_mp[{where}]"),
        ]
    for label, a, b in pairs:
        if a in RESULTS and b in RESULTS:
            lines.append(f"{label:44s} {RESULTS[a] / RESULTS[b]:6.2f}x")
    for key, value in RESULTS.items():
        if key.startswith("rt_"):
            lines.append(f"{key:44s} {value * 1e6:8.1f} us per round trip")
        elif key.startswith("burst_"):
            lines.append(f"{key:44s} {BURST / value:12,.0f} messages/s")
        else:
            lines.append(f"{key:44s} {BIG / value / 1e9:8.2f} GB/s")
    if lines:
        text = "\n".join(["", "transport ratios (lower is better for mpipe):", *lines])
        capture = request.config.pluginmanager.get_plugin("capturemanager")
        if capture is not None:
            with capture.global_and_fixture_disabled():
                print(text)
        else:  # pragma: no cover
            print(text)
        out = Path("build")
        out.mkdir(exist_ok=True)
        (out / "bench_transport.json").write_text(json.dumps(RESULTS, indent=2))


PLACEMENTS = ["free", "two-cores", "one-core"]


@contextlib.contextmanager
def placed(placement: str, child: int) -> Iterator[None]:
    """Let the scheduler place both processes, or pin them to two cores, or to one core."""
    cpus = sorted(os.sched_getaffinity(0))
    if placement != "free" and len(cpus) < 2:  # pragma: no cover
        pytest.skip("needs two cores")
    if placement == "two-cores":
        os.sched_setaffinity(0, {cpus[0]})
        os.sched_setaffinity(child, {cpus[1]})
    elif placement == "one-core":
        os.sched_setaffinity(0, {cpus[0]})
        os.sched_setaffinity(child, {cpus[0]})
    try:
        yield
    finally:
        os.sched_setaffinity(0, cpus)
        os.sched_setaffinity(child, cpus)


@pytest.mark.parametrize("placement", PLACEMENTS)
def test_round_trip_ring(benchmark: Any, ring: tuple[Channel, int], placement: str) -> None:
    ch, pid = ring

    def once() -> None:
        ch.send(MESSAGE)
        ch.recv()

    with placed(placement, pid):
        benchmark(once)
    _record(f"rt_ring[{placement}]", benchmark)


@pytest.mark.parametrize("placement", PLACEMENTS)
def test_round_trip_os_pipe(
    benchmark: Any, pipe: tuple[tuple[int, int], int], placement: str
) -> None:
    (w, r), pid = pipe

    def once() -> None:
        os.write(w, MESSAGE)
        os.read(r, 32)

    with placed(placement, pid):
        benchmark(once)
    _record(f"rt_pipe[{placement}]", benchmark)


@pytest.mark.parametrize("placement", PLACEMENTS)
def test_round_trip_mp_pipe(
    benchmark: Any, mp_pipe: tuple[Connection, int], placement: str
) -> None:
    conn, pid = mp_pipe

    def once() -> None:
        conn.send_bytes(MESSAGE)
        conn.recv_bytes()

    with placed(placement, pid):
        benchmark(once)
    _record(f"rt_mp[{placement}]", benchmark)


@pytest.mark.parametrize("placement", PLACEMENTS)
def test_one_way_ring(benchmark: Any, ring: tuple[Channel, int], placement: str) -> None:
    ch, pid = ring

    def burst() -> None:
        ch.send(b"burst")
        for _ in range(BURST):
            ch.send(MESSAGE)
        ch.recv()

    with placed(placement, pid):
        benchmark.pedantic(burst, rounds=10, warmup_rounds=1)
    _record(f"burst_ring[{placement}]", benchmark)


@pytest.mark.parametrize("placement", PLACEMENTS)
def test_one_way_os_pipe(benchmark: Any, pipe: tuple[tuple[int, int], int], placement: str) -> None:
    (w, r), pid = pipe

    def burst() -> None:
        os.write(w, b"b" * 32)
        for _ in range(BURST):
            os.write(w, MESSAGE)
        os.read(r, 32)

    with placed(placement, pid):
        benchmark.pedantic(burst, rounds=10, warmup_rounds=1)
    _record(f"burst_pipe[{placement}]", benchmark)


@pytest.mark.parametrize("placement", PLACEMENTS)
def test_one_way_mp_pipe(benchmark: Any, mp_pipe: tuple[Connection, int], placement: str) -> None:
    conn, pid = mp_pipe

    def burst() -> None:
        conn.send_bytes(b"burst")
        for _ in range(BURST):
            conn.send_bytes(MESSAGE)
        conn.recv_bytes()

    with placed(placement, pid):
        benchmark.pedantic(burst, rounds=10, warmup_rounds=1)
    _record(f"burst_mp[{placement}]", benchmark)


@pytest.fixture(scope="module")
def big_inputs() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 1 << 62, BIG // 8, dtype=np.int64) for _ in range(2)]


@pytest.fixture(scope="module")
def codec() -> Iterator[Codec]:
    with open_arena(BIG + 64 * MiB, max_size=2 * BIG) as arena:
        yield Codec(arena)


def test_big_copyto(benchmark: Any, big_inputs: list[np.ndarray]) -> None:
    dest = np.empty_like(big_inputs[0])
    dest[:] = 0  # warm: faulted in, like the arena
    turn = iter(range(1 << 30))

    def once() -> None:
        np.copyto(dest, big_inputs[next(turn) % 2])

    benchmark.pedantic(once, rounds=10, warmup_rounds=1)
    _record("big_copyto", benchmark)


def test_big_numpy_through_arena(
    benchmark: Any, codec: Codec, big_inputs: list[np.ndarray]
) -> None:
    turn = iter(range(1 << 30))

    def once() -> None:
        back = codec.decode(codec.encode(big_inputs[next(turn) % 2], 0))
        assert back.nbytes == BIG

    benchmark.pedantic(once, rounds=10, warmup_rounds=1)
    _record("big_numpy", benchmark)


def test_big_arrow_table_through_arena(
    benchmark: Any, codec: Codec, big_inputs: list[np.ndarray]
) -> None:
    tables = [pa.table({"x": a}) for a in big_inputs]
    turn = iter(range(1 << 30))

    def once() -> None:
        back = codec.decode(codec.encode(tables[next(turn) % 2], 0))
        assert back.num_rows == BIG // 8

    benchmark.pedantic(once, rounds=10, warmup_rounds=1)
    _record("big_arrow", benchmark)
