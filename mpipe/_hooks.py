"""The hook protocol: what the scheduler tells observers of a run.

Monitors, progress displays, trace recorders and alert managers all listen here; the scheduler
knows nothing of them. Every method has a no-op default, so an observer overrides what it needs.
Hooks run on the event-loop thread, inside the scheduler's hot path: keep them short.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["RunHooks", "RunInfo"]


@dataclass
class RunInfo:
    """What observers learn about a run when it starts."""

    run_id: str
    graph_id: str
    processor_ids: list[str]
    placements: dict[str, str]
    started_at: float
    mode: str = "batch"
    extra: dict[str, Any] = field(default_factory=dict)


class RunHooks:
    """Base class of run observers. Times are ``time.perf_counter()`` values in seconds."""

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
        """A firing finished: successfully when ``error`` is None."""

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

    # Added for observability (issue 3): one generic channel for the rarer things a run does
    # (checkpoint create/restore, breakpoint hit, worker start/crash), so that new kinds need
    # no new hook method. Never called per firing.
    def notice(self, kind: str, processor_id: str | None, data: dict[str, Any]) -> None:
        """Something rarer happened in a run.

        ``kind`` is an :class:`mpipe.EventType` value such as ``"checkpoint_create"``,
        ``"breakpoint_hit"`` or ``"worker_crash"``; ``data`` is JSON-compatible.
        """
