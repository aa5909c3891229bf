"""Time series of a run, for reports and the live dashboard.

While a run is live, the monitor samples it every ``interval`` seconds (a loop timer, as for
process samples): how full each pipe is (items, and bytes estimated as items times the mean
size of the items that entered it so far), how many firings each processor has done and how
long they took in all, and the shared-memory arena's use. Process samples (CPU%, RSS) are
added as the monitor takes them, and errors, retries, skips and worker crashes as they happen.

Memory stays bounded: past ``max_points`` points, every other one is dropped and from then on
only every other tick is kept, so a long run keeps an even, coarser resolution.

Each point is one tuple appended in one step, and lists are replaced rather than changed in
place when thinned, so another thread (the dashboard's) can copy them while the run goes.
"""

from __future__ import annotations

import sys
import threading
import time
from operator import attrgetter
from typing import Any

from ..._model._pipe import byte_metrics, pipe_resets
from .._hooks import Timeline

__all__ = ["MAX_MARKS", "MAX_POINTS", "RunSeries"]

#: Points kept per run (each series), before thinning.
MAX_POINTS = 2000

#: Errors, retries, skips and crashes marked per run; later ones are only counted.
MAX_MARKS = 5000

#: One sample: (seconds since the run started, items per lane, bytes per lane, firings per
#: processor, busy seconds per processor, arena bytes used, arena bytes mapped).
Point = tuple[
    float, tuple[int, ...], tuple[float, ...], tuple[int, ...], tuple[float, ...], int, int
]

#: The lane counters that add up over the runs of a plan (a run's own: end minus start): those
#: every run moves, and those only a run in which a producer waited moves (the plan's
#: ``LaneBook`` notes those lanes); and the peaks a run's end keeps, after each lane's size.
_MOVED = ("items_in", "items_out", "bytes_in")
_STALLS = ("blocked_time", "full_events")
_ADDED = (*_MOVED, *_STALLS)
_KEPT = ("peak", "peak_bytes")
_ITEMS = attrgetter("items")

# The index of each processor id, per list of ids: a plan's runs share one list, so a monitor
# watching many runs of one executor builds it once (the last list seen is kept).
_last_index: tuple[list[str], dict[str, int]] | None = None


def _index_of(ids: list[str]) -> dict[str, int]:
    global _last_index
    last = _last_index
    if last is not None and last[0] is ids:
        return last[1]
    index = {pid: n for n, pid in enumerate(ids)}
    _last_index = (ids, index)
    return index


def _columns(lanes: list[Any], names: tuple[str, ...]) -> list[list[Any]]:
    """Each named counter of every lane, one list per counter (no object per lane: a wide
    graph has thousands of lanes, and a tuple each would keep the garbage collector busy)."""
    return [list(map(attrgetter(name), lanes)) for name in names]


#: New span rows read one by one below this many (numpy's fixed cost is not worth it).
SMALL = 256


class RunSeries:
    """The time series of one run; the monitor makes a new one for each run.

    Firing counts come from the run's :class:`~mpipe._observe._hooks.Timeline`: each sample
    reads the span rows added since the last (and the monitor calls :meth:`catch_up` before
    it cuts rows from a long run's trace), so counts are exact however long the run.

    Args:
        run: The run's :class:`~mpipe.RunInfo`.
        timeline: Where the run's firings are written.
        max_points: Points kept before thinning.
    """

    def __init__(
        self,
        run: Any,
        timeline: Timeline,
        max_points: int = MAX_POINTS,
        previous: RunSeries | None = None,
    ) -> None:
        self.max_points = max_points
        self.run_id: str = run.run_id
        self.graph_id: str = run.graph_id
        extra = run.extra
        self.graph: Any = extra.get("graph")
        self.placements: dict[str, str] = dict(run.placements)
        self.totals: dict[str, int] = dict(extra.get("totals", {}))
        self.processor_ids: list[str] = list(run.processor_ids)
        self._index = _index_of(run.processor_ids)
        lanes = extra.get("lanes", {})  # the run's own queues, sampled while it is live
        self._lane_dict = lanes
        self.pipe_ids: list[str] = list(lanes)
        self.lanes: list[Any] = list(lanes.values())
        self.backends: list[Any] = list(extra.get("backends", []))
        self.timeline = timeline
        self.cursor = 0
        self.counts = [0] * len(self.processor_ids)
        self.busy = [0.0] * len(self.processor_ids)
        self.points: list[Point] = []
        self.procs: list[tuple[float, dict[str, Any]]] = []
        self.marks: list[tuple[float, str, str, str]] = []
        self.marks_dropped = 0
        self.started = time.perf_counter()
        self.started_wall: float = run.started_at
        self.ended: float | None = None
        self.error: str | None = None
        # Lanes count their traffic over all the runs of their plan: a run's own is the
        # difference between the counters at its end and at its start. Both kept as plain
        # numbers, column by column (the metrics dicts are built only if a report asks, see
        # ``lane_metrics``).
        self._resets = pipe_resets()
        if (
            previous is not None
            and previous._lane_dict is lanes
            and previous._lane_counts is not None
            and previous._resets == self._resets
        ):
            # The last run of the same plan ended where this one starts (nothing changes a
            # lane's counters between runs but a pipe's reset): no pass over the lanes.
            self._lane_start = previous._lane_counts[: len(_ADDED)]
        else:
            # The first run of a plan seen: the lanes were emptied when the run was prepared,
            # so what they hold now (a batch's input) entered in this run.
            start = _columns(self.lanes, _ADDED)
            sizes = list(map(len, map(_ITEMS, self.lanes)))
            if any(sizes):
                start[0] = [n - k for n, k in zip(start[0], sizes, strict=True)]
                start[2] = [
                    b - lane.held if k else b
                    for b, k, lane in zip(start[2], sizes, self.lanes, strict=True)
                ]
            self._lane_start = start
        self._lane_counts: list[list[Any]] | None = None
        self.stride = 1
        self._ticks = 0
        self._final: tuple[float, tuple[int, ...], tuple[float, ...], int, int] | None = None
        self._lock = threading.Lock()

    # -- on the event loop, while the run is live ------------------------------------------------

    def catch_up(self) -> None:
        """Count the span rows added since the last call."""
        spans = self.timeline.spans
        stop = len(spans)
        start = min(self.cursor, stop)  # rows before the cursor may have been cut since
        if stop <= start:
            self.cursor = stop
            return
        counts, busy, index = self.counts, self.busy, self._index
        # Row by row while few rows came, or while this process has no numpy yet: importing it
        # here would hold the event loop up for a tenth of a second in the middle of the run.
        if stop - start < SMALL or "numpy" not in sys.modules:
            for pid, _, begin, end, _ in spans.rows(start, stop):
                n = index.get(pid)
                if n is not None:
                    counts[n] += 1
                    busy[n] += end - begin
        else:
            import numpy as np

            codes = np.fromiter(
                (index.get(pid, -1) for pid in spans.ids(start, stop)), np.intp, stop - start
            )
            durations = np.frombuffer(spans.ends(start, stop), np.float64) - np.frombuffer(
                spans.starts(start, stop), np.float64
            )
            known = codes >= 0
            size = len(counts)
            added = np.bincount(codes[known], minlength=size).tolist()
            took = np.bincount(codes[known], weights=durations[known], minlength=size).tolist()
            for n in range(size):
                counts[n] += added[n]
                busy[n] += took[n]
        self.cursor = stop

    def _lanes_now(self) -> tuple[float, tuple[int, ...], tuple[float, ...], int, int]:
        now = time.perf_counter() - self.started
        lanes = self.lanes
        items = tuple(map(len, map(_ITEMS, lanes)))  # C-level passes: thousands of lanes
        if any(items):
            nbytes = tuple(
                n * lane.bytes_in / lane.items_in if n else 0.0
                for n, lane in zip(items, lanes, strict=True)
            )
        else:  # the usual end of a run: every lane empty
            nbytes = (0.0,) * len(items)
        used, mapped = self.arena()
        return now, items, nbytes, used, mapped

    def sample(self) -> None:
        """Add a point, unless thinning skips this tick."""
        self._ticks += 1
        if self._ticks % self.stride:
            return
        self.catch_up()
        self._add(self._lanes_now())

    def _add(self, at: tuple[float, tuple[int, ...], tuple[float, ...], int, int]) -> None:
        now, items, nbytes, used, mapped = at
        self.points.append((now, items, nbytes, tuple(self.counts), tuple(self.busy), used, mapped))
        if len(self.points) > self.max_points:
            self.points = self.points[::2]
            self.stride *= 2

    def arena(self) -> tuple[int, int]:
        """Shared-memory bytes in use and mapped, as the backends report them."""
        used = mapped = 0
        for backend in self.backends:
            try:
                stats = backend.metrics().get("arena")
            except Exception:  # a backend shutting down
                continue
            if stats:
                used += int(stats.get("used_bytes", 0))
                mapped += int(stats.get("heap_bytes", 0))
        return used, mapped

    def add_process_sample(self, sample: dict[str, Any]) -> None:
        """Keep a psutil sample (see :class:`~mpipe._observe._monitor._sampler.ProcessSampler`)."""
        if self.ended is None:
            self.procs.append((time.perf_counter() - self.started, sample))
            if len(self.procs) > self.max_points:
                self.procs = self.procs[::2]

    def mark(self, kind: str, processor_id: str | None, text: str, at: float | None = None) -> None:
        """Mark an error, retry, skip or crash on the timeline (``at``: a perf_counter time)."""
        if len(self.marks) >= MAX_MARKS:
            self.marks_dropped += 1
            return
        when = (time.perf_counter() if at is None else at) - self.started
        self.marks.append((when, kind, processor_id or "", text))

    def end(self, error: BaseException | None) -> None:
        """The run ended: its last point is taken now (lanes, arena) and completed with the
        firing counts when first read, so that ending a run costs no pass over its spans."""
        lanes = self.lanes
        final = self._final = self._lanes_now()
        counts = self._lane_counts = _columns(lanes, _MOVED)
        book = getattr(lanes[0], "book", None) if lanes else None
        if book is None or book.stalled:
            counts += _columns(lanes, _STALLS)
        else:  # no producer waited in this run: those counters are where they started
            counts += self._lane_start[len(_MOVED) :]
        sizes = final[1]
        counts.append(list(sizes))
        counts += _columns(lanes, _KEPT)
        # What a lane holds at the end (a failed or stopped run), only where it holds items.
        counts.append(
            [lane.held if n else 0 for n, lane in zip(sizes, lanes, strict=True)]
            if any(sizes)
            else [0] * len(sizes)
        )
        self.error = None if error is None else f"{type(error).__name__}: {error}"
        self.ended = time.perf_counter()

    # -- readers (any thread) ----------------------------------------------------------------------

    @property
    def lane_metrics(self) -> list[dict[str, Any]] | None:
        """Each lane's traffic in this run, in the shape of ``Pipe.get_metrics`` (None while
        the run is live). ``peak_size`` and ``peak_bytes`` are the most the lane held in any run
        of its executor up to this one (a lane keeps its highest mark, not one per run)."""
        counts = self._lane_counts
        if counts is None:
            return None
        counts = [
            [a - b for a, b in zip(now, then, strict=True)]
            for now, then in zip(counts, self._lane_start, strict=False)
        ] + counts[len(_ADDED) :]
        # The bounds are the plan's: the same in every run of it, read from the lanes now.
        counts.append([lane.max_size for lane in self.lanes])
        counts.append([lane.pipe.max_bytes for lane in self.lanes])
        out = []
        for (
            items_in,
            items_out,
            nbytes,
            blocked,
            full,
            size,
            peak,
            peak_b,
            held,
            max_size,
            mb,
        ) in zip(*counts, strict=True):
            out.append(
                {
                    "items_in": items_in,
                    "items_out": items_out,
                    "bytes_in": nbytes,
                    "size": size,
                    "peak_size": peak,
                    "max_size": max_size,
                    "utilization": size / max_size,
                    "peak_utilization": peak / max_size,
                    "blocked_time": blocked,
                    "full_events": full,
                    **byte_metrics(held, peak_b, mb),
                }
            )
        return out

    def snapshot(self) -> list[Point]:
        """The points so far (the last one included once the run ended)."""
        if self.ended is not None and self._final is not None:
            with self._lock:
                if self._final is not None:
                    self.catch_up()
                    self._add(self._final)
                    self._final = None
        return list(self.points)

    @property
    def live(self) -> bool:
        """Whether the run is still going."""
        return self.ended is None

    def wall(self) -> float:
        """Seconds from the run's start to its end (or to now, while it is live)."""
        end = self.ended if self.ended is not None else time.perf_counter()
        return max(end - self.started, 0.0)

    def dask_dashboard(self) -> str | None:
        """The Dask cluster's own dashboard address, when the run used one."""
        for backend in self.backends:
            client = getattr(backend, "_client", None)
            link = getattr(client, "dashboard_link", None)
            if isinstance(link, str) and link:
                return link
        return None
