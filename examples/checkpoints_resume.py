"""Checkpoints and resume: a run fails half way; resuming it skips what already completed.

Run: python examples/checkpoints_resume.py
"""

import asyncio
import tempfile

import numpy as np

from mpipe import CheckpointManager, ExecutionError, GraphExecutor, create_simple_pipeline

ran: list[str] = []
upstream_ok = {"value": False}


def load(n: int) -> list[int]:
    ran.append("load")
    return list(range(n))


def expensive(xs: list[int]) -> int:
    ran.append("expensive")
    return sum(x * x for x in xs)  # imagine minutes of work here


def publish(total: int) -> str:
    ran.append("publish")
    if not upstream_ok["value"]:
        raise ConnectionError("the report server is down")
    return f"sum of squares: {total}"


graph = create_simple_pipeline(
    [("load", load), ("expensive", expensive), ("publish", publish)], graph_id="report"
)

with tempfile.TemporaryDirectory() as folder:
    # Every processor's outputs are saved, as Arrow IPC files, when the processor completes.
    executor = GraphExecutor(graph, checkpoint_manager=CheckpointManager(folder))
    try:
        asyncio.run(executor.execute(1000))
    except ExecutionError as exc:
        print("first run failed:", exc)
    run_id = executor.get_execution_status()["run_id"]
    print("ran:", ran, "| run id:", run_id)

    # Later, even from another process: a new manager on the same folder sees the run.
    manager = CheckpointManager(folder)
    for info in manager.list_checkpoints():
        print(f"  checkpoint {info['checkpoint_id']}: {info['name']} ({info['size_bytes']} B)")

    upstream_ok["value"] = True
    ran.clear()
    resumed = GraphExecutor(graph, checkpoint_manager=manager)
    print("resumed:", asyncio.run(resumed.execute(1000, resume=run_id)))
    print("ran:", ran, "(load and expensive were replayed from their checkpoints)")

    # A checkpoint manager also stores values directly: numpy and Arrow data keep their types.
    cid = manager.create_checkpoint("weights", "model", np.arange(6.0).reshape(2, 3))
    print("restored:", manager.restore_checkpoint(cid).tolist())

print("from the command line: mpipe checkpoints list|show|rm DIR, mpipe run --resume RUN_ID")
