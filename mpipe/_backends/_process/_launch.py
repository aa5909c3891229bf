"""Starting worker processes: fresh interpreters that serve one transport endpoint."""

from __future__ import annotations

import contextlib
import os
import pickle
import subprocess
import sys
from typing import Any

__all__ = ["WORKER_CODE", "WorkerProcess", "launch", "package_root"]

#: What a worker interpreter runs. ``python -c`` puts the current directory first on
#: ``sys.path``; the worker drops it and puts the folder the parent imported mpipe from first
#: (``sys.argv[1]``), so that it imports the parent's mpipe, never a source tree that happens to
#: be the current directory. ``boot`` then adds the parent's own ``sys.path``.
WORKER_CODE = (
    "import sys; sys.path[:] = [sys.argv[1], *(p for p in sys.path if p)]; "
    "from mpipe._backends._process._worker import boot; boot()"
)


def package_root() -> str:
    """The folder the running mpipe package was imported from (the one holding ``mpipe/``)."""
    import mpipe

    return os.path.dirname(os.path.dirname(os.path.abspath(mpipe.__file__)))


class WorkerProcess:
    """A worker process and its sentinel (a pidfd that becomes readable when it exits)."""

    def __init__(self, popen: subprocess.Popen[bytes]) -> None:
        self.popen = popen
        self.pid = popen.pid
        self.sentinel = os.pidfd_open(popen.pid)

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


def launch(endpoint: Any) -> WorkerProcess:
    """Start a fresh interpreter running :func:`mpipe._backends._process._worker.boot` for ``endpoint``.

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
    }
    popen = subprocess.Popen(
        [sys.executable, "-c", WORKER_CODE, package_root()],
        stdin=subprocess.PIPE,
        pass_fds=fds,
        close_fds=True,
    )
    assert popen.stdin is not None
    try:
        popen.stdin.write(pickle.dumps(boot))
        popen.stdin.close()
    except BrokenPipeError:
        pass  # it died already; its sentinel reports how
    return WorkerProcess(popen)
