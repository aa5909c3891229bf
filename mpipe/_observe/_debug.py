"""Debug sessions: stepping a paused run and keeping checkpoints of what was seen on the way.

A :class:`DebugSession` belongs to one processor and one :class:`~mpipe.CheckpointManager`. The
manager's breakpoints are the ones a run given that manager honours, so the session's
:meth:`~DebugSession.step` acts on the firing paused there: it lets it run and pauses the run
again at the very next firing (of any processor). Checkpoints the session makes go to the
manager's storage, named and tagged so that the session finds its own again.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from ._breakpoints import BreakpointHit
from ._checkpoints import CheckpointManager

__all__ = ["DebugSession"]


class DebugSession:
    """Step through a run paused at a breakpoint, and checkpoint values along the way.

    Args:
        checkpoint_manager: Where checkpoints go; its breakpoints are those the run honours
            (give the same manager to the executor).
        processor_id: The processor the session is about.

    Attributes:
        session_id: A unique id (a uuid4).
        created_at: Wall-clock time the session was made.
        step_count: How many times :meth:`step` was called.
    """

    def __init__(self, checkpoint_manager: CheckpointManager, processor_id: str) -> None:
        if not isinstance(checkpoint_manager, CheckpointManager):
            raise TypeError(
                f"DebugSession needs a CheckpointManager, got {type(checkpoint_manager).__name__}"
            )
        if not isinstance(processor_id, str) or not processor_id:
            raise TypeError(f"processor_id must be a non-empty string, got {processor_id!r}")
        self.checkpoint_manager = checkpoint_manager
        self.processor_id = processor_id
        self.session_id = str(uuid.uuid4())
        self.created_at = time.time()
        self.step_count = 0

    @property
    def paused(self) -> list[BreakpointHit]:
        """The firings paused at a breakpoint of the manager now, oldest first."""
        return list(self.checkpoint_manager.breakpoints.paused)

    def step(self) -> BreakpointHit | None:
        """Move a paused run one firing forward.

        Lets the oldest paused firing (of this session's processor if one is paused, else of
        any) run, and pauses the run again before its next firing of any processor; await
        :meth:`wait_for_break` for that one. With nothing paused, the next firing of a run
        (this one or a later one) pauses. Call it from the run's event loop.

        Returns:
            The hit that was resumed, or None when nothing was paused.
        """
        self.step_count += 1
        breakpoints = self.checkpoint_manager.breakpoints
        waiting = [h for h in breakpoints.paused if not h.done]
        mine = [h for h in waiting if h.processor_id == self.processor_id]
        candidates = mine or waiting
        hit = candidates[0] if candidates else None
        breakpoints.step()
        if hit is not None:
            hit.resume()
        return hit

    async def wait_for_break(self, timeout: float | None = None) -> BreakpointHit:
        """The next firing paused at a breakpoint of the manager (or by :meth:`step`).

        Raises:
            PipelineError: The run ended without pausing.
            TimeoutError: No hit within ``timeout`` seconds.
        """
        return await self.checkpoint_manager.wait_for_break(timeout)

    def create_checkpoint(self, name: str, data: Any) -> str:
        """Save ``data`` as a checkpoint of this session's processor.

        The checkpoint is named ``debug_<session_id>_<name>``, with the metadata
        ``{"debug_session": session_id, "step": step_count}``, in the manager's storage.

        Returns:
            The checkpoint's id.

        Raises:
            CheckpointError: ``data`` cannot be stored (see the manager's ``allow_pickle``).
        """
        return self.checkpoint_manager.create_checkpoint(
            f"debug_{self.session_id}_{name}",
            self.processor_id,
            data,
            {"debug_session": self.session_id, "step": self.step_count},
        )

    def get_session_checkpoints(self) -> list[dict[str, Any]]:
        """This session's checkpoints (as ``list_checkpoints`` describes them), newest first."""
        mine = [
            info
            for info in self.checkpoint_manager.list_checkpoints(self.processor_id)
            if info["metadata"].get("debug_session") == self.session_id
        ]
        return mine[::-1]

    def __repr__(self) -> str:
        return (
            f"DebugSession({self.session_id!r}, processor={self.processor_id!r}, "
            f"steps={self.step_count})"
        )
