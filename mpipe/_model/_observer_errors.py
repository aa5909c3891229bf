"""Failures of the user's observers (pipe taps, event handlers): logged once, then counted.

An observer must never disturb the flow it watches, so what it raises is caught; but a tap that
fails on every item of a long stream would print one traceback per item. The first failure of
each observer is logged with its traceback; later ones are only counted, and ``report()`` (at a
run's end, or when a pipe closes) logs one line with the count.
"""

from __future__ import annotations

import logging

__all__ = ["ObserverErrors"]

_log = logging.getLogger("mpipe")


class ObserverErrors:
    """Counts of failures per observer (named in the user's words: ``tap 'x' on pipe 'p'``)."""

    __slots__ = ("counts",)

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def failed(self, who: str) -> None:
        """Record that ``who`` raised; call from the ``except`` block (the first is logged with
        its traceback)."""
        n = self.counts.get(who, 0) + 1
        self.counts[who] = n
        if n == 1:
            _log.exception("%s failed (further failures are counted and reported once)", who)

    def report(self) -> None:
        """Log how many more times each observer failed since its first logged failure, and
        start counting afresh (the next failure is logged in full again)."""
        counts, self.counts = self.counts, {}
        for who, n in counts.items():
            if n > 1:
                _log.error("%s failed %d more time(s) after the failure logged above", who, n - 1)
