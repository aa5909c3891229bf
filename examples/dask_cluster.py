"""The same graph on a Dask cluster: heavy stages on the cluster, a cheap one in this process.

    python examples/dask_cluster.py                      # starts a LocalCluster of its own
    python examples/dask_cluster.py tcp://host:8786      # uses a running scheduler

``make`` and ``smooth`` run on the cluster and pass their arrays to each other there (only a
reference to each array comes back to this process); ``summary`` runs inline here and gets the
values it needs. Needs the extra: ``pip install 'processor-pipeline[dask]'``.
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

import numpy as np

from mpipe import GraphExecutor, RunHooks, create_simple_pipeline


def make(seed: int) -> np.ndarray:
    """A noisy signal of a million samples (8 MB): made on a worker, it stays there."""
    rng = np.random.default_rng(seed)
    return np.sin(np.linspace(0, 20 * np.pi, 1_000_000)) + rng.normal(0, 0.5, 1_000_000)


def smooth(signal: np.ndarray) -> np.ndarray:
    """A moving average: CPU work on the worker that holds (or receives) the signal."""
    kernel = np.ones(501) / 501
    return np.convolve(signal, kernel, mode="same")


def summary(signal: np.ndarray) -> dict[str, float]:
    """Cheap, so it runs inline here; only its small result is printed."""
    return {"mean": round(float(signal.mean()), 4), "peak": round(float(signal.max()), 4)}


class Workers(RunHooks):
    """Counts firings per worker, as a monitor would see them."""

    def __init__(self) -> None:
        self.by_worker: dict[str, int] = {}

    def firing_end(
        self, processor_id: str, index: int, start: float, end: float, worker: str, error: Any
    ) -> None:
        self.by_worker[worker] = self.by_worker.get(worker, 0) + 1


async def main(address: str | None) -> None:
    graph = create_simple_pipeline([("make", make), ("smooth", smooth), ("summary", summary)])
    graph.get_processor("summary").execution = "inline"  # type: ignore[attr-defined]
    workers = Workers()
    # With an address, the executor connects to that scheduler; without one, it starts a
    # LocalCluster of two worker processes and closes it at the end.
    executor = GraphExecutor(
        graph, backend="dask", dask_address=address, max_workers=2, hooks=[workers]
    )
    started = time.perf_counter()
    async with executor:
        async for key, value in executor.stream({"make": range(6)}):
            print(f"{key}: {value}")
    print(f"6 signals in {time.perf_counter() - started:.2f} s; firings per worker:")
    for worker, count in sorted(workers.by_worker.items()):
        print(f"  {worker}: {count}")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else None))
