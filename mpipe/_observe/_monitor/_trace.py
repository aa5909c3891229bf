"""Chrome trace-event export of a run (opens in Perfetto and chrome://tracing).

One process track for the run; one thread track per worker (``main`` for the event loop, one
per thread or worker process). Firings that overlap on one worker (async processors running
several firings at once) are spread over extra lanes of that worker (``main #2``...), so that
the spans of every track are disjoint, as the trace viewers expect of complete events.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import orjson

from .._hooks import Span
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
        # Lanes: per worker, a list of (tid, busy-until); a span goes to the first free lane.
        lanes: dict[str, list[list[Any]]] = {}
        next_tid = 1
        for pid, index, start, end, worker, error in sorted(spans, key=lambda s: s[2]):
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
            args: dict[str, Any] = {"processor_id": pid, "index": index, "worker": worker}
            if error is not None:
                args["error"] = error
            events.append(
                {
                    "name": pid,
                    "cat": "firing",
                    "ph": "X",
                    "ts": (start - origin) * 1e6,
                    "dur": max(end - start, 0.0) * 1e6,
                    "pid": 1,
                    "tid": lane[0],
                    "args": args,
                }
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
