"""Per-processor timing statistics, cheap enough to update on every firing."""

from __future__ import annotations

import math
import random
from typing import Any

__all__ = ["ProcessorStats", "percentile"]

#: Firing durations kept per processor for percentiles; past this, a uniform reservoir sample.
RESERVOIR = 2048


def percentile(ordered: list[float], q: float) -> float:
    """The ``q``-quantile (0..1) of an ascending list by nearest rank; 0.0 when empty."""
    if not ordered:
        return 0.0
    rank = round(q * (len(ordered) - 1))
    return ordered[rank]


class ProcessorStats:
    """Counters of one processor's firings across the runs a monitor watched."""

    __slots__ = (
        "_skip_to",
        "_w",
        "errors",
        "firings",
        "first_start",
        "last_end",
        "max_time",
        "processor_id",
        "queue_max",
        "queue_total",
        "queued",
        "retries",
        "samples",
        "skips",
        "total_time",
        "transfer_total",
        "window",
    )

    def __init__(self, processor_id: str) -> None:
        self.processor_id = processor_id
        self.firings = 0
        self.errors = 0
        self.retries = 0
        self.skips = 0
        self.total_time = 0.0
        self.max_time = 0.0
        self.samples: list[float] = []
        # Firings that waited for a worker, the seconds they waited (total, longest), and the
        # seconds their data spent moving to workers and back.
        self.queued = 0
        self.queue_total = 0.0
        self.queue_max = 0.0
        self.transfer_total = 0.0
        self._skip_to: int | None = None  # global index of the next firing to sample
        self._w = 0.0
        # The active window of the current run (first firing start .. last firing end) and
        # the sum of the windows of earlier runs: items per second is firings over that time.
        self.first_start: float | None = None
        self.last_end = 0.0
        self.window = 0.0

    def add(self, durations: list[float], total: float, longest: float) -> None:
        """Account finished firings: their durations, with their sum and maximum."""
        n = len(durations)
        seen = self.firings
        self.firings = seen + n
        self.total_time += total
        if longest > self.max_time:
            self.max_time = longest
        samples = self.samples
        room = RESERVOIR - len(samples)
        if room >= n:
            samples.extend(durations)
        else:
            if room > 0:
                samples.extend(durations[:room])
            self._sample_rest(durations, seen)

    def add_waits(self, n: int, total: float, longest: float) -> None:
        """Account ``n`` firings' waits for a worker: their sum and maximum."""
        self.queued += n
        self.queue_total += total
        if longest > self.queue_max:
            self.queue_max = longest

    def extend_window(self, first_start: float, last_end: float) -> None:
        """Widen the current run's active window to cover ``first_start .. last_end``."""
        if self.first_start is None or first_start < self.first_start:
            self.first_start = first_start
        if last_end > self.last_end:
            self.last_end = last_end

    def _sample_rest(self, durations: list[float], seen: int) -> None:
        """Reservoir sampling past the reservoir's size (Li's algorithm L: the gaps between
        replacements are drawn, so the cost is per replacement, not per firing)."""
        rand = random.random
        if self._skip_to is None:
            self._w = math.exp(math.log(rand() or 1e-300) / RESERVOIR)
            self._skip_to = RESERVOIR + self._gap()
        end = seen + len(durations)
        samples = self.samples
        while self._skip_to < end:
            samples[int(rand() * RESERVOIR)] = durations[self._skip_to - seen]
            self._w *= math.exp(math.log(rand() or 1e-300) / RESERVOIR)
            self._skip_to += self._gap() + 1

    def _gap(self) -> int:
        w = min(self._w, 1 - 1e-16)
        return int(math.log(random.random() or 1e-300) / math.log(1 - w))

    def close_window(self) -> None:
        """The run ended: fold its active window into the total."""
        if self.first_start is not None:
            self.window += max(self.last_end - self.first_start, 0.0)
        self.first_start = None

    def active_time(self, now: float) -> float:
        """Seconds this processor has been firing, the current run's window included."""
        live = 0.0
        if self.first_start is not None:
            live = max((self.last_end or now) - self.first_start, 0.0)
        return self.window + live

    def summary(self, now: float) -> dict[str, Any]:
        """Counts and timings as a JSON-compatible dict (times in seconds).

        ``*_time``: run time, measured where the firing ran (a worker process, a thread) when
        its backend tells; ``*_queue_time``: waiting for a worker, over the firings that did;
        ``*_transfer_time``: moving their data to the worker and back.
        """
        n = self.firings
        q = self.queued
        ordered = sorted(self.samples)
        active = self.active_time(now)
        return {
            "count": n,
            "errors": self.errors,
            "retries": self.retries,
            "skips": self.skips,
            "error_rate": self.errors / n if n else 0.0,
            "total_time": self.total_time,
            "mean_time": self.total_time / n if n else 0.0,
            "p50_time": percentile(ordered, 0.50),
            "p95_time": percentile(ordered, 0.95),
            "max_time": self.max_time,
            "items_per_second": n / active if active > 0 else 0.0,
            "queued": q,
            "total_queue_time": self.queue_total,
            "mean_queue_time": self.queue_total / q if q else 0.0,
            "max_queue_time": self.queue_max,
            "total_transfer_time": self.transfer_total,
            "mean_transfer_time": self.transfer_total / q if q else 0.0,
        }
