"""How a checkpoint's value becomes one Arrow table, and back.

Kinds of value, and how each is stored (the kind is recorded in the file's schema metadata):

- ``table`` / ``record_batch`` / ``array`` / ``chunked_array``: the Arrow data itself (an array
  as the single column ``values``).
- ``numpy``: a numpy array of a numeric, bool, datetime or timedelta dtype as one Arrow column,
  its dtype and shape in the metadata; other fixed-size dtypes (complex, strings, structured) as
  their raw bytes in one binary cell, dtype and shape likewise. Object arrays need pickle.
- ``json``: a JSON value (dicts with str keys, lists, str, int, finite float, bool, None) as one
  orjson cell.
- ``tree``: anything else: containers (tuples, dicts with any keys, lists) holding Arrow data,
  numpy arrays and scalars, bytes, non-finite floats, big ints, and objects that only pickle can
  store (with ``allow_pickle=True``). The container skeleton is orjson with tagged nodes; every
  leaf that is not plain JSON is one row of a ``(kind, data)`` table, Arrow leaves as IPC streams.
"""

from __future__ import annotations

import math
import pickle
from typing import Any

import numpy as np
import orjson
import pyarrow as pa

from .._errors import CheckpointError

__all__ = ["decode", "encode", "is_json_like"]

_ARROW_NUMPY_KINDS = frozenset("biuf")
_ARROW_TIME_UNITS = frozenset({"s", "ms", "us", "ns"})
_INT64 = (-(2**63), 2**63 - 1)


def is_json_like(value: Any, depth: int = 0) -> bool:
    """Whether orjson round-trips ``value`` exactly (same types, same values)."""
    if depth > 200:
        return False
    t = type(value)
    if value is None or t is str or t is bool:
        return True
    if t is int:
        return bool(_INT64[0] <= value <= _INT64[1])
    if t is float:
        return math.isfinite(value)
    if t is list:
        return all(is_json_like(v, depth + 1) for v in value)
    if t is dict:
        return all(type(k) is str and is_json_like(v, depth + 1) for k, v in value.items())
    return False


# -- numpy -------------------------------------------------------------------------------------


def _numpy_table(arr: np.ndarray[Any, Any]) -> tuple[pa.Table, dict[str, Any]]:
    descr = np.lib.format.dtype_to_descr(arr.dtype)
    meta: dict[str, Any] = {"dtype": descr, "shape": list(arr.shape)}
    flat = np.ascontiguousarray(arr).reshape(-1)
    kind = arr.dtype.kind
    unit = np.datetime_data(arr.dtype)[0] if kind in "mM" else None
    if (kind in _ARROW_NUMPY_KINDS and arr.dtype.fields is None) or unit in _ARROW_TIME_UNITS:
        meta["layout"] = "arrow"
        # Arrow holds native byte order; the dtype in the metadata restores the original.
        column = pa.array(flat.astype(flat.dtype.newbyteorder("="), copy=False))
    else:
        meta["layout"] = "raw"
        column = pa.array([flat.tobytes()], pa.large_binary())
    return pa.table({"values": column}), meta


def _numpy_from(table: pa.Table, meta: dict[str, Any]) -> np.ndarray[Any, Any]:
    dtype = np.lib.format.descr_to_dtype(_descr(meta["dtype"]))
    shape = tuple(meta["shape"])
    column = table.column("values")
    if meta["layout"] == "arrow":
        flat = column.to_numpy(zero_copy_only=False)
        return np.array(flat, dtype=dtype).reshape(shape)
    raw = column[0].as_py()
    return np.frombuffer(raw, dtype=dtype).reshape(shape).copy()


def _descr(value: Any) -> Any:
    # JSON turns the tuples of a structured dtype's descr into lists; numpy wants tuples.
    if isinstance(value, list):
        return [
            tuple(_descr(v) for v in field) if isinstance(field, list) else field for field in value
        ]
    return value


# -- one value as a table ----------------------------------------------------------------------


def _leaf_table(value: Any) -> tuple[pa.Table, str, dict[str, Any]] | None:
    """Arrow or numpy data as (table, kind, meta), or None when ``value`` is neither."""
    if isinstance(value, pa.Table):
        return value, "table", {}
    if isinstance(value, pa.RecordBatch):
        return pa.Table.from_batches([value]), "record_batch", {}
    if isinstance(value, pa.ChunkedArray):
        return pa.table({"values": value}), "chunked_array", {}
    if isinstance(value, pa.Array):
        return pa.table({"values": value}), "array", {}
    if isinstance(value, np.ndarray) and value.dtype.kind != "O":
        table, meta = _numpy_table(value)
        return table, "numpy", meta
    if isinstance(value, np.generic) and value.dtype.kind != "O":
        table, meta = _numpy_table(np.asarray(value))
        meta["scalar"] = True
        return table, "numpy", meta
    return None


def _leaf_value(table: pa.Table, kind: str, meta: dict[str, Any]) -> Any:
    if kind == "table":
        return table
    if kind == "record_batch":
        batches = table.combine_chunks().to_batches()
        return batches[0] if batches else pa.RecordBatch.from_pylist([], schema=table.schema)
    if kind == "chunked_array":
        return table.column("values")
    if kind == "array":
        return table.column("values").combine_chunks()
    if kind == "numpy":
        arr = _numpy_from(table, meta)
        return arr[()] if meta.get("scalar") else arr
    raise CheckpointError(f"unknown stored kind {kind!r}")


def _ipc_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue())


def _from_ipc(data: bytes) -> pa.Table:
    with pa.ipc.open_stream(pa.py_buffer(data)) as reader:
        return reader.read_all()


class _Tree:
    """Encodes a nested value: a JSON skeleton plus a list of parts (kind, bytes, meta)."""

    def __init__(self, allow_pickle: bool) -> None:
        self.allow_pickle = allow_pickle
        self.parts: list[tuple[str, bytes, dict[str, Any]]] = []
        self.pickled = False

    def part(self, kind: str, data: bytes, meta: dict[str, Any]) -> dict[str, Any]:
        self.parts.append((kind, data, meta))
        return {"$part": len(self.parts) - 1}

    def encode(self, value: Any, depth: int = 0) -> Any:
        if depth > 200:
            raise CheckpointError("value is nested more than 200 levels deep")
        t = type(value)
        if value is None or t is str or t is bool:
            return value
        if t is int:
            return value if _INT64[0] <= value <= _INT64[1] else {"$int": str(value)}
        if t is float:
            return value if math.isfinite(value) else {"$float": repr(value)}
        if t is list:
            return [self.encode(v, depth + 1) for v in value]
        if t is tuple:
            return {"$tuple": [self.encode(v, depth + 1) for v in value]}
        if t is dict:
            return {
                "$dict": [
                    [self.encode(k, depth + 1), self.encode(v, depth + 1)] for k, v in value.items()
                ]
            }
        if t is bytes:
            return self.part("bytes", value, {})
        leaf = _leaf_table(value)
        if leaf is not None:
            table, kind, meta = leaf
            return self.part(kind, _ipc_bytes(table), meta)
        if not self.allow_pickle:
            raise CheckpointError(
                f"cannot checkpoint a value of type {t.__module__}.{t.__qualname__}: only Arrow "
                "data, numpy arrays, bytes and JSON-like containers are stored without pickle; "
                "create the CheckpointManager with allow_pickle=True to pickle other objects"
            )
        try:
            data = pickle.dumps(value, protocol=5)
        except Exception as exc:
            raise CheckpointError(f"cannot pickle a value of type {t.__qualname__}: {exc}") from exc
        self.pickled = True
        return self.part("pickle", data, {"type": f"{t.__module__}.{t.__qualname__}"})


def _decode_tree(node: Any, parts: list[Any]) -> Any:
    if isinstance(node, list):
        return [_decode_tree(v, parts) for v in node]
    if not isinstance(node, dict):
        return node
    if "$part" in node:
        return parts[node["$part"]]
    if "$tuple" in node:
        return tuple(_decode_tree(v, parts) for v in node["$tuple"])
    if "$dict" in node:
        return {_decode_tree(k, parts): _decode_tree(v, parts) for k, v in node["$dict"]}
    if "$int" in node:
        return int(node["$int"])
    if "$float" in node:
        return float(node["$float"])
    raise CheckpointError(f"unknown node in the checkpoint's structure: {sorted(node)}")


def encode(value: Any, allow_pickle: bool) -> tuple[pa.Table, dict[str, Any]]:
    """``value`` as one Arrow table and the metadata needed to decode it.

    Returns:
        The table and a JSON-compatible dict with ``kind``, ``pickled`` and kind-specific keys.

    Raises:
        CheckpointError: ``value`` needs pickle and ``allow_pickle`` is False, or cannot be pickled.
    """
    leaf = _leaf_table(value)
    if leaf is not None:
        table, kind, meta = leaf
        return table, {"kind": kind, "pickled": False, "value": meta}
    if is_json_like(value):
        cell = pa.array([orjson.dumps(value)], pa.large_binary())
        return pa.table({"json": cell}), {"kind": "json", "pickled": False, "value": {}}
    tree = _Tree(allow_pickle)
    skeleton = tree.encode(value)
    table = pa.table(
        {
            "kind": pa.array([p[0] for p in tree.parts], pa.string()),
            "data": pa.array([p[1] for p in tree.parts], pa.large_binary()),
            "meta": pa.array([orjson.dumps(p[2]).decode() for p in tree.parts], pa.string()),
        }
    )
    meta = {"kind": "tree", "pickled": tree.pickled, "value": {"skeleton": skeleton}}
    return table, meta


def decode(table: pa.Table, header: dict[str, Any], allow_pickle: bool) -> Any:
    """The value :func:`encode` stored as ``table`` with ``header``.

    Raises:
        CheckpointError: Pickled data without ``allow_pickle``, or a table that does not match.
    """
    kind = header["kind"]
    meta = header.get("value", {})
    if kind == "json":
        return orjson.loads(table.column("json")[0].as_py())
    if kind != "tree":
        return _leaf_value(table, kind, meta)
    if header.get("pickled") and not allow_pickle:
        raise CheckpointError(
            "it holds pickled objects, and unpickling runs code from the file: restore it with "
            "a CheckpointManager created with allow_pickle=True, and only if you trust the file"
        )
    parts: list[Any] = []
    for kind_, data, part_meta in zip(
        table.column("kind").to_pylist(),
        table.column("data").to_pylist(),
        table.column("meta").to_pylist(),
        strict=True,
    ):
        pm = orjson.loads(part_meta)
        if kind_ == "bytes":
            parts.append(data)
        elif kind_ == "pickle":
            parts.append(pickle.loads(data))
        else:
            parts.append(_leaf_value(_from_ipc(data), kind_, pm))
    return _decode_tree(meta["skeleton"], parts)
