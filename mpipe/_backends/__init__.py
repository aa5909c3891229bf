"""Backends: inline, thread, process, and dask (when ``distributed`` is installed). One module each."""

from __future__ import annotations

from typing import Any

from .._errors import ConfigurationError
from .._model._placement import check_placement
from ._base import END, Backend, FiringSlot, Stream, usable_cores

__all__ = [
    "END",
    "Backend",
    "FiringSlot",
    "Stream",
    "check_process_options",
    "make_backend",
    "usable_cores",
]

#: The smallest ``arena_size`` a process pool takes.
MIN_ARENA_SIZE = 1 << 20


def check_process_options(arena_size: Any, start_method: Any) -> None:
    """Refuse process-pool settings no pool takes, where they are given (an executor's
    construction checks them before anything runs).

    ``arena_size`` None: the pool's default.

    Raises:
        ConfigurationError: ``arena_size`` is not a whole number of bytes of at least 1 MiB,
            or ``start_method`` is not ``"spawn"``.
    """
    if start_method != "spawn":
        raise ConfigurationError(
            f"start_method must be 'spawn' (each worker a fresh interpreter), got {start_method!r}",
            "start_method",
        )
    if arena_size is not None and (
        not isinstance(arena_size, int)
        or isinstance(arena_size, bool)
        or arena_size < MIN_ARENA_SIZE
    ):
        raise ConfigurationError(
            f"arena_size must be at least 1 MiB (in bytes), got {arena_size!r}", "arena_size"
        )


def make_backend(
    name: str, max_workers: int, options: dict[str, Any], explicit: bool = True
) -> Backend:
    """A new, not yet started backend for the placement ``name``.

    ``explicit``: whether the caller chose ``max_workers``. A default (the usable cores) is
    capped at what the backend supports; a choice past it is a ``ConfigurationError``.

    Raises:
        ConfigurationError: Unknown placement, or one this installation cannot run.
    """
    check_placement(name, "executor")
    # Each backend's module loads when a backend of its kind is made: a worker process, which
    # imports this package for its process-backend modules, loads none of them.
    if name == "inline":
        from ._inline import InlineBackend

        return InlineBackend(max_workers)
    if name == "thread":
        from ._thread import ThreadBackend

        return ThreadBackend(max_workers)
    if name == "process":
        from ._process._backend import MAX_WORKERS, ProcessBackend

        workers = max_workers if explicit else min(max_workers, MAX_WORKERS)
        return ProcessBackend(workers, **options)
    if name == "dask":
        from ._dask import DaskBackend

        return DaskBackend(max_workers, **options)
    raise ConfigurationError(  # pragma: no cover - every placement is handled above
        f"execution={name!r} is not available in this version of mpipe", field="execution"
    )
