"""Fused groups at run time: several processors' firings as one call per item in a worker.

A fused group (chosen by ``_fusion.py`` when the plan is compiled) is one node of the plan
whose callable, :class:`FusedCall`, runs the group's processors (its *stages*) one after the
other in the worker, handing each stage's value to the stages that read it. The worker answers
with the last stage's value and every stage's start and end on its own clock, or, when stage
``k`` raises, with :class:`StageFailed`: the stage, its error and traceback, its input, the
values the stages after it still need, and the times of the stages that ran.

In the parent, :func:`on_reply` (the scheduler's answer for a fused node's firings) keeps each
processor's own books: per-stage metrics, trace spans and hooks, as unfused process firings
have, and the failed stage's own error strategy: RETRY sends the item again from stage ``k``
(with the values it needs, as a :class:`Resume`), SKIP drops the item, HALT ends the run naming
processor ``k``. Errors outside any stage (a worker that died, an answer that could not travel)
count as the failure of the stage the call started from.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .._backends._process._protocol import RemoteTraceback
from .._model._strategies import ErrorAction, record_success, resolve_action
from ._fused_call import FusedCall, Resume, StageFailed
from ._lanes import Lane
from ._nodes import SKIPPED, Firing, Node

if TYPE_CHECKING:
    from .._model._processors import BaseProcessor
    from ._scheduler import Scheduler

__all__ = ["FusedBook", "FusedCall", "FusedGroup", "Resume", "StageFailed", "on_reply"]


class FusedGroup:
    """A fused group of a plan: its processors in the order they run, and their books.

    Args:
        ids: The processors' ids, in the order they run (the first is the group's head: its
            input is the group's; the last is its tail: its outputs are the group's).
        processors: The processors, in that order.
        strategies: Each processor's error strategy (None: halt on its first error).
        input_names: Each processor's input pipe names.
        item_args: Whether each processor takes its single input item itself.
        call: The callable that runs them in a worker.
        inner: The lanes of the pipes between them, each with the stage that feeds it: their
            traffic counters count the items that passed inside the worker.
    """

    __slots__ = (
        "call",
        "ids",
        "inner",
        "input_names",
        "item_args",
        "last",
        "processors",
        "strategies",
    )

    def __init__(
        self,
        ids: list[str],
        processors: list[BaseProcessor],
        strategies: list[Any],
        input_names: list[list[str]],
        item_args: list[bool],
        call: FusedCall,
        inner: list[tuple[Lane, int]],
    ) -> None:
        self.ids = ids
        self.processors = processors
        self.strategies = strategies
        self.input_names = input_names
        self.item_args = item_args
        self.call = call
        self.inner = inner
        self.last = len(ids) - 1

    def __repr__(self) -> str:
        return f"FusedGroup({' -> '.join(self.ids)})"


class FusedBook:
    """A fused node's processor as the scheduler sees it: what the scheduler books for the
    node's firings as a whole goes to the group's head (a firing that could not be sent), its
    routed outputs to its tail; :func:`on_reply` books each stage itself."""

    has_callbacks = False
    stateful = False

    def __init__(self, group: FusedGroup) -> None:
        self.group = group
        self.head = group.processors[0]
        self.tail = group.processors[-1]

    @property
    def _items_out(self) -> int:
        return self.tail._items_out

    @_items_out.setter
    def _items_out(self, value: int) -> None:
        self.tail._items_out = value

    @property
    def state(self) -> Any:
        """The head's state (each processor of the group has its own)."""
        return self.head.state

    def _record(self, duration: float, failed: bool) -> None:
        self.head._record(duration, failed)

    def _record_many(self, n: int, duration: float, longest: float | None = None) -> None:
        self.head._record_many(n, duration, longest)

    def _waited(self, queue: float, transfer: float) -> None:
        self.head._waited(queue, transfer)

    def _fire_callbacks(self, event: str, arg: Any) -> None:
        return None


class StageFiring(Firing):
    """A fused firing that starts at stage ``stage`` (a retry of that stage).

    ``stage_input`` is the stage's own argument (for its error strategy and hooks); ``arg`` is
    what the fused call is sent (the group's input for stage 0, else a :class:`Resume`).
    """

    __slots__ = ("stage", "stage_input")

    def __init__(self, node: Node, index: int, arg: Any, stage: int, stage_input: Any) -> None:
        super().__init__(node, index, arg)
        self.stage = stage
        self.stage_input = stage_input

    def input_dict(self) -> Any:
        group = self.node.fused
        assert group is not None
        names = group.input_names[self.stage]
        if group.item_args[self.stage] and len(names) == 1:
            return {names[0]: self.stage_input}
        return self.stage_input


def on_reply(sched: Scheduler, firing: Firing, value: Any, error: BaseException | None) -> None:
    """A fused firing's answer: book every stage that ran, then emit the value, or let the
    failed stage's strategy decide."""
    node = firing.node
    group = node.fused
    assert group is not None
    first = firing.stage if type(firing) is StageFiring else 0
    if error is None:
        result, times = value
        _waited(sched, firing)
        _passed(sched, firing, group, first, times, group.last + 1)
        sched.complete(node, firing.index, result)
        return
    _waited(sched, firing)
    if isinstance(error, StageFailed):
        k = error.stage
        exc = error.error
        exc.__cause__ = RemoteTraceback(
            f"in {firing.worker}, processor {group.ids[k]!r}:\n{error.text}"
        )
        _passed(sched, firing, group, first, error.times, k)
        start, end = error.times[-2], error.times[-1]
        _failed(sched, firing, k, exc, error.stage_input, error.values, start, end)
        return
    # Not a stage's own error (the worker died, an answer could not travel): the stage the
    # call started from answers for it.
    end = time.perf_counter()
    if type(firing) is StageFiring:
        assert type(firing.arg) is Resume
        _failed(
            sched, firing, first, error, firing.stage_input, firing.arg.values, firing.start, end
        )
    else:
        _failed(sched, firing, 0, error, firing.arg, [], firing.start, end)


def _waited(sched: Scheduler, firing: Firing) -> None:
    """The call's wait for its worker and its data's transit, booked to the node's head."""
    ran = firing.ran
    if ran is None:
        return
    firing.ran = None
    picked, run_start, run_end, _ = ran
    picked = min(max(picked, firing.start), run_start)
    transfer = run_start - picked + max(time.perf_counter() - run_end, 0.0)
    sched.record_wait(firing.node, firing.index, 1, firing.start, picked, firing.worker, transfer)


def _passed(
    sched: Scheduler, firing: Firing, group: FusedGroup, first: int, times: list[float], stop: int
) -> None:
    """Stages ``first .. stop - 1`` of ``firing`` succeeded, at ``times`` (two per stage):
    each processor's metrics, spans and hooks, as an unfused firing of it has."""
    index = firing.index
    worker = firing.worker
    timeline = sched.timeline
    start_hooks = sched.start_hooks
    end_hooks = sched.end_hooks
    ids, processors, strategies = group.ids, group.processors, group.strategies
    for k in range(first, stop):
        j = 2 * (k - first)
        start, end = times[j], times[j + 1]
        pid = ids[k]
        processor = processors[k]
        processor._record(end - start, False)
        if k != first:  # the first stage's start was told when the call was sent
            for hook in start_hooks:
                hook.firing_start(pid, index, start)
        if timeline is not None and timeline.spans.add(pid, index, start, end, worker):
            timeline.full()
        for hook in end_hooks:
            hook.firing_end(pid, index, start, end, worker, None)
        strategy = strategies[k]
        if strategy is not None:
            record_success(strategy, pid)
        if k != group.last:  # the last stage's outputs are counted as they are routed
            processor._items_out += 1
    for lane, producer in group.inner:
        if first <= producer < stop:
            lane.items_in += 1
            lane.items_out += 1


def _failed(
    sched: Scheduler,
    firing: Firing,
    stage: int,
    exc: BaseException,
    stage_input: Any,
    values: list[Any],
    start: float,
    end: float,
) -> None:
    """Stage ``stage`` of ``firing`` failed with ``exc``: book it, then let that processor's
    strategy decide."""
    node = firing.node
    group = node.fused
    assert group is not None
    pid = group.ids[stage]
    group.processors[stage]._record(end - start, True)
    for hook in sched.hooks:
        hook.firing_end(pid, firing.index, start, end, firing.worker, exc)
    again = firing
    if type(firing) is not StageFiring or firing.stage != stage:
        arg = stage_input if stage == 0 else Resume(stage, values)
        again = StageFiring(node, firing.index, arg, stage, stage_input)
        again.worker = firing.worker
    strategy = group.strategies[stage]
    if strategy is None or getattr(exc, "fatal", False):
        _halt(sched, pid, exc, again)
        return
    fut = asyncio.ensure_future(_decide(sched, again, exc))
    sched.track(fut, partial_done(sched))


def partial_done(sched: Scheduler) -> Callable[[asyncio.Future[Any]], None]:
    """The done-callback of a strategy's decision: forget it and wake the driver."""

    def done(fut: asyncio.Future[Any]) -> None:
        sched.outstanding.discard(fut)
        sched.poke()

    return done


async def _decide(sched: Scheduler, firing: Any, exc: BaseException) -> None:
    node = firing.node
    group = node.fused
    stage = firing.stage
    pid = group.ids[stage]
    context = {
        "attempt": firing.attempt,
        "input": firing.input_dict(),
        "item_index": firing.index,
        "run_id": sched.run_id,
        "processor_id": pid,
    }
    try:
        action = resolve_action(await group.strategies[stage].handle_error(exc, pid, context))
    except Exception as strategy_exc:
        strategy_exc.__context__ = exc
        _halt(sched, pid, strategy_exc, None, node)
        return
    if sched.done or sched.failure is not None:
        return
    if action is ErrorAction.RETRY:
        firing.attempt += 1
        firing.worker = "main"
        for hook in sched.hooks:
            hook.firing_retry(pid, firing.index, firing.attempt, exc)
        sched.start(firing)
    elif action is ErrorAction.SKIP:
        for hook in sched.hooks:
            hook.firing_skip(pid, firing.index, exc)
        sched.complete(node, firing.index, SKIPPED)
    else:
        _halt(sched, pid, exc, firing)
    sched.schedule(node)


def _halt(
    sched: Scheduler,
    pid: str,
    exc: BaseException,
    firing: Firing | None,
    node: Node | None = None,
) -> None:
    """End the run with processor ``pid``'s failure (not the fused node's head's)."""
    if sched.failure is None:
        sched.failure = (pid, exc)
        if firing is not None:
            sched.failed_at = (firing.index, firing.worker)
    target = firing.node if firing is not None else node
    assert target is not None
    sched.halt(target, exc, firing)
