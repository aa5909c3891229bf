"""One run: a plan, the caller's input and the observers, driven to the end.

:func:`prepare_run` resets the plan's nodes and lanes, puts the input in (a batch's items go
straight into the entry lanes; a stream's iterables become feeder nodes), sets up a resumed
run's replays and checkpoints, and returns a :class:`Run`. ``Run.drive`` calls the processors'
``initialize``, lets the scheduler run, and calls their ``cleanup`` whatever happened.
Everything the run changes lives in the plan's nodes and lanes and in the run itself.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from .._backends import Backend
from .._errors import ConfigurationError, ExecutionError
from .._model._graph import ProcessingGraph, connection_id
from .._model._interfaces import ProcessorState
from .._model._processors import BaseProcessor
from .._observe._breakpoints import BreakpointManager
from .._observe._checkpoints import CheckpointManager
from .._observe._hooks import RunHooks, RunInfo
from .._observe._run_checkpoints import RunCheckpointer, completed_outputs, replay_items
from ._inputs import Entry, Feed, resolve_feeds
from ._nodes import Node, ResultSink, feeder
from ._plan import Plan, lifecycle_of, strategy_resets
from ._scheduler import Scheduler

__all__ = ["Run", "announce_inputs", "new_run_id", "prepare_run"]


# An enum member read from its class takes the interpreter's slow path; a global does not.
_RUNNING, _ERROR, _COMPLETED, _IDLE = (
    ProcessorState.RUNNING,
    ProcessorState.ERROR,
    ProcessorState.COMPLETED,
    ProcessorState.IDLE,
)


class Run:
    """One run of a plan: its scheduler, its result sink, what observes it, and its outcome.

    Attributes:
        info: What observers are told of the run (id, graph, placements, mode).
        scheduler: Moves the items; its ``sink`` holds the results.
        status: The run's end state, once it ended (``state``, ``ended_at``, and
            ``failed_processor`` and ``error`` after a failure).
    """

    __slots__ = ("info", "lifecycle", "plan", "procs", "scheduler", "status")

    def __init__(
        self,
        plan: Plan,
        scheduler: Scheduler,
        info: RunInfo,
        procs: list[BaseProcessor],
        lifecycle: list[Any],
    ) -> None:
        self.plan = plan
        self.scheduler = scheduler
        self.info = info
        self.procs = procs
        self.lifecycle = lifecycle
        self.status: dict[str, Any] = {}

    async def drive(
        self,
        breakpoints: BreakpointManager,
        ended: Callable[[Run], Awaitable[None] | None],
    ) -> None:
        """Run the processors' lifecycle around the scheduler; fill ``status`` at the end and
        call ``ended`` (the executor's own end of a run; what it returns is awaited).

        Raises:
            ExecutionError: A firing failed and its strategy halted, the run was stopped, or
                (after an otherwise good run) a processor's cleanup failed.
        """
        sched = self.scheduler
        info = self.info
        hooks = sched.hooks
        error: BaseException | None = None
        lifecycle = self.lifecycle
        self.plan.running = True
        try:
            for hook in hooks:
                hook.run_start(info)
            for p in self.procs:
                p.state = _RUNNING
            if lifecycle:
                await asyncio.gather(*(_maybe_await(p.initialize()) for p in lifecycle))
            breakpoints.attach(sched.nodes, sched.notice)
            await sched.run()
        except BaseException as exc:
            error = exc
            raise
        finally:
            breakpoints.detach()
            results = (
                await asyncio.gather(
                    *(_maybe_await(p.cleanup()) for p in lifecycle), return_exceptions=True
                )
                if lifecycle
                else []
            )
            failed = sched.failure[0] if sched.failure is not None else None
            for p in self.procs:
                p.state = (
                    _ERROR if p.processor_id == failed else (_COMPLETED if error is None else _IDLE)
                )
            state = "completed" if error is None else ("stopped" if sched.stopped else "failed")
            self.status = {"state": state, "ended_at": time.time()}
            if sched.failure is not None:
                # Kept as text: the failure's traceback holds the scheduler's frames, and the
                # scheduler holding the failure would tie them into a cycle that only the
                # garbage collector frees.
                self.status["failed_processor"] = sched.failure[0]
                self.status["error"] = repr(sched.failure[1])
                sched.failure = None
            try:
                for hook in hooks:  # they still see the run's lanes with its traffic
                    hook.run_end(info, error)
            finally:
                self.plan.ended()
                closing = ended(self)
                if closing is not None:
                    await closing
            error = None  # this frame is in the raised error's traceback: no cycle through it
        for r in results:
            if isinstance(r, BaseException):
                raise ExecutionError(f"cleanup failed: {r!r}", cause=r)

    def take_results(self) -> dict[str, list[Any]]:
        """The sink's collected items, handed over: the run (which the executor keeps for its
        status) holds them no longer, so a big result lives only as long as the caller keeps
        it."""
        sink = self.scheduler.sink
        results, sink.results = sink.results, {}
        return results


def prepare_run(
    plan: Plan,
    graph: ProcessingGraph,
    data: Any,
    streaming: bool,
    collect: bool,
    hooks: list[RunHooks],
    inline: Backend | None,
    manager: CheckpointManager | None,
    resume: str | None,
    backends: list[Backend] | None,
) -> Run:
    """Reset ``plan`` and put ``data`` in: a run ready to drive.

    Args:
        plan: The compiled graph (its backends already started).
        graph: The graph it was compiled from.
        data: A batch input (``streaming`` False) or source -> iterable.
        streaming: Whether ``data`` holds streams.
        collect: Gather sink items in lists (batch, ``execute_stream``) rather than queueing
            them for a consumer (``stream``).
        hooks: The run's observers (a checkpointer is added when ``manager`` is set).
        inline: The inline backend, for feeders (a stream's input, a resumed run's replays).
        manager: Save every processor's outputs here.
        resume: Replay what the processors completed in that run instead of running them.
        backends: Every backend of the executor, for observers.

    Raises:
        ValidationError: The input does not fit the graph.
        ConfigurationError: ``resume`` without a checkpoint manager.
        CheckpointError: ``resume`` names no run of this graph.
    """
    if resume is not None and manager is None:
        raise ConfigurationError(
            "execute(resume=...) needs an executor with a checkpoint_manager", "resume"
        )
    # Resume: processors that completed in that run are replayed, not run.
    done: dict[str, dict[str, list[Any]]] = {}
    restored: list[tuple[str, dict[str, Any]]] = []
    if resume is not None and manager is not None:
        done, restored = completed_outputs(manager, resume, graph.graph_id)
    plan.reset()
    entry_lanes = plan.entry_lanes
    single = plan.single_entries
    feeds: list[Feed] = []
    if not streaming and single is not None and type(data) is dict and data.keys() == single.keys():
        # The common batch input: one item for each one-pipe source, every source named,
        # so each entry lane gets exactly one item (nothing to check, nothing to build).
        for key, value in data.items():
            single[key].fill(value)
    else:

        def deliver(entry: Entry, item: Any) -> None:
            entry_lanes[(entry.processor_id, entry.pipe_name)].fill(item)

        # Validation of the input happens here, before any processor runs.
        feeds = resolve_feeds(plan.index, data, streaming, None if streaming else deliver)
    sink = ResultSink(not collect, plan.sink_keys)
    for _, lane in plan.sinks:
        lane.consumer = sink
    feeders: list[Node] = []
    if streaming:
        assert inline is not None, "a stream's feeders run on the inline backend"
        for f in feeds:
            outputs = {
                name: [entry_lanes[(e.processor_id, e.pipe_name)] for e in targets]
                for name, targets in f.targets.items()
            }
            feeders.append(feeder(f"<input {f.name}>", f.items, outputs, inline))
    else:
        # A batch is a stream of one: each entry lane got its item; now it is closed.
        for lane in entry_lanes.values():
            lane.seal()
    nodes = plan.nodes
    if done:
        nodes = _replay(plan, graph, done, feeders, inline)
    for reset in plan.strategy_resets if nodes is plan.nodes else strategy_resets(nodes):
        reset()
    procs, lifecycle = (plan.procs, plan.lifecycle) if nodes is plan.nodes else lifecycle_of(nodes)
    info = RunInfo(
        run_id=resume if resume is not None else new_run_id(),
        graph_id=graph.graph_id,
        processor_ids=plan.processor_ids,
        placements=plan.placements,
        started_at=time.time(),
        mode="stream" if streaming else "batch",
    )
    if hooks:  # what observers may inspect (built only when someone observes)
        info.extra["pipes"] = plan.pipe_map
        info.extra["lanes"] = plan.lane_map
        info.extra["backends"] = backends or []
        info.extra["resumed"] = sorted(done)
        info.extra["graph"] = graph
        info.extra["totals"] = _input_totals(plan, feeds, streaming)
    if manager is not None:
        node_outputs = {n.node_id: n.outputs for n in nodes}
        checkpointer = RunCheckpointer(
            manager, info.run_id, graph.graph_id, node_outputs, hooks, restored
        )
        if resume is None:
            checkpointer.write_manifest(list(graph.nodes))
        hooks.append(checkpointer)
    return Run(plan, Scheduler(nodes, feeders, sink, hooks, info.run_id), info, procs, lifecycle)


def announce_inputs(plan: Plan, data: Any) -> None:
    """Tell each backend of ``plan`` how many bytes of the batch input ``data`` go to its
    sources (``Backend.expect``), before the backends start. The common input only (one item
    per one-pipe source, every source named), and only payloads whose bytes the codec sends as
    they are (``arena_nbytes``: arrays, Arrow data, bytes); a lazy object's size says nothing
    of what it sends."""
    single = plan.single_entries
    if single is None or type(data) is not dict or data.keys() != single.keys():
        return
    from .._transport._raw import arena_nbytes

    sizes: dict[Backend, int] = {}
    for key, value in data.items():
        backend = getattr(single[key].consumer, "backend", None)
        if backend is not None and (nbytes := arena_nbytes(value)):
            sizes[backend] = sizes.get(backend, 0) + nbytes
    for backend, total in sizes.items():
        backend.expect(total)


def _input_totals(plan: Plan, feeds: list[Feed], streaming: bool) -> dict[str, int]:
    """Items each fed processor gets, where that is known up front: one per source in a
    batch; in a stream, the ``len()`` of each input that has one."""
    if not streaming:
        return plan.batch_totals()
    totals: dict[str, int] = {}
    for f in feeds:
        try:
            n = len(f.items)
        except TypeError:  # a generator or another iterable of unknown length
            continue
        for targets in f.targets.values():
            for e in targets:
                totals[e.processor_id] = min(totals.get(e.processor_id, n), n)
    return totals


def _replay(
    plan: Plan,
    graph: ProcessingGraph,
    done: dict[str, dict[str, list[Any]]],
    feeders: list[Node],
    inline: Backend | None,
) -> list[Node]:
    """Nobody runs a replayed processor: the lanes into it are closed (what arrives is dropped)
    and a feeder replays its saved outputs into its output lanes. The nodes that still run."""
    for (pid, _), lane in plan.entry_lanes.items():
        if pid in done:
            lane.closed = True
    lane_of = plan.lane_map
    for conn in graph.connections:
        if conn[2] in done:
            lane_of[graph.pipes[connection_id(conn)].pipe_id].closed = True
    plan.relink = True
    assert inline is not None, "replays run on the inline backend"
    for n in plan.nodes:
        if n.node_id in done:
            items = replay_items(done[n.node_id], list(n.outputs))
            feeders.append(feeder(f"<replay {n.node_id}>", items, n.outputs, inline))
    return [n for n in plan.nodes if n.node_id not in done]


async def _maybe_await(value: Any) -> Any:
    if inspect.isawaitable(value):
        return await value
    return value


# Run ids: unique per process (a random prefix drawn once, then a counter), without the
# ~20 microseconds a uuid4 costs per run on a small machine.
_run_prefix = uuid.uuid4().hex[:6]
_run_numbers = itertools.count(1)


def new_run_id() -> str:
    return f"{_run_prefix}{next(_run_numbers):06x}"
