"""Cross-process stress: many messages and payloads of random sizes, every byte checksummed.

Default sizes keep the suite fast; ``MPIPE_STRESS=full`` runs the full size (a million
messages, thousands of payloads from 0 bytes to 64 MiB).
"""

from __future__ import annotations

import gc
import math
import os
import time
from typing import Any

import multiprocess
import numpy as np
import pytest
from conftest import share_resource_tracker
from transport_workers import checksum, serve

from mpipe._transport import Codec, open_arena, open_channel

MiB = 1 << 20
FULL = os.environ.get("MPIPE_STRESS") == "full"


@pytest.fixture(scope="module", autouse=True)
def _tracker() -> None:
    share_resource_tracker()  # spawn starts it once per test run: not a leak of one test


def payload_sizes(rng: np.random.Generator, count: int, largest: int) -> list[int]:
    """Sizes from 0 to ``largest``, log-uniform in between, both ends included."""
    sizes = [0, largest] + [
        int(math.exp(rng.uniform(0, math.log(largest)))) for _ in range(count - 2)
    ]
    rng.shuffle(sizes)  # type: ignore[arg-type]
    return sizes


def stress(messages: int, payloads: int, largest: int, workers: int = 2) -> dict[str, Any]:
    rng = np.random.default_rng(2024)
    source = rng.integers(0, 256, largest + 4096, dtype=np.uint8)
    sizes = payload_sizes(rng, payloads, largest)
    positions = sorted(rng.choice(messages, payloads, replace=False).tolist())
    payload_at = dict(zip(positions, sizes, strict=True))
    window = 32
    stats: dict[str, Any] = {"messages": messages, "payloads": payloads, "bytes": 0}
    ctx = multiprocess.get_context("spawn")
    with open_arena(256 * MiB, max_size=max(1024 * MiB, 4 * largest), wait=60.0) as arena:
        channels = [open_channel(arena, slot, capacity=256) for slot in range(1, workers + 1)]
        procs = [ctx.Process(target=serve, args=(ch.endpoint(),), daemon=True) for ch in channels]
        try:
            for ch, proc in zip(channels, procs, strict=True):
                proc.start()
                ch.bind(proc.pid)
            codec = Codec(arena, channels[0].max_message)
            expected: list[dict[int, Any]] = [{} for _ in channels]
            started = time.perf_counter()
            held: list[tuple[np.ndarray, int]] = []

            def settle(w: int, keep: int) -> None:
                while len(expected[w]) > keep:
                    message = channels[w].recv(timeout=120.0)
                    assert message is not None, f"worker {w + 1} gave no answer in 120 s"
                    reply = codec.decode(message)
                    if isinstance(reply, int):
                        assert expected[w].pop(reply) is None
                    elif isinstance(reply, tuple):
                        seq, crc, zero_copy = reply
                        assert expected[w].pop(seq) == crc, f"payload {seq} corrupted"
                        assert zero_copy
                    else:  # an echoed array: sent back by reference, same bytes
                        crc = checksum(reply)
                        key = next(k for k, v in expected[w].items() if v == ("echo", crc))
                        del expected[w][key]
                        if not held and reply.nbytes:
                            held.append((reply, crc))  # kept while everything else streams
                    del reply

            for i in range(messages):
                w = i % workers
                n = payload_at.get(i)
                if n is None:
                    request: Any = i
                    expected[w][i] = None
                else:
                    start = int(rng.integers(0, 4096))
                    data = source[start : start + n]
                    crc = checksum(data)
                    stats["bytes"] += n
                    if i % 7 == 0 and n:
                        request = ("echo", i, codec.decode(codec.encode(data, 0)), None)
                        expected[w][i] = ("echo", crc)
                    else:
                        request = ("sum", i, data, None)
                        expected[w][i] = crc
                message = codec.encode(request, w + 1)
                del request
                if len(expected[w]) > window:
                    settle(w, window // 2)
                channels[w].send(message, 120.0)
            for w in range(workers):
                settle(w, 0)
            stats["seconds"] = time.perf_counter() - started
            assert held, "no payload was echoed"
            assert checksum(held[0][0]) == held[0][1], "a held array changed: use after free"
            held.clear()
            gc.collect()
            arena.check()
            stats["peak_used_bytes"] = arena.stats()["peak_used_bytes"]
            assert arena.stats()["used_blocks"] == 2 * workers  # only the rings
        finally:
            for ch in channels:
                ch.close()
            for proc in procs:
                proc.join(60)
                if proc.is_alive():  # pragma: no cover - only on failure
                    proc.kill()
                    proc.join()
        gc.collect()
        arena.check()
        assert arena.stats()["used_blocks"] == 0 and arena.stats()["used_bytes"] == 0
        stats["exitcodes"] = [p.exitcode for p in procs]
    assert stats["exitcodes"] == [0] * workers
    return stats


@pytest.mark.slow
@pytest.mark.timeout(3600 if FULL else 60)
def test_two_workers_exchange_messages_and_payloads_without_loss_or_leak() -> None:
    if FULL:
        result = stress(messages=1_000_000, payloads=2_000, largest=64 * MiB)
    else:
        result = stress(messages=20_000, payloads=120, largest=8 * MiB)
    print(
        f"\nstress: {result['messages']} messages, {result['payloads']} payloads, "
        f"{result['bytes'] / MiB:.0f} MiB in {result['seconds']:.1f} s, "
        f"peak arena use {result['peak_used_bytes'] / MiB:.0f} MiB"
    )
