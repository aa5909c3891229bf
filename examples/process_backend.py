"""CPU-bound processors on worker processes (``cpu_bound=True``), next to cheap inline ones.

Pure-Python work holds the GIL: on threads it runs one firing at a time. Marked ``cpu_bound``,
a processor runs in a pool of worker processes (one per core unless ``max_workers`` says
otherwise); its inputs and outputs cross through shared memory. The metrics show, per
processor, the time its firings ran, measured in the worker, and, apart, the time they waited
for a free worker.

Run: python examples/process_backend.py [ITEMS]
"""

import sys

from mpipe import GraphExecutor, ProcessingGraph, SimpleProcessor

items = int(sys.argv[1]) if len(sys.argv) > 1 else 6


def numbers(n):  # a source generator: each yielded value is one item
    yield from range(1, n + 1)


def collatz_steps(limit):  # CPU-bound pure Python: runs in a worker process
    longest, best = 0, 1
    for start in range(1, limit * 3_000):
        n, steps = start, 0
        while n != 1:
            n = n // 2 if n % 2 == 0 else 3 * n + 1
            steps += 1
        if steps > longest:
            longest, best = steps, start
    return {"limit": limit * 3_000, "start": best, "steps": longest}


def describe(found):  # cheap: stays in the parent's event loop
    return f"below {found['limit']:>6,}: {found['start']:>6,} takes {found['steps']} steps"


graph = ProcessingGraph("collatz")
for pid, fn, config in [
    ("numbers", numbers, {}),
    ("search", collatz_steps, {"cpu_bound": True}),
    ("describe", describe, {}),
]:
    p = SimpleProcessor(fn, pid, **config)
    p.create_default_pipes()
    graph.add_processor(p)
graph.connect("numbers", "output", "search", "input")
graph.connect("search", "output", "describe", "input")

executor = GraphExecutor(graph)  # worker processes: one per usable core
lines = executor.run(items)["describe:output"]
print("\n".join(lines))
assert len(lines) == items and lines[0].startswith("below  3,000: ")

print("\nprocessor   firings  mean run ms  mean wait ms   (run: in the worker; wait: for a worker)")
for pid, proc in graph.get_all_processors().items():
    m = proc.get_metrics()
    n = m["firings"]
    print(f"{pid:<10} {n:>8} {m['mean_time'] * 1e3:>12.1f} {m['queue_time'] / n * 1e3:>13.1f}")
