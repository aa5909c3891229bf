"""Firing spans and the per-processor statistics folded from them.

A run's spans live in its :class:`~mpipe._observe._hooks.Timeline` (columns the scheduler appends to).
The current run's timeline is also its trace, up to ``max_spans`` rows; past that, rows are
folded into the statistics every ``FOLD_EVERY`` firings and cut, so memory stays bounded.
Earlier runs' timelines wait, unfolded, until someone reads the statistics or until they hold
more than ``max_spans`` rows together; then they are folded in one vectorized pass. A firing's
waits for a worker (the timeline's ``waits``) and its data's transfer are folded alongside.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .._hooks import Timeline
from ._stats import ProcessorStats

__all__ = ["FOLD_EVERY", "MAX_SPANS", "SpanBook"]

#: Spans kept per run for the trace; later firings are counted as dropped from it.
MAX_SPANS = 250_000

#: Firings folded at a time once the trace of a run is full.
FOLD_EVERY = 4096


def _floats(chunks: list[bytes]) -> Any:
    """Native float64 bytes, joined, as a numpy array."""
    import numpy as np  # numpy loads with the first fold, not with the monitor

    return np.frombuffer(b"".join(chunks), dtype=np.float64)


class SpanBook:
    """The current run's timeline, earlier runs' unfolded ones, and the statistics.

    Args:
        max_spans: Span rows kept per run for the trace.
    """

    def __init__(self, max_spans: int = MAX_SPANS) -> None:
        self.max_spans = max_spans
        self.timeline = Timeline(max_spans, self.full)
        self.folded = 0  # rows of ``timeline`` already in the statistics
        self.waits_folded = 0  # wait rows of ``timeline`` already in the statistics
        self.dropped = 0  # rows of the current run cut from the trace
        # Earlier runs' (timeline, span rows folded, wait rows folded).
        self.pending: list[tuple[Timeline, int, int]] = []
        self.pending_rows = 0
        self.stats: dict[str, ProcessorStats] = {}
        #: Called before rows are cut from the current timeline (a reader catches up).
        self.before_cut: Callable[[], None] | None = None

    def begin(self) -> Timeline:
        """A new run: its own timeline; the last one waits to be folded."""
        old, done = self.timeline, self.folded
        if done:
            # Partly folded already (read while live, or past the trace): fold the rest as
            # the live run it was, then close every processor's active window.
            self.fold()
            for stats in self.stats.values():
                stats.close_window()
        elif len(old) or len(old.waits) or old.transfer:
            self.pending.append((old, 0, self.waits_folded))
            self.pending_rows += len(old)
        self.timeline = Timeline(self.max_spans, self.full)
        self.folded = 0
        self.waits_folded = 0
        self.dropped = 0
        if self.pending_rows > self.max_spans:
            self._fold_pending()
        return self.timeline

    def full(self) -> None:
        """The current timeline reached its limit: fold it, cut what the trace cannot keep."""
        timeline = self.timeline
        self.fold()
        if self.before_cut is not None:
            self.before_cut()
        self.dropped += timeline.cut(self.max_spans)
        self.folded = len(timeline)
        timeline.waits.cut(self.max_spans)
        self.waits_folded = len(timeline.waits)
        timeline.spans.limit = len(timeline) + FOLD_EVERY

    def stat(self, processor_id: str) -> ProcessorStats:
        """The statistics of one processor (made when first needed)."""
        stats = self.stats.get(processor_id)
        if stats is None:
            stats = self.stats[processor_id] = ProcessorStats(processor_id)
        return stats

    def fold(self) -> None:
        """Account every span not yet in the statistics."""
        self._fold_pending()
        timeline = self.timeline
        if len(timeline) > self.folded:
            self._fold_rows([(timeline, self.folded, len(timeline))])
            self.folded = len(timeline)
        self._fold_waits([(timeline, self.waits_folded, len(timeline.waits))])
        self.waits_folded = len(timeline.waits)

    def _fold_pending(self) -> None:
        if not self.pending:
            return
        pending = self.pending
        parts = [(t, done, len(t)) for t, done, _ in pending if len(t) > done]
        self.pending = []
        self.pending_rows = 0
        if parts:
            self._fold_rows(parts, closed=True)
        self._fold_waits([(t, done, len(t.waits)) for t, _, done in pending])

    def _fold_waits(self, parts: list[tuple[Timeline, int, int]]) -> None:
        """Fold wait rows ``start:stop`` of each timeline, and each timeline's transfer."""
        for timeline, _, _ in parts:
            for pid, seconds in timeline.transfer.items():
                self.stat(pid).transfer_total += seconds
            timeline.transfer.clear()
        parts = [(t, a, b) for t, a, b in parts if b > a]
        if not parts:
            return
        import numpy as np  # loaded by the first fold with rows (a read of the metrics, say)

        ids: list[str] = []
        for timeline, start, stop in parts:
            ids.extend(timeline.waits.ids(start, stop))
        waited = _floats([t.waits.ends(a, b) for t, a, b in parts]) - _floats(
            [t.waits.starts(a, b) for t, a, b in parts]
        )
        keys = list(dict.fromkeys(ids))
        code_of = {pid: i for i, pid in enumerate(keys)}
        codes = np.fromiter(map(code_of.__getitem__, ids), dtype=np.intp, count=len(ids))
        counts = np.bincount(codes, minlength=len(keys)).tolist()
        totals = np.bincount(codes, weights=waited, minlength=len(keys)).tolist()
        longest = np.full(len(keys), 0.0)
        np.maximum.at(longest, codes, waited)
        for n, pid in enumerate(keys):
            self.stat(pid).add_waits(counts[n], totals[n], float(longest[n]))

    def _fold_rows(self, parts: list[tuple[Timeline, int, int]], closed: bool = False) -> None:
        """Fold rows ``start:stop`` of each timeline, per processor, in one vectorized pass.

        ``closed``: the parts are whole runs that ended (each adds its active window, first
        firing start to last firing end, to the processor's); else one part, of the live run.
        """
        import numpy as np  # loaded by the first fold, not by making a monitor

        ids: list[str] = []
        for timeline, start, stop in parts:
            ids.extend(timeline.spans.ids(start, stop))
        times = np.empty((len(ids), 2))
        times[:, 0] = _floats([t.spans.starts(a, b) for t, a, b in parts])
        times[:, 1] = _floats([t.spans.ends(a, b) for t, a, b in parts])
        # Run time: end - start, except for generators, which ran for only part of their life.
        run = times[:, 1] - times[:, 0]
        offset = 0
        for timeline, start, stop in parts:
            for row, busy in timeline.streamed.items():
                if start <= row < stop:
                    run[offset + row - start] = busy
            offset += stop - start
        # Code the rows by processor (first-seen order) and by part, then sort them stably by
        # (processor, part): each processor's rows are one slice, each (processor, run) a
        # sub-slice, in firing order.
        keys = list(dict.fromkeys(ids))
        code_of = {pid: i for i, pid in enumerate(keys)}
        codes = np.fromiter(map(code_of.__getitem__, ids), dtype=np.intp, count=len(ids))
        n_parts = len(parts)
        if n_parts > 1:
            sizes = [stop - start for _, start, stop in parts]
            codes = codes * n_parts + np.repeat(np.arange(n_parts), sizes)
        order = np.argsort(codes, kind="stable")
        codes = codes[order]
        starts, ends = times[order, 0], times[order, 1]
        durations = run[order]
        # Windows per (processor, part); counts, totals and maxima per processor: all in
        # numpy. Only the percentile samples take a Python step per processor.
        heads = np.flatnonzero(np.concatenate(([True], codes[1:] != codes[:-1])))
        firsts = np.minimum.reduceat(starts, heads)
        lasts = np.maximum.reduceat(ends, heads)
        owner = codes[heads] // n_parts
        pid_codes = codes // n_parts
        counts = np.bincount(pid_codes, minlength=len(keys))
        bounds = np.concatenate(([0], np.cumsum(counts))).tolist()
        totals = np.bincount(pid_codes, weights=durations, minlength=len(keys)).tolist()
        longest = np.maximum.reduceat(durations, bounds[:-1]).tolist()
        spans = durations.tolist()
        if closed:  # each processor's windows of those runs, summed
            windows = np.bincount(owner, weights=lasts - firsts, minlength=len(keys)).tolist()
        else:
            assert n_parts == 1 and len(heads) == len(keys)
            first_starts, last_ends = firsts.tolist(), lasts.tolist()
        for n, pid in enumerate(keys):
            stats = self.stat(pid)
            stats.add(spans[bounds[n] : bounds[n + 1]], totals[n], longest[n])
            if closed:
                stats.window += windows[n]
            else:
                stats.extend_window(first_starts[n], last_ends[n])
