"""``mpipe demo``: the built-in CPU-heavy example graph.

A diamond over a stream of chunks::

    generate ──▶ hash   ──▶ join
             └─▶ primes ──┘

``generate`` yields ``chunks`` blocks of pseudo-random bytes with a number range each; ``hash``
chains ``rounds`` SHA-256 rounds over a block; ``primes`` counts the primes in the block's range
by trial division (pure Python); ``join`` pairs the two per chunk. The same functions run once in
a plain loop for the serial baseline, so the speedup is mpipe against doing it by hand.

Every function is a module-level function, so every backend can ship it to its workers.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from .._engine._executor import GraphExecutor
from .._errors import ConfigurationError
from .._model._graph import ProcessingGraph
from .._model._processors import SimpleProcessor

__all__ = [
    "DEMO_BACKEND",
    "DemoReport",
    "DemoSettings",
    "build_demo_graph",
    "run_demo",
    "run_serial",
]

#: Where the demo's CPU-heavy branches run unless told otherwise (``mpipe demo --backend``).
DEMO_BACKEND = "process"


@dataclass(frozen=True)
class DemoSettings:
    """The demo's size: ``chunks`` blocks of ``chunk_bytes`` bytes, ``rounds`` hash rounds,
    ``span`` numbers searched for primes per block."""

    chunks: int = 16
    chunk_bytes: int = 1 << 18
    rounds: int = 512
    span: int = 30_000

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigurationError(
                    f"demo setting {name} must be a positive integer, got {value!r}", name
                )


def generate(settings: dict[str, int]) -> Iterator[dict[str, Any]]:
    """Yield one block per chunk: its index, pseudo-random bytes, and a number range."""
    span = settings["span"]
    for i in range(settings["chunks"]):
        data = random.Random(i).randbytes(settings["chunk_bytes"])
        start = 1_000_000 + i * span
        yield {
            "index": i,
            "data": data,
            "start": start,
            "stop": start + span,
            "rounds": settings["rounds"],
        }


def hash_rounds(chunk: dict[str, Any]) -> dict[str, Any]:
    """Chain SHA-256 over the block ``rounds`` times; return the final digest."""
    digest = b""
    data = chunk["data"]
    for _ in range(chunk["rounds"]):
        digest = hashlib.sha256(digest + data).digest()
    return {"index": chunk["index"], "digest": digest.hex()[:16]}


def count_primes(chunk: dict[str, Any]) -> dict[str, Any]:
    """Count the primes in ``[start, stop)`` by trial division by odd numbers."""
    found = 0
    for n in range(chunk["start"] | 1, chunk["stop"], 2):
        d = 3
        while d * d <= n:
            if n % d == 0:
                break
            d += 2
        else:
            found += 1
    return {"index": chunk["index"], "primes": found}


def join(parts: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Pair a chunk's digest with its prime count."""
    h, p = parts["hash"], parts["primes"]
    if h["index"] != p["index"]:
        raise ValueError(f"chunks out of step: hash {h['index']} vs primes {p['index']}")
    return {"chunk": h["index"], "digest": h["digest"], "primes": p["primes"]}


def build_demo_graph() -> ProcessingGraph:
    """The demo diamond: ``generate`` -> (``hash``, ``primes``) -> ``join``."""
    graph = ProcessingGraph("demo")
    steps: list[tuple[str, Callable[..., Any], list[str]]] = [
        ("generate", generate, ["input"]),
        ("hash", hash_rounds, ["input"]),
        ("primes", count_primes, ["input"]),
        ("join", join, ["hash", "primes"]),
    ]
    for pid, fn, inputs in steps:
        # The join only pairs two small records: it runs in the parent's event loop, so the
        # workers spend their time on the CPU-heavy steps.
        proc = (
            SimpleProcessor(fn, pid, execution="inline")
            if pid == "join"
            else SimpleProcessor(fn, pid)
        )
        proc.create_default_pipes(inputs, ["output"])
        graph.add_processor(proc)
    for branch in ("hash", "primes"):
        graph.connect("generate", "output", branch, "input")
        graph.connect(branch, "output", "join", branch)
    return graph


def run_serial(settings: DemoSettings) -> list[dict[str, Any]]:
    """The same work in a plain loop: the baseline."""
    return [
        join({"hash": hash_rounds(c), "primes": count_primes(c)})
        for c in generate(asdict(settings))
    ]


@dataclass
class DemoReport:
    """What a demo run produced and measured."""

    backend: str
    workers: int
    results: list[dict[str, Any]]
    metrics: dict[str, dict[str, Any]]
    seconds: float
    serial_seconds: float
    matches_serial: bool
    settings: DemoSettings = field(default_factory=DemoSettings)
    startup_seconds: float = 0.0

    @property
    def speedup(self) -> float:
        """Serial time over mpipe time."""
        return self.serial_seconds / self.seconds if self.seconds > 0 else float("inf")

    def lines(self) -> list[str]:
        """The report as printable lines."""
        s = self.settings
        out = [
            f"mpipe demo: {s.chunks} chunks of {s.chunk_bytes // 1024} KiB, {s.rounds} SHA-256 "
            f"rounds and primes in {s.span:,} numbers per chunk",
            f"backend {self.backend}, {self.workers} workers",
            "",
            "results:",
        ]
        out += [
            f"  chunk {r['chunk']:>3}: digest {r['digest']}  primes {r['primes']:,}"
            for r in self.results
        ]
        total = sum(r["primes"] for r in self.results)
        out += [
            f"  total primes: {total:,}",
            "",
            "per-processor metrics (run: the time a firing ran, measured where it ran; "
            "wait: the time it waited for a free worker):",
        ]
        out.append(
            f"  {'processor':<10} {'firings':>8} {'items out':>10} {'run s':>8} "
            f"{'mean run ms':>12} {'max run ms':>11} {'mean wait ms':>13} {'errors':>7}"
        )
        for pid, m in self.metrics.items():
            n = m["firings"]
            wait = m.get("queue_time", 0.0) / n if n else 0.0
            out.append(
                f"  {pid:<10} {n:>8} {m['items_out']:>10} {m['total_time']:>8.3f} "
                f"{m['mean_time'] * 1e3:>12.2f} {m['max_time'] * 1e3:>11.2f} "
                f"{wait * 1e3:>13.2f} {m['errors']:>7}"
            )
        out += [
            "",
            f"mpipe:  {self.seconds:.3f} s (after {self.startup_seconds:.3f} s starting workers)",
            f"serial: {self.serial_seconds:.3f} s",
            f"speedup over serial: {self.speedup:.2f}x"
            + ("" if self.matches_serial else "  (RESULTS DIFFER FROM SERIAL!)"),
        ]
        return out


def run_demo(
    backend: str = DEMO_BACKEND,
    workers: int | None = None,
    settings: DemoSettings | None = None,
    *,
    monitor: Any = None,
    progress: Any = False,
) -> DemoReport:
    """Run the demo graph, then the serial baseline, and report both.

    Args:
        backend: Where firings run (``inline``, ``thread``, ``process``, ``dask``).
        workers: Workers for pool backends (default: the usable cores).
        settings: The demo's size.
        monitor: A :class:`~mpipe.Monitor` to watch the run (for a trace, say).
        progress: Live progress, as ``GraphExecutor(progress=...)`` takes it.

    Raises:
        ConfigurationError: An unknown or unavailable backend, or bad ``workers``.
        ExecutionError: The run failed.
    """
    settings = settings or DemoSettings()
    graph = build_demo_graph()
    executor = GraphExecutor(
        graph, monitor, backend=backend, max_workers=workers, progress=progress
    )

    async def run() -> tuple[Any, float, float]:
        async with executor:
            start = time.perf_counter()
            await executor.start()  # worker pools, timed apart from the run
            warm = time.perf_counter()
            result = await executor.execute({"generate": asdict(settings)})
            return result, warm - start, time.perf_counter() - warm

    out, startup_seconds, seconds = asyncio.run(run())
    results = out.get("join:output", [])
    results = results if isinstance(results, list) else [results]
    start = time.perf_counter()
    serial = run_serial(settings)
    serial_seconds = time.perf_counter() - start
    metrics = {pid: p.get_metrics() for pid, p in graph.get_all_processors().items()}
    return DemoReport(
        backend=executor.backend,
        workers=executor.max_workers,
        results=results,
        metrics=metrics,
        seconds=seconds,
        startup_seconds=startup_seconds,
        serial_seconds=serial_seconds,
        matches_serial=results == serial,
        settings=settings,
    )
