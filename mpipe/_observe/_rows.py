"""Row tables: where the scheduler writes a monitored run's firings, one call per row.

:class:`Rows` keeps ``(id, integer, start, end, worker)`` rows: a str, an int, two floats and
a str or None. The C version (``mpipe._native.Rows``, built with the package on Linux) keeps
them in C arrays, so appending a row makes no Python object; elsewhere a list of tuples with
the same methods stands in.
"""

from __future__ import annotations

import operator
import sys
from array import array
from typing import TYPE_CHECKING

__all__ = ["PyRows", "Rows"]

Row = tuple[str, int, float, float, "str | None"]

#: The most rows a table holds (as the C table: every column's size fits in a signed size).
ROWS_MAX = sys.maxsize // 16


class PyRows:
    """The pure-Python :class:`Rows`: same methods, rows kept as tuples.

    Args:
        limit: :meth:`add` and :meth:`add_run` answer True once this many rows are held.
    """

    __slots__ = ("_rows", "limit")

    def __init__(self, limit: int = sys.maxsize) -> None:
        self._rows: list[Row] = []
        self.limit = limit

    def __len__(self) -> int:
        return len(self._rows)

    def add(self, id: str, integer: int, start: float, end: float, worker: str | None) -> bool:
        """Append a row; True when the table now holds ``limit`` rows or more."""
        if type(id) is not str:
            raise TypeError(f"row id must be a str, not {type(id).__name__}")
        if worker is not None and type(worker) is not str:
            raise TypeError(f"row worker must be a str or None, not {type(worker).__name__}")
        number = operator.index(integer)
        if not -(1 << 63) <= number < 1 << 63:
            raise OverflowError("row integer does not fit in 64 bits")
        self._rows.append((id, number, _real(start), _real(end), worker))
        return len(self._rows) >= self.limit

    def add_run(
        self, id: str, first: int, start: float, end: float, worker: str | None, count: int
    ) -> bool:
        """Append ``count`` rows with integers ``first``, ``first + 1``, ..."""
        if count < 0:
            raise ValueError(f"count must be >= 0, got {count}")
        if count > ROWS_MAX - len(self._rows):
            raise OverflowError(f"a row table holds at most {ROWS_MAX} rows")
        for j in range(count):
            self.add(id, first + j, start, end, worker)
        return len(self._rows) >= self.limit

    def rows(self, start: int = 0, stop: int | None = None) -> list[Row]:
        """Rows ``start:stop`` as tuples."""
        return self._rows[start:stop]

    def ids(self, start: int = 0, stop: int | None = None) -> list[str]:
        """The ids of rows ``start:stop``."""
        return [r[0] for r in self._rows[start:stop]]

    def ints(self, start: int = 0, stop: int | None = None) -> bytes:
        """The integers of rows ``start:stop``, as native int64 bytes."""
        return array("q", [r[1] for r in self._rows[start:stop]]).tobytes()

    def starts(self, start: int = 0, stop: int | None = None) -> bytes:
        """The first floats of rows ``start:stop``, as native float64 bytes."""
        return array("d", [r[2] for r in self._rows[start:stop]]).tobytes()

    def ends(self, start: int = 0, stop: int | None = None) -> bytes:
        """The second floats of rows ``start:stop``, as native float64 bytes."""
        return array("d", [r[3] for r in self._rows[start:stop]]).tobytes()

    def cut(self, keep: int) -> int:
        """Drop the rows past the first ``keep``; return how many were dropped."""
        if keep < 0:
            raise ValueError(f"keep must be >= 0, got {keep}")
        dropped = max(len(self._rows) - keep, 0)
        del self._rows[keep:]
        return dropped


def _real(value: float) -> float:
    """``float(value)`` for numbers only (as the C table: no parsing of text)."""
    if isinstance(value, (str, bytes, bytearray)):
        raise TypeError(f"must be real number, not {type(value).__name__}")
    return float(value)


if TYPE_CHECKING:
    Rows = PyRows
else:
    try:
        from .._native import Rows
    except ImportError:  # not built (not Linux, or a source tree without build_ext)
        Rows = PyRows
