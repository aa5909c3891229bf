"""The observability names are part of the one public surface."""

from __future__ import annotations

import mpipe

OBSERVABILITY = {
    "Alert",
    "AlertManager",
    "BreakpointAbort",
    "BreakpointHit",
    "CheckpointError",
    "CheckpointManager",
    "CheckpointWarning",
    "EventType",
    "LogLevel",
    "Monitor",
    "MonitorEvent",
    "ProgressDisplay",
}


def test_names_exported_and_all_sorted() -> None:
    assert set(mpipe.__all__) >= OBSERVABILITY
    assert mpipe.__all__ == sorted(mpipe.__all__)
    for name in OBSERVABILITY:
        assert getattr(mpipe, name).__module__.startswith("mpipe.")


def test_monitor_is_a_run_observer_and_manager_a_checkpoint_store() -> None:
    assert issubclass(mpipe.Monitor, mpipe.RunHooks)
    assert issubclass(mpipe.Monitor, mpipe.MonitorInterface)
    assert issubclass(mpipe.CheckpointManager, mpipe.CheckpointInterface)
    assert issubclass(mpipe.CheckpointError, mpipe.PipelineError)
    assert {e.value for e in mpipe.EventType} >= {
        "graph_start",
        "graph_complete",
        "graph_error",
        "processor_start",
        "processor_complete",
        "processor_error",
        "processor_retry",
        "processor_skip",
        "pipe_data_flow",
        "pipe_full",
        "checkpoint_create",
        "checkpoint_restore",
        "breakpoint_hit",
        "worker_start",
        "worker_crash",
        "system_metrics",
        "alert",
    }
