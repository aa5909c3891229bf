"""One tiny firing's round trip against an ``os.pipe`` ping-pong, rounds interleaved.

``bench_process.py`` times each entry in its own block of rounds, so a change in the machine
between two blocks (on a VM, the host's load moves a cross-core wake-up by 10 us and more)
lands in the ratio. Here every round times, one after the other, mpipe's ``execute()`` of a
one-processor graph and the ping-pong of 32 bytes between the parent and a forked child, both
with the parent on one core and the other process (the worker, the echo child) on another
(``two_cores``), and both again where the kernel puts them; the report is the median of the
rounds and the goal: under 50 us and at most 1.5x the ping-pong.

Three more lines say where the time goes: the pool's own round trip (``backend.submit()`` of
the same firing, its future awaited directly: no graph run around it), the same ``execute()``
on the inline backend (the run's own work, no worker), and the parent's CPU time per
``execute()`` on two cores. What the round trip has on top of that CPU time is the wait for
the answer: one wake-up of the sleeping parent across cores when the answer came after the
parent went to sleep, next to nothing when the pool's look found it first (the parent's CPU
then is the round trip; ``docs/process.md``). On a shared host all of them move with the
host's load, so the last line takes the goal round by round, next to the ping-pong of the same
round: how often the host itself allowed a round trip under 50 us, and how often mpipe made it
then.

Run::

    python benchmarks/bench_process_roundtrip.py [--rounds 15] [--calls 500] [--json out.json]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _anchors import WarmExecutor, echo_child, inc, line_graph, two_cores

from mpipe._backends import FiringSlot

GOAL_US = 50.0
GOAL_RATIO = 1.5
_SUBMIT = "mpipe backend.submit(), two cores"
_CPU = "parent CPU per execute(), two cores"
_INLINE = "execute(), inline (no worker)"
_RT = "mpipe execute(), two cores"
_PIPE = "os.pipe ping-pong, two cores"


def _timed(body: Callable[[int], None], base: int, calls: int) -> float:
    start = time.perf_counter()
    body(base)
    return (time.perf_counter() - start) / calls * 1e6


def measure(rounds: int, calls: int) -> tuple[dict[str, float], dict[str, list[float]]]:
    """Microseconds per round trip of each entry, rounds interleaved: the medians, and each
    round's figure (for the entries timed in every round)."""
    times: dict[str, list[float]] = {}
    cpu_us: list[float] = []
    with (
        WarmExecutor(line_graph([inc]), backend="process", max_workers=1) as warm,
        WarmExecutor(line_graph([inc]), backend="inline") as local,
        echo_child() as (w, r, child),
    ):
        ex = warm.ex
        warm.run(ex.execute({"s0": 0}))  # starts the pool
        worker = warm.backend.worker_pids()[0]

        async def runs(ex: Any, base: int) -> None:
            for x in range(base, base + calls):
                out = await ex.execute({"s0": x})
                assert out["s0:output"] == x + 1

        def execute(base: int) -> None:
            warm.run(runs(ex, base))

        def execute_inline(base: int) -> None:
            local.run(runs(local.ex, base))

        backend = warm.backend

        async def submits(base: int) -> None:
            for x in range(base, base + calls):
                assert await backend.submit(inc, x, FiringSlot("s0", x)) == x + 1

        def submit(base: int) -> None:
            warm.run(submits(base))

        def ping_pong(base: int) -> None:
            for x in range(base, base + calls):
                message = x.to_bytes(32, "little")
                os.write(w, message)
                assert os.read(r, 32) == message

        execute(1)  # warm-up
        submit(1)
        ping_pong(1)
        for i in range(rounds):
            base = (i + 2) * 1_000_000
            for placed in (True, False):
                suffix = "two cores" if placed else "OS placement"
                with two_cores(worker) if placed else contextlib.nullcontext():
                    cpu = time.thread_time()
                    times.setdefault(f"mpipe execute(), {suffix}", []).append(
                        _timed(execute, base, calls)
                    )
                    if placed:
                        cpu_us.append((time.thread_time() - cpu) / calls * 1e6)
                        times.setdefault(_SUBMIT, []).append(_timed(submit, base, calls))
                        times.setdefault(_INLINE, []).append(_timed(execute_inline, base, calls))
                with two_cores(child) if placed else contextlib.nullcontext():
                    times.setdefault(f"os.pipe ping-pong, {suffix}", []).append(
                        _timed(ping_pong, base, calls)
                    )
    medians = {name: statistics.median(values) for name, values in times.items()}
    medians[_CPU] = statistics.median(cpu_us)
    return medians, times


def _by_round(times: dict[str, list[float]]) -> str:
    """How the goal fared round by round, next to the floor the host gave in the same round."""
    rts, pipes = times[_RT], times[_PIPE]
    n = len(rts)
    ratio_ok = sum(rt <= GOAL_RATIO * pipe for rt, pipe in zip(rts, pipes, strict=True))
    fast = [rt for rt, pipe in zip(rts, pipes, strict=True) if pipe < GOAL_US]
    return (
        f"by round ({n}): at most {GOAL_RATIO}x the ping-pong in {ratio_ok}; under "
        f"{GOAL_US:.0f} us in {sum(rt < GOAL_US for rt in rts)}; the ping-pong itself under "
        f"{GOAL_US:.0f} us in {len(fast)}, and mpipe under {GOAL_US:.0f} us in "
        f"{sum(rt < GOAL_US for rt in fast)} of those"
    )


def main(argv: list[str] | None = None) -> int:
    """Print (and optionally write) the medians and the goal's verdict."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args(argv)
    medians, times = measure(args.rounds, args.calls)
    for name, us in medians.items():
        print(f"{name:<36}{us:8.1f} us")
    rt = medians[_RT]
    pipe = medians[_PIPE]
    ok = rt < GOAL_US and rt <= GOAL_RATIO * pipe
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(
        f"goal (under {GOAL_US:.0f} us and at most {GOAL_RATIO}x os.pipe, two cores): "
        f"{'met' if ok else 'NOT met'}: {rt:.1f} us, {rt / pipe:.2f}x os.pipe ({pipe:.1f} us); "
        f"load average {load}"
    )
    print(_by_round(times))
    if args.json is not None:
        args.json.write_text(
            json.dumps({"median_us": medians, "rounds_us": times, "goal_met": ok}, indent=2)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
