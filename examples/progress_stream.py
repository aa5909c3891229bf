"""A stream with live progress: items flow through a worker-process stage while a progress
display shows, per processor, firings done, items per second, the mean time a firing ran (in
its worker) and the mean time it waited for a free worker, and the CPU and memory of the
parent and every worker.

The progress goes to stderr (on a terminal: a live table, with ``pip install
processor-pipeline[progress]``; otherwise plain lines every 2 s and at the end); the results go
to stdout as they arrive.

Run: python examples/progress_stream.py [ITEMS]
"""

import asyncio
import hashlib
import sys

from mpipe import GraphExecutor, ProcessingGraph, SimpleProcessor

items = int(sys.argv[1]) if len(sys.argv) > 1 else 40


def digest(i):  # CPU-bound: runs in a worker process
    data = i.to_bytes(8, "little") * 4096
    for _ in range(200):
        data = hashlib.sha256(data).digest() * 1024
    return i, hashlib.sha256(data).hexdigest()[:12]


def label(pair):
    i, hexdigest = pair
    return f"item {i:>3}: {hexdigest}"


graph = ProcessingGraph("progress_stream")
for pid, fn, config in [("digest", digest, {"cpu_bound": True}), ("label", label, {})]:
    p = SimpleProcessor(fn, pid, **config)
    p.create_default_pipes()
    graph.add_processor(p)
graph.connect("digest", "output", "label", "input")


async def main():
    seen = 0
    executor = GraphExecutor(graph, progress=True)
    async for _key, line in executor.stream({"digest": range(items)}):
        seen += 1
        if seen % 10 == 0 or seen == items:
            print(line)
    assert seen == items


asyncio.run(main())
