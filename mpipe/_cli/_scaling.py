"""``mpipe bench CONFIG``: how a user's own graph scales with workers and backends.

Every (backend, workers) setting gets its own executor, kept open for the whole benchmark so
that pools start once (and one untimed run each warms them up). The timed runs are interleaved,
round by round, and each round visits the settings in a rotated order, so that a noisy machine
weighs on all settings alike. Each run gets the same input, read once before the benchmark.

Reported per setting: the median and best run time, items per second (input items over the
median time), the speedup over the fewest workers of the same backend, and parallel efficiency
(speedup over the ratio of workers). The processor that limits throughput is the one busiest
for its share of the machine: its summed firing time over the run's wall time and the slots it
can use (the workers for thread, process and Dask placement; one for inline); the fullest
input pipe is shown beside it.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .._observe._monitor import Monitor
from .._observe._report._data import report_data

__all__ = ["ScalingResult", "Setting", "parse_list", "run_scaling", "scaling_lines"]


@dataclass
class Setting:
    """One backend and worker count, and what its runs measured."""

    backend: str
    workers: int
    seconds: list[float] = field(default_factory=list)
    items: int = 0
    busy: dict[str, float] = field(default_factory=dict)  # processor -> busy fraction
    pipes: dict[str, float] = field(default_factory=dict)  # pipe -> peak fill fraction

    @property
    def median(self) -> float:
        return statistics.median(self.seconds) if self.seconds else float("nan")

    @property
    def best(self) -> float:
        return min(self.seconds) if self.seconds else float("nan")

    @property
    def rate(self) -> float:
        """Input items per second at the median time."""
        return self.items / self.median if self.seconds and self.median > 0 else 0.0


@dataclass
class ScalingResult:
    """Every setting of one benchmark."""

    graph_id: str
    rounds: int
    settings: list[Setting]

    def base(self, s: Setting) -> Setting:
        """The setting with the fewest workers of the same backend."""
        same = [t for t in self.settings if t.backend == s.backend]
        return min(same, key=lambda t: t.workers)

    def speedup(self, s: Setting) -> float:
        base = self.base(s)
        return s.rate / base.rate if base.rate > 0 else 0.0

    def efficiency(self, s: Setting) -> float:
        return self.speedup(s) / (s.workers / self.base(s).workers)

    def limiter(self) -> tuple[str, float, str | None, float]:
        """(processor, busy fraction, fullest pipe, its peak fill) at the most workers."""
        top = max(self.settings, key=lambda s: (s.workers, s.rate))
        proc, busy = max(top.busy.items(), key=lambda kv: kv[1], default=("", 0.0))
        pipe, fill = max(top.pipes.items(), key=lambda kv: kv[1], default=(None, 0.0))
        return proc, busy, pipe, fill


def parse_list(text: str, what: str, convert: Callable[[str], Any]) -> list[Any]:
    """A comma-separated list, each value converted; a ValueError names the bad value."""
    values = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            values.append(convert(part))
        except (ValueError, TypeError):
            raise ValueError(f"{what}: {part!r} is not valid") from None
    if not values:
        raise ValueError(f"{what}: expected a comma-separated list, got {text!r}")
    return values


def _slots(placement: str, workers: int) -> int:
    return workers if placement in ("thread", "process", "dask") else 1


def _measure(setting: Setting, monitor: Monitor, wall: float) -> None:
    """Busy fraction per processor and peak fill per pipe of the monitor's last run."""
    series = monitor.series
    if series is None:
        return
    data = report_data(series, monitor.trace.max_spans)
    setting.items = int(data["summary"]["inputs"]) or setting.items
    setting.busy = {
        row["processor"]: row["run"]
        / (max(wall, 1e-9) * _slots(row["placement"] or setting.backend, setting.workers))
        for row in data["table"]
    }
    setting.pipes = {
        p["pipe"]: p["peak"] / p["max_size"] if p["max_size"] else 0.0
        for p in data["pipes"]
        if not p["pipe"].endswith("->results")
    }


async def _bench(
    make_executor: Callable[[str, int, Monitor], Any],
    data: Any,
    streaming: bool,
    settings: list[Setting],
    rounds: int,
    progress: Callable[[str], None] | None,
) -> None:
    async with contextlib.AsyncExitStack() as stack:
        runners = []
        for s in settings:
            monitor = Monitor(log_level="CRITICAL")
            executor = await stack.enter_async_context(make_executor(s.backend, s.workers, monitor))
            runners.append((s, executor, monitor))

        async def once(executor: Any) -> float:
            start = time.perf_counter()
            if streaming:
                await executor.execute_stream({k: list(v) for k, v in data.items()})
            else:
                await executor.execute(data)
            return time.perf_counter() - start

        for s, executor, monitor in runners:  # warm-up: pools started, code sent to workers
            wall = await once(executor)
            _measure(s, monitor, wall)
        for r in range(rounds):
            shift = r % len(runners)
            for s, executor, monitor in runners[shift:] + runners[:shift]:
                wall = await once(executor)
                s.seconds.append(wall)
                if r == rounds - 1:
                    _measure(s, monitor, wall)
            if progress is not None:
                progress(f"round {r + 1}/{rounds} done")


def run_scaling(
    make_executor: Callable[[str, int, Monitor], Any],
    graph_id: str,
    data: Any,
    streaming: bool,
    backends: list[str],
    workers: list[int],
    rounds: int,
    progress: Callable[[str], None] | None = None,
) -> ScalingResult:
    """Run the graph at every backend and worker count, interleaved (see the module docstring).

    Args:
        make_executor: ``make_executor(backend, workers, monitor)`` gives an executor to use
            as an async context manager.
        graph_id: For the report.
        data: The input: one item per source, or source -> list of items (``streaming``).
        streaming: Whether ``data`` holds streams.
        backends: Default placements to compare.
        workers: Worker counts to compare.
        rounds: Timed runs per setting.
        progress: Called with a line after each round.
    """
    settings = [Setting(b, w) for b in backends for w in sorted(set(workers))]
    asyncio.run(_bench(make_executor, data, streaming, settings, rounds, progress))
    return ScalingResult(graph_id, rounds, settings)


def scaling_lines(result: ScalingResult) -> list[str]:
    """The table and the limiting processor, as lines."""
    head = (
        f"{'backend':<8} {'workers':>7} {'median':>10} {'best':>10} {'items/s':>11} "
        f"{'speedup':>8} {'efficiency':>10}"
    )
    lines = [head]
    for s in result.settings:
        lines.append(
            f"{s.backend:<8} {s.workers:>7} {s.median * 1e3:>8.1f}ms {s.best * 1e3:>8.1f}ms "
            f"{s.rate:>11,.1f} {result.speedup(s):>7.2f}x {result.efficiency(s):>9.0%}"
        )
    proc, busy, pipe, fill = result.limiter()
    lines.append("")
    if proc:
        lines.append(
            f"limits throughput: {proc!r}, busy {busy:.0%} of the time its workers had "
            f"(at the most workers)"
            + (f"; fullest input pipe {pipe} (peak {fill:.0%} full)" if pipe else "")
        )
    lines.append(
        f"speedup: items/s over the fewest workers of the same backend; efficiency: speedup "
        f"over the ratio of workers; median of {result.rounds} interleaved rounds"
    )
    return lines
