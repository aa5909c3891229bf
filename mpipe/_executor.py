"""The graph executor: turns a graph and its input into a scheduled run.

Batch is a stream of one: ``execute`` feeds one item per source through the same scheduler that
``stream`` drives. Backends are started per run, or once for the life of an ``async with`` block.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import os
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

from ._backends import Backend, make_backend
from ._breakpoints import BreakpointAPI, BreakpointHit, BreakpointManager
from ._checkpoints import CheckpointManager
from ._errors import ConfigurationError, ExecutionError, GraphError, PipelineError, ValidationError
from ._graph import ProcessingGraph, connection_id
from ._hooks import RunHooks, RunInfo
from ._inputs import Entry, EntryIndex, Feed, resolve_feeds
from ._interfaces import ProcessorInterface, ProcessorState
from ._nodes import Node, ResultSink, feeder
from ._pipe import Pipe, PipeType
from ._placement import check_placement
from ._processors import BaseProcessor, plan_epoch
from ._run_checkpoints import RunCheckpointer, completed_outputs, replay_items
from ._scheduler import Scheduler

__all__ = ["GraphExecutor"]


def usable_cores() -> int:
    """Cores this process may run on (respects CPU affinity)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


class _Foreign:
    """Bookkeeping for a processor that implements the interface but is not a BaseProcessor."""

    has_callbacks = False
    stateful = True

    def __init__(self, processor: ProcessorInterface) -> None:
        self.processor = processor
        self._items_out = 0

    def _record(self, duration: float, failed: bool) -> None:
        pass

    def _record_many(self, n: int, duration: float) -> None:
        pass

    def _fire_callbacks(self, event: str, arg: Any) -> None:
        pass


class _Plan:
    """A graph compiled for running: its nodes, entries and sinks, valid for one fingerprint."""

    def __init__(
        self,
        fingerprint: tuple[int, ...],
        nodes: list[Node],
        index: EntryIndex,
        entry_pipes: dict[tuple[str, str], Pipe],
        sinks: list[tuple[str, Pipe]],
        pipes: list[Pipe],
        placements: dict[str, str],
    ) -> None:
        self.fingerprint = fingerprint
        self.nodes = nodes
        self.index = index
        self.entry_pipes = entry_pipes
        self.sinks = sinks
        self.pipes = pipes
        self.placements = placements
        #: The processor ids, one list shared by every run of the plan (observers may tell two
        #: runs of one plan apart from runs of another by its identity).
        self.processor_ids = list(placements)
        #: Every pipe by id, for observers (made once per plan, shared by its runs).
        self.pipe_map = {p.pipe_id: p for p in pipes}
        #: What each run needs of the nodes, worked out once: the processors, those whose
        #: initialize/cleanup must be called, and the distinct error strategies.
        self.procs, self.lifecycle = _lifecycle_of(nodes)
        self.strategies = list({id(n.strategy): n.strategy for n in nodes if n.strategy}.values())
        self.backends = list({id(n.backend): n.backend for n in nodes}.values())
        #: Source id -> its entry pipe, when every source has one (the common batch input).
        self.single_entries: dict[str, Pipe] | None = (
            None
            if index.single is None
            else {
                pid: entry_pipes[(e.processor_id, e.pipe_name)] for pid, e in index.single.items()
            }
        )
        #: Each sink pipe's result key, shared by the sinks of every run of the plan.
        self.sink_keys = {id(pipe): key for key, pipe in sinks}
        #: Set when a run put replay feeders in some nodes' place (resume).
        self.relink = False


class GraphExecutor(BreakpointAPI):
    """Runs a :class:`ProcessingGraph`.

    Args:
        graph: The graph to run.
        monitor: An observer of every run (a :class:`RunHooks`, such as the monitor).
        backend: Default placement of firings: ``"inline"``, ``"thread"``, ``"process"`` or
            ``"dask"``; a processor's ``execution`` config overrides it.
        max_workers: Workers per pool backend (default: the usable cores).
        hooks: More observers.
        checkpoint_manager: Save every processor's outputs per run (see ``resume=``); its
            breakpoints are shared with this executor.
        progress: Show live progress (True, or a :class:`~mpipe.ProgressDisplay`).
        on_break: ``on_break(hit)`` decides paused firings without an awaiting caller: return
            None or ``"resume"``, ``"skip"``, ``"abort"`` (or call the hit's methods).
        arena_size: Bytes of shared memory the process backend maps up front (default 64 MiB;
            it grows to 4x when full). Raise it for payloads larger than that.
        start_method: How the process backend starts workers: ``"spawn"`` or ``"forkserver"``.
        dask_address: For Dask placement: the address of a running scheduler.
        dask_client: For Dask placement: a running ``distributed.Client``. With neither, a
            ``LocalCluster`` of ``max_workers`` processes is started and closed by the executor.
        dask_options: More Dask settings: ``connect_timeout`` and ``no_workers_timeout``
            (seconds), ``cluster`` (keyword arguments of the ``LocalCluster``),
            ``tasks_per_processor`` (tasks of one processor in flight at once).

    Raises:
        ConfigurationError: An unknown backend, a bad ``max_workers``, a monitor that is not
            an observer, a ``checkpoint_manager`` that is not a CheckpointManager, an
            ``on_break`` that is not callable, or a bad Dask setting.
    """

    def __init__(
        self,
        graph: ProcessingGraph,
        monitor: Any = None,
        *,
        backend: str = "inline",
        max_workers: int | None = None,
        hooks: list[RunHooks] | None = None,
        arena_size: int | None = None,
        start_method: str = "spawn",
        checkpoint_manager: CheckpointManager | None = None,
        progress: Any = False,
        on_break: Callable[[BreakpointHit], Any] | None = None,
        dask_address: str | None = None,
        dask_client: Any = None,
        dask_options: dict[str, Any] | None = None,
    ) -> None:
        if not isinstance(graph, ProcessingGraph):
            raise ConfigurationError(
                f"GraphExecutor needs a ProcessingGraph, got {type(graph).__name__}", "graph"
            )
        self.graph = graph
        self.backend = check_placement(backend, "GraphExecutor backend")
        if max_workers is not None and (
            not isinstance(max_workers, int) or isinstance(max_workers, bool) or max_workers < 1
        ):
            raise ConfigurationError(
                f"max_workers must be a positive integer, got {max_workers!r}", "max_workers"
            )
        self.max_workers = max_workers or usable_cores()
        self.monitor = monitor
        self._backend_options: dict[str, dict[str, Any]] = {
            "process": {"start_method": start_method}
        }
        if arena_size is not None:
            self._backend_options["process"]["arena_size"] = arena_size
        self._backend_options["dask"] = _dask_options(dask_address, dask_client, dask_options)
        self._hooks: list[RunHooks] = []
        for h in [*_as_hooks(monitor, "monitor"), *(hooks or [])]:
            self.add_hooks(h)
        self._backends: dict[str, Backend] = {}
        self._compiled: _Plan | None = None
        self._entered = False
        self._busy = False
        self._stop_requested = False
        self._run_parts: tuple[list[BaseProcessor], list[Any]] = ([], [])
        # Observability: checkpoints, resume, breakpoints, progress.
        if checkpoint_manager is not None and not isinstance(checkpoint_manager, CheckpointManager):
            raise ConfigurationError(
                "checkpoint_manager must be a CheckpointManager, got "
                f"{type(checkpoint_manager).__name__}",
                "checkpoint_manager",
            )
        self.checkpoint_manager = checkpoint_manager
        self.breakpoints = (
            checkpoint_manager.breakpoints
            if checkpoint_manager is not None
            else BreakpointManager()
        )
        if on_break is not None:
            if not callable(on_break):
                raise ConfigurationError(f"on_break must be callable, got {on_break!r}", "on_break")
            self.breakpoints.on_break = on_break
        if progress:
            from ._monitor._progress import ProgressDisplay

            display = progress if isinstance(progress, ProgressDisplay) else ProgressDisplay()
            self.add_hooks(display)
        self._current: Scheduler | None = None
        self._status: dict[str, Any] = {"state": "idle", "run_id": None}

    # -- lifetime ----------------------------------------------------------------------------------

    async def __aenter__(self) -> GraphExecutor:
        self._entered = True
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._entered = False
        await self.aclose()

    async def aclose(self) -> None:
        """Stop every backend this executor started (worker pools included)."""
        backends = [b for b in self._backends.values() if b.started]
        errors = await asyncio.gather(*(b.close() for b in backends), return_exceptions=True)
        for err in errors:
            if isinstance(err, BaseException):
                raise err

    def add_hooks(self, hooks: RunHooks) -> None:
        """Add an observer of every later run (one already added is not added again)."""
        for hook in _as_hooks(hooks, "hooks"):
            if not any(hook is known for known in self._hooks):
                self._hooks.append(hook)

    def _backend_for(self, placement: str) -> Backend:
        """This executor's backend for ``placement``, made on first use (not started)."""
        backend = self._backends.get(placement)
        if backend is None:
            backend = self._backends[placement] = make_backend(
                placement, self.max_workers, self._backend_options.get(placement, {})
            )
        return backend

    async def _backend(self, placement: str) -> Backend:
        backend = self._backend_for(placement)
        if not backend.started:
            await backend.start()
        return backend

    # -- planning -----------------------------------------------------------------------------------

    def _check_processor(self, processor_id: str) -> None:
        if processor_id not in self.graph.nodes:
            raise GraphError(
                f"cannot set a breakpoint on unknown processor {processor_id!r}; graph "
                f"{self.graph.graph_id!r} has {sorted(self.graph.nodes)}"
            )

    async def _prepare(
        self,
        data: Any,
        streaming: bool,
        collect: bool,
        resume: str | None = None,
        extra: Any = None,
    ) -> tuple[Scheduler, RunInfo]:
        """Claim the executor for one run and plan it (backends start here)."""
        if self._busy:
            raise PipelineError(
                f"graph {self.graph.graph_id!r} is already running in this executor; "
                "runs of one executor do not overlap"
            )
        self._busy = True
        self._stop_requested = False
        try:
            sched, info = await self._plan(data, streaming, collect, resume, extra)
            if self._stop_requested:  # stop_execution() came while pools were starting
                raise ExecutionError("execution stopped by stop_execution()")
        except BaseException:
            self._busy = False
            if not self._entered:
                await self.aclose()
            raise
        return sched, info

    def _fingerprint(self) -> tuple[int, ...]:
        """What a compiled plan depends on: the graph's and the processors' change counters."""
        graph = self.graph
        return (
            graph._version,
            plan_epoch(),
            id(graph.error_strategy),
            hash(self.backend),
            self.max_workers,
        )

    def _compile(self, fingerprint: tuple[int, ...]) -> _Plan:
        """Validate the graph and build its nodes (done once per version of the graph)."""
        graph = self.graph
        problems = graph.validate()
        if problems:
            raise ValidationError(f"graph {graph.graph_id!r} is invalid", problems)
        connected = {(b, i) for _, _, b, i in graph.connections}
        entries: list[Entry] = []
        inputs_of: dict[tuple[str, str], Pipe] = {}
        outputs_of: dict[tuple[str, str], list[Pipe]] = {}
        for conn in graph.connections:
            pipe = graph.pipes[connection_id(conn)]
            inputs_of[(conn[2], conn[3])] = pipe
            outputs_of.setdefault((conn[0], conn[1]), []).append(pipe)
        entry_pipes: dict[tuple[str, str], Pipe] = {}
        sinks: list[tuple[str, Pipe]] = []
        nodes: list[Node] = []
        placements: dict[str, str] = {}
        for pid, gnode in graph.nodes.items():
            proc = gnode.processor
            placement = getattr(proc, "execution", None) or self.backend
            placements[pid] = check_placement(placement, f"processor {pid!r}")
            backend = self._backend_for(placement)
            input_names = list(proc.input_pipes) or ["input"]
            for name in input_names:
                if (pid, name) not in connected:
                    entries.append(Entry(pid, name, not gnode.dependencies))
                    own_in = proc.input_pipes.get(name)
                    if own_in is None:
                        own_in = Pipe(f"{pid}:{name}", pipe_type=PipeType.INPUT)
                    entry_pipes[(pid, name)] = inputs_of[(pid, name)] = own_in
            outputs: dict[str, list[Pipe]] = {}
            for name, own in proc.output_pipes.items():
                targets = list(outputs_of.get((pid, name), []))
                if not gnode.dependents:
                    sinks.append((f"{pid}:{name}", own))
                    targets.append(own)
                outputs[name] = targets
            if isinstance(proc, BaseProcessor):
                fn, item_arg = proc._firing_call()
                book: Any = proc
                concurrency = proc.max_concurrent or backend.concurrency(proc.stateful)
                timeout = proc.timeout
            else:
                fn, item_arg, book = proc.process, False, _Foreign(proc)
                concurrency, timeout = backend.concurrency(True), None
            if placement == "dask":
                fn = _dask_call(fn, outputs, sink=not gnode.dependents)
            if isinstance(proc, BaseProcessor) or placement == "dask":
                backend.check_callable(fn, pid)
            nodes.append(
                Node(
                    pid,
                    book,
                    fn,
                    item_arg and len(input_names) == 1,
                    input_names,
                    [inputs_of[(pid, n)] for n in input_names],
                    outputs,
                    backend,
                    concurrency,
                    self._strategy_for(pid, proc),
                    timeout,
                )
            )
        _mark_fetching(graph, nodes, placements)
        pipes = [*graph.pipes.values(), *entry_pipes.values(), *(p for _, p in sinks)]
        return _Plan(fingerprint, nodes, EntryIndex(entries), entry_pipes, sinks, pipes, placements)

    def _current_plan(self) -> _Plan:
        fingerprint = self._fingerprint()
        plan = self._compiled
        if plan is None or plan.fingerprint != fingerprint:
            plan = self._compiled = self._compile(fingerprint)
        return plan

    async def start(self) -> None:
        """Validate the graph and start every backend it needs (worker pools included).

        Inside ``async with`` this makes the first run start warm; without it, the pools are
        stopped again at the end of the next run.

        Raises:
            ValidationError: The graph is invalid.
            ConfigurationError: A processor cannot run where it is placed.
        """
        await self._start_backends(self._current_plan())

    async def _start_backends(self, plan: _Plan) -> None:
        for backend in plan.backends:
            if not backend.started:
                await backend.start()

    async def _plan(
        self,
        data: Any,
        streaming: bool,
        collect: bool,
        resume: str | None = None,
        extra: Any = None,
    ) -> tuple[Scheduler, RunInfo]:
        """Prepare a run: ``streaming`` inputs are iterables; ``collect`` gathers sink items in
        lists (batch, ``execute_stream``) instead of queueing them for a consumer (``stream``);
        ``resume`` replays what processors completed in that run; ``extra`` observes this run."""
        graph = self.graph
        plan = self._current_plan()
        unknown_bps = (
            sorted(self.breakpoints.processor_ids() - set(graph.nodes)) if self.breakpoints else []
        )
        if unknown_bps:
            raise ValidationError(
                f"graph {graph.graph_id!r} is invalid",
                [f"breakpoint on unknown processor {p!r}" for p in unknown_bps],
            )
        manager = self.checkpoint_manager
        if resume is not None and manager is None:
            raise ConfigurationError(
                "execute(resume=...) needs an executor with a checkpoint_manager", "resume"
            )
        # Resume: processors that completed in that run are replayed, not run.
        done: dict[str, dict[str, list[Any]]] = {}
        restored: list[tuple[str, dict[str, Any]]] = []
        if resume is not None and manager is not None:
            done, restored = completed_outputs(manager, resume, graph.graph_id)
        hooks = list(self._hooks)
        if extra is not None:  # each observer once, even when both the executor's and the run's
            hooks = list({id(h): h for h in [*hooks, *_as_hooks(extra, "monitor")]}.values())

        entry_pipes = plan.entry_pipes
        for pipe in plan.pipes:
            pipe._reopen()
        for node in plan.nodes:
            node.reset()
        if plan.relink or getattr(graph, "_linked_plan", None) is not plan:
            # The graph's pipes link to one plan's nodes at a time: this plan's, unless another
            # executor of the same graph ran since, or a resumed run put replay feeders in.
            for node in plan.nodes:
                node.relink()
            plan.relink = False
            graph._linked_plan = plan

        single = plan.single_entries
        if (
            not streaming
            and single is not None
            and type(data) is dict
            and data.keys() == single.keys()
        ):
            # The common batch input: one item for each one-pipe source, every source named,
            # so each entry pipe gets exactly one item (nothing to check, nothing to build).
            feeds: list[Feed] = []
            for key, value in data.items():
                _fill(single[key], value)
        else:

            def deliver(entry: Entry, item: Any) -> None:
                _fill(entry_pipes[(entry.processor_id, entry.pipe_name)], item)

            # Validation of the input happens here, before any processor runs.
            feeds = resolve_feeds(plan.index, data, streaming, None if streaming else deliver)
        for backend in plan.backends:
            if not backend.started:
                await self._start_backends(plan)
                break
        sink = ResultSink(not collect, plan.sink_keys)
        for _, pipe in plan.sinks:
            pipe._consumer = sink
        feeders: list[Node] = []
        inline = await self._backend("inline") if streaming or done else None
        if streaming:
            for f in feeds:
                outputs = {
                    name: [entry_pipes[(e.processor_id, e.pipe_name)] for e in targets]
                    for name, targets in f.targets.items()
                }
                assert inline is not None
                feeders.append(feeder(f"<input {f.name}>", f.items, outputs, inline))
        else:
            # A batch is a stream of one: each entry pipe got its item; now it is closed.
            for pipe in entry_pipes.values():
                pipe._closed = True
                pipe._producer = None
        nodes = plan.nodes
        if done:
            # Nobody runs a replayed processor: the pipes into it are closed (what arrives is
            # dropped) and a feeder replays its saved outputs into its output pipes.
            for (pid, _), pipe in entry_pipes.items():
                if pid in done:
                    pipe._closed = True
            for conn in graph.connections:
                if conn[2] in done:
                    graph.pipes[connection_id(conn)]._closed = True
            nodes = [n for n in plan.nodes if n.node_id not in done]
            plan.relink = True
            for n in plan.nodes:
                if n.node_id in done:
                    items = replay_items(done[n.node_id], list(n.outputs))
                    assert inline is not None
                    feeders.append(feeder(f"<replay {n.node_id}>", items, n.outputs, inline))
        strategies = (
            plan.strategies
            if nodes is plan.nodes
            else {id(n.strategy): n.strategy for n in nodes if n.strategy}.values()
        )
        for strategy in strategies:
            reset = getattr(strategy, "reset", None)
            if reset is not None:
                reset()
        self._run_parts = (
            (plan.procs, plan.lifecycle) if nodes is plan.nodes else _lifecycle_of(nodes)
        )
        info = RunInfo(
            run_id=resume if resume is not None else _new_run_id(),
            graph_id=graph.graph_id,
            processor_ids=plan.processor_ids,
            placements=plan.placements,
            started_at=time.time(),
            mode="stream" if streaming else "batch",
        )
        if hooks:  # what observers may inspect (built only when someone observes)
            info.extra["pipes"] = plan.pipe_map
            info.extra["backends"] = list(self._backends.values())
            info.extra["resumed"] = sorted(done)
        if manager is not None:
            node_outputs = {n.node_id: n.outputs for n in nodes}
            checkpointer = RunCheckpointer(
                manager, info.run_id, graph.graph_id, node_outputs, hooks, restored
            )
            if resume is None:
                checkpointer.write_manifest(list(graph.nodes))
            hooks.append(checkpointer)
        return Scheduler(nodes, feeders, sink, hooks, info.run_id), info

    def _strategy_for(self, pid: str, proc: ProcessorInterface) -> Any:
        graph = self.graph
        if pid in graph.error_strategies:
            return graph.error_strategies[pid]
        own = getattr(proc, "config", {}).get("error_strategy")
        if own is not None and not isinstance(own, (str, dict)):
            return own
        return graph.error_strategy

    # -- running ------------------------------------------------------------------------------------

    async def _run(self, sched: Scheduler, info: RunInfo) -> None:
        """Run one planned schedule with its processors' lifecycle around it."""
        self._current = sched
        self._status = {"state": "running", "run_id": info.run_id, "started_at": info.started_at}
        hooks = sched.hooks
        error: BaseException | None = None
        procs, lifecycle = self._run_parts
        try:
            for hook in hooks:
                hook.run_start(info)
            for p in procs:
                p.state = ProcessorState.RUNNING
            if lifecycle:
                await asyncio.gather(*(_maybe_await(p.initialize()) for p in lifecycle))
            self.breakpoints.attach(sched.nodes, sched.notice)
            await sched.run()
        except BaseException as exc:
            error = exc
            raise
        finally:
            self.breakpoints.detach()
            results = (
                await asyncio.gather(
                    *(_maybe_await(p.cleanup()) for p in lifecycle), return_exceptions=True
                )
                if lifecycle
                else []
            )
            failed = sched.failure[0] if sched.failure is not None else None
            for p in procs:
                p.state = (
                    ProcessorState.ERROR
                    if p.processor_id == failed
                    else (ProcessorState.COMPLETED if error is None else ProcessorState.IDLE)
                )
            state = "completed" if error is None else ("stopped" if sched.stopped else "failed")
            self._status = {
                "state": state,
                "run_id": info.run_id,
                "started_at": info.started_at,
                "ended_at": time.time(),
            }
            if sched.failure is not None:
                # Kept as text: the failure's traceback holds the scheduler's frames, and the
                # scheduler holding the failure would tie them into a cycle that only the
                # garbage collector frees.
                self._status["failed_processor"] = sched.failure[0]
                self._status["error"] = repr(sched.failure[1])
                sched.failure = None
            for hook in hooks:
                hook.run_end(info, error)
            if not self._entered:
                await self.aclose()
            self._busy = False
            if error is None:
                for r in results:
                    if isinstance(r, BaseException):
                        raise ExecutionError(f"cleanup failed: {r!r}", cause=r)
            error = None  # this frame is in the raised error's traceback: no cycle through it

    async def execute(
        self, input_data: Any, monitor: Any = None, *, resume: str | None = None
    ) -> dict[str, Any]:
        """Run the graph once: one item per source.

        Args:
            input_data: Keys name source processors (value: the item, or for a source with
                several input pipes a dict of pipe name -> item), a source's input pipe, or
                ``"processor:pipe"``. A source not named receives the whole ``input_data``.
            monitor: An extra observer for this run only.
            resume: The run id of an earlier run (``get_execution_status()["run_id"]``) with
                this executor's checkpoint manager: processors that completed in it are not
                run again, their saved outputs are replayed; the run keeps that id.

        Returns:
            ``"processor_id:output_pipe"`` -> value, for every output pipe of every sink that
            produced a value; a list of values when it produced several.

        Raises:
            ValidationError: The graph or the input is invalid (before anything runs).
            ExecutionError: A firing failed and the strategy halted, or the run was stopped.
            ConfigurationError: ``resume`` without a checkpoint manager.
            CheckpointError: ``resume`` names no run of this graph in the checkpoints.
        """
        sched, info = await self._prepare(
            input_data, streaming=False, collect=True, resume=resume, extra=monitor
        )
        await self._run(sched, info)
        return {k: v[0] if len(v) == 1 else v for k, v in sched.sink.results.items()}

    async def stream(self, inputs: Any) -> AsyncIterator[tuple[str, Any]]:
        """Run the graph over streams of items; yield ``(key, item)`` as sink items arrive.

        All stages run at once (pipeline parallelism); a slow consumer slows the sources
        (backpressure). Leaving the loop early stops the run.

        Args:
            inputs: Source processor (or input pipe) -> iterable or async iterable of items.

        Raises:
            ValidationError: The graph or the inputs are invalid.
            ExecutionError: A firing failed and the strategy halted.
        """
        sched, info = await self._prepare(inputs, streaming=True, collect=False)
        sink = sched.sink
        task = asyncio.ensure_future(self._run(sched, info))
        loop = asyncio.get_running_loop()
        try:
            while True:
                arrivals = sink.arrivals
                while arrivals:
                    key, pipe = arrivals.popleft()
                    item = sched._take(pipe)
                    sched.poke()
                    yield key, item
                if task.done():
                    if not sink.arrivals:
                        task.result()
                        return
                    continue
                sink.waiter = loop.create_future()
                await asyncio.wait({sink.waiter, task}, return_when=asyncio.FIRST_COMPLETED)
                sink.waiter = None
        finally:
            if not task.done():
                sched.stop()
            try:
                await asyncio.shield(task) if not task.done() else None
            except ExecutionError:
                if not sched.stopped:
                    raise

    async def execute_stream(self, inputs: Any) -> dict[str, list[Any]]:
        """Run the graph over streams of items to the end; collect every sink item per key.

        Same semantics as :meth:`stream`, without a consumer in the loop.
        """
        sched, info = await self._prepare(inputs, streaming=True, collect=True)
        await self._run(sched, info)
        return sched.sink.results

    def run(self, input_data: Any) -> dict[str, Any]:
        """Synchronous :meth:`execute`, for scripts.

        Raises:
            PipelineError: Called from a running event loop (use ``await execute`` there).
        """
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(self.execute(input_data))
        raise PipelineError("run() cannot be called from a running event loop; await execute()")

    async def stop_execution(self) -> None:
        """Cancel the current run: firings in flight are cancelled; ``execute`` raises."""
        if self._busy:
            self._stop_requested = True
        sched = self._current
        if sched is not None and not sched.done:
            sched.stop()

    def get_execution_status(self) -> dict[str, Any]:
        """The current or last run's state and per-processor progress (JSON-compatible)."""
        status = dict(self._status)
        sched = self._current
        if sched is not None:
            status["processors"] = {
                n.node_id: {
                    "firings_started": n.index,
                    "in_flight": n.inflight,
                    "finished": n.finished,
                    "state": getattr(n.processor, "state", ProcessorState.IDLE).value,
                }
                for n in sched.nodes
            }
            if sched.failure is not None:
                status["failed_processor"] = sched.failure[0]
                status["error"] = repr(sched.failure[1])
        started = status.get("started_at")
        if started is not None:
            status["elapsed"] = status.get("ended_at", time.time()) - started
        return status


# Run ids: unique per process (a random prefix drawn once, then a counter), without the
# ~20 microseconds a uuid4 costs per run on a small machine.
_run_prefix = uuid.uuid4().hex[:6]
_run_numbers = itertools.count(1)


def _new_run_id() -> str:
    return f"{_run_prefix}{next(_run_numbers):06x}"


_DASK_OPTIONS = ("connect_timeout", "no_workers_timeout", "cluster", "tasks_per_processor")


def _dask_options(address: Any, client: Any, options: dict[str, Any] | None) -> dict[str, Any]:
    """The Dask backend's options, checked now (the backend is made only when a run needs it)."""
    if options is not None and not isinstance(options, dict):
        raise ConfigurationError(
            f"dask_options must be a dict, got {type(options).__name__}", "dask_options"
        )
    unknown = sorted(set(options or {}) - set(_DASK_OPTIONS))
    if unknown:
        raise ConfigurationError(
            f"dask_options: unknown option(s) {', '.join(map(repr, unknown))}; "
            f"known: {', '.join(_DASK_OPTIONS)}",
            "dask_options",
        )
    from ._backends._dask import check_target  # imports nothing of Dask itself

    check_target(address, client)
    return {"address": address, "client": client, **(options or {})}


def _fill(pipe: Pipe, item: Any) -> None:
    """Put a batch run's item into an entry pipe (its consumer counts filled inputs)."""
    if not pipe._items:
        pipe._consumer.filled += 1
    pipe._offer(item)


def _dask_call(fn: Any, outputs: dict[str, list[Pipe]], sink: bool) -> Any:
    from ._backends._dask import DaskCall

    return DaskCall(fn, tuple(outputs), sink)


def _mark_fetching(graph: ProcessingGraph, nodes: list[Node], placements: dict[str, str]) -> None:
    """Dask-placed processors pass references to values that stay on the cluster. A processor
    placed elsewhere that takes from one fetches the values before each firing; decided here, at
    compile time, so that nodes fed only by local nodes keep their fast path."""
    if "dask" not in placements.values():
        return
    by_id = {n.node_id: n for n in nodes}
    for node in nodes:
        if placements[node.node_id] == "dask":
            continue
        dask = next(
            (
                by_id[pid].backend
                for pid in graph.nodes[node.node_id].dependencies
                if placements[pid] == "dask"
            ),
            None,
        )
        if dask is not None:
            node.fetch = dask.fetch  # type: ignore[attr-defined]
            node.fast = False
            node.batch_size = 0


def _lifecycle_of(nodes: list[Node]) -> tuple[list[BaseProcessor], list[Any]]:
    """The nodes' processors, and those whose ``initialize``/``cleanup`` must be called (only
    processors that override them cost a task per run)."""
    procs = [n.processor for n in nodes if isinstance(n.processor, BaseProcessor)]
    foreign = [n.processor.processor for n in nodes if isinstance(n.processor, _Foreign)]
    return procs, [p for p in procs if _overrides_lifecycle(p)] + foreign


def _overrides_lifecycle(processor: BaseProcessor) -> bool:
    cls = type(processor)
    return (
        cls.initialize is not BaseProcessor.initialize or cls.cleanup is not BaseProcessor.cleanup
    )


async def _maybe_await(value: Any) -> Any:
    if inspect.isawaitable(value):
        return await value
    return value


def _as_hooks(obj: Any, what: str) -> list[RunHooks]:
    if obj is None:
        return []
    if isinstance(obj, RunHooks):
        return [obj]
    raise ConfigurationError(
        f"{what} must be a RunHooks observer (such as mpipe.Monitor), got {type(obj).__name__}",
        what,
    )
