"""Processors that report what their worker process has imported.

This module imports nothing but ``sys``: a worker that runs one of them imports this module and
nothing else for it, so what the answer lists is what the worker imported for itself (plus
whatever decoding the argument needed).
"""

from __future__ import annotations

import sys


def loaded_modules(arg: object) -> list[str]:
    """The names of the modules loaded in this process (``arg`` is ignored)."""
    return sorted(sys.modules)


def loaded_modules_and_double(x: int) -> tuple[list[str], int]:
    """The modules loaded in this process, and twice ``x`` (a worker that serves)."""
    return sorted(sys.modules), 2 * x


def leave_marks(path: str) -> int:
    """Register an ``atexit`` function that writes ``path`` and print a line without flushing
    it: both must survive the worker's exit. Returns this process's id."""
    import atexit
    import os

    def mark() -> None:
        with open(path, "w") as f:
            f.write("atexit ran")

    atexit.register(mark)
    print("printed by the worker", end="")  # stays in the buffer until the exit flushes it
    return os.getpid()


def start_thread(seconds: float) -> int:
    """Leave a non-daemon thread running for ``seconds``; a worker waits for it as it exits.
    Returns the thread count."""
    import threading

    gate = threading.Event()
    threading.Thread(target=gate.wait, args=(seconds,), daemon=False).start()
    return threading.active_count()
