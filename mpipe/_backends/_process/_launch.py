"""Starting worker processes: fresh interpreters that serve one transport endpoint."""

from __future__ import annotations

import contextlib
import os
import pickle
import subprocess
import sys
from typing import Any

from .._base import usable_cores

__all__ = [
    "PAYLOAD_LIBRARIES",
    "THREAD_LIMITS",
    "WORKER_CODE",
    "WorkerProcess",
    "launch",
    "package_root",
    "payload_libraries",
    "worker_env",
    "worker_threads",
]

#: What a worker interpreter runs. ``python -c`` puts the current directory first on
#: ``sys.path``; the worker drops it and puts the folder the parent imported mpipe from first
#: (``sys.argv[1]``), so that it imports the parent's mpipe, never a source tree that happens to
#: be the current directory. ``boot`` then adds the parent's own ``sys.path``.
WORKER_CODE = (
    "import sys; sys.path[:] = [sys.argv[1], *(p for p in sys.path if p)]; "
    "from mpipe._backends._process._worker import boot; boot()"
)


#: The libraries the codec reads arrays and tables with. A worker imports, before it says it is
#: ready, each of them that the parent has imported: a parent that holds numpy or pyarrow will
#: most likely send arrays or tables, and a worker that imported the library only when the first
#: one arrived made the first run wait for it (about 0.1 s on the 2-core VM), while the caller's
#: source went on filling the first pipe with fresh arrays. A parent that imported neither starts
#: lean workers, which import them if a payload ever needs them.
PAYLOAD_LIBRARIES = ("numpy", "pyarrow")


def payload_libraries() -> list[str]:
    """The :data:`PAYLOAD_LIBRARIES` this process has imported: what its workers import ahead."""
    # A None entry is an import the parent blocked on purpose: not imported.
    return [name for name in PAYLOAD_LIBRARIES if sys.modules.get(name) is not None]


#: The environment variables that size the thread pools of numeric libraries (OpenMP,
#: OpenBLAS, MKL, Accelerate, numexpr). Each library sizes its pool to the machine in every
#: process that loads it: a pool of W workers would run W threads per core. A worker gets its
#: share of the cores instead (at least 1), unless the parent's environment sets the variable.
THREAD_LIMITS = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)


def worker_threads(workers: int) -> int:
    """Each of ``workers`` workers' share of the cores this process may run on (at least 1)."""
    return max(1, usable_cores() // max(1, workers))


#: glibc's malloc settings in a worker, unless the parent's environment sets them. By default
#: glibc serves blocks of 128 KiB and more with a fresh ``mmap`` (given back at once when
#: freed) and gives the heap's free top back past 128 KiB; it raises both as big blocks come
#: and go, but only to the size of the last one freed, so numpy work whose temporaries are a
#: few MiB each faults every page of every temporary in afresh (a page fault per 4 KiB: on the
#: 2-core VM a chain of numpy stages ran 25% slower). A worker starts where glibc's own
#: adjustment stops (32 MiB: blocks up to there come from the heap, and a free top up to twice
#: that is kept), and gives the memory back when its pool goes idle (``malloc_trim``).
MALLOC_SETTINGS = {
    "MALLOC_MMAP_THRESHOLD_": str(32 << 20),
    "MALLOC_TRIM_THRESHOLD_": str(64 << 20),
}


def worker_env(threads: int) -> dict[str, str]:
    """The parent's environment, with :data:`THREAD_LIMITS` it does not set at ``threads`` and
    :data:`MALLOC_SETTINGS` unless it tunes glibc's malloc itself (those variables, or
    ``glibc.malloc`` tunables in ``GLIBC_TUNABLES``)."""
    env = dict(os.environ)
    for name in THREAD_LIMITS:
        env.setdefault(name, str(threads))
    if "glibc.malloc." not in env.get("GLIBC_TUNABLES", ""):
        for name, value in MALLOC_SETTINGS.items():
            env.setdefault(name, value)
    return env


def package_root() -> str:
    """The folder the running mpipe package was imported from (the one holding ``mpipe/``)."""
    import mpipe

    return os.path.dirname(os.path.dirname(os.path.abspath(mpipe.__file__)))


def _pidfd_works() -> bool:
    """Whether this kernel (and sandbox) lets a process open a pidfd: Linux before 5.3, some
    container seccomp profiles and tools such as valgrind refuse ``pidfd_open``."""
    try:
        fd = os.pidfd_open(os.getpid())
    except (OSError, AttributeError):
        return False
    os.close(fd)
    return True


#: How a worker's exit is seen: its pidfd, or where there is none the read end of a pipe whose
#: only write end the worker holds (the end of file comes when the worker is gone).
USE_PIDFD = _pidfd_works()


class WorkerProcess:
    """A worker process and its sentinel (a descriptor that becomes readable when it exits).

    Args:
        popen: The started worker.
        exit_pipe: The read end of the exit pipe, where pidfds are not available.
    """

    def __init__(self, popen: subprocess.Popen[bytes], exit_pipe: int = -1) -> None:
        self.popen = popen
        self.pid = popen.pid
        self.sentinel = os.pidfd_open(popen.pid) if exit_pipe < 0 else exit_pipe

    def kill(self) -> None:
        """SIGKILL the worker (no-op once it has exited)."""
        if self.popen.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.popen.kill()

    def reap(self) -> int | None:
        """Collect the exit status (negative: the signal); closes the sentinel."""
        try:
            code = self.popen.wait(timeout=5)
        except subprocess.TimeoutExpired:  # pragma: no cover - the sentinel said it exited
            self.popen.kill()
            code = self.popen.wait()
        if self.sentinel >= 0:
            os.close(self.sentinel)
            self.sentinel = -1
        return code


def launch(endpoint: Any, threads: int = 1) -> WorkerProcess:
    """Start a fresh interpreter running :func:`mpipe._backends._process._worker.boot` for ``endpoint``.

    ``threads``: what the numeric libraries' thread pools may use in the worker, unless the
    parent's environment says (:data:`THREAD_LIMITS`).

    A fresh interpreter (fork and exec, done by ``subprocess``) is safe however many threads the
    parent runs, re-runs none of the parent's ``__main__``, and leaves no helper process behind.
    The transport's descriptors are passed by number (``pass_fds``); the rest of the endpoint
    travels on the worker's stdin. Functions reach the worker later, serialized with dill.
    The worker imports mpipe from the folder the parent imported it from, whatever the
    current directory holds (:data:`WORKER_CODE`).
    """
    fds = [endpoint.arena.fd.fd, endpoint.request_bell.fd, endpoint.response_bell.fd]
    boot = {
        "sys_path": list(sys.path),
        "fds": fds,
        "slot": endpoint.arena.slot,
        "wait": endpoint.arena.wait,
        "requests": endpoint.requests,
        "responses": endpoint.responses,
        "parent_pid": endpoint.parent_pid,
        "spin": endpoint.spin,
        "imports": payload_libraries(),
    }
    exit_read = exit_write = -1
    if not USE_PIDFD:
        exit_read, exit_write = os.pipe()  # both ends close on exec; the worker gets its copy
    try:
        popen = subprocess.Popen(
            [sys.executable, "-c", WORKER_CODE, package_root()],
            stdin=subprocess.PIPE,
            pass_fds=fds if exit_write < 0 else [*fds, exit_write],
            close_fds=True,
            env=worker_env(threads),
        )
    except BaseException:
        for fd in (exit_read, exit_write):
            if fd >= 0:
                os.close(fd)
        raise
    if exit_write >= 0:
        os.close(exit_write)  # the worker holds the only write end now
    assert popen.stdin is not None
    try:
        popen.stdin.write(pickle.dumps(boot))
        popen.stdin.close()
    except BrokenPipeError:
        pass  # it died already; its sentinel reports how
    return WorkerProcess(popen, exit_read)
