"""What the codec sends as a payload's own bytes, rather than pickled: Arrow tables, record
batches and arrays (as Arrow IPC) and numpy arrays of plain values.

Apart from the codec so that the engine can size a run's input (:func:`arena_nbytes`) without
loading the codec and the native arena. The types are found once their package is imported (by
anyone); until then no object can be one of them, and neither numpy nor pyarrow is imported here.
"""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["ARROW", "NUMPY", "arena_nbytes", "arrow_types", "ndarray_type", "raw_kind"]

#: What :func:`raw_kind` says of an object written as its own bytes.
ARROW, NUMPY = "arrow", "numpy"

_ARROW: tuple[type, ...] = ()
_NDARRAY: Any = None  # numpy.ndarray once numpy is loaded


def arrow_types() -> tuple[type, ...]:
    """The Arrow types written as IPC; none while pyarrow was never imported."""
    global _ARROW
    if not _ARROW:
        pa = sys.modules.get("pyarrow")
        if pa is not None:
            _ARROW = (pa.Table, pa.RecordBatch, pa.Array, pa.ChunkedArray)
    return _ARROW


def ndarray_type() -> Any:
    """``numpy.ndarray``, or None while numpy was never imported."""
    global _NDARRAY
    if _NDARRAY is None:
        np = sys.modules.get("numpy")
        if np is not None:
            _NDARRAY = np.ndarray
    return _NDARRAY


def raw_kind(obj: Any) -> str | None:
    """:data:`ARROW` or :data:`NUMPY` for an object written into a block as its own bytes (Arrow
    data; a numpy array of plain values), else None (it is pickled)."""
    arrow = _ARROW or arrow_types()  # the globals first: this is on the codec's per-item path
    if arrow and isinstance(obj, arrow):
        return ARROW
    ndarray = _NDARRAY or ndarray_type()
    if ndarray is not None and isinstance(obj, ndarray) and not obj.dtype.hasobject:
        return NUMPY
    return None


def arena_nbytes(obj: Any) -> int:
    """The bytes the codec writes into the arena for ``obj``, where the object alone tells: Arrow
    data and numpy arrays of plain values by their ``nbytes``, bytes-like objects by their
    length; 0 for anything else (what a pickle takes is known only once pickled)."""
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return memoryview(obj).nbytes
    return int(obj.nbytes) if raw_kind(obj) is not None else 0
