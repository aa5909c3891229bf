"""What runs on a Dask worker: a firing, and the small descriptions the parent routes by.

This module is imported by the workers (the functions travel by reference), so it imports
nothing of the scheduler and nothing of ``distributed`` at import time.
"""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

__all__ = ["Drained", "describe", "fire", "fire_and_return", "item"]


class Drained(list):  # type: ignore[type-arg]
    """The items a generator yielded on a worker, drained there (one task's result)."""

    __slots__ = ()


async def _collect(agen: Any) -> list[Any]:
    return [x async for x in agen]


async def _await(awaitable: Any) -> Any:
    return await awaitable


def fire(fn: Any, arg: Any, topic: str | None = None, outputs: tuple[str, ...] = ()) -> Any:
    """Run one firing on the worker: ``fn(arg)``, awaited if it is a coroutine, drained into a
    :class:`Drained` list if it is a generator (sync or async).

    With a ``topic``, the firing's shape (:func:`describe`) is also published as a Dask event on
    that topic; it reaches the client before the task's completion does (one ordered stream
    from worker to scheduler to client), so the parent never waits on a second task for it.
    """
    value = _run(fn, arg)
    if topic is not None:
        from distributed import get_worker

        worker = get_worker()
        where, shape = describe(value, outputs)
        worker.log_event(topic, {"key": worker.get_current_task(), "at": where, "shape": shape})
    return value


def _run(fn: Any, arg: Any) -> Any:
    result = fn(arg)
    if inspect.isgenerator(result):
        return Drained(result)
    if inspect.isasyncgen(result):
        return Drained(asyncio.run(_collect(result)))
    if inspect.isawaitable(result):
        result = asyncio.run(_await(result))
        if inspect.isasyncgen(result):  # an async function returning an async generator
            return Drained(asyncio.run(_collect(result)))
    return result


def _worker_address() -> str:
    try:
        from distributed import get_worker

        return str(get_worker().address)
    except ValueError:  # pragma: no cover - not in a worker (never, in a task)
        return "dask"


def _routes(value: Any, outputs: tuple[str, ...]) -> list[str] | None:
    """The output pipes a value is routed to key by key, or None (it goes down every output)."""
    if len(outputs) > 1 and isinstance(value, dict) and value and set(value) <= set(outputs):
        return list(value)
    return None


def describe(value: Any, outputs: tuple[str, ...]) -> tuple[str, Any]:
    """A firing's shape, small enough to send to the parent: the worker holding the result and
    either ``("one", routes)`` or ``("many", [routes per item])`` (see :func:`_routes`)."""
    if isinstance(value, Drained):
        return _worker_address(), ("many", [_routes(v, outputs) for v in value])
    return _worker_address(), ("one", _routes(value, outputs))


def fire_and_return(fn: Any, arg: Any) -> tuple[str, Any]:
    """A sink's firing: its value comes home, with the worker that ran it."""
    return _worker_address(), _run(fn, arg)


def item(value: Any, *path: Any) -> Any:
    """``value[path[0]][path[1]]...``: one output of a firing, cut out on the cluster."""
    for key in path:
        value = value[key]
    return value
