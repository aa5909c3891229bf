"""Count the instructions one body of an engine benchmark shape takes, under callgrind.

Instruction counts do not move with the host's noise, so two commits can be compared on a busy
machine. Usage (from the repository root, valgrind installed)::

    python benchmarks/count_instructions.py one|entered|chains|monitored|cold|stream

runs ``valgrind --tool=callgrind`` on this script with one and with eleven bodies and prints
(eleven - one) / 10: the instructions of one body, the set-up excluded (the interpreter's start
and imports vary by a few million instructions from run to run: ten bodies dilute that), with
the cyclic garbage collector held off while the bodies run. The bodies:

- ``one``: 200 inline ``execute()`` of one processor;
- ``entered``: the same inside ``async with`` (the pools stay up between runs);
- ``chains``: one warm run of 20 chains of 50 tiny processors;
- ``monitored``: the same with a ``Monitor`` attached;
- ``cold``: a new executor's first run of that graph (compiling included);
- ``stream``: 5,000 items through 4 inline stream stages.
"""

from __future__ import annotations

import asyncio
import gc
import os
import re
import subprocess
import sys
from collections.abc import Callable

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _graphs import chains_graph, stages_graph

from mpipe import GraphExecutor, Monitor

SHAPES = ("one", "entered", "chains", "monitored", "cold", "stream")


def body(shape: str) -> Callable[[], object]:
    """The shape's body, with its executor warmed up where the shape is a warm one."""
    if shape == "one":
        graph, inputs = chains_graph(1, 1)
        executor = GraphExecutor(graph)
        asyncio.run(executor.execute(inputs))

        async def many() -> None:
            for _ in range(200):
                await executor.execute(inputs)

        return lambda: asyncio.run(many())
    if shape == "entered":
        graph, inputs = chains_graph(1, 1)
        executor = GraphExecutor(graph)

        async def entered() -> None:
            async with executor:
                for _ in range(200):
                    await executor.execute(inputs)

        asyncio.run(entered())
        return lambda: asyncio.run(entered())
    if shape in ("chains", "monitored", "cold"):
        graph, inputs = chains_graph(20, 50)
        executor = GraphExecutor(graph, monitor=Monitor() if shape == "monitored" else None)
        asyncio.run(executor.execute(inputs))
        if shape == "cold":
            return lambda: asyncio.run(GraphExecutor(graph).execute(inputs))
        return lambda: asyncio.run(executor.execute(inputs))
    stream_graph = stages_graph(4)
    streaming = GraphExecutor(stream_graph)
    asyncio.run(streaming.execute_stream({"s0": range(100)}))
    return lambda: asyncio.run(streaming.execute_stream({"s0": range(5000)}))


def counted(shape: str, bodies: int) -> int:
    run = subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            "--callgrind-out-file=/dev/null",
            sys.executable,
            __file__,
            shape,
            "--bodies",
            str(bodies),
        ],
        capture_output=True,
        text=True,
        check=True,
        # A fixed hash seed: string hashing, and so dict and set layouts, are the same in every
        # run (with a random seed the counts move by several percent from run to run).
        env={**os.environ, "PYTHONHASHSEED": "0"},
    )
    found = re.search(r"Collected : (\d+)", run.stderr)
    if found is None:
        raise SystemExit(f"no instruction count in valgrind's output:\n{run.stderr[-2000:]}")
    return int(found.group(1))


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in SHAPES:
        raise SystemExit(f"usage: {sys.argv[0]} {'|'.join(SHAPES)}")
    shape = sys.argv[1]
    if "--bodies" in sys.argv:  # inside valgrind
        # The scheduler gives way to the event loop after a slice of wall-clock time; under
        # valgrind everything runs ~50x slower, so slices would end far more often than on the
        # machine (and as often as the host's load says): slices are made endless here.
        from mpipe._engine import _scheduler

        _scheduler.SLICE = 1e9
        run = body(shape)
        # The cyclic collector off while the bodies run: when it would run depends on every
        # allocation before, and one collection more or less moves a count by up to 50%.
        gc.collect()
        gc.disable()
        for _ in range(int(sys.argv[sys.argv.index("--bodies") + 1])):
            run()
        return
    per_body = (counted(shape, 11) - counted(shape, 1)) // 10
    print(f"{shape}: {per_body:,} instructions per body")


if __name__ == "__main__":
    main()
