"""The graph executor: turns a graph and its input into a scheduled run.

Batch is a stream of one: ``execute`` feeds one item per source through the same scheduler that
``stream`` drives. Backends are started per run, or once for the life of an ``async with`` block.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from .._backends import Backend, check_process_options, make_backend, usable_cores
from .._errors import ConfigurationError, ExecutionError, GraphError, PipelineError, ValidationError
from .._model._graph import ProcessingGraph
from .._model._interfaces import ProcessorInterface, ProcessorState
from .._model._placement import check_placement
from .._observe._breakpoints import BreakpointAPI, BreakpointHit, BreakpointManager
from .._observe._checkpoints import CheckpointManager
from .._observe._hooks import RunHooks
from ._plan import Plan, compile_plan, give_back, take_spare
from ._run import Run, announce_inputs, prepare_run

__all__ = ["GraphExecutor"]


class GraphExecutor(BreakpointAPI):
    """Runs a :class:`ProcessingGraph`.

    Args:
        graph: The graph to run.
        monitor: An observer of every run (a :class:`RunHooks`, such as the monitor).
        backend: Default placement of firings: ``"inline"``, ``"thread"``, ``"process"`` or
            ``"dask"``; a processor's ``execution`` config overrides it.
        max_workers: Workers per pool backend (default: the usable cores; for the process
            backend at most 63, the most one pool holds).
        hooks: More observers.
        checkpoint_manager: Save every processor's outputs per run (see ``resume=``); its
            breakpoints are shared with this executor.
        progress: Show live progress (True, or a :class:`~mpipe.ProgressDisplay`).
        on_break: ``on_break(hit)`` decides paused firings without an awaiting caller: return
            None or ``"resume"``, ``"skip"``, ``"abort"`` (or call the hit's methods).
        arena_size: Bytes of shared memory the process backend faults in up front and keeps
            (default 64 MiB). The arena grows beyond it to whatever payloads need, as far as
            the machine's memory allows, and gives the growth back when idle.
        start_method: How the process backend starts workers: ``"spawn"``, the one method
            (each worker a fresh interpreter, safe when the parent runs threads).
        dask_address: For Dask placement: the address of a running scheduler.
        dask_client: For Dask placement: a running ``distributed.Client``. With neither, a
            ``LocalCluster`` of ``max_workers`` processes is started and closed by the executor.
        dask_options: More Dask settings: ``connect_timeout`` and ``no_workers_timeout``
            (seconds), ``cluster`` (keyword arguments of the ``LocalCluster``),
            ``tasks_per_processor`` (tasks of one processor in flight at once).
        fuse: Run consecutive process-placed processors whose items go only to each other
            (chains, and diamonds that rejoin) as one worker call per item, each processor
            keeping its own metrics, spans and error strategy (default True; see
            ``docs/process.md``). False: every processor's firing is a call of its own.

    Raises:
        ConfigurationError: An unknown backend, a bad ``max_workers``, a monitor that is not
            an observer, a ``checkpoint_manager`` that is not a CheckpointManager, an
            ``on_break`` that is not callable, a ``fuse`` that is not a bool, an ``arena_size``
            under 1 MiB, a ``start_method`` other than ``"spawn"``, or a bad Dask setting.
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
        fuse: bool = True,
    ) -> None:
        if not isinstance(graph, ProcessingGraph):
            raise ConfigurationError(
                f"GraphExecutor needs a ProcessingGraph, got {type(graph).__name__}", "graph"
            )
        self.graph = graph
        self.backend = check_placement(backend, "GraphExecutor backend")
        if not isinstance(fuse, bool):
            raise ConfigurationError(f"fuse must be True or False, got {fuse!r}", "fuse")
        self.fuse = fuse
        if max_workers is not None and (
            not isinstance(max_workers, int) or isinstance(max_workers, bool) or max_workers < 1
        ):
            raise ConfigurationError(
                f"max_workers must be a positive integer, got {max_workers!r}", "max_workers"
            )
        self.max_workers = max_workers or usable_cores()
        self._workers_chosen = max_workers is not None
        self.monitor = monitor
        check_process_options(arena_size, start_method)
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
        self._compiled: Plan | None = None
        self._plan_keeper: weakref.finalize[Any, Any] | None = None
        self._entered = False
        self._busy = False
        self._stop_requested = False
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
            from .._observe._monitor._progress import ProgressDisplay

            display = progress if isinstance(progress, ProgressDisplay) else ProgressDisplay()
            self.add_hooks(display)
        self._current: Run | None = None

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
        if len(backends) == 1:  # the common case, closed with no task and no turn of the loop
            await backends[0].close()
            return
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
                placement,
                self.max_workers,
                self._backend_options.get(placement, {}),
                explicit=self._workers_chosen,
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
    ) -> Run:
        """Claim the executor for one run and prepare it (backends start here): ``streaming``
        inputs are iterables; ``collect`` gathers sink items in lists (batch,
        ``execute_stream``) instead of queueing them for a consumer (``stream``); ``resume``
        replays what processors completed in that run; ``extra`` observes this run."""
        if self._busy:
            raise PipelineError(
                f"graph {self.graph.graph_id!r} is already running in this executor; "
                "runs of one executor do not overlap"
            )
        self._busy = True
        self._stop_requested = False
        try:
            plan = self._current_plan()
            if self.breakpoints:
                self._check_breakpoints()
            for backend in plan.backends:
                if not backend.started or backend.broken is not None:
                    if not streaming and resume is None:  # a batch's input, known ahead
                        announce_inputs(plan, data)
                    await self._start_backends(plan)
                    break
            # Feeders (a stream's input, a resumed run's replays) run on the inline backend.
            inline = await self._backend("inline") if streaming or resume else None
            if self._stop_requested:  # stop_execution() came while pools were starting
                raise ExecutionError("execution stopped by stop_execution()")
            hooks = list(self._hooks)
            if extra is not None:  # each observer once, even when both the executor's and the run's
                hooks = list({id(h): h for h in [*hooks, *_as_hooks(extra, "monitor")]}.values())
            run = prepare_run(  # positional: binding keywords costs ~0.2 us per run
                plan,
                self.graph,
                data,
                streaming,
                collect,
                hooks,
                inline,
                self.checkpoint_manager,
                resume,
                list(self._backends.values()) if hooks else None,
            )
        except BaseException:
            self._busy = False
            if not self._entered:
                await self.aclose()
            else:  # no run follows: the pools go idle as after a run (and give growth back)
                for backend in self._backends.values():
                    if backend.started:
                        backend.idle()
            raise
        self._current = run
        return run

    def _check_breakpoints(self) -> None:
        graph = self.graph
        unknown = sorted(self.breakpoints.processor_ids() - set(graph.nodes))
        if unknown:
            raise ValidationError(
                f"graph {graph.graph_id!r} is invalid",
                [f"breakpoint on unknown processor {p!r}" for p in unknown],
            )

    def _fingerprint(self) -> tuple[int, ...]:
        """What a compiled plan depends on: the graph's and the processors' change counters."""
        graph = self.graph
        return (
            graph._version,
            id(graph.error_strategy),
            hash(self.backend),
            self.max_workers,
            # Checkpoints save each processor's outputs as they pass through the parent.
            self.fuse and self.checkpoint_manager is None,
        )

    def _current_plan(self) -> Plan:
        fingerprint = self._fingerprint()
        plan = self._compiled
        if plan is not None and plan.fingerprint == fingerprint and plan.watch is None:
            return plan  # the common case: nothing fused, nothing changed
        blocked = self.breakpoints.processor_ids() if self.breakpoints else set()
        if (
            plan is None
            or plan.fingerprint != fingerprint
            or (plan.watch is not None and plan.watch.changed(blocked))
        ):
            graph = self.graph
            plan = take_spare(graph, fingerprint, self._backend_for, blocked) or compile_plan(
                graph,
                fingerprint,
                self.backend,
                self._backend_for,
                self._strategy_for,
                fuse_on=bool(fingerprint[-1]),
                blocked=frozenset(blocked),
            )
            self._compiled = plan
            # When this executor is dropped, the next executor of the graph may take the plan.
            if self._plan_keeper is not None:
                self._plan_keeper.detach()
            self._plan_keeper = weakref.finalize(self, give_back, weakref.ref(graph), plan)
            self._plan_keeper.atexit = False
        return plan

    async def start(self) -> None:
        """Validate the graph and start every backend it needs (worker pools included).

        Inside ``async with`` this makes the first run start warm; without it, the pools are
        stopped again at the end of the next run. Worker processes then load the processors
        they will run (importing their modules) while the caller goes on.

        Raises:
            ValidationError: The graph is invalid.
            ConfigurationError: A processor cannot run where it is placed.
        """
        await self._start_backends(self._current_plan())

    async def _start_backends(self, plan: Plan) -> None:
        for backend in plan.backends:
            if not backend.started or backend.broken is not None:
                await backend.start()  # a broken pool starts afresh, or the run fails here
                # Workers load their processors (and import what those need) while the
                # parent goes on: the caller's own work before the first run hides it.
                backend.preload(
                    [n.fn for n in plan.nodes if n.backend is backend and n.fn is not None]
                )

    def _strategy_for(self, pid: str, proc: ProcessorInterface) -> Any:
        graph = self.graph
        if pid in graph.error_strategies:
            return graph.error_strategies[pid]
        own = getattr(proc, "config", {}).get("error_strategy")
        if own is not None and not isinstance(own, (str, dict)):
            return own
        return graph.error_strategy

    # -- running ------------------------------------------------------------------------------------

    def _run_ended(self, run: Run) -> Awaitable[None] | None:
        """A run ended (its status is set): the executor is free again; the pools go idle
        inside ``async with``, and close otherwise (what the caller then awaits)."""
        if not self._entered:
            return self._close_after_run()
        for backend in run.plan.backends:
            backend.idle()
        self._busy = False
        return None

    async def _close_after_run(self) -> None:
        try:
            await self.aclose()
        finally:
            self._busy = False

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
        run = await self._prepare(
            input_data, streaming=False, collect=True, resume=resume, extra=monitor
        )
        await run.drive(self.breakpoints, self._run_ended)
        results = run.take_results()
        return {k: v[0] if len(v) == 1 else v for k, v in results.items()}

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
        run = await self._prepare(inputs, streaming=True, collect=False)
        sched = run.scheduler
        sink = sched.sink
        task = asyncio.ensure_future(run.drive(self.breakpoints, self._run_ended))
        task.add_done_callback(lambda _: sink.wake())
        loop = asyncio.get_running_loop()
        try:
            while True:
                arrivals = sink.arrivals
                while arrivals:
                    key, lane = arrivals.popleft()
                    item = sched.take(lane)
                    sched.poke()
                    yield key, item
                if task.done():
                    if not sink.arrivals:
                        task.result()
                        return
                    continue
                # Woken by each arrival and by the run's end: one future, so an item reaches
                # this loop on the event loop's next turn.
                sink.waiter = loop.create_future()
                await sink.waiter
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
        run = await self._prepare(inputs, streaming=True, collect=True)
        await run.drive(self.breakpoints, self._run_ended)
        return run.take_results()

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
        run = self._current
        if run is not None and not run.scheduler.done:
            run.scheduler.stop()

    def get_execution_status(self) -> dict[str, Any]:
        """The current or last run's state and per-processor progress (JSON-compatible)."""
        run = self._current
        if run is None:
            status: dict[str, Any] = {"state": "idle", "run_id": None}
        else:  # built here rather than per run: a run only keeps its own ``status``
            info = run.info
            status = {"run_id": info.run_id, "started_at": info.started_at}
            status.update(run.status or {"state": "running"})
            sched = run.scheduler
            processors: dict[str, Any] = {}
            for n in sched.nodes:
                if n.fused is None:
                    processors[n.node_id] = {
                        "firings_started": n.index,
                        "in_flight": n.inflight,
                        "finished": n.finished,
                        "state": getattr(n.processor, "state", ProcessorState.IDLE).value,
                    }
                    continue
                # A fused group's processors share its calls: each item runs them all.
                for pid, proc in zip(n.fused.ids, n.fused.processors, strict=True):
                    processors[pid] = {
                        "firings_started": n.index,
                        "in_flight": n.inflight,
                        "finished": n.finished,
                        "state": proc.state.value,
                        "fused_with": [p for p in n.fused.ids if p != pid],
                    }
            status["processors"] = processors
            if sched.failure is not None:
                status["failed_processor"] = sched.failure[0]
                status["error"] = repr(sched.failure[1])
        plan = run.plan if run is not None else self._compiled
        if plan is not None:  # compiled by start() or a run
            # The processor ids of each group that runs fused, in the order they run.
            status["fused"] = [list(group) for group in plan.fused]
        started = status.get("started_at")
        if started is not None:
            status["elapsed"] = status.get("ended_at", time.time()) - started
        return status


def planned_fusion(executor: GraphExecutor) -> list[list[str]]:
    """The groups the executor's next run fuses (its plan is compiled, nothing is started).

    Raises:
        ValidationError: The graph is invalid.
        ConfigurationError: A processor cannot run where it is placed.
    """
    return [list(group) for group in executor._current_plan().fused]


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
    from .._backends._dask import check_target  # imports nothing of Dask itself

    check_target(address, client)
    return {"address": address, "client": client, **(options or {})}


def _as_hooks(obj: Any, what: str) -> list[RunHooks]:
    if obj is None:
        return []
    if isinstance(obj, RunHooks):
        return [obj]
    raise ConfigurationError(
        f"{what} must be a RunHooks observer (such as mpipe.Monitor), got {type(obj).__name__}",
        what,
    )
