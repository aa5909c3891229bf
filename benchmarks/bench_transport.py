"""Transport benchmarks: rings against pipes, and the arena against one memcpy.

Run: ``python -m pytest benchmarks/bench_transport.py --benchmark-only -s``

- round trip of a 32-byte message between the same two processes: mpipe ring + eventfd
  doorbell, ``os.pipe`` ping-pong, ``multiprocessing.connection.Pipe``;
- messages per second one way (10,000 messages of 32 bytes, then one acknowledgement);
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
def ring() -> Iterator[Channel]:
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
        yield ch
        _reap(pid)


@pytest.fixture(scope="module")
def pipe() -> Iterator[tuple[int, int]]:
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
    yield to_child, from_child
    _reap(pid)
    for fd in (to_child, from_parent, from_child, to_parent):
        os.close(fd)


@pytest.fixture(scope="module")
def mp_pipe() -> Iterator[Connection]:
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
    yield parent
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
        ("round trip: ring / os.pipe", "rt_ring", "rt_pipe"),
        ("round trip: ring / mp.Pipe", "rt_ring", "rt_mp"),
        ("one way x10k: ring / os.pipe", "burst_ring", "burst_pipe"),
        ("one way x10k: ring / mp.Pipe", "burst_ring", "burst_mp"),
        ("256 MiB numpy: arena / np.copyto", "big_numpy", "big_copyto"),
        ("256 MiB Arrow table: arena / np.copyto", "big_arrow", "big_copyto"),
    ]
    for label, a, b in pairs:
        if a in RESULTS and b in RESULTS:
            lines.append(f"{label:42s} {RESULTS[a] / RESULTS[b]:6.2f}x")
    for key in ("rt_ring", "rt_pipe", "rt_mp"):
        if key in RESULTS:
            lines.append(f"{key:42s} {RESULTS[key] * 1e6:8.1f} us per round trip")
    for key in ("burst_ring", "burst_pipe", "burst_mp"):
        if key in RESULTS:
            lines.append(f"{key:42s} {BURST / RESULTS[key]:10,.0f} messages/s")
    for key in ("big_numpy", "big_arrow", "big_copyto"):
        if key in RESULTS:
            lines.append(f"{key:42s} {BIG / RESULTS[key] / 1e9:8.2f} GB/s")
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


def test_round_trip_ring(benchmark: Any, ring: Channel) -> None:
    def once() -> None:
        ring.send(MESSAGE)
        ring.recv()

    benchmark(once)
    _record("rt_ring", benchmark)


def test_round_trip_os_pipe(benchmark: Any, pipe: tuple[int, int]) -> None:
    w, r = pipe

    def once() -> None:
        os.write(w, MESSAGE)
        os.read(r, 32)

    benchmark(once)
    _record("rt_pipe", benchmark)


def test_round_trip_mp_pipe(benchmark: Any, mp_pipe: Connection) -> None:
    def once() -> None:
        mp_pipe.send_bytes(MESSAGE)
        mp_pipe.recv_bytes()

    benchmark(once)
    _record("rt_mp", benchmark)


def test_one_way_ring(benchmark: Any, ring: Channel) -> None:
    def burst() -> None:
        ring.send(b"burst")
        for _ in range(BURST):
            ring.send(MESSAGE)
        ring.recv()

    benchmark.pedantic(burst, rounds=10, warmup_rounds=1)
    _record("burst_ring", benchmark)


def test_one_way_os_pipe(benchmark: Any, pipe: tuple[int, int]) -> None:
    w, r = pipe

    def burst() -> None:
        os.write(w, b"b" * 32)
        for _ in range(BURST):
            os.write(w, MESSAGE)
        os.read(r, 32)

    benchmark.pedantic(burst, rounds=10, warmup_rounds=1)
    _record("burst_pipe", benchmark)


def test_one_way_mp_pipe(benchmark: Any, mp_pipe: Connection) -> None:
    def burst() -> None:
        mp_pipe.send_bytes(b"burst")
        for _ in range(BURST):
            mp_pipe.send_bytes(MESSAGE)
        mp_pipe.recv_bytes()

    benchmark.pedantic(burst, rounds=10, warmup_rounds=1)
    _record("burst_mp", benchmark)


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
