"""Processor starts and ends of the runs a monitor watched, kept as written until read.

The scheduler writes each processor's first-firing time and its end into the run's
:class:`~mpipe._observe._hooks.Timeline` (columns, no call). The monitor turns them into processor
states and into ``processor_start`` / ``processor_complete`` events only when someone reads
states or events; the logs of runs whose events could no longer be among the kept ones are
dropped at a later run's start, counted but never turned into events. See
``docs/observability.md``.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import repeat

from .._hooks import Timeline

__all__ = ["Note", "RunLog"]

#: An event kept cheaply until read: (timestamp, kind, processor id, data key, number, level).
Note = tuple[float, str, "str | None", str, int, int]


class RunLog:
    """One run's processor starts and ends (its timeline's ``firsts`` and ``ends`` tables, not
    its spans), and how much of them is applied.

    Args:
        processor_ids: The run's processors (the list shared by the runs of one plan).
        timeline: The run's timeline.
        offset: ``time.time() - time.perf_counter()`` at the run's start: the wall time of a
            perf-counter reading.
        notes: Whether starts and ends become events when read (False when they were
            recorded as events live, or monitoring was stopped).
    """

    __slots__ = (
        "began",
        "closed",
        "ended",
        "ends",
        "failed",
        "firsts",
        "n_ends",
        "n_firsts",
        "notes",
        "offset",
        "processor_ids",
        "weight",
    )

    def __init__(
        self, processor_ids: list[str], timeline: Timeline, offset: float, notes: bool
    ) -> None:
        self.processor_ids = processor_ids
        self.firsts = timeline.firsts
        self.ends = timeline.ends
        self.offset = offset
        self.weight = 0  # events it would still add, as of its run's end
        self.notes = notes
        self.n_firsts = 0  # first firings already applied
        self.n_ends = 0  # ends already applied
        self.began = False  # the processors' "waiting" state applied
        self.ended = False
        self.closed = False  # the end-of-run states applied
        self.failed: set[str] = set()

    def unread(self) -> tuple[int, int]:
        """Starts and ends not applied yet."""
        return len(self.firsts) - self.n_firsts, len(self.ends) - self.n_ends

    def apply(
        self, state: dict[str, str], has_errors: Callable[[str], bool]
    ) -> tuple[range, range]:
        """Bring ``state`` up to date with this log; return the rows of starts and of ends
        that this call applied.

        ``has_errors(pid)`` tells whether a processor had failed firings, for the state of
        processors that did not complete in an ended run (``"error"`` rather than ``"idle"``).
        """
        if not self.began:
            state.update(dict.fromkeys(self.processor_ids, "waiting"))
            self.began = True
        firsts = range(self.n_firsts, len(self.firsts))
        ends = range(self.n_ends, len(self.ends))
        self.n_firsts, self.n_ends = firsts.stop, ends.stop
        state.update(zip(self.firsts.ids(firsts.start, firsts.stop), repeat("running")))
        state.update(zip(self.ends.ids(ends.start, ends.stop), repeat("completed")))
        if self.ended and not self.closed:
            self.closed = True
            for pid in self.processor_ids:
                if state.get(pid) != "completed":
                    failed = pid in self.failed or has_errors(pid)
                    state[pid] = "error" if failed else "idle"
            for pid in self.failed:
                if pid in state:
                    state[pid] = "error"
        return firsts, ends

    def notes_for(
        self, firsts: range, ends: range, kinds: tuple[str, str], level: int
    ) -> list[Note]:
        """Events of the starts and ends in those rows (``kinds``: the start and complete
        event types)."""
        offset = self.offset
        start_kind, complete_kind = kinds
        starts: list[Note] = [
            (offset + t, start_kind, pid, "index", 0, level)
            for pid, _, t, _, _ in self.firsts.rows(firsts.start, firsts.stop)
        ]
        done: list[Note] = [
            (offset + t, complete_kind, pid, "firings", n, level)
            for pid, n, t, _, _ in self.ends.rows(ends.start, ends.stop)
        ]
        return starts + done  # put in time order with every other event when folded
