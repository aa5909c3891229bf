"""The work of the fusion benchmark, importable by worker processes of every pool.

One item: load a 1 MiB array (seeded by the item), then numpy work of about 5 ms on it per
stage, then a join of two branches (a small figure). ``reps`` sets each stage's length; the
benchmark calibrates it once (:func:`calibrate`).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

#: Float64 values of one item's array: 1 MiB.
VALUES = (1 << 20) // 8


def load(seed: int, values: int = VALUES) -> Any:
    """The item's array: ``values`` floats in [0, 1), seeded by the item."""
    return np.random.default_rng(seed).random(values)


def work(a: Any, reps: int) -> Any:
    """``reps`` passes of elementwise numpy work over ``a``; an array of the same size."""
    b = a
    for _ in range(reps):
        b = np.sqrt(b * b + 1.0)
    return b


def other_work(a: Any, reps: int) -> Any:
    """The other branch: the same amount of work, another result."""
    b = a
    for _ in range(reps):
        b = np.log1p(b * 0.5 + 1.0)
    return b


def join(inputs: dict[str, Any]) -> float:
    """The join of the two branches: one figure."""
    return float(np.dot(inputs["left"], inputs["right"]))


def join_two(left: Any, right: Any) -> float:
    """:func:`join` with the branches as two arguments (a Dask task's)."""
    return join({"left": left, "right": right})


def diamond_item(spec: tuple[int, int, int]) -> float:
    """The whole diamond for one item, fused by hand: ``(seed, reps, values)``."""
    seed, reps, values = spec
    a = load(seed, values)
    return join({"left": work(a, reps), "right": other_work(a, reps)})


def chain_item(spec: tuple[int, int, int]) -> Any:
    """The whole chain for one item, fused by hand: ``(seed, reps, values)``; an array."""
    seed, reps, values = spec
    return work(work(load(seed, values), reps), reps)


def calibrate(seconds: float, values: int = VALUES) -> int:
    """Passes of :func:`work` that take about ``seconds`` on this machine (at least one)."""
    a = load(0, values)
    work(a, 2)  # warm
    start = time.perf_counter()
    work(a, 8)
    per_pass = (time.perf_counter() - start) / 8
    return max(1, round(seconds / per_pass))
