"""Write an HTML performance report of a CPU-heavy stream (needs the ``report`` extra).

    pip install '.[report]'
    python examples/performance_report.py [report.html] [--items N] [--dashboard]

A stream of chunks goes through SHA-256 rounds on worker processes and a summary step in the
event loop. The report (one file, opens offline) shows the task stream per worker, items per
second, pipe fill, CPU and memory per process, shared-memory use and the time per processor.
With ``--dashboard`` the same views are served live on localhost while the run goes.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import sys
from collections.abc import Iterator

from mpipe import GraphExecutor, Monitor, ProcessingGraph, SimpleProcessor


def chunks(n: int) -> Iterator[bytes]:
    """The stream: ``n`` chunks of 64 KiB."""
    for i in range(n):
        yield hashlib.sha256(str(i).encode()).digest() * 2048


def digest(chunk: bytes) -> str:
    """CPU-heavy: 400 rounds of SHA-256 over the chunk."""
    h = chunk
    for _ in range(400):
        h = hashlib.sha256(h).digest() + chunk[:1024]
    return hashlib.sha256(h).hexdigest()


def short(hexdigest: str) -> str:
    return hexdigest[:12]


def build() -> ProcessingGraph:
    graph = ProcessingGraph("cpu_heavy_stream")
    for pid, fn, config in [
        ("chunks", chunks, {}),
        ("digest", digest, {"cpu_bound": True}),
        ("short", short, {}),
    ]:
        p = SimpleProcessor(fn, pid, **config)
        p.create_default_pipes()
        graph.add_processor(p)
    graph.connect("chunks", "output", "digest", "input")
    graph.connect("digest", "output", "short", "input")
    return graph


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", nargs="?", default="report.html")
    parser.add_argument("--items", type=int, default=400)
    parser.add_argument("--dashboard", action="store_true", help="also serve it live")
    args = parser.parse_args()
    monitor = Monitor(log_level="warning")
    executor = GraphExecutor(build(), monitor, max_workers=os.cpu_count() or 2)
    dashboard = monitor.open_dashboard() if args.dashboard else None
    if dashboard is not None:
        print(f"live at {dashboard.url}", file=sys.stderr)
    try:
        results = asyncio.run(executor.execute({"chunks": args.items}))
    finally:
        if dashboard is not None:
            dashboard.close()
    print(f"{len(results['short:output'])} digests, the first {results['short:output'][0]}")
    print(f"report written to {monitor.write_report(args.report)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
