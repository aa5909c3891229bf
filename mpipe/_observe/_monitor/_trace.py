"""Chrome trace-event export of a run (opens in Perfetto and chrome://tracing).

One process track for the run; one thread track per worker (``main`` for the event loop, one
per thread or worker process) holding the firings it ran, when it ran them. Firings that
overlap on the event loop (async processors running several firings at once) are spread over
extra lanes of it (``main #2``...), so that the spans of every track are disjoint, as the trace
viewers expect of complete events; a worker process runs one firing at a time, so it has one
track. The firings of one batch show as one span (``name xN``). Beside the tracks, as async
slices: each firing's wait for a worker (``name waits``, from its submission to when the worker
took it up) and each generator's life (``name (generator)``: from its call to its last item,
with the time it ran in ``run_ms``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import orjson

from .._hooks import Span, Wait
from ._spans import SpanBook

__all__ = ["TraceRecorder"]


class TraceRecorder:
    """The trace of the current (or last) run: one span per firing, from its timeline.

    Args:
        book: Where the spans are kept (its current timeline is the run's trace).
    """

    def __init__(self, book: SpanBook) -> None:
        self.book = book
        self.run_id: str | None = None
        self.graph_id: str | None = None
        self.started: float | None = None
        self.ended: float | None = None

    @property
    def max_spans(self) -> int:
        """Spans kept per run; later firings are counted (``dropped``) but not kept."""
        return self.book.max_spans

    @max_spans.setter
    def max_spans(self, value: int) -> None:
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"max_spans must be a positive integer, got {value!r}")
        self.book.max_spans = value
        spans = self.book.timeline.spans
        spans.limit = min(spans.limit, max(value, len(spans)))

    @property
    def spans(self) -> list[Span]:
        """The run's spans: (processor id, index, start, end, worker, error text or None)."""
        return self.book.timeline.rows(0, self.book.max_spans)

    @property
    def waits(self) -> list[Wait]:
        """The run's waits for a worker: (processor id, index, submitted, picked, worker)."""
        return self.book.timeline.wait_rows(0, self.book.max_spans)

    @property
    def dropped(self) -> int:
        """Firings of the run past ``max_spans``, not in the trace."""
        book = self.book
        return book.dropped + max(len(book.timeline) - book.max_spans, 0)

    def begin(self, run_id: str, graph_id: str, start: float) -> None:
        """Start the trace of a new run (its spans are the book's new timeline)."""
        self.run_id = run_id
        self.graph_id = graph_id
        self.started = start
        self.ended = None

    def end(self, end: float) -> None:
        """Note the end of the run."""
        self.ended = end

    def to_dict(self) -> dict[str, Any]:
        """The trace as a Chrome trace-event JSON object."""
        origin = self.started if self.started is not None else 0.0
        events: list[dict[str, Any]] = [
            {
                "name": "process_name",
                "ph": "M",
                "pid": 1,
                "tid": 0,
                "args": {"name": f"mpipe {self.graph_id} run {self.run_id}"},
            },
            {"name": "thread_name", "ph": "M", "pid": 1, "tid": 0, "args": {"name": "run"}},
        ]
        spans = self.spans
        if self.started is not None:
            end = self.ended
            if end is None:
                end = max((s[3] for s in spans), default=origin)
            events.append(
                {
                    "name": f"run {self.run_id}",
                    "cat": "run",
                    "ph": "X",
                    "ts": 0.0,
                    "dur": max(end - origin, 0.0) * 1e6,
                    "pid": 1,
                    "tid": 0,
                    "args": {"run_id": self.run_id, "graph_id": self.graph_id},
                }
            )
        streamed = self.book.timeline.streamed
        # Lanes: per worker, a list of (tid, busy-until); a span goes to the first free lane.
        # Firings timed in a worker process never overlap there: one lane, one track each.
        # Firings that overlap on the event loop (async processors running several at once)
        # spread over more lanes of it. Generators live from their call to their last item,
        # interleaved with other firings: they are drawn as async slices beside the tracks.
        lanes: dict[str, list[list[Any]]] = {}
        next_tid = 1
        async_id = 0
        for row, pid, index, start, end, worker, error, count in _merged(spans):
            if row in streamed:
                async_id += 1
                args = {"processor_id": pid, "index": index, "worker": worker}
                args["run_ms"] = round(streamed[row] * 1e3, 3)
                if error is not None:
                    args["error"] = error
                events += _async_slice(
                    f"{pid} (generator)", "generator", async_id, start - origin, end - origin, args
                )
                continue
            worker_lanes = lanes.setdefault(worker, [])
            for lane in worker_lanes:
                if lane[1] <= start:
                    break
            else:
                lane = [next_tid, start]
                label = worker if not worker_lanes else f"{worker} #{len(worker_lanes) + 1}"
                worker_lanes.append(lane)
                events.append(
                    {
                        "name": "thread_name",
                        "ph": "M",
                        "pid": 1,
                        "tid": next_tid,
                        "args": {"name": label},
                    }
                )
                events.append(
                    {
                        "name": "thread_sort_index",
                        "ph": "M",
                        "pid": 1,
                        "tid": next_tid,
                        "args": {"sort_index": next_tid},
                    }
                )
                next_tid += 1
            lane[1] = end
            args = {"processor_id": pid, "index": index, "worker": worker}
            if count > 1:
                args["firings"] = count  # a batch: firings index .. index + count - 1
            if error is not None:
                args["error"] = error
            events.append(
                {
                    "name": pid if count == 1 else f"{pid} x{count}",
                    "cat": "firing",
                    "ph": "X",
                    "ts": (start - origin) * 1e6,
                    "dur": max(end - start, 0.0) * 1e6,
                    "pid": 1,
                    "tid": lane[0],
                    "args": args,
                }
            )
        # Waits for a worker: from a firing's submission to when its worker took it up.
        for pid, index, submitted, picked, worker, count in _merged_waits(self.waits):
            async_id += 1
            args = {"processor_id": pid, "index": index, "worker": worker}
            if count > 1:
                args["firings"] = count
            events += _async_slice(
                f"{pid} waits", "queue", async_id, submitted - origin, picked - origin, args
            )
        return {
            "traceEvents": events,
            "displayTimeUnit": "ms",
            "otherData": {
                "run_id": self.run_id,
                "graph_id": self.graph_id,
                "firings": len(spans),
                "dropped_spans": self.dropped,
            },
        }

    def export(self, path: str | os.PathLike[str]) -> Path:
        """Write the trace to ``path`` (JSON) and return the path.

        Raises:
            ValueError: No run has been recorded yet.
            OSError: The file cannot be written.
        """
        if self.run_id is None:
            raise ValueError("no run to export: the monitor has not watched a run yet")
        target = Path(path)
        target.write_bytes(orjson.dumps(self.to_dict()))
        return target


def _async_slice(
    name: str, cat: str, ident: int, start: float, end: float, args: dict[str, Any]
) -> list[dict[str, Any]]:
    """A begin and an end event of one async slice (times in seconds from the origin)."""
    common = {"name": name, "cat": cat, "id": ident, "pid": 1, "tid": 0}
    return [
        {**common, "ph": "b", "ts": start * 1e6, "args": args},
        {**common, "ph": "e", "ts": max(end, start) * 1e6},
    ]


def _merged(spans: list[Span]) -> list[tuple[int, str, int, float, float, str, str | None, int]]:
    """Spans in start order with their row numbers; the firings of one batch (consecutive rows
    of one processor with the same times and worker, no error) as one, with their count."""
    out: list[tuple[int, str, int, float, float, str, str | None, int]] = []
    last: tuple[str, float, float, str] | None = None
    for row, (pid, index, start, end, worker, error) in enumerate(spans):
        key = (pid, start, end, worker)
        if error is None and key == last and out and out[-1][6] is None:
            prev = out[-1]
            out[-1] = (*prev[:7], prev[7] + 1)
            continue
        out.append((row, pid, index, start, end, worker, error, 1))
        last = key
    out.sort(key=lambda s: s[3])
    return out


def _merged_waits(waits: list[Wait]) -> list[tuple[str, int, float, float, str, int]]:
    """Waits, the rows of one batch (same processor, times and worker) as one, with a count."""
    out: list[tuple[str, int, float, float, str, int]] = []
    for pid, index, submitted, picked, worker in waits:
        if out:
            p = out[-1]
            if (p[0], p[2], p[3], p[4]) == (pid, submitted, picked, worker):
                out[-1] = (*p[:5], p[5] + 1)
                continue
        out.append((pid, index, submitted, picked, worker, 1))
    return out
