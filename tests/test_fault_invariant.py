"""No item lost, none duplicated: a property of every backend, fault and error strategy.

Hypothesis draws a stream of items, some of them faulty (the item says how its firing goes
wrong), and an error strategy; one executor per backend serves every example, so worker pools
go through many crashes, timeouts and replacements in a row. The invariant:

- SKIP: the results hold every sound item, exactly once and in input order; each faulty item
  is reported to the strategy exactly once, by its index;
- RETRY (each fault strikes an item's first try only): the results hold every item, exactly
  once and in order;
- HALT: the run raises, naming the processor and a faulty item; what the run yielded before
  is a prefix, in order and without repeats, of the sound items before the first faulty one.

After each test no worker process, shared memory or descriptor is left (fixtures).
"""

from __future__ import annotations

import asyncio
import ctypes
import itertools
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import worker_fds
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mpipe import (
    ExecutionError,
    GraphExecutor,
    ProcessingGraph,
    RetryStrategy,
    SimpleProcessor,
    SkipStrategy,
)

#: Faults a firing can meet on each backend. A worker process can die or fail to send its
#: output back; a firing in the parent's own process (inline, thread) can do neither without
#: taking the test down, and has no output to serialize.
FAULTS = {
    "inline": ["raise", "hang"],
    "thread": ["raise", "hang"],
    "process": ["raise", "exit", "segfault", "hang", "unserializable"],
}
EXAMPLES = {"inline": 20, "thread": 15, "process": 8}
TIMEOUT = 0.4  # seconds; set only when an example has a hanging item

#: Lets the thread backend's abandoned firings end with the test (they are never waited for).
RELEASE = threading.Event()

# An item is (index, fault or None, marker folder or None): with a folder, the fault strikes
# only the item's first try (RETRY); without, every try.
Item = tuple[int, "str | None", "str | None"]


def _first_try(folder: str | None, index: int) -> bool:
    if folder is None:
        return True
    try:
        os.close(os.open(os.path.join(folder, str(index)), os.O_CREAT | os.O_EXCL))
    except FileExistsError:
        return False
    return True


def faulty(item: Item) -> Any:
    index, fault, folder = item
    if fault is not None and _first_try(folder, index):
        if fault == "raise":
            raise ValueError(f"injected into item {index}")
        if fault == "exit":
            os._exit(3)
        if fault == "segfault":
            ctypes.string_at(0)
        if fault == "hang":
            RELEASE.wait(60)  # a worker process is killed first; a thread is abandoned
        if fault == "unserializable":
            return {"index": index, "gen": (i for i in range(3))}
    return index * 10


async def faulty_async(item: Item) -> Any:
    """Inline firings are timed only when they are awaitable."""
    index, fault, folder = item
    if fault == "hang" and _first_try(folder, index):
        await asyncio.sleep(60)
    return faulty(item)


@st.composite
def cases(draw: st.DrawFn, backend: str) -> tuple[list[str | None], str]:
    n = draw(st.integers(1, 7))
    faults = [None] * n
    for index in draw(st.sets(st.integers(0, n - 1), min_size=1, max_size=2)):
        faults[index] = draw(st.sampled_from(FAULTS[backend]))
    return faults, draw(st.sampled_from(["halt", "skip", "retry"]))


@pytest.fixture
def released() -> Iterator[None]:
    RELEASE.clear()
    yield
    RELEASE.set()


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["inline", "thread", "process"])
def test_every_item_is_in_the_results_once_in_order_or_named_as_failed(
    backend: str, tmp_path: Path, released: None
) -> None:
    fds_before = worker_fds()
    g = ProcessingGraph()
    proc = SimpleProcessor(faulty_async if backend == "inline" else faulty, "p", execution=backend)
    proc.create_default_pipes()
    g.add_processor(proc)
    folders = (str(tmp_path / str(i)) for i in itertools.count())
    loop = asyncio.new_event_loop()
    ex = GraphExecutor(g, max_workers=2)
    loop.run_until_complete(ex.__aenter__())

    async def check(faults: list[str | None], name: str) -> None:
        folder = next(folders) if name == "retry" else None
        if folder is not None:
            os.mkdir(folder)
        items: list[Item] = [(i, f, folder) for i, f in enumerate(faults)]
        bad = [i for i, f in enumerate(faults) if f is not None]
        sound = [10 * i for i, f in enumerate(faults) if f is None]
        reported: list[int] = []
        strategy = {
            "halt": None,
            "skip": SkipStrategy(
                skip_callback=lambda e, pid, ctx: reported.append(ctx["item_index"])
            ),
            "retry": RetryStrategy(max_retries=2, initial_delay=0.0),
        }[name]
        g.set_error_strategy("p", strategy)
        proc.timeout = TIMEOUT if "hang" in faults else None
        if name == "halt" and bad:
            got: list[Any] = []
            with pytest.raises(ExecutionError) as info:
                async for _, value in ex.stream({"p": items}):
                    got.append(value)
            assert info.value.failed_processors == ["p"]
            assert info.value.item_index in bad
            assert got == [10 * i for i in range(len(got))] and len(got) <= bad[0]
            return
        out = await ex.execute_stream({"p": items})
        if name == "retry":
            assert out == {"p:output": [10 * i for i in range(len(items))]}
        else:
            assert out == ({"p:output": sound} if sound else {})
            assert sorted(reported) == bad
        backend_ = ex._backends.get(backend)
        assert backend_ is None or backend_.broken is None

    @settings(
        max_examples=EXAMPLES[backend],
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    @given(case=cases(backend))
    def each(case: tuple[list[str | None], str]) -> None:
        loop.run_until_complete(check(*case))

    try:
        each()
    finally:
        loop.run_until_complete(ex.__aexit__(None, None, None))
        loop.close()
    for _ in range(50):  # a pool's last descriptors close as its workers' exits are reaped
        if worker_fds() <= fds_before:
            break
        time.sleep(0.02)
    assert worker_fds() <= fds_before
