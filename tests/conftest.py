"""Shared fixtures: every test must leave no child process and no shared memory behind.

The one exception is a resource deliberately shared by many tests, such as the test run's Dask
cluster: its fixture registers a function naming its processes in ``SHARED_PROCESSES``, the leak
check tolerates those, and the fixture itself checks at its end that they are gone. The other is
``multiprocess``'s resource tracker (``share_resource_tracker``), which lives as long as the test
process does.
"""

from __future__ import annotations

import asyncio
import multiprocessing.resource_tracker
import os
from collections.abc import Callable, Coroutine, Iterator
from types import ModuleType
from typing import Any, TypeVar

import psutil
import pytest

T = TypeVar("T")

#: Functions naming the pids of processes that session fixtures share between tests on purpose.
SHARED_PROCESSES: list[Callable[[], set[int]]] = []
#: Functions naming the /dev/shm entries those shared resources hold.
SHARED_SHM: list[Callable[[], set[str]]] = []


def _shared_pids() -> set[int]:
    return {pid for names in SHARED_PROCESSES for pid in names()}


def worker_fds() -> int:
    """Open descriptors of the kinds a process pool holds: memfd, eventfd, pidfd and pipes.

    Sockets are left out: other threads of the test process (a shared Dask cluster) open and
    close them at any time.
    """
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        count += target.startswith(
            ("/memfd:", "pipe:", "anon_inode:[eventfd]", "anon_inode:[pidfd]")
        )
    return count


def share_resource_tracker() -> None:
    """Start ``multiprocess``'s resource tracker now and count it among the shared processes:
    a spawned pool starts it once per test process, and it lives as long as that process."""
    from multiprocess import resource_tracker

    resource_tracker.ensure_running()
    if _resource_tracker_pids not in SHARED_PROCESSES:
        SHARED_PROCESSES.append(_resource_tracker_pids)


def _resource_tracker_pids() -> set[int]:
    from multiprocess import resource_tracker

    pid = resource_tracker._resource_tracker._pid
    return set() if pid is None else {pid}


def own_children() -> list[psutil.Process]:
    """This process's children, less those of resources shared across tests."""
    shared = _shared_pids()
    return [c for c in psutil.Process().children(recursive=True) if c.pid not in shared]


def _shared_shm() -> set[str]:
    return {name for names in SHARED_SHM for name in names()}


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
    shared = _shared_pids()
    for child in me.children(recursive=True):
        if child.pid in before_children or child.pid in shared:
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
    new_shm = _shm_names() - before_shm - _shared_shm()
    assert not new_shm, f"shared memory left in /dev/shm: {sorted(new_shm)}"


@pytest.fixture
def run() -> Callable[[Coroutine[Any, Any, T]], T]:
    """Run a coroutine to completion in a fresh event loop (tests stay plain functions)."""
    return asyncio.run


@pytest.fixture(scope="session")
def dask_cluster() -> Iterator[str]:
    """A real ``distributed.LocalCluster`` (2 single-threaded worker processes), started once
    for the session; yields its scheduler address. Its processes are shared, not leaked; at the
    end of the session they must all be gone."""
    pytest.importorskip("distributed")
    import dask
    from distributed import LocalCluster

    tracker = multiprocessing.resource_tracker._resource_tracker  # type: ignore[attr-defined]
    had_tracker = tracker._pid is not None
    # One worker death fails its task at once (Dask would retry it elsewhere three times), so
    # that crash tests reach the error strategy quickly, as with the executor's own cluster.
    from mpipe._backends._dask import environ_kept

    # The nannies' variables for their workers stay out of this process's environment, which
    # every later test's pools inherit.
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}), environ_kept():
        cluster = LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
        )

    def cluster_pids() -> set[int]:
        # The worker processes (their nannies restart them when they die) and the resource
        # tracker that spawning them started.
        pids = {
            getattr(getattr(nanny.process, "process", None), "pid", None)
            for nanny in list(cluster.workers.values())
            if getattr(nanny, "process", None) is not None
        }
        if not had_tracker and tracker._pid is not None:
            pids.add(tracker._pid)
        return {p for p in pids if p is not None}

    def cluster_shm() -> set[str]:
        # multiprocessing's named semaphores, held by the nannies' worker processes.
        return {name for name in _shm_names() if name.startswith("sem.mp-")}

    SHARED_PROCESSES.append(cluster_pids)
    SHARED_SHM.append(cluster_shm)
    started = cluster_pids()
    try:
        yield cluster.scheduler_address
    finally:
        started |= cluster_pids()
        cluster.close()
        if not had_tracker:
            # Spawned workers started multiprocessing's resource tracker; stop it with them.
            tracker._stop()
        SHARED_PROCESSES.remove(cluster_pids)
        SHARED_SHM.remove(cluster_shm)
        alive = [
            p for p in started if psutil.pid_exists(p) and psutil.Process(p).status() != "zombie"
        ]
        assert not alive, f"the Dask cluster left processes alive: {alive}"


HOOKS_MISSING = (
    "mpipe._native is a release build, without the fault-injection hooks this test needs "
    "(Arena._crash_at, Arena._poke). Build it as a test build: "
    "MPIPE_NATIVE_TEST_HOOKS=1 pip install -e '.[test]' "
    "(or MPIPE_NATIVE_TEST_HOOKS=1 python setup.py build_ext --inplace in a checkout)"
)


@pytest.fixture
def native_hooks() -> ModuleType:
    """The native module, failing the test at once when it was built without its test hooks."""
    from mpipe._transport._load import native

    if not native.TEST_HOOKS:
        pytest.fail(HOOKS_MISSING, pytrace=False)
    return native
