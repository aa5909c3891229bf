"""Answers of every size around a ring message's limit reach the parent: a worker's value or
error is kept inline in the ring when it fits with the frame's prefix and the worker's timing,
and goes through the arena otherwise (it never makes the worker fail to send, which would kill
it)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from conftest import own_children

from mpipe._backends import FiringSlot
from mpipe._backends._process._backend import ProcessBackend

pytestmark = pytest.mark.slow

#: Sizes that cross the inline limit of a default ring message (1 KiB) in steps of one byte.
SIZES = range(850, 1100)


def make_bytes(n: int) -> bytes:
    return b"x" * n


def raise_long(n: int) -> None:
    raise ValueError("x" * n)


#: Messages whose error (the exception and its traceback, which repeats the message) crosses
#: the same limit.
ERROR_SIZES = range(150, 650)


def run_all(fn: Any, sizes: range = SIZES) -> list[Any]:
    async def main() -> list[Any]:
        backend = ProcessBackend(1)
        await backend.start()
        out: list[Any] = []
        try:
            for n in sizes:
                try:
                    out.append(await backend.submit(fn, n, FiringSlot("p", n)))
                except Exception as exc:
                    out.append(exc)
        finally:
            await backend.close()
        return out

    answers = asyncio.run(main())
    assert not own_children()
    return answers


def test_values_of_every_size_around_the_limit_come_back() -> None:
    assert run_all(make_bytes) == [b"x" * n for n in SIZES]


def test_errors_of_every_size_around_the_limit_come_back_as_themselves() -> None:
    answers = run_all(raise_long, ERROR_SIZES)
    assert [type(a).__name__ for a in answers] == ["ValueError"] * len(ERROR_SIZES)
    assert [len(str(a)) for a in answers] == list(ERROR_SIZES)
