"""Shared fixtures: every test must leave no child process and no shared memory behind."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, TypeVar

import psutil
import pytest

T = TypeVar("T")


# Made by multiprocessing, loky and joblib in other programs on a shared machine (benchmarks of
# the anchors, say); mpipe itself creates nothing in /dev/shm.
_FOREIGN = ("sem.mp-", "sem.loky-", "joblib_memmapping_folder_", "loky-")


def _shm_names() -> set[str]:
    """Names in /dev/shm, less the semaphores of Python's multiprocessing (``sem.mp-*``).

    mpipe creates nothing there at all (its arena is a memfd and its rings wait on futexes) and
    never uses multiprocessing semaphores; those come from other programs sharing the machine
    (a benchmark of multiprocessing pools, say), which a global directory cannot tell apart.
    """
    try:
        return {n for n in os.listdir("/dev/shm") if not n.startswith(_FOREIGN)}
    except FileNotFoundError:  # pragma: no cover - not Linux
        return set()


@pytest.fixture(autouse=True)
def no_leaks() -> Iterator[None]:
    """Fail a test that leaves a child process alive or a new file in /dev/shm."""
    before_shm = _shm_names()
    me = psutil.Process()
    before_children = {c.pid for c in me.children(recursive=True)}
    yield
    leftover: list[psutil.Process] = []
    for child in me.children(recursive=True):
        if child.pid in before_children:
            continue
        try:
            child.wait(timeout=5)
        except psutil.TimeoutExpired:
            leftover.append(child)
        except psutil.NoSuchProcess:
            pass
    for child in leftover:
        child.kill()
    assert not leftover, f"child processes left alive: {[c.pid for c in leftover]}"
    new_shm = _shm_names() - before_shm
    assert not new_shm, f"shared memory left in /dev/shm: {sorted(new_shm)}"


@pytest.fixture
def run() -> Callable[[Coroutine[Any, Any, T]], T]:
    """Run a coroutine to completion in a fresh event loop (tests stay plain functions)."""
    return asyncio.run
