"""Sizes of the benchmark suite, scaled by one knob.

``MPIPE_BENCH_SCALE`` (default 1) multiplies every item count, graph size, payload and firing
length of the suite; below 1 every benchmark also times one round. ``python benchmarks/report.py
--quick`` uses it to check, in seconds, that the whole suite runs and the report is made: the
figures of such a run mean nothing.
"""

from __future__ import annotations

import os

__all__ = ["QUICK", "SCALE", "rounds", "scaled"]


def _scale() -> float:
    text = os.environ.get("MPIPE_BENCH_SCALE", "1")
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"MPIPE_BENCH_SCALE must be a number, got {text!r}") from None
    if not 0 < value <= 1:
        raise ValueError(f"MPIPE_BENCH_SCALE must be in (0, 1], got {text!r}")
    return value


SCALE = _scale()
#: A scaled-down run: it checks that the benchmarks work, its figures are not measurements.
QUICK = SCALE < 1


def scaled(n: int, least: int = 1) -> int:
    """``n`` times the scale, at least ``least``."""
    return max(least, round(n * SCALE))


def rounds(n: int) -> int:
    """Timed rounds: ``n``, or one in a scaled-down run."""
    return 1 if QUICK else n
