"""What a fused group's firing runs in the worker: :class:`FusedCall`, and what it raises or
is given back for a retry (:class:`StageFailed`, :class:`Resume`).

Kept apart from the parent's side (``_fused.py``) and importing nothing of the engine: a worker
unpickles a fused call by reference, and importing this module is all it costs there.
"""

from __future__ import annotations

import contextlib
import inspect
import time
import traceback
import types
from collections.abc import Callable
from typing import Any

__all__ = ["FusedCall", "Resume", "StageFailed"]

# Values of these types need no generator or awaitable check.
_PLAIN = frozenset({int, float, str, bytes, bool, type(None), dict, list, tuple, set, complex})
_ODD = (types.GeneratorType, types.AsyncGeneratorType)


class Resume:
    """The argument of a fused call that starts at stage ``stage`` (a retry of that stage):
    ``values[j]`` is stage ``j``'s value where a later stage still reads it, else None."""

    __slots__ = ("stage", "values")

    def __init__(self, stage: int, values: list[Any]) -> None:
        self.stage = stage
        self.values = values

    def __reduce__(self) -> tuple[Any, ...]:
        return (Resume, (self.stage, self.values))


class StageFailed(Exception):
    """Raised by a fused call in the worker: stage ``stage`` raised ``error``.

    Attributes:
        stage: The failed stage's place in the group.
        error: What it raised.
        text: ``error``'s traceback in the worker.
        stage_input: The argument the stage was called with.
        values: What a retry from ``stage`` needs (see :class:`Resume`).
        times: Start and end of every stage that ran in this call, the failed one last.
    """

    def __init__(
        self,
        stage: int,
        error: BaseException,
        text: str,
        stage_input: Any,
        values: list[Any],
        times: list[float],
    ) -> None:
        super().__init__(stage, error, text, stage_input, values, times)
        self.stage = stage
        self.error = error
        self.text = text
        self.stage_input = stage_input
        self.values = values
        self.times = times

    def __str__(self) -> str:
        return f"stage {self.stage} of a fused call failed: {self.error!r}"


class FusedCall:
    """What a fused group's firing calls in the worker: every stage in order, one item.

    Args:
        ids: The stages' processor ids, in the order they run.
        fns: Each stage's function (a plain sync function: one value in, one value out).
        item_args: Whether each stage takes its single input item itself (else a dict of
            input pipe name -> item).
        sources: For each stage after the first, ``(input pipe name, stage)`` for each of its
            inputs, in order. The first stage takes the call's argument.

    Returns ``(value of the last stage, [start, end] of each stage run)``, times on the
    worker's ``time.perf_counter()``; raises :class:`StageFailed` when a stage raises.
    """

    __slots__ = ("fns", "frees", "ids", "item_args", "sources")

    def __init__(
        self,
        ids: list[str],
        fns: list[Callable[[Any], Any]],
        item_args: list[bool],
        sources: list[tuple[tuple[str, int], ...]],
    ) -> None:
        self.ids = ids
        self.fns = fns
        self.item_args = item_args
        self.sources = sources
        # After stage k, the values no later stage reads are let go (a large array is freed as
        # soon as its last reader is done with it).
        last = {j: k for k, src in enumerate(sources) for _, j in src}
        frees: list[tuple[int, ...]] = [() for _ in fns]
        for j, k in last.items():
            frees[k] = (*frees[k], j)
        self.frees = frees

    def __reduce__(self) -> tuple[Any, ...]:
        return (FusedCall, (self.ids, self.fns, self.item_args, self.sources))

    def __call__(self, arg: Any) -> tuple[Any, list[float]]:
        fns, sources, item_args, frees = self.fns, self.sources, self.item_args, self.frees
        n = len(fns)
        if type(arg) is Resume:
            first, values = arg.stage, arg.values
        else:
            first, values = 0, [None] * n
        times: list[float] = []
        perf_counter = time.perf_counter
        for k in range(first, n):
            if not k:
                x = arg
            else:
                src = sources[k]
                if item_args[k] and len(src) == 1:
                    x = values[src[0][1]]
                else:
                    x = {name: values[j] for name, j in src}
            t0 = perf_counter()
            try:
                y = fns[k](x)
                if type(y) not in _PLAIN and (isinstance(y, _ODD) or inspect.isawaitable(y)):
                    _discard(y)
                    raise TypeError(
                        f"processor {self.ids[k]!r} returned {type(y).__name__}, which a fused "
                        "call cannot pass on: a fused group runs plain functions only (run "
                        "with GraphExecutor(..., fuse=False) to stream it)"
                    )
            except Exception as exc:
                times.append(t0)
                times.append(perf_counter())
                text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
                exc.__traceback__ = None
                raise StageFailed(k, exc, text, x, values, times) from None
            times.append(t0)
            times.append(perf_counter())
            values[k] = y
            for j in frees[k]:
                values[j] = None
            del x
        return values[n - 1], times


def _discard(value: Any) -> None:
    """Close a generator or coroutine a stage returned (it will never run)."""
    close = getattr(value, "close", None)
    if close is not None and not inspect.isasyncgen(value):
        with contextlib.suppress(Exception):
            close()
