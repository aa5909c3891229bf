"""Checkpoints: Arrow IPC files that round-trip values exactly, and refuse what they must."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mpipe import CheckpointError, CheckpointManager, CheckpointWarning


class _Custom:
    def __init__(self, x: int) -> None:
        self.x = x

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Custom) and other.x == self.x

    __hash__ = None  # type: ignore[assignment]


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray):
        return (
            isinstance(b, np.ndarray)
            and a.dtype == b.dtype
            and a.shape == b.shape
            and bool(np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"))
        )
    if isinstance(a, np.generic):
        return type(a) is type(b) and (a == b or (np.isnan(a) and np.isnan(b)))
    if isinstance(a, (pa.Table, pa.RecordBatch)):
        return type(a) is type(b) and a.equals(b) and a.schema.equals(b.schema, check_metadata=True)
    if isinstance(a, (pa.Array, pa.ChunkedArray)):
        return type(a) is type(b) and a.equals(b)
    if isinstance(a, float) and math.isnan(a):
        return isinstance(b, float) and math.isnan(b)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(map(_same, a, b))
    if isinstance(a, dict):
        return type(b) is dict and list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    return type(a) is type(b) and bool(a == b)


TABLE = pa.table(
    {"x": [1, 2, None], "s": ["a", None, "c"], "f": [0.5, 1.5, 2.5]}
).replace_schema_metadata({"origin": "test"})
VALUES: list[Any] = [
    TABLE,
    pa.table({"empty": pa.array([], pa.int32())}),
    pa.record_batch({"a": [1, 2], "b": [[1], [2, 3]]}),
    pa.array([1, None, 3]),
    pa.array(["x", "y"], pa.large_string()),
    pa.chunked_array([[1, 2], [3]]),
    {"name": "ok", "values": [1, 2.5, None, True, "s"], "nested": {"deep": [[], {}]}},
    [1, -(2**63), 2**63 - 1, "x"],
    "just a string",
    None,
    3.25,
    (1, "tuple", (2, 3)),
    {1: "int key", (2, 3): "tuple key", "s": b"bytes"},
    [float("nan"), float("inf"), -float("inf"), 2**80],
    {"arrow": TABLE, "array": np.arange(4.0), "scalar": np.int16(7), "list": [pa.array([1])]},
    b"\x00raw bytes\xff",
]


@pytest.mark.parametrize("value", VALUES, ids=lambda v: type(v).__name__)
def test_round_trip(tmp_path: Path, value: Any) -> None:
    manager = CheckpointManager(tmp_path)
    cid = manager.create_checkpoint("v", "proc", value)
    assert _same(value, manager.restore_checkpoint(cid))
    # the same, in memory
    memory = CheckpointManager()
    assert _same(value, memory.restore_checkpoint(memory.create_checkpoint("v", "proc", value)))


DTYPES = ["i1", "i2", "<i4", ">i8", "u1", "u2", "u4", "u8", "f2", "f4", "f8", "?", "c8", "c16",
          "M8[ns]", "M8[D]", "m8[s]", "U5", "S3", [("a", "i4"), ("b", "f8")]]  # fmt: skip
SHAPES = [(0,), (7,), (2, 3), (2, 1, 4), ()]


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_numpy_round_trip(dtype: Any, shape: tuple[int, ...]) -> None:
    rng = np.random.default_rng(0)
    n = int(np.prod(shape))
    dt = np.dtype(dtype)
    if dt.kind in "US":
        words = ["".join(rng.choice(list("abcxyz"), size=i % 4)) for i in range(n)]
        arr = np.array(words, dtype=dt).reshape(shape)
    else:
        raw = rng.integers(0, 100, size=n * dt.itemsize, dtype=np.uint8).tobytes()
        arr = np.frombuffer(raw, dtype=dt, count=n).reshape(shape)
    if np.dtype(dtype).kind in "fc":
        arr = np.where(np.isfinite(arr), arr, 0).astype(dtype)
    manager = CheckpointManager()
    back = manager.restore_checkpoint(manager.create_checkpoint("arr", "p", arr))
    assert _same(arr, back)
    assert back.flags.writeable


def test_numpy_is_stored_as_arrow(tmp_path: Path) -> None:
    manager = CheckpointManager(tmp_path)
    cid = manager.create_checkpoint("arr", "p", np.arange(12, dtype="f4").reshape(3, 4))
    with pa.ipc.open_file(tmp_path / f"{cid}.arrow") as reader:
        table = reader.read_all()
    assert table.column("values").type == pa.float32()
    assert table.num_rows == 12
    noncontig = np.arange(20).reshape(4, 5)[:, ::2]
    back = manager.restore_checkpoint(manager.create_checkpoint("nc", "p", noncontig))
    assert _same(noncontig, back)


def test_pickle_only_when_allowed(tmp_path: Path) -> None:
    strict = CheckpointManager(tmp_path)
    before = strict.list_checkpoints()
    with pytest.raises(CheckpointError, match=r"_Custom.*allow_pickle=True"):
        strict.create_checkpoint("obj", "p", {"obj": _Custom(1)})
    with pytest.raises(CheckpointError, match="allow_pickle"):
        strict.create_checkpoint("objs", "p", np.array([_Custom(1)], dtype=object))
    assert strict.list_checkpoints() == before
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    loose = CheckpointManager(tmp_path, allow_pickle=True)
    cid = loose.create_checkpoint("obj", "p", {"obj": _Custom(1), "arr": np.arange(3)})
    assert loose.restore_checkpoint(cid)["obj"] == _Custom(1)
    with pytest.raises(CheckpointError, match=r"pickled objects.*allow_pickle=True"):
        CheckpointManager(tmp_path).restore_checkpoint(cid)
    preview = CheckpointManager(tmp_path).get_checkpoint_data_preview(cid)
    assert "pickled" in preview and "_Custom" not in preview


def test_new_manager_lists_and_restores_earlier_checkpoints(tmp_path: Path) -> None:
    first = CheckpointManager(tmp_path)
    ids = [first.create_checkpoint(f"n{i}", f"p{i % 2}", {"i": i}, {"run": i}) for i in range(5)]
    second = CheckpointManager(tmp_path)
    listed = second.list_checkpoints()
    assert [c["checkpoint_id"] for c in listed] == ids
    assert listed[2]["name"] == "n2" and listed[2]["metadata"] == {"run": 2}
    assert set(listed[0]) == {
        "checkpoint_id",
        "name",
        "processor_id",
        "created_at",
        "size_bytes",
        "metadata",
    }
    assert listed[0]["size_bytes"] == (tmp_path / f"{ids[0]}.arrow").stat().st_size
    assert [c["name"] for c in second.list_checkpoints("p1")] == ["n1", "n3"]
    assert second.restore_checkpoint(ids[3]) == {"i": 3}
    stats = second.get_statistics()
    assert stats["total_checkpoints"] == 5 and stats["by_processor"] == {"p0": 3, "p1": 2}
    second.delete_checkpoint(ids[0])
    assert len(first.list_checkpoints()) == 4


def test_max_checkpoints_evicts_oldest(tmp_path: Path) -> None:
    manager = CheckpointManager(tmp_path, max_checkpoints=3)
    ids = [manager.create_checkpoint("n", "p", i) for i in range(5)]
    assert [c["checkpoint_id"] for c in manager.list_checkpoints()] == ids[2:]
    assert len(list(tmp_path.glob("*.arrow"))) == 3
    with pytest.raises(CheckpointError, match="unknown checkpoint id"):
        manager.restore_checkpoint(ids[0])
    memory = CheckpointManager(max_checkpoints=1)
    memory.create_checkpoint("a", "p", 1)
    last = memory.create_checkpoint("b", "p", 2)
    assert [c["checkpoint_id"] for c in memory.list_checkpoints()] == [last]


def test_names_cannot_escape_the_folder(tmp_path: Path) -> None:
    folder = tmp_path / "ckpt"
    manager = CheckpointManager(folder)
    for name in ("../../x", "/etc/passwd", "a/b", "..", "\x00nul"):
        cid = manager.create_checkpoint(name, "../p", name)
        assert manager.restore_checkpoint(cid) == name
    assert sorted(p.parent for p in tmp_path.rglob("*") if p.is_file()) == [folder] * 5
    for bad in ("../../x", "../ckpt/x", "/etc/passwd", "", "x" * 30):
        with pytest.raises(CheckpointError, match="unknown checkpoint id"):
            manager.restore_checkpoint(bad)
        with pytest.raises(CheckpointError, match="unknown checkpoint id"):
            manager.delete_checkpoint(bad)


def test_corrupt_and_truncated_files_are_skipped_with_a_warning(tmp_path: Path) -> None:
    manager = CheckpointManager(tmp_path)
    good = manager.create_checkpoint("good", "p", np.arange(1000))
    bad = [manager.create_checkpoint(f"bad{i}", "p", np.arange(1000)) for i in range(3)]
    truncated = tmp_path / f"{bad[0]}.arrow"
    truncated.write_bytes(truncated.read_bytes()[:-100])
    garbage = tmp_path / f"{bad[1]}.arrow"
    garbage.write_bytes(os.urandom(garbage.stat().st_size))
    empty = tmp_path / f"{bad[2]}.arrow"
    empty.write_bytes(b"")
    fresh = CheckpointManager(tmp_path)
    with pytest.warns(CheckpointWarning, match="skipping unreadable checkpoint") as caught:
        listed = fresh.list_checkpoints()
    assert [c["checkpoint_id"] for c in listed] == [good]
    assert len(caught) == 3
    for cid in bad:
        with pytest.raises(CheckpointError, match=f"checkpoint '{cid}' cannot be restored"):
            fresh.restore_checkpoint(cid)
    assert _same(fresh.restore_checkpoint(good), np.arange(1000))
    assert fresh.get_statistics()["unreadable_files"] == 3


def test_bad_folders(tmp_path: Path) -> None:
    a_file = tmp_path / "file"
    a_file.write_text("not a folder")
    with pytest.raises(CheckpointError, match="is a file, not a folder"):
        CheckpointManager(a_file)
    with pytest.raises(CheckpointError, match="cannot create checkpoint folder"):
        CheckpointManager(a_file / "sub")
    with pytest.raises(CheckpointError, match=r"not writable|cannot create"):
        CheckpointManager("/proc/mpipe-checkpoints")
    with pytest.raises(CheckpointError, match="max_checkpoints"):
        CheckpointManager(tmp_path, max_checkpoints=0)
    for bad in ("", 42):
        with pytest.raises(CheckpointError, match="storage_path must be a folder path or None"):
            CheckpointManager(bad)  # type: ignore[arg-type]


def test_bad_arguments_lose_nothing(tmp_path: Path) -> None:
    manager = CheckpointManager(tmp_path)
    kept = manager.create_checkpoint("kept", "p", [1, 2])
    with pytest.raises(CheckpointError, match="metadata is not JSON-compatible"):
        manager.create_checkpoint("m", "p", 1, {"bad": object()})
    with pytest.raises(CheckpointError, match="metadata must be a dict"):
        manager.create_checkpoint("m", "p", 1, [1])  # type: ignore[arg-type]
    with pytest.raises(CheckpointError, match="name must be a string"):
        manager.create_checkpoint(1, "p", 1)  # type: ignore[arg-type]
    assert [c["checkpoint_id"] for c in manager.list_checkpoints()] == [kept]
    assert manager.restore_checkpoint(kept) == [1, 2]


def test_preview_and_stale_temp_files(tmp_path: Path) -> None:
    manager = CheckpointManager(tmp_path)
    cid = manager.create_checkpoint("big", "p", list(range(1000)))
    preview = manager.get_checkpoint_data_preview(cid, max_length=60)
    assert len(preview) == 60 and preview.startswith("[big / p, json] [0, 1, 2")
    # a temp file left by a writer that died (pid 2**22 + 1 is beyond pid_max's default)
    stale = tmp_path / f".{cid[:-1]}0.{2**22 + 1}.tmp"
    stale.write_bytes(b"partial")
    CheckpointManager(tmp_path)
    assert not stale.exists()


_leaves = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True)
    | st.text(max_size=8)
    | st.binary(max_size=8)
)
_values = st.recursive(
    _leaves,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.dictionaries(st.text(max_size=4) | st.integers(), inner, max_size=4)
    ),
    max_leaves=20,
)


@pytest.mark.slow
@settings(max_examples=150, deadline=None)
@given(_values)
def test_any_plain_value_round_trips(value: Any) -> None:
    manager = CheckpointManager()
    assert _same(value, manager.restore_checkpoint(manager.create_checkpoint("h", "p", value)))
