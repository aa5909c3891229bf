"""The benchmarks' work functions: the firings every pool runs.

A worker process that receives one of them by reference imports this module, so it imports
nothing at module level: what a worker imports for a firing is the work's own cost, never the
benchmarks' plumbing (``_anchors.py`` re-exports these names).
"""

from __future__ import annotations

from typing import Any


def inc(x: int) -> int:
    """The tiny firing."""
    return x + 1


def identity(x: Any) -> Any:
    """The firing of the big-payload benchmark: the same object back."""
    return x


def scale(a: Any) -> Any:
    """Stage 1 of the array stream: new bytes, twice the values."""
    return a * 2


def total(a: Any) -> float:
    """Stage 2 of the array stream: a small result."""
    return float(a.sum())


def burn(spec: tuple[int, int]) -> int:
    """CPU-bound pure-Python work: ``n`` steps of an LCG seeded with ``seed``."""
    seed, n = spec
    x = seed
    for _ in range(n):
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF
    return x


def add_column(batch: Any) -> Any:
    """Stage 1 of the record-batch stream: a new column ``c = a + b`` (new bytes)."""
    import pyarrow.compute as pc

    return batch.append_column("c", pc.add(batch.column("a"), batch.column("b")))


def scale_column(batch: Any) -> Any:
    """Stage 2: replace ``c`` by ``2 c`` (new bytes again)."""
    import pyarrow.compute as pc

    index = batch.schema.get_field_index("c")
    return batch.set_column(index, "c", pc.multiply(batch.column("c"), 2))


def summarize(batch: Any) -> tuple[int, int]:
    """Stage 3: the batch's rows and the sum of ``c`` (a small result)."""
    import pyarrow.compute as pc

    return batch.num_rows, pc.sum(batch.column("c")).as_py()


def one_thread_per_library() -> None:
    """A ``ProcessPoolExecutor`` initializer: one thread in each numeric library's pool (the
    variables mpipe sizes for its own workers), as loky and Dask's nannies give theirs. It
    runs before the worker's first task imports numpy, which reads these once."""
    import os

    from mpipe._backends._process._launch import THREAD_LIMITS

    for name in THREAD_LIMITS:
        os.environ[name] = "1"
