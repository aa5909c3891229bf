"""processor_pipeline.v2.core.checkpoint: checkpoints, breakpoints and debug sessions. Names only; served by mpipe."""

from mpipe import (
    Breakpoint,
    Checkpoint,
    CheckpointManager,
    DebugSession,
)

__all__ = [
    "Breakpoint",
    "Checkpoint",
    "CheckpointManager",
    "DebugSession",
]
