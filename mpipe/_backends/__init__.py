"""Backends: inline, thread, process, and dask (when ``distributed`` is installed). One module each."""

from __future__ import annotations

from typing import Any

from .._errors import ConfigurationError
from .._model._placement import check_placement
from ._base import END, Backend, FiringSlot, Stream
from ._inline import InlineBackend
from ._thread import ThreadBackend

__all__ = ["END", "Backend", "FiringSlot", "Stream", "make_backend"]


def make_backend(name: str, max_workers: int, options: dict[str, Any]) -> Backend:
    """A new, not yet started backend for the placement ``name``.

    Raises:
        ConfigurationError: Unknown placement, or one this installation cannot run.
    """
    check_placement(name, "executor")
    if name == "inline":
        return InlineBackend(max_workers)
    if name == "thread":
        return ThreadBackend(max_workers)
    if name == "process":
        from ._process._backend import ProcessBackend

        return ProcessBackend(max_workers, **options)
    if name == "dask":
        from ._dask import DaskBackend

        return DaskBackend(max_workers, **options)
    raise ConfigurationError(  # pragma: no cover - every placement is handled above
        f"execution={name!r} is not available in this version of mpipe", field="execution"
    )
