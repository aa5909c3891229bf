"""Rings and doorbells: in one process, and with a real worker started by ``spawn``."""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import os
import signal
import zlib
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import multiprocess
import numpy as np
import pyarrow as pa
import pytest
from conftest import share_resource_tracker
from transport_workers import checksum, serve

from mpipe._transport import (
    Arena,
    Channel,
    Codec,
    PeerDiedError,
    RingClosedError,
    RingFullError,
    TransportError,
    open_arena,
    open_channel,
)

MiB = 1 << 20


@pytest.fixture(scope="module", autouse=True)
def _tracker() -> None:
    share_resource_tracker()  # spawn starts it once per test run: not a leak of one test


def test_in_process_send_receive_and_close() -> None:
    with open_arena(MiB) as arena, open_channel(arena, 1, capacity=4, message_size=120) as ch:
        ch.bind(os.getpid())
        worker = ch.endpoint().connect()
        try:
            assert worker.recv(timeout=0.0) is None
            for i in range(4):
                assert ch.try_send(bytes([i]) * i)
            assert not ch.try_send(b"full")
            with pytest.raises(RingFullError):
                ch.send(b"full", timeout=0.01)
            assert [worker.recv() for _ in range(4)] == [bytes([i]) * i for i in range(4)]
            with pytest.raises(ValueError, match="at most 120 bytes"):
                ch.send(b"x" * 121)
            worker.send(b"answer")
            assert ch.recv() == b"answer"
            ch.send(b"last")
            ch.requests.close()
            assert worker.recv() == b"last"  # drained before the close is reported
            with pytest.raises(RingClosedError):
                worker.recv()
            with pytest.raises(TypeError, match="only receives"):
                worker.requests.send(b"x")
        finally:
            worker.close()


def test_bad_channel_arguments() -> None:
    with open_arena(MiB) as arena:
        with pytest.raises(ValueError, match="slot"):
            open_channel(arena, 0)
        with pytest.raises(ValueError, match="power of two"):
            open_channel(arena, 1, capacity=3)
        with pytest.raises(ValueError, match="message_size"):
            open_channel(arena, 1, message_size=10)
        with open_channel(arena, 1) as ch, pytest.raises(TransportError, match="bind"):
            ch.send(b"x")
        with pytest.raises(TransportError, match="pickled while a worker"):
            import pickle

            pickle.dumps(arena.handle(1))
        assert arena.stats()["used_blocks"] == 0  # the rings were freed


@pytest.fixture(params=["pidfd", "no pidfd"])
def peer_watch(request: pytest.FixtureRequest) -> Iterator[None]:
    """Rings watch their peer through a pidfd, or (a test build's hook) as on a kernel without
    pidfds."""
    if request.param == "pidfd":
        yield
        return
    native_hooks = request.getfixturevalue("native_hooks")
    native_hooks.Arena._no_pidfd(True)
    try:
        yield
    finally:
        native_hooks.Arena._no_pidfd(False)


@pytest.mark.slow
@pytest.mark.usefixtures("peer_watch")
def test_receiver_sees_its_dead_peer_instead_of_hanging() -> None:
    with open_arena(MiB) as arena, open_channel(arena, 1) as ch:
        pid = os.fork()
        if pid == 0:  # pragma: no cover - child
            signal.pause()
            os._exit(0)
        endpoint = dataclasses.replace(ch.endpoint(), parent_pid=pid)
        worker = endpoint.connect()
        try:
            assert worker.responses.peer_alive()
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            with pytest.raises(PeerDiedError, match=f"pid {pid}"):
                worker.recv()
        finally:
            worker.close()


@pytest.mark.slow
@pytest.mark.usefixtures("peer_watch")
def test_a_parent_sees_its_exited_child_before_reaping_it() -> None:
    # A child that exited stays a zombie until its parent reaps it: it must count as dead.
    with open_arena(MiB) as arena, open_channel(arena, 1) as ch:
        endpoint = ch.endpoint()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - child
            endpoint.connect().send(b"last words")
            os._exit(0)
        ch.bind(pid)
        try:
            assert ch.recv(timeout=5.0) == b"last words"
            with pytest.raises(PeerDiedError):
                ch.recv(timeout=5.0)
        finally:
            os.waitpid(pid, 0)


class Worker:
    """A spawned worker running ``serve`` and the parent's end of its channel."""

    def __init__(self, arena: Arena, slot: int) -> None:
        self.arena = arena
        self.channel: Channel = open_channel(arena, slot)
        ctx = multiprocess.get_context("spawn")
        self.process = ctx.Process(target=serve, args=(self.channel.endpoint(),), daemon=True)
        self.process.start()
        self.channel.bind(self.process.pid)
        self.codec = Codec(arena, self.channel.max_message)
        self.slot = slot

    def call(self, request: Any) -> Any:
        self.channel.send(self.codec.encode(request, self.slot))
        message = self.channel.recv(timeout=30.0)
        assert message is not None, "no answer in 30 s"
        return self.codec.decode(message)

    def stop(self) -> None:
        self.channel.close()
        self.process.join(30)
        if self.process.is_alive():  # pragma: no cover - only on failure
            self.process.kill()
            self.process.join()


@pytest.fixture(scope="module")
def shared() -> Iterator[tuple[Arena, Worker]]:
    arena = open_arena(64 * MiB, max_size=256 * MiB)
    worker = Worker(arena, 1)
    yield arena, worker
    worker.stop()
    gc.collect()
    arena.check()
    arena.close()


@pytest.mark.slow
def test_worker_receives_arrays_zero_copy_and_checksums_them(shared: tuple[Arena, Worker]) -> None:
    arena, worker = shared
    rng = np.random.default_rng(0)
    for n in (0, 1, 1000, 3 * MiB):
        data = rng.integers(0, 255, n, dtype=np.uint8)
        seq, crc, zero_copy = worker.call(("sum", n, data, None))
        assert (seq, crc) == (n, checksum(data))
        assert zero_copy
    seq, rows, zero_copy = worker.call(("table", 1, pa.table({"x": np.arange(100_000)}), None))
    assert rows == 100_000 and zero_copy
    gc.collect()
    assert arena.stats()["used_blocks"] == 2  # only the two rings: the worker freed every block


@pytest.mark.slow
def test_array_echoed_by_the_worker_comes_back_in_the_same_block(
    shared: tuple[Arena, Worker],
) -> None:
    arena, worker = shared
    data = np.arange(MiB // 8, dtype=np.int64)
    sent = worker.codec.decode(worker.codec.encode(data, 0))  # now a view in the arena
    allocations = arena.stats()["allocations"]
    back = worker.call(("echo", 0, sent, None))
    assert arena.stats()["allocations"] == allocations  # no copy either way
    assert back.__array_interface__["data"][0] == sent.__array_interface__["data"][0]
    assert np.array_equal(back, data)


@pytest.mark.slow
def test_callable_is_sent_once_and_cached_in_the_worker(shared: tuple[Arena, Worker]) -> None:
    _, worker = shared
    offset = 41

    def add(x: int) -> int:
        return x + offset

    first = worker.codec.encode_callable(add, worker.slot)
    again = worker.codec.encode_callable(add, worker.slot)
    assert len(again) < len(first)
    assert worker.call(("call", 1, first, 1)) == (1, 42)
    assert worker.call(("call", 2, again, 2)) == (2, 43)


@pytest.mark.slow
def test_parent_watches_responses_with_add_reader(shared: tuple[Arena, Worker]) -> None:
    _, worker = shared

    async def main() -> list[int]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()
        worker.channel.watch(loop, lambda m: queue.put_nowait(worker.codec.decode(m)))
        try:
            for i in range(500):
                worker.channel.send(worker.codec.encode(i, worker.slot))
            return [await asyncio.wait_for(queue.get(), 30) for _ in range(500)]
        finally:
            worker.channel.unwatch()

    assert asyncio.run(main()) == list(range(500))


@pytest.mark.slow
def test_worker_death_is_seen_by_the_parent_and_its_space_reclaimed() -> None:
    with open_arena(16 * MiB) as arena:
        worker = Worker(arena, 3)
        try:
            assert worker.call(7) == 7
            payload = np.ones(MiB, dtype=np.uint8)
            worker.channel.send(worker.codec.encode(("exit", 0, payload, None), worker.slot))
            with pytest.raises(PeerDiedError):
                worker.channel.recv(timeout=30.0)
            worker.process.join(30)
            assert worker.process.exitcode == 3
            with pytest.raises(PeerDiedError):
                for _ in range(1000):  # fills the ring; then the dead consumer is noticed
                    worker.channel.send(worker.codec.encode(1, worker.slot))
            assert arena.reclaim(worker.slot) >= 1  # the payload the worker held
            arena.check()
        finally:
            worker.stop()
        assert arena.stats()["used_blocks"] == 0
        assert zlib.crc32(b"") == 0


@pytest.mark.slow
def test_producer_killed_mid_send_publishes_nothing(native_hooks: ModuleType) -> None:
    with open_arena(MiB) as arena:
        with open_channel(arena, 1) as ch:
            endpoint = ch.endpoint()
            pid = os.fork()
            if pid == 0:  # pragma: no cover - child
                worker = endpoint.connect()
                worker.send(b"complete")
                native_hooks.Arena._crash_at(8)  # dies after writing the slot, before publishing it
                worker.send(b"torn")
                os._exit(0)
            ch.bind(pid)
            _, status = os.waitpid(pid, 0)
            assert os.WIFSIGNALED(status)
            assert ch.recv(timeout=5.0) == b"complete"
            with pytest.raises(PeerDiedError):
                ch.recv(timeout=5.0)
            assert arena.reclaim(1) == 0  # the rings stay: the parent still holds them
            arena.check()
        assert arena.stats()["used_blocks"] == 0


def test_corrupt_ring_slot_is_a_clear_error(native_hooks: ModuleType) -> None:
    from mpipe._transport import CorruptMessageError

    with open_arena(MiB) as arena, open_channel(arena, 1, message_size=120) as ch:
        ch.bind(os.getpid())
        worker = ch.endpoint().connect()
        try:
            ch.send(b"hello")
            slot = ch._blocks[0].data_offset + 256  # the first slot: length, then bytes
            arena._native._poke(slot, 10_000)
            with pytest.raises(CorruptMessageError, match="exceeds the slot size"):
                worker.recv()
            ch.send(b"next")
            assert worker.recv() == b"next"  # the ring goes on
        finally:
            worker.close()


@pytest.mark.parametrize(
    ("slot_size", "capacity"),
    [(64, 0), (64, 3), (0, 4), (40, 4), (64, 1 << 31)],
    ids=["no slots", "capacity not a power of two", "empty slots", "slot size", "overruns"],
)
def test_a_ring_whose_header_is_corrupt_is_refused(
    slot_size: int, capacity: int, native_hooks: ModuleType
) -> None:
    from mpipe._transport import CorruptMessageError

    with open_arena(MiB) as arena:
        raw = arena._native
        block = arena.alloc(native_hooks.RING_HEADER + 4 * 64)
        bell = native_hooks.doorbell()
        try:
            native_hooks.Ring.format(raw, block.data_offset, 4, 64)
            native_hooks.Ring(raw, block.data_offset, bell, True)  # intact: accepted
            raw._poke(block.data_offset + 8, slot_size | capacity << 32)  # the two u32 fields
            with pytest.raises(CorruptMessageError, match="no ring at arena offset"):
                native_hooks.Ring(raw, block.data_offset, bell, True)
        finally:
            os.close(bell)
            block.release()


def test_a_ring_offset_past_the_arena_is_refused() -> None:
    from mpipe._transport import CorruptMessageError
    from mpipe._transport._load import native

    with open_arena(MiB) as arena:
        far = 2**64 - 64  # adding the header's size would wrap around
        with pytest.raises(ValueError, match="does not fit the arena"):
            native.Ring.format(arena._native, far, 4, 64)
        with pytest.raises(CorruptMessageError, match="no ring at arena offset"):
            native.Ring(arena._native, far, -1, True)


@pytest.mark.slow
def test_forkserver_worker_receives_its_descriptors() -> None:
    from multiprocess import forkserver

    ctx = multiprocess.get_context("forkserver")
    try:
        with open_arena(16 * MiB) as arena:
            with open_channel(arena, 2) as ch:
                proc = ctx.Process(target=serve, args=(ch.endpoint(),))
                proc.start()
                ch.bind(proc.pid)
                codec = Codec(arena, ch.max_message)
                data = np.arange(200_000, dtype=np.uint16)
                ch.send(codec.encode(("sum", 5, data, None), 2))
                message = ch.recv(timeout=30.0)
                assert message is not None
                assert codec.decode(message) == (5, checksum(data), True)
            proc.join(30)
            assert proc.exitcode == 0
            gc.collect()
            assert arena.stats()["used_blocks"] == 0
    finally:
        forkserver._forkserver._stop()  # the server is this test's child: stop it


def test_blocked_receiver_releases_the_gil() -> None:
    import threading

    with open_arena(MiB) as arena, open_channel(arena, 1) as ch:
        ch.bind(os.getpid())
        worker = ch.endpoint().connect()
        got: list[bytes | None] = []
        try:
            waiter = threading.Thread(target=lambda: got.append(worker.recv(timeout=20.0)))
            waiter.start()
            total = sum(i * i for i in range(200_000))  # runs only if recv let go of the GIL
            assert waiter.is_alive() and not got  # still asleep on its doorbell
            ch.send(str(total).encode())
            waiter.join()
            assert got == [str(total).encode()]
        finally:
            worker.close()


def test_no_descriptor_or_mapping_is_left_behind() -> None:
    def fds() -> int:
        # Only the kinds the transport opens (memfd, eventfd): other threads of the test
        # process (a shared Dask cluster's sockets, say) open and close descriptors meanwhile.
        count = 0
        for fd in os.listdir("/proc/self/fd"):
            try:
                target = os.readlink(f"/proc/self/fd/{fd}")
            except OSError:
                continue
            count += target.startswith("/memfd:") or "eventfd" in target
        return count

    def mappings() -> int:
        with open("/proc/self/maps") as f:
            return sum("mpipe-arena" in line for line in f)

    gc.collect()
    before = (fds(), mappings())
    for _ in range(3):
        with open_arena(MiB) as arena, open_channel(arena, 1) as ch:
            ch.bind(os.getpid())
            worker = ch.endpoint().connect()
            ch.send(Codec(arena).encode(np.arange(10_000), 1))
            message = worker.recv()
            assert message is not None
            view = Codec(worker.arena).decode(message)
            worker.close()
            assert view.sum() == np.arange(10_000).sum()  # still mapped while viewed
            del view
        del arena, ch, worker
    gc.collect()
    assert (fds(), mappings()) == before


def test_worker_event_loop_can_watch_its_request_doorbell() -> None:
    with open_arena(MiB) as arena, open_channel(arena, 1) as ch:
        ch.bind(os.getpid())
        worker = ch.endpoint().connect()

        async def main() -> list[bytes]:
            got: list[bytes] = []
            done = asyncio.Event()

            def on_message(m: bytes) -> None:
                got.append(m)
                if len(got) == 300:
                    done.set()

            worker.watch(asyncio.get_running_loop(), on_message)
            ch.send(b"early")  # before the loop runs: still delivered
            for i in range(299):
                ch.send(str(i).encode())
                if i % 50 == 0:
                    await asyncio.sleep(0)
            await asyncio.wait_for(done.wait(), 30)
            return got

        try:
            assert asyncio.run(main()) == [b"early"] + [str(i).encode() for i in range(299)]
        finally:
            worker.close()


def test_look_takes_waiting_responses_without_waiting() -> None:
    """``look()`` handles what is in the response ring now, as the doorbell's reader would, and
    leaves the doorbell armed; unwatched, it does nothing."""
    with open_arena(MiB) as arena, open_channel(arena, 1) as ch:
        ch.bind(os.getpid())
        worker = ch.endpoint().connect()

        async def main() -> list[bytes]:
            got: list[bytes] = []
            arrived = asyncio.Event()

            def on_message(m: bytes) -> None:
                got.append(m)
                arrived.set()

            ch.look()  # not watched yet: nothing to do, no error
            ch.watch(asyncio.get_running_loop(), on_message)
            worker.send(b"a")
            worker.send(b"b")
            ch.look()  # no event-loop turn in between: taken right here
            assert got == [b"a", b"b"]
            ch.look()  # nothing waits: returns at once
            assert got == [b"a", b"b"]
            arrived.clear()
            worker.send(b"c")  # still armed: the doorbell wakes the reader
            await asyncio.wait_for(arrived.wait(), 30)
            ch.unwatch()
            worker.send(b"d")
            ch.look()  # unwatched: left in the ring
            assert ch.drain() == [b"d"]
            return got

        try:
            assert asyncio.run(main()) == [b"a", b"b", b"c"]
        finally:
            worker.close()
