"""Count the Python bytecodes and calls one run of an engine shape executes.

A deterministic measure of the engine's own work that needs no quiet machine and no valgrind:
``sys.settrace`` with opcode events counts every bytecode the interpreter runs for one run,
by function. Usage (from the repository root)::

    python benchmarks/count_bytecodes.py one|entered|roundtrip|chains|monitored|first [--top N]

- ``one``: one inline ``execute()`` of one processor, warm executor;
- ``entered``: the same inside ``async with`` (the executor stays up between runs);
- ``roundtrip``: the parent's side of one ``execute()`` of one processor on a warm process
  pool of one worker (the average of 20 runs: when the answer arrives moves the event loop's
  share by a few percent);
- ``chains``: one warm run of 20 chains of 50 tiny processors (1,000 firings);
- ``monitored``: the same with a ``Monitor`` attached;
- ``first``: a new executor's first run of a new graph of that shape (compiling included).

The counts leave out C code (a C call is one bytecode), so they show the Python-level work a
change adds or removes; timings in ``bench_engine.py`` say what it costs on a given machine.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import sys
from collections.abc import Callable
from types import FrameType
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _anchors import line_graph
from _graphs import chains_graph, inc

from mpipe import GraphExecutor, Monitor

SHAPES = ("one", "entered", "roundtrip", "chains", "monitored", "first")


def prepared(shape: str) -> Callable[[], Any]:
    """An awaitable factory for one run of the shape, its executor warmed up where it is warm."""
    if shape == "first":
        asyncio.run(GraphExecutor(chains_graph(2, 2)[0]).execute(chains_graph(2, 2)[1]))
        graph, inputs = chains_graph(20, 50)
        return lambda: GraphExecutor(graph).execute(inputs)
    graph, inputs = chains_graph(1, 1) if shape == "one" else chains_graph(20, 50)
    executor = GraphExecutor(graph, monitor=Monitor() if shape == "monitored" else None)
    asyncio.run(executor.execute(inputs))
    return lambda: executor.execute(inputs)


#: Runs counted per shape (the count is divided by it).
RUNS = {"entered": 1, "roundtrip": 20}


def count(shape: str) -> tuple[int, int, collections.Counter[str]]:
    """Bytecodes, calls and bytecodes per function of one run of ``shape``."""
    if shape in RUNS:
        return count_entered(shape)
    run = prepared(shape)
    tracer, per_function, calls = _tracer()

    async def once() -> None:
        sys.settrace(tracer)
        try:
            await run()
        finally:
            sys.settrace(None)

    asyncio.run(once())
    return sum(per_function.values()), calls[0], per_function


def count_entered(shape: str) -> tuple[int, int, collections.Counter[str]]:
    """``count`` for a shape whose executor stays entered: only the counted runs are traced."""
    graph, inputs = chains_graph(1, 1)
    if shape == "roundtrip":
        graph, inputs = line_graph([inc], execution="process"), {"s0": 1}
    executor = GraphExecutor(graph, max_workers=1)
    n = RUNS[shape]
    tracer, per_function, calls = _tracer()

    async def go() -> None:
        async with executor:
            for _ in range(50):
                await executor.execute(inputs)
            sys.settrace(tracer)
            try:
                for _ in range(n):
                    await executor.execute(inputs)
            finally:
                sys.settrace(None)

    asyncio.run(go())
    scaled = collections.Counter({k: v // n for k, v in per_function.items()})
    return sum(per_function.values()) // n, calls[0] // n, scaled


def _tracer() -> tuple[Any, collections.Counter[str], list[int]]:
    per_function: collections.Counter[str] = collections.Counter()
    calls = [0]

    def tracer(frame: FrameType, event: str, arg: Any) -> Any:
        frame.f_trace_opcodes = True
        if event == "call":
            calls[0] += 1
        elif event == "opcode":
            code = frame.f_code
            per_function[f"{os.path.basename(code.co_filename)}:{code.co_name}"] += 1
        return tracer

    return tracer, per_function, calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("shape", choices=SHAPES)
    parser.add_argument("--top", type=int, default=0, help="also list the N busiest functions")
    args = parser.parse_args()
    total, calls, per_function = count(args.shape)
    print(f"{args.shape}: {total:,} bytecodes, {calls:,} Python calls per run")
    for name, n in per_function.most_common(args.top):
        print(f"{n:10,}  {name}")


if __name__ == "__main__":
    main()
