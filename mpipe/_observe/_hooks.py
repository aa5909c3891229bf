"""The hook protocol: what the scheduler tells observers of a run.

Monitors, progress displays, trace recorders and alert managers all listen here; the scheduler
knows nothing of them. Every method has a no-op default, so an observer overrides what it needs.
Hooks run on the event-loop thread, inside the scheduler's hot path: keep them short.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ._rows import Rows

__all__ = ["RunHooks", "RunInfo", "Span", "Timeline", "Wait"]

#: A firing as readers see it: (processor id, index, start, end, worker, error text or None).
Span = tuple[str, int, float, float, str, str | None]
#: A firing's wait for a worker: (processor id, index, submitted, picked, worker).
Wait = tuple[str, int, float, float, str]


class Timeline:
    """A run's firings and its processors' first firings and ends, as rows.

    A recording observer (one that keeps everything and reads it later, like
    :class:`~mpipe.Monitor`) returns one from :meth:`RunHooks.take_timeline`. The scheduler then
    adds a row here where it would have called ``firing_end`` (on success),
    ``processor_start`` or ``processor_end`` on that observer: one call, and with the C row
    tables no new Python object, per firing. Failures, retries, skips and everything else
    still come through the hook methods. Times are ``time.perf_counter()`` values in seconds.

    Attributes:
        spans: One row per firing: (processor id, index, start, end, worker), where start and
            end are when the firing ran, measured where it ran when its backend tells (a worker
            process, a thread), else from its submission to its answer. The observer adds the
            failed ones, with their error text in ``errors`` (row number -> text).
        streamed: Rows of firings that returned a generator (row number -> seconds spent
            running it): such a firing lives from its call to its last item, interleaved with
            other firings, and ran for only part of that time.
        waits: One row per firing that waited for a worker (processor id, index, submitted,
            picked, worker): from its submission to when its worker took it up.
        transfer: Seconds per processor spent moving inputs to workers and outputs back (the
            time from submission to answer that was neither waiting nor running).
        firsts: One row per processor that fired: (processor id, 0, start of its first
            firing, 0.0, None).
        ends: One row per processor whose outputs closed: (processor id, firings, time, 0.0,
            None).
        full: Called by the scheduler when ``spans.add`` answers True (``spans.limit``
            reached); the observer may then fold and cut the rows and raise the limit.
    """

    __slots__ = ("ends", "errors", "firsts", "full", "spans", "streamed", "transfer", "waits")

    def __init__(self, limit: int = sys.maxsize, full: Callable[[], None] | None = None) -> None:
        self.spans = Rows(limit)
        self.errors: dict[int, str] = {}
        self.streamed: dict[int, float] = {}
        self.waits = Rows()
        self.transfer: dict[str, float] = {}
        self.firsts = Rows()
        self.ends = Rows()
        self.full: Callable[[], None] = full if full is not None else _nothing

    def __len__(self) -> int:
        return len(self.spans)

    def rows(self, start: int = 0, stop: int | None = None) -> list[Span]:
        """Span rows ``start:stop`` with their error text (None for a success)."""
        errors = self.errors
        return [
            (pid, index, begin, end, worker or "main", errors.get(row))
            for row, (pid, index, begin, end, worker) in enumerate(
                self.spans.rows(start, len(self.spans) if stop is None else stop), start
            )
        ]

    def wait_rows(self, start: int = 0, stop: int | None = None) -> list[Wait]:
        """Wait rows ``start:stop``."""
        return [
            (pid, index, submitted, picked, worker or "main")
            for pid, index, submitted, picked, worker in self.waits.rows(
                start, len(self.waits) if stop is None else stop
            )
        ]

    def add_wait(
        self, processor_id: str, first: int, k: int, submitted: float, picked: float, worker: str
    ) -> None:
        """Firings ``first .. first + k - 1`` waited from ``submitted`` to ``picked``."""
        if k == 1:
            self.waits.add(processor_id, first, submitted, picked, worker)
        else:
            self.waits.add_run(processor_id, first, submitted, picked, worker, k)

    def cut(self, keep: int) -> int:
        """Drop the span rows past the first ``keep``; return how many were dropped."""
        dropped: int = self.spans.cut(keep)
        if dropped:
            for table in (self.errors, self.streamed):
                for row in [r for r in table if r >= keep]:
                    del table[row]
        return dropped


def _nothing() -> None:
    pass


@dataclass
class RunInfo:
    """What observers learn about a run when it starts.

    ``processor_ids`` is one list shared by every run of the same compiled plan: read it,
    never change it.
    """

    run_id: str
    graph_id: str
    processor_ids: list[str]
    placements: dict[str, str]
    started_at: float
    mode: str = "batch"
    extra: dict[str, Any] = field(default_factory=dict)


class RunHooks:
    """Base class of run observers. Times are ``time.perf_counter()`` values in seconds."""

    def take_timeline(self) -> Timeline | None:
        """Asked once per run, after :meth:`run_start`: a :class:`Timeline` to be written to
        instead of being called per successful firing and per processor start and end, or None
        (the default) to be called. One observer per run at most gets a timeline; any other
        that asks is called as usual."""
        return None

    def run_start(self, run: RunInfo) -> None:
        """A run begins: every processor is about to be initialized."""

    def processor_start(self, processor_id: str) -> None:
        """A processor is about to fire for the first time in this run."""

    def firing_start(self, processor_id: str, index: int, start: float) -> None:
        """A firing of ``processor_id`` (the ``index``-th of its stream) was handed to its backend."""

    def firing_end(
        self,
        processor_id: str,
        index: int,
        start: float,
        end: float,
        worker: str,
        error: BaseException | None,
    ) -> None:
        """A firing finished: successfully when ``error`` is None.

        ``start`` and ``end`` are when it ran: measured where it ran when its backend tells (a
        worker process, a thread), else from its submission to its answer. For a successful
        generator, ``end - start`` is the time it spent running, ending when it was exhausted.
        """

    def firing_waited(
        self,
        processor_id: str,
        index: int,
        submitted: float,
        picked: float,
        worker: str,
        transfer: float,
    ) -> None:
        """A firing that a backend timed where it ran (a worker process, a thread) succeeded:
        it was handed over at ``submitted`` and taken up by ``worker`` at ``picked``, and
        ``transfer`` seconds went into moving its input there and its output back. Called
        before its ``firing_end``, whose start and end are then when it ran there."""

    def firing_retry(
        self, processor_id: str, index: int, attempt: int, error: BaseException
    ) -> None:
        """A failed firing is run again (``attempt`` is the coming try, 2 for the first retry)."""

    def firing_skip(self, processor_id: str, index: int, error: BaseException) -> None:
        """A failed firing is dropped and the run goes on."""

    def processor_end(self, processor_id: str, firings: int) -> None:
        """A processor has no more input and its outputs are closed."""

    def pipe_full(self, pipe_id: str) -> None:
        """A producer found ``pipe_id`` full and waits for room."""

    def run_end(self, run: RunInfo, error: BaseException | None) -> None:
        """A run ended: successfully when ``error`` is None."""

    # One generic channel for the rarer things a run does
    # (checkpoint create/restore, breakpoint hit, worker start/crash), so that new kinds need
    # no new hook method. Never called per firing.
    def notice(self, kind: str, processor_id: str | None, data: dict[str, Any]) -> None:
        """Something rarer happened in a run.

        ``kind`` is an :class:`mpipe.EventType` value such as ``"checkpoint_create"``,
        ``"breakpoint_hit"`` or ``"worker_crash"``; ``data`` is JSON-compatible.
        """
