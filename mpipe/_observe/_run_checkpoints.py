"""Checkpointing a run's processor outputs, and resuming a run from them.

With a checkpoint manager, a run saves:

- at its start, a *manifest* (``processor_id="<run>"``, metadata ``kind="run"``) naming the run
  id, the graph and its processors; resuming an unknown run id is an error, not a fresh run;
- each time a processor completes, its outputs: ``{output pipe name: [items in order]}`` with
  metadata ``kind="processor_outputs"``, the run id and the graph id.

Outputs are recorded by taps on each output's first pipe (the scheduler's hot path is untouched)
and kept in memory until the processor completes.

``execute(..., resume=run_id)`` reuses the outputs of the processors that completed in that run:
they do not run again; a feeder replays their outputs into their output pipes; the run keeps
the same run id, so a resumed run that fails can itself be resumed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from ._checkpoints import CheckpointError, CheckpointManager
from ._hooks import RunHooks, RunInfo

__all__ = ["RUN_PROCESSOR", "RunCheckpointer", "Tappable", "completed_outputs", "replay_items"]


class Tappable(Protocol):
    """What the checkpointer needs of a run's output queues: taps for the length of a run."""

    def add_tap(self, tap_id: str, fn: Callable[[Any], Any]) -> None: ...

    def remove_tap(self, tap_id: str) -> None: ...


_log = logging.getLogger("mpipe")

#: The processor id under which run manifests are stored.
RUN_PROCESSOR = "<run>"


class RunCheckpointer(RunHooks):
    """Saves each processor's outputs when it completes.

    Args:
        manager: Where to save.
        run_id: The run's id (kept across resumes).
        graph_id: The graph's id.
        outputs: Processor id -> output pipe name -> the pipes that output feeds, for the
            processors that run in this run.
        hooks: Observers told of every checkpoint created (``notice``).
        restored: ``(processor id, data)`` of the checkpoints a resume restored, told to the
            observers once the run has started.
    """

    def __init__(
        self,
        manager: CheckpointManager,
        run_id: str,
        graph_id: str,
        outputs: Mapping[str, Mapping[str, Sequence[Tappable]]],
        hooks: list[RunHooks],
        restored: list[tuple[str, dict[str, Any]]] | None = None,
    ) -> None:
        self.manager = manager
        self.restored = restored or []
        self.run_id = run_id
        self.graph_id = graph_id
        self.hooks = hooks
        self.recorded: dict[str, dict[str, list[Any]]] = {}
        self._taps: list[tuple[Tappable, str]] = []
        for pid, outs in outputs.items():
            record = self.recorded[pid] = {}
            for name, pipes in outs.items():
                items = record[name] = []
                if pipes:
                    tap_id = f"checkpoint:{run_id}:{pid}:{name}"
                    pipes[0].add_tap(tap_id, items.append)
                    self._taps.append((pipes[0], tap_id))
        self.failed: list[str] = []

    def write_manifest(self, processor_ids: list[str]) -> None:
        """Save the run's manifest."""
        self.manager.create_checkpoint(
            f"run {self.run_id}",
            RUN_PROCESSOR,
            {"run_id": self.run_id, "graph_id": self.graph_id, "processors": processor_ids},
            {"kind": "run", "run_id": self.run_id, "graph_id": self.graph_id},
        )

    def run_start(self, run: RunInfo) -> None:
        # Restores happen while the run is planned; observers hear of them once it started.
        for processor_id, data in self.restored:
            for hook in self.hooks:
                if hook is not self:
                    hook.notice("checkpoint_restore", processor_id, data)

    def processor_end(self, processor_id: str, firings: int) -> None:
        outputs = self.recorded.pop(processor_id, None)
        if outputs is None:
            return
        try:
            cid = self.manager.create_checkpoint(
                f"{self.graph_id}/{processor_id} outputs",
                processor_id,
                outputs,
                {
                    "kind": "processor_outputs",
                    "run_id": self.run_id,
                    "graph_id": self.graph_id,
                    "firings": firings,
                },
            )
        except CheckpointError as exc:
            # The run itself is fine; a resume will simply run this processor again.
            self.failed.append(processor_id)
            _log.error("checkpoint of %r in run %s failed: %s", processor_id, self.run_id, exc)
            return
        for hook in self.hooks:
            hook.notice(
                "checkpoint_create",
                processor_id,
                {
                    "checkpoint_id": cid,
                    "run_id": self.run_id,
                    "items": sum(map(len, outputs.values())),
                },
            )

    def run_end(self, run: RunInfo, error: BaseException | None) -> None:
        for pipe, tap_id in self._taps:
            pipe.remove_tap(tap_id)
        self._taps.clear()
        self.recorded.clear()


def completed_outputs(
    manager: CheckpointManager, run_id: str, graph_id: str
) -> tuple[dict[str, dict[str, list[Any]]], list[tuple[str, dict[str, Any]]]]:
    """The outputs of every processor that completed in run ``run_id`` of graph ``graph_id``,
    and ``(processor id, notice data)`` for each checkpoint restored.

    Raises:
        CheckpointError: No such run in the manager's checkpoints, or it ran another graph.
    """
    mine = []
    manifest = None
    for info in manager.list_checkpoints():
        meta = info["metadata"]
        if meta.get("run_id") != run_id:
            continue
        if meta.get("kind") == "run":
            manifest = meta
        elif meta.get("kind") == "processor_outputs":
            mine.append(info)
    if manifest is None:
        raise CheckpointError(
            f"cannot resume run {run_id!r}: the checkpoint manager holds no run with that id"
        )
    if manifest.get("graph_id") != graph_id:
        raise CheckpointError(
            f"cannot resume run {run_id!r}: it ran graph {manifest.get('graph_id')!r}, "
            f"not {graph_id!r}"
        )
    out: dict[str, dict[str, list[Any]]] = {}
    restored: list[tuple[str, dict[str, Any]]] = []
    for info in mine:
        pid = info["processor_id"]
        out[pid] = manager.restore_checkpoint(info["checkpoint_id"])
        restored.append((pid, {"checkpoint_id": info["checkpoint_id"], "run_id": run_id}))
    return out, restored


def replay_items(outputs: dict[str, list[Any]], names: list[str]) -> list[Any]:
    """A feeder's items that re-emit ``outputs`` on a node whose output pipes are ``names``."""
    if len(names) == 1:
        return list(outputs.get(names[0], []))
    # Interleaved, so that a consumer zipping two of these outputs is fed both in step.
    lists = [(name, outputs.get(name, [])) for name in names]
    longest = max((len(items) for _, items in lists), default=0)
    return [{name: items[i]} for i in range(longest) for name, items in lists if i < len(items)]
