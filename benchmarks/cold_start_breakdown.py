"""Where a new process executor's first run spends its time, part by part.

Run: ``python benchmarks/cold_start_breakdown.py [--rounds 5] [--workers N] [--item-mib 8]``

Each round starts from nothing (fresh interpreters, a fresh pool, a fresh executor) and times:

- ``interpreter start``: ``python -c pass``, the floor of any worker's start (site included);
- ``worker imports``: what a worker imports before it serves (its boot module, the transport,
  the codec), as wall time past the bare interpreter and as ``-X importtime``'s own sum;
- ``import mpipe`` and ``import mpipe`` plus the names a script uses (``-X importtime``);
- ``arena open``: mapping the shared memory and faulting in its floor (``open_arena``);
- ``pool start``: ``ProcessBackend.start()`` (arena, every worker launched, each ready), with
  when the first worker was launched and when the first and the last said they were ready;
  then, from a pool whose workers note the moments of their own start, each step of it;
- ``first call``: one call per worker at once, a function shipped by reference and run on a
  small value, against the same calls again (warm);
- ``first array``: one ``--item-mib`` array per worker through an identity function and back
  (the arena blocks' pages are faulted in; numpy, which this script imports, each worker
  imported at its start), against the same again;
- ``pool stop``: ``close()`` until every worker has exited;
- ``executor``: a new ``GraphExecutor``'s first one-item ``execute()`` on the process backend,
  its second, and closing it, which is what a script that runs a graph once pays.

Prints the median of each part over the rounds. The machine should be otherwise idle.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path[:0] = [HERE, ROOT]  # this checkout's mpipe, and the benchmarks' helpers

import numpy as np  # noqa: E402
from _anchors import identity, inc, line_graph  # noqa: E402

from mpipe import GraphExecutor  # noqa: E402
from mpipe._backends import FiringSlot  # noqa: E402
from mpipe._backends._process import _launch  # noqa: E402
from mpipe._backends._process._backend import ProcessBackend  # noqa: E402
from mpipe._transport import open_arena  # noqa: E402

MiB = 1 << 20
#: What a worker imports before it serves (see ``_launch.WORKER_CODE`` and ``_worker.boot``).
WORKER_IMPORTS = (
    "from mpipe._backends._process._worker import boot; "
    "import mpipe._transport._channel, mpipe._transport._codec"
)
SCRIPT_IMPORTS = "import mpipe; mpipe.GraphExecutor; mpipe.ProcessingGraph; mpipe.SimpleProcessor"


def wall(code: str, tries: int = 3) -> float:
    """Seconds a fresh interpreter takes to run ``code`` and exit (the best of ``tries``)."""
    best = float("inf")
    for _ in range(tries):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)
        best = min(best, time.perf_counter() - start)
    return best


def import_seconds(code: str, prefix: str = "mpipe") -> float:
    """``-X importtime``'s cumulative seconds for the top-level imports of ``code`` whose names
    start with ``prefix`` (what ``code`` imported, its dependencies included)."""
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stderr
    total = 0
    for line in out.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _, cumulative, name = line.split("|")
        if name.startswith(" " + prefix) and not name.startswith("  "):
            total += int(cumulative)
    return total / 1e6


#: The worker's own start, instrumented: it appends to the file ``MPIPE_BREAKDOWN_MARKS``
#: names the moments (``time.perf_counter()``, one clock for every process on Linux) its
#: interpreter is up, its boot module is imported, its endpoint is read (the transport
#: imported), the payload libraries the parent has imported are imported (numpy: this script
#: imports it), its channel is connected (the arena mapped, its floor faulted in) and its
#: codec is made (about to serve). Otherwise it is the pool's own ``WORKER_CODE``.
TIMED_WORKER_CODE = (
    "import time; t0 = time.perf_counter(); import os, sys; "
    "sys.path[:] = [sys.argv[1], *(p for p in sys.path if p)]; "
    "import mpipe._backends._process._worker as w; t1 = time.perf_counter(); marks = [t0, t1]\n"
    "main, init = w.main, w.Worker.__init__\n"
    "def timed_main(endpoint, imports=()):\n"
    "    marks.append(time.perf_counter()); [__import__(name) for name in imports]\n"
    "    marks.append(time.perf_counter()); main(endpoint)\n"
    "def timed_init(self, channel):\n"
    "    marks.append(time.perf_counter()); init(self, channel); marks.append(time.perf_counter())\n"
    "    with open(os.environ['MPIPE_BREAKDOWN_MARKS'], 'a') as f:\n"
    "        f.write(' '.join(map(repr, marks)) + chr(10))\n"
    "w.main, w.Worker.__init__ = timed_main, timed_init\n"
    "w.boot()"
)
BOOT_STEPS = (
    "  worker: launch to interpreter up",
    "  worker: its imports (boot module)",
    "  worker: endpoint read (transport imported)",
    "  worker: payload libraries the parent has (numpy here) imported",
    "  worker: channel connected (arena mapped, floor faulted in)",
    "  worker: codec made, serving",
)


class _TimedPool(ProcessBackend):
    """A pool that notes when it launched each worker and when each became ready."""

    ready_at: list[float]
    launched_at: list[float]

    def _spawn(self, slot: int) -> Any:
        self.launched_at.append(time.perf_counter())
        worker = super()._spawn(slot)
        worker.ready.add_done_callback(lambda _: self.ready_at.append(time.perf_counter()))
        return worker


async def boot_parts(workers: int, parts: dict[str, list[float]]) -> None:
    """Each step of a worker's start, from the instrumented boot (the mean over workers)."""
    with tempfile.TemporaryDirectory() as folder:
        marks = os.path.join(folder, "marks")
        os.environ["MPIPE_BREAKDOWN_MARKS"] = marks
        code, _launch.WORKER_CODE = _launch.WORKER_CODE, TIMED_WORKER_CODE
        try:
            pool = _TimedPool(workers)
            pool.ready_at, pool.launched_at = [], []
            await pool.start()
            await pool.close()
        finally:
            _launch.WORKER_CODE = code
            del os.environ["MPIPE_BREAKDOWN_MARKS"]
        with open(marks) as f:
            rows = [[float(x) for x in line.split()] for line in f]
    launched = statistics.mean(pool.launched_at)
    for i, name in enumerate(BOOT_STEPS):
        before = [launched] * len(rows) if i == 0 else [row[i - 1] for row in rows]
        parts[name].append(statistics.mean(row[i] - b for row, b in zip(rows, before, strict=True)))


async def pool_parts(workers: int, item: int, parts: dict[str, list[float]]) -> None:
    t0 = time.perf_counter()
    arena = open_arena(64 * MiB)
    parts["arena open (64 MiB floor mapped and faulted in)"].append(time.perf_counter() - t0)
    arena.close()

    pool = _TimedPool(workers)
    pool.ready_at, pool.launched_at = [], []
    t0 = time.perf_counter()
    await pool.start()
    t1 = time.perf_counter()
    parts["pool start (all workers ready)"].append(t1 - t0)
    parts["  first worker launched"].append(min(pool.launched_at) - t0)
    parts["  first worker ready"].append(min(pool.ready_at) - t0)
    parts["  last worker ready"].append(max(pool.ready_at) - t0)
    for name in BOOT_STEPS:
        parts[name].extend(())  # listed here, measured by boot_parts
    try:
        # One call per worker at once (the pool gives each worker one): each is that worker's
        # first, then its second.
        async def each(fn: Any, arg: Any) -> list[Any]:
            slots = [FiringSlot("p", i) for i in range(workers)]
            return list(await asyncio.gather(*(pool.submit(fn, arg, s) for s in slots)))

        for label in ("first call on each worker (function shipped)", "  the same calls again"):
            t0 = time.perf_counter()
            assert await each(inc, 1) == [2] * workers
            parts[label].append(time.perf_counter() - t0)
        array = np.full(item // 8, 1.0)
        for label in (
            f"first {item // MiB} MiB array round trip on each worker (page faults)",
            "  the same arrays again",
        ):
            t0 = time.perf_counter()
            outs = await each(identity, array)
            parts[label].append(time.perf_counter() - t0)
            assert all(out.nbytes == array.nbytes for out in outs)
            del outs
    finally:
        t0 = time.perf_counter()
        await pool.close()
        parts["pool stop (every worker exited)"].append(time.perf_counter() - t0)


async def executor_parts(workers: int, parts: dict[str, list[float]]) -> None:
    graph = line_graph([inc], execution="process")
    t0 = time.perf_counter()
    async with GraphExecutor(graph, max_workers=workers) as ex:  # the pool starts on first use
        assert (await ex.execute({"s0": 1}))["s0:output"] == 2
        t1 = time.perf_counter()
        assert (await ex.execute({"s0": 2}))["s0:output"] == 3
        t2 = time.perf_counter()
    t3 = time.perf_counter()
    parts["executor: first one-item execute()"].append(t1 - t0)
    parts["executor: second execute()"].append(t2 - t1)
    parts["executor: closing it (end of async with)"].append(t3 - t2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--item-mib", type=int, default=8)
    args = parser.parse_args()
    if args.rounds < 1 or args.workers < 1 or args.item_mib < 1:
        parser.error("--rounds, --workers and --item-mib must be at least 1")
    parts: dict[str, list[float]] = defaultdict(list)
    for _ in range(args.rounds):
        bare = wall("pass")
        parts["interpreter start (python -c pass)"].append(bare)
        parts["worker imports, wall past the interpreter"].append(wall(WORKER_IMPORTS) - bare)
        parts["worker imports, -X importtime"].append(import_seconds(WORKER_IMPORTS))
        parts["import mpipe, -X importtime"].append(import_seconds("import mpipe"))
        parts["import mpipe + a script's names, -X importtime"].append(
            import_seconds(SCRIPT_IMPORTS)
        )
        asyncio.run(pool_parts(args.workers, args.item_mib * MiB, parts))
        asyncio.run(boot_parts(args.workers, parts))
        asyncio.run(executor_parts(args.workers, parts))
    print(
        f"cold start of a process pool: {args.workers} workers, median of {args.rounds} rounds, "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    for name, values in parts.items():
        print(f"  {name:75s} {statistics.median(values) * 1000:9.1f} ms")


if __name__ == "__main__":
    main()
