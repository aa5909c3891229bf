"""The arena allocator: accounting, growth, exhaustion, bad handles, crash safety."""

from __future__ import annotations

import contextlib
import itertools
import os
import random
import signal
import threading
import time
from types import ModuleType
from typing import Any

import pytest

from mpipe._transport import (
    ArenaFullError,
    CorruptMessageError,
    PayloadTooLargeError,
    TransportError,
    open_arena,
)
from mpipe._transport._arena import BLOCK_HEADER, Arena
from mpipe._transport._load import native

MiB = 1 << 20


def test_alloc_free_accounting_returns_to_zero() -> None:
    with open_arena(8 * MiB, max_size=32 * MiB) as arena:
        rng = random.Random(1)
        held = []
        for _ in range(3000):
            if held and rng.random() < 0.45:
                held.pop(rng.randrange(len(held))).release()
            else:
                held.append(arena.alloc(rng.randrange(0, 200_000)))
        arena.check()
        assert arena.stats()["used_blocks"] == len(held)
        held.clear()
        arena.check()
        stats = arena.stats()
        assert stats["used_bytes"] == 0 and stats["used_blocks"] == 0
        assert stats["free_blocks"] == 1  # every free neighbour merged back


def test_blocks_are_aligned_and_disjoint() -> None:
    with open_arena(4 * MiB) as arena:
        blocks = [arena.alloc(n) for n in (0, 1, 63, 64, 65, 4096, 100_000)]
        spans = sorted((b.address, b.address + max(b.size, 1)) for b in blocks)
        assert all(start % 64 == 0 for start, _ in spans)
        assert all(a_end <= b_start for (_, a_end), (b_start, _) in itertools.pairwise(spans))
        for i, b in enumerate(blocks):
            b.writable()[:] = bytes([i]) * b.size
        for i, b in enumerate(blocks):
            assert bytes(b.writable()) == bytes([i]) * b.size


def test_grows_up_to_max_size_then_fails_clearly() -> None:
    with open_arena(2 * MiB, max_size=8 * MiB, grow_step=MiB, wait=0.0) as arena:
        held = [arena.alloc(MiB) for _ in range(6)]
        assert arena.stats()["heap_bytes"] > 2 * MiB
        with pytest.raises(ArenaFullError, match="reached its max_size of 8.0 MiB"):
            for _ in range(10):
                held.append(arena.alloc(MiB))
        held.clear()
        arena.check()


def test_payload_larger_than_the_arena_can_ever_hold() -> None:
    with (
        open_arena(MiB, max_size=2 * MiB) as arena,
        pytest.raises(PayloadTooLargeError, match="can never fit"),
    ):
        arena.alloc(3 * MiB)


def _rss_shmem() -> int:
    """Bytes of shared memory mapped and resident in this process."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("RssShmem:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no RssShmem in /proc/self/status")


def test_grows_to_what_a_payload_needs_and_gives_it_back() -> None:
    with open_arena(4 * MiB, grow_step=MiB) as arena:
        assert arena.capacity >= 4 * MiB * 1024  # the machine's memory is reserved, not taken
        first = arena.alloc(MiB)
        first.writable()[:] = b"k" * first.size
        shm_before = _rss_shmem()
        big = arena.alloc(48 * MiB)  # twelve times the arena's size
        big.writable()[:] = b"x" * big.size
        assert arena.stats()["resident_bytes"] >= 48 * MiB
        assert _rss_shmem() - shm_before >= 40 * MiB
        big.release()
        arena.check()
        assert arena.trim() >= 44 * MiB
        arena.check()
        stats = arena.stats()
        assert stats["resident_bytes"] <= 4 * MiB + 64 * 1024  # back to its floor
        assert stats["cold_bytes"] >= 44 * MiB and arena.rewarmed == 0
        assert _rss_shmem() - shm_before < 4 * MiB  # the pages are gone, not just unmapped
        assert bytes(first.writable()) == b"k" * first.size  # live blocks are never trimmed
        again = arena.alloc(40 * MiB)  # trimmed pages come back, zeroed, on reuse
        assert arena.rewarmed >= 40 * MiB
        view = again.writable()
        assert view[-1] == 0  # past the floor: a fresh page
        view[:] = b"y" * again.size
        assert bytes(view[-3:]) == b"yyy"
        del view
        again.release()
        first.release()
        arena.check()
        assert arena.stats()["used_blocks"] == 0


def test_the_floor_can_be_faulted_in_later_while_the_arena_is_in_use() -> None:
    # A pool launches its workers first and faults the floor in while they start: what the
    # arena's blocks hold by then must stay as it is.
    before = _rss_shmem()
    with open_arena(32 * MiB, populate=False) as arena:
        assert _rss_shmem() - before < 4 * MiB  # only the header's pages
        block = arena.alloc(MiB)
        block.writable()[:] = b"z" * block.size
        arena.populate_floor()
        assert _rss_shmem() - before >= 28 * MiB
        assert bytes(block.writable()) == b"z" * block.size
        block.release()
        arena.check()


def test_payload_that_cannot_fit_in_memory_names_its_size_and_what_is_free(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from mpipe._transport import _arena
    from mpipe._transport._memory import MemoryFacts

    monkeypatch.setattr(_arena, "UNCHECKED_GROWTH", 0)
    monkeypatch.setattr(_arena, "memory_facts", lambda: MemoryFacts(100 * MiB, 1 << 30, "cgroup"))
    with open_arena(4 * MiB, wait=0.0) as arena:
        # 100 MiB available, 64 MiB of them left to the system: 36 MiB to grow by.
        with pytest.raises(
            PayloadTooLargeError,
            match=r"a payload of 50\.0 MiB \(52428800 bytes\) does not fit in memory: "
            r"100 MiB of 1\.0 GiB available \(the cgroup's memory limit\)",
        ):
            arena.alloc(50 * MiB)
        held = arena.alloc(30 * MiB)  # fits: the arena grows by what the system can give
        # 40 MiB more would fit if `held` were released: that is a wait, then an error.
        with pytest.raises(
            ArenaFullError,
            match=r"30\.0 MiB of it in use by payloads in flight.*"
            r"a smaller max_bytes on the pipes, fewer max_workers",
        ):
            arena.alloc(40 * MiB)
        got: list[object] = []
        waiter = threading.Thread(target=lambda: got.append(arena.alloc(40 * MiB, wait=30.0)))
        waiter.start()
        while arena.stats()["waiters"] == 0:  # wait until it blocks, then release
            time.sleep(0.001)
        held.release()
        waiter.join()
        assert len(got) == 1
        got.clear()
        arena.check()


def test_full_arena_waits_for_a_free_then_succeeds() -> None:
    with open_arena(MiB, max_size=MiB, wait=0.0) as arena:
        big = arena.alloc(arena.stats()["largest_free_block"])
        got: list[object] = []
        waiter = threading.Thread(target=lambda: got.append(arena.alloc(1000, wait=30.0)))
        waiter.start()
        while arena.stats()["waiters"] == 0:  # wait until it blocks, then free
            time.sleep(0.001)
        big.release()
        waiter.join()
        assert len(got) == 1
        got.clear()
        arena.check()


def test_bad_sizes_and_handles_are_clear_errors() -> None:
    with pytest.raises(ValueError, match="must be positive"):
        open_arena(0)
    with pytest.raises(ValueError, match="at least size"):
        open_arena(4 * MiB, max_size=MiB)
    with open_arena(MiB) as arena:
        with pytest.raises(ValueError, match="negative"):
            arena.alloc(-1)
        block = arena.alloc(10)
        with pytest.raises(CorruptMessageError, match="outside"):
            arena.lease(10**15, block.gen)
        with pytest.raises(CorruptMessageError, match="outside"):
            arena.lease(2**64 - 64, block.gen)  # the end of the header would wrap around
        with pytest.raises(CorruptMessageError, match="no block starts"):
            arena.lease(block.offset + 1024 * 64, block.gen)
        with pytest.raises(CorruptMessageError, match="stale"):
            arena.lease(block.offset, block.gen + 1)
        with pytest.raises(ValueError, match="slot"):
            arena.handle(0)
        block.release()
    with pytest.raises(TransportError, match="closed"):
        arena.alloc(1)


def test_attach_rejects_a_descriptor_that_is_not_an_arena(tmp_path: os.PathLike[str]) -> None:
    path = os.path.join(tmp_path, "x")
    with open(path, "wb") as f:
        f.write(b"\0" * 8192)
    fd = os.open(path, os.O_RDWR)
    try:
        with pytest.raises(TransportError, match="not an mpipe arena"):
            native.Arena.attach(os.dup(fd), 1)
    finally:
        os.close(fd)


def _fork(body: object) -> int:
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        code = 0
        try:
            body()  # type: ignore[operator]
        except BaseException:
            import traceback

            traceback.print_exc()
            code = 1
        os._exit(code)
    return pid


# Crash points compiled into the allocator: where a process can die holding the lock.
CRASH_POINTS = {
    1: "alloc, lock held",
    2: "alloc, split tail written, not committed",
    3: "alloc, split committed, block not yet marked used",
    4: "free, accounting updated",
    5: "free, block marked free, not merged",
    6: "free, right neighbour absorbed",
    7: "growth, new region written, heap end not moved",
}


@pytest.mark.slow
@pytest.mark.parametrize("point", sorted(CRASH_POINTS), ids=CRASH_POINTS.get)
def test_sigkill_inside_the_allocator_never_corrupts_or_deadlocks(
    point: int, native_hooks: ModuleType
) -> None:
    with open_arena(MiB, max_size=16 * MiB, grow_step=MiB, wait=0.0) as arena:
        keep = [arena.alloc(n) for n in (5000, 70_000, 300)]
        before = arena.stats()
        slot = 5

        def child() -> None:
            mine = Arena.attach(arena.handle(slot))
            native_hooks.Arena._crash_at(point)
            held = []
            for i in range(200):
                held.append(mine.alloc(200_000 if point == 7 else 1000 + i))
                if i % 3 == 2:
                    held.pop(-1 if i % 2 else 0).release()
            os._exit(0)  # the crash point was never reached: the test fails below

        pid = _fork(child)
        _, status = os.waitpid(pid, 0)
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
        # the lock was held by the dead child: the next locker repairs and proceeds
        extra = arena.alloc(12345)
        arena.reclaim(slot)
        arena.check()
        extra.release()
        stats = arena.stats()
        assert stats["used_blocks"] == before["used_blocks"]
        assert stats["used_bytes"] == before["used_bytes"]
        assert stats["repairs"] >= 1 or point in (7,)
        for b in keep:
            b.writable()[:] = b"x" * b.size
        del b
        keep.clear()
        assert arena.stats()["used_blocks"] == 0


@pytest.mark.slow
def test_random_sigkills_of_churning_workers_leave_the_arena_consistent() -> None:
    trials = 200 if os.environ.get("MPIPE_STRESS") == "full" else 30
    rng = random.Random(7)
    with open_arena(4 * MiB, max_size=16 * MiB, wait=2.0) as arena:
        from transport_workers import churn

        survivor = _fork(lambda: churn(arena.handle(2), 3000))
        for trial in range(trials):
            slot = 3 + trial % 8
            pid = _fork(lambda slot=slot: churn(arena.handle(slot), -1))
            time.sleep(rng.uniform(0.0, 0.02))  # kill at a random point of its work
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            arena.reclaim(slot)
            arena.check()
        _, status = os.waitpid(survivor, 0)
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
        arena.reclaim(2)
        arena.check()
        assert arena.stats()["used_blocks"] == 0


def test_block_header_size_matches_native() -> None:
    assert BLOCK_HEADER == 192


def _mark_intact(block: Any) -> bool:
    """Whether a block's first and last byte still say which block it is."""
    if not block.size:
        return True
    view = block.writable()
    try:
        return bool(view[0] == view[-1] == block.gen % 251)
    finally:
        view.release()


@pytest.mark.slow
def test_any_sequence_of_allocations_and_frees_keeps_the_invariants() -> None:
    from hypothesis import given, settings
    from hypothesis import strategies as st

    ops = st.lists(
        st.one_of(
            st.tuples(st.just("alloc"), st.integers(0, 300_000)),
            st.tuples(st.just("free"), st.integers(0, 1000)),
            st.tuples(st.just("share"), st.integers(0, 1000)),
            st.tuples(st.just("trim"), st.integers(0, 2 * MiB)),
        ),
        max_size=40,
    )

    @settings(max_examples=30, deadline=None)
    @given(ops)
    def run(steps: list[tuple[str, int]]) -> None:
        with open_arena(MiB, max_size=4 * MiB, grow_step=MiB, wait=0.0) as arena:
            held: list[object] = []
            shared: set[tuple[int, int]] = set()
            for op, n in steps:
                if op == "alloc":
                    with contextlib.suppress(ArenaFullError):
                        block = arena.alloc(n)
                        if block.size:  # its first and last byte say which block it is
                            block.writable()[0] = block.writable()[-1] = block.gen % 251
                        held.append(block)
                        del block
                elif op == "trim":
                    arena.trim(n)  # frees only free blocks' pages: what is held stays
                elif held and op == "free":
                    held.pop(n % len(held))
                elif held:
                    block: Any = held[n % len(held)]
                    block.share(7)
                    shared.add((block.offset, block.gen))
                    del block  # no local reference may outlive the loop
                arena.check()
            assert all(_mark_intact(b) for b in held)
            held.clear()
            assert arena.stats()["used_blocks"] == len(shared)  # slot 7 still holds these
            arena.reclaim(7)  # a slot that held references dies
            arena.check()
            stats = arena.stats()
            assert stats["used_blocks"] == 0 and stats["free_blocks"] == 1

    run()
