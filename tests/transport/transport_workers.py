"""Worker-process bodies for the transport tests (importable by spawned children)."""

from __future__ import annotations

import os
import zlib
from typing import Any

import numpy as np

from mpipe._transport import Arena, ArenaHandle, Codec, Endpoint, RingClosedError


def checksum(arr: Any) -> int:
    """CRC-32 of every byte of a numpy array or buffer."""
    return zlib.crc32(memoryview(arr).cast("B"))


def in_arena(codec: Codec, address: int) -> bool:
    """Whether an address lies inside the arena's mapping in this process."""
    return codec.arena.address <= address < codec.arena.address + codec.arena.capacity


def serve(endpoint: Endpoint) -> None:
    """Answer requests until the parent closes the channel.

    Requests are ``(op, seq, value, expected)`` tuples or bare payloads:

    - ``("ping", seq, None, None)`` -> ``seq``
    - ``("sum", seq, array, crc)`` -> ``(seq, crc of what arrived, zero-copy?)``
    - ``("echo", seq, array, crc)`` -> the same array back (sent on by reference)
    - ``("call", seq, fn_message, arg)`` -> ``fn(arg)`` with the callable decoded from bytes
    - ``("exit", ...)`` -> ``os._exit(3)`` without answering
    """
    with endpoint.connect() as ch:
        codec = Codec(ch.arena, ch.responses.max_message)
        while True:
            try:
                message = ch.recv()
            except RingClosedError:
                return
            if message is None:  # pragma: no cover - no timeout given
                continue
            request = codec.decode(message)
            if isinstance(request, int):
                ch.send(codec.encode(request, 0))
                continue
            op, seq, value, extra = request
            if op == "sum":
                address = value.__array_interface__["data"][0] if value.nbytes else 0
                ok = value.nbytes == 0 or in_arena(codec, address)
                reply: Any = (seq, checksum(value), ok)
            elif op == "echo":
                reply = value
            elif op == "table":
                reply = (
                    seq,
                    value.num_rows,
                    in_arena(codec, value.column(0).chunk(0).buffers()[1].address),
                )
            elif op == "call":
                fn = codec.decode(value)
                reply = (seq, fn(extra))
            elif op == "exit":
                os._exit(3)
            else:
                reply = (seq, "unknown op")
            ch.send(codec.encode(reply, 0))
            del request, value, reply


def churn(handle: ArenaHandle, rounds: int) -> None:
    """Allocate, write, read back and free blocks (``rounds < 0``: until killed)."""
    with Arena.attach(handle) as arena:
        rng = np.random.default_rng(os.getpid())
        i = 0
        while rounds < 0 or i < rounds:
            i += 1
            n = int(rng.integers(0, 1 << 16))
            block = arena.alloc(n)
            view = block.writable(0, n)
            view[:] = bytes([i & 0xFF]) * n
            assert bytes(view[:16]) == bytes([i & 0xFF]) * min(16, n)
            del view
            block.release()
