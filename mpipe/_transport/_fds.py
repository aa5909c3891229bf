"""File descriptors that travel to a worker process explicitly, as the worker is started."""

from __future__ import annotations

import os
from typing import Any

from ._errors import TransportError

__all__ = ["FdHandle"]


def _rebuild(dupfd: Any) -> FdHandle:
    return FdHandle(dupfd.detach(), owned=True)


class FdHandle:
    """A file descriptor that pickles only while a worker process is being started.

    With the ``spawn`` and ``forkserver`` start methods, pickling duplicates the descriptor into
    the starting child (``multiprocess.reduction.DupFd``); with ``fork`` the number is inherited
    and the object is used as is. Pickled at any other time it raises a clear error, because a
    bare descriptor number means nothing in another process.

    Args:
        fd: The descriptor.
        owned: Whether :meth:`take` may hand it out as the caller's to close.
    """

    __slots__ = ("fd", "owned")

    def __init__(self, fd: int, owned: bool = False) -> None:
        self.fd = fd
        self.owned = owned

    def take(self) -> int:
        """A descriptor the caller owns: this one if it came through pickling, else a dup."""
        if self.owned:
            self.owned = False
            return self.fd
        return os.dup(self.fd)

    def __reduce__(self) -> tuple[Any, ...]:
        from multiprocess import context, reduction

        popen = context.get_spawning_popen()
        if popen is None:
            raise TransportError(
                "a transport handle can only be pickled while a worker process is being "
                "started (pass it in Process(args=...) with the spawn or forkserver method)"
            )
        return (_rebuild, (reduction.DupFd(self.fd),))

    def __repr__(self) -> str:
        return f"FdHandle({self.fd})"
