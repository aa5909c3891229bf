"""The Dask backend: firings become tasks on a ``distributed`` cluster; futures feed futures.

Design note. A firing is one task, ``fire(fn, arg)``, submitted through one asynchronous
``distributed.Client`` that lives on the run's event loop. ``submit`` returns an awaitable that
resolves when the task has *finished*, to a :class:`DaskRef` (the task's future), not to the
value: the value stays on the worker that computed it. A downstream firing on the cluster takes
those references as task arguments, so Dask moves the data worker to worker; a processor that
runs in the parent (inline, thread, process), and every sink, get values: the executor marks such
nodes at compile time and the scheduler fetches their references (:meth:`DaskBackend.fetch`)
before the firing.

Per finished task the parent learns only its shape (:func:`~mpipe._backends._dask_tasks.
describe`): which worker holds it (for the monitor and the trace), whether it was a generator's
drained items, and how a dict is routed to several output pipes. The task publishes it as a Dask
event on the backend's topic, which reaches the client ahead of the task's completion on the one
ordered stream worker -> scheduler -> client; should it be missing, one tiny task asks for it.
Routed outputs and generator items are cut out on the cluster by small getitem tasks. A sink's
firing brings its value home in the same task (``fire_and_return``).

Failures: an exception in the task comes back with its remote traceback as ``__cause__``; a
worker that dies while running it (Dask's ``KilledWorker``) is a :class:`WorkerCrashedError`; a
cluster with no workers left while tasks wait fails them after ``no_workers_timeout`` seconds,
checked once a second while anything is in flight (a remote cluster has no sentinel to wait on).
Cancelling the awaitable (HALT, ``stop_execution``) cancels the task on the cluster.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import Any

from .._errors import ConfigurationError, PipelineError, WorkerCrashedError
from ._base import END, Backend, FiringSlot, Stream
from ._dask_tasks import Drained, describe, fire, fire_and_return, item

__all__ = ["DaskBackend", "DaskRef", "DaskStream", "check_target", "require_distributed"]

#: Values larger than this (bytes, as ``dask.sizeof`` counts them) are scattered to the cluster
#: before the task that takes them, instead of travelling inside the task.
SCATTER_BYTES = 1 << 20
#: Seconds between checks that the cluster still has workers, while tasks are in flight.
WATCH_INTERVAL = 1.0


def check_target(address: Any, client: Any) -> None:
    """Raise ConfigurationError unless at most one of a scheduler address (a string) and a
    client names the cluster to use."""
    if address is not None and client is not None:
        raise ConfigurationError("give dask_address or dask_client, not both", "dask_address")
    if address is not None and not isinstance(address, str):
        raise ConfigurationError(
            f"dask_address must be a scheduler address such as 'tcp://host:8786', got {address!r}",
            "dask_address",
        )


def require_distributed() -> Any:
    """Import ``distributed``, or say which extra installs it."""
    try:
        import distributed
    except ImportError as exc:
        raise ConfigurationError(
            "execution='dask' needs the 'distributed' package: "
            "pip install 'processor-pipeline[dask]'",
            "execution",
        ) from exc
    return distributed


class DaskRef:
    """A firing's result that stays on the cluster: a handle to its ``distributed.Future``.

    Items in pipes between two Dask-placed processors are references; the data is released on
    the cluster when the last reference to it is dropped.
    """

    __slots__ = ("future",)

    def __init__(self, future: Any) -> None:
        self.future = future

    def __repr__(self) -> str:
        return f"DaskRef({self.future.key!r})"


class DaskStream(Stream):
    """A generator's items, drained on a worker: handed out one reference at a time."""

    __slots__ = ("items",)

    def __init__(self, items: list[Any]) -> None:
        self.items = items


class DaskBackend(Backend):
    """Runs firings as tasks on a Dask cluster.

    Args:
        max_workers: Workers of the ``LocalCluster`` started when neither ``address`` nor
            ``client`` is given; also sizes each processor's tasks in flight.
        address: The address of a running scheduler (``tcp://host:8786``); default: Dask's
            ``scheduler-address`` setting (``DASK_SCHEDULER_ADDRESS``) when it is set.
        client: A running ``distributed.Client`` (asynchronous on the run's loop, or a
            synchronous one whose scheduler is then reached by a client of our own).
        connect_timeout: Seconds to reach the scheduler before giving up.
        no_workers_timeout: Seconds tasks may wait on a cluster with no workers before they fail.
        cluster: Keyword arguments for the ``LocalCluster`` the backend starts.
        tasks_per_processor: Tasks of one processor in flight at once (the backpressure bound;
            default ``max(32, 8 * max_workers)``), unless the processor sets ``max_concurrent``.

    Raises:
        ConfigurationError: ``distributed`` is not installed, or an option is bad.
    """

    name = "dask"
    enforces_timeout = False

    def __init__(
        self,
        max_workers: int,
        address: str | None = None,
        client: Any = None,
        connect_timeout: float = 10.0,
        no_workers_timeout: float = 10.0,
        cluster: Mapping[str, Any] | None = None,
        tasks_per_processor: int | None = None,
    ) -> None:
        super().__init__(max_workers)
        require_distributed()
        check_target(address, client)
        for what, value in (
            ("connect_timeout", connect_timeout),
            ("no_workers_timeout", no_workers_timeout),
        ):
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
                raise ConfigurationError(
                    f"dask {what} must be a positive number of seconds, got {value!r}", what
                )
        self.address = address
        self.given_client = client
        self.connect_timeout = float(connect_timeout)
        self.no_workers_timeout = float(no_workers_timeout)
        self.cluster_options = dict(cluster or {})
        if tasks_per_processor is not None and (
            not isinstance(tasks_per_processor, int)
            or isinstance(tasks_per_processor, bool)
            or tasks_per_processor < 1
        ):
            raise ConfigurationError(
                f"dask tasks_per_processor must be a positive integer, got {tasks_per_processor!r}",
                "tasks_per_processor",
            )
        self.tasks_per_processor = tasks_per_processor or max(32, 8 * max_workers)
        self._client: Any = None
        self._cluster: Any = None
        #: What starting the cluster's workers wrote into ``os.environ`` (see ``environ_kept``),
        #: and the workers' process ids then (a worker Dask restarts writes it again).
        self._environ: DaskEnviron | None = None
        self._started_pids: list[int] = []
        self._owns_client = False
        self._where = ""
        self._keys = itertools.count()
        self._token = uuid.uuid4().hex[:8]
        # Shapes of finished tasks, published by the tasks themselves (see ``fire``).
        self._topic = f"mpipe-shapes-{self._token}"
        self._shapes: dict[str, tuple[str, Any]] = {}
        self._pending: dict[str, Any] = {}  # key -> the future of a task not yet finished
        self._background: set[asyncio.Task[Any]] = set()
        self._watch: asyncio.Task[None] | None = None
        self._no_workers_since: float | None = None
        self._lost: BaseException | None = None
        # Resolved when the cluster is lost: every firing waiting on a task wakes up and fails.
        self._lost_signal: asyncio.Future[None] | None = None
        self._wakeup: asyncio.Event | None = None

    # -- lifecycle --------------------------------------------------------------------------------

    async def start(self) -> None:
        if self.started:
            return
        distributed = require_distributed()
        self._lost = None
        try:
            if self.given_client is not None and getattr(self.given_client, "asynchronous", False):
                self._client = self.given_client
                self._where = f"the Dask scheduler at {self._client.scheduler.address}"
            else:
                address = self.address
                if self.given_client is not None:
                    address = self.given_client.scheduler.address
                elif address is None:
                    # Dask's own convention (``Client()`` does the same): a configured
                    # ``scheduler-address`` (DASK_SCHEDULER_ADDRESS) names the cluster to use.
                    import dask

                    address = dask.config.get("scheduler-address", None)
                if address is None:
                    with environ_kept() as self._environ:
                        self._cluster = await _local_cluster(
                            distributed, self.max_workers, self.cluster_options
                        )
                    self._started_pids = self.worker_pids()
                    address = self._cluster.scheduler_address
                self._where = f"the Dask scheduler at {address}"
                self._client = await self._connect(distributed, address)
                self._owns_client = True
        except BaseException:
            await self.close()
            raise
        self._client.subscribe_topic(self._topic, self._on_shape)
        self._wakeup = asyncio.Event()
        self._lost_signal = asyncio.get_running_loop().create_future()
        self._watch = asyncio.ensure_future(self._watch_workers())
        await super().start()

    async def _connect(self, distributed: Any, address: str) -> Any:
        timeout = self.connect_timeout
        try:
            # The client's own timeout bounds the connection attempt; ours bounds the handshake
            # too, so an address that accepts and never answers cannot hang the run.
            return await asyncio.wait_for(
                distributed.Client(
                    address, asynchronous=True, timeout=timeout, set_as_default=False
                ),
                timeout + 5,
            )
        except (OSError, asyncio.TimeoutError) as exc:
            raise PipelineError(
                f"cannot reach the Dask scheduler at {address} within {timeout:g} s: "
                f"{type(exc).__name__}: {exc}"
            ) from exc

    async def close(self) -> None:
        watch, self._watch = self._watch, None
        if watch is not None:
            watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watch
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        self._pending.clear()
        self._shapes.clear()
        client, self._client = self._client, None
        if client is not None and not self._owns_client and client.status == "running":
            client.unsubscribe_topic(self._topic)
        if client is not None and self._owns_client:
            with contextlib.suppress(Exception):
                await client.close()
        self._owns_client = False
        restarted = set(self.worker_pids()) != set(self._started_pids)
        cluster, self._cluster = self._cluster, None
        if cluster is not None:
            await cluster.close()
        if self._environ is not None and restarted:  # a restarted worker wrote them again
            self._environ.undo()
        self._environ = None
        await super().close()

    # -- submitting ---------------------------------------------------------------------------------

    def _require_client(self) -> Any:
        if self._client is None:
            raise RuntimeError("dask backend used before start()")
        if self._lost is not None:
            raise self._lost
        return self._client

    def submit(self, fn: Callable[[Any], Any], arg: Any, slot: FiringSlot) -> Any:
        call = fn if isinstance(fn, DaskCall) else DaskCall(fn, ("output",), False)
        return self._run(call, arg, slot)

    def _key(self, slot: FiringSlot) -> str:
        return f"mpipe-{slot.processor_id}-{slot.index}-{self._token}{next(self._keys)}"

    async def _run(self, call: DaskCall, arg: Any, slot: FiringSlot) -> Any:
        client = self._require_client()
        arg = await self._as_task_arg(client, arg)
        key = self._key(slot)
        if call.sink:
            future = client.submit(fire_and_return, call.fn, arg, key=key, pure=False)
        else:
            future = client.submit(fire, call.fn, arg, self._topic, call.outputs, key=key)
        self._track(future)
        try:
            await self._finished(future, slot)
            if call.sink:
                slot.worker, value = await future
                if isinstance(value, Drained):
                    return DaskStream(list(value))
                return value
            published = self._shapes.pop(key, None)
            if published is None:  # not heard (the task ran again elsewhere): ask for it
                published = await self._describe(client, future, call, slot)
            slot.worker, shape = published
        except asyncio.CancelledError:
            self._cancel(future)
            raise
        finally:
            self._pending.pop(key, None)
            self._shapes.pop(key, None)
        kind, routes = shape
        if kind == "one":
            return self._routed(client, slot, future, (), routes)
        return DaskStream(
            [self._routed(client, slot, future, (i,), r) for i, r in enumerate(routes)]
        )

    def _on_shape(self, event: Any) -> None:
        _, msg = event
        if msg["key"] in self._pending:  # not for a firing that was cancelled meanwhile
            self._shapes[msg["key"]] = (msg["at"], tuple(msg["shape"]))

    async def _describe(
        self, client: Any, future: Any, call: DaskCall, slot: FiringSlot
    ) -> tuple[str, Any]:
        shape_future = client.submit(
            describe, future, call.outputs, key=self._key(slot) + "-shape", pure=False
        )
        self._track(shape_future)
        try:
            await self._finished(shape_future, slot)
            return tuple(await shape_future)  # type: ignore[return-value]
        finally:
            self._pending.pop(shape_future.key, None)

    def _routed(
        self, client: Any, slot: FiringSlot, future: Any, path: tuple[Any, ...], routes: Any
    ) -> Any:
        """A reference to the value at ``path`` (an item of a drained generator), or a dict of
        references per output pipe (a dict routed key by key), cut out on the cluster."""
        if routes is None:
            if not path:
                return DaskRef(future)
            return DaskRef(client.submit(item, future, *path, key=self._key(slot) + "-item"))
        return {
            name: DaskRef(client.submit(item, future, *path, name, key=self._key(slot) + "-out"))
            for name in routes
        }

    async def _as_task_arg(self, client: Any, arg: Any) -> Any:
        """References become their futures (Dask moves the data); large values are scattered."""
        if isinstance(arg, DaskRef):
            return arg.future
        if isinstance(arg, dict):
            out = {}
            for name, value in arg.items():
                out[name] = await self._as_task_arg(client, value)
            return out
        if _large(arg):
            [future] = await client.scatter([arg], hash=False)
            return future
        return arg

    def _track(self, future: Any) -> None:
        self._pending[future.key] = future
        if self._wakeup is not None:
            self._wakeup.set()

    async def _finished(self, future: Any, slot: FiringSlot) -> None:
        """Wait until ``future`` has finished on the cluster (without fetching its value); raise
        what it raised."""
        # distributed has no public way to await a future without fetching its value; its own
        # ``wait`` goes through the default client, which need not be ours.
        from distributed.client import _wait

        lost = self._lost_signal
        assert lost is not None
        waiting = asyncio.ensure_future(_wait([future]))  # type: ignore[no-untyped-call]
        try:
            await asyncio.wait({lost, waiting}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not waiting.done():
                waiting.cancel()
                await asyncio.gather(waiting, return_exceptions=True)
        status = future.status
        if status == "finished":
            return
        if self._lost is not None:
            raise self._lost
        if status == "error":
            exc = await future.exception()
            raise _translate(exc, await future.traceback(), slot)
        raise WorkerCrashedError(
            f"processor {slot.processor_id!r}: dask task for item {slot.index} ended as {status!r}",
            slot.processor_id,
            item_index=slot.index,
        )

    def _cancel(self, future: Any) -> None:
        client = self._client
        if client is None or client.status in ("closing", "closed"):
            return
        task = asyncio.ensure_future(_quietly(client.cancel([future])))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # -- the cluster's health -------------------------------------------------------------------------

    async def _watch_workers(self) -> None:
        """While tasks are in flight, check once a second that the cluster has a worker."""
        assert self._wakeup is not None
        while True:
            if not self._pending:
                self._no_workers_since = None
                await self._wakeup.wait()
                self._wakeup.clear()
                continue
            client = self._client
            try:
                info = await client.scheduler.identity()
                workers = len(info.get("workers", {}))
            except Exception as exc:  # the scheduler itself is gone
                self._fail_all(WorkerCrashedError(f"lost the connection to {self._where}: {exc!r}"))
                return
            now = time.monotonic()
            if workers:
                self._no_workers_since = None
            elif self._no_workers_since is None:
                self._no_workers_since = now
            elif now - self._no_workers_since >= self.no_workers_timeout:
                self._fail_all(
                    WorkerCrashedError(
                        f"{self._where} has no workers left: every worker was lost and none "
                        f"joined within {self.no_workers_timeout:g} s"
                    )
                )
                return
            await asyncio.sleep(WATCH_INTERVAL)

    def _fail_all(self, error: BaseException) -> None:
        self._lost = error
        for future in list(self._pending.values()):
            self._cancel(future)
        if self._lost_signal is not None and not self._lost_signal.done():
            self._lost_signal.set_result(None)

    # -- what the engine asks of a remote backend ------------------------------------------------

    def wrap(
        self, fn: Callable[[Any], Any], outputs: tuple[str, ...], sink: bool
    ) -> Callable[[Any], Any]:
        return DaskCall(fn, outputs, sink)

    def fetcher(self) -> Callable[[Any], Awaitable[Any]]:
        return self.fetch

    # -- fetching references -------------------------------------------------------------------------

    async def fetch(self, arg: Any) -> Any:
        """``arg`` with every :class:`DaskRef` in it (itself, or values of a dict) replaced by its
        value, fetched from the cluster in one round trip."""
        client = self._require_client()
        if isinstance(arg, DaskRef):
            [value] = await client.gather([arg.future])
            return value
        if isinstance(arg, dict):
            names = [k for k, v in arg.items() if isinstance(v, DaskRef)]
            if names:
                values = await client.gather([arg[k].future for k in names])
                return {**arg, **dict(zip(names, values, strict=True))}
        return arg

    # -- generators ---------------------------------------------------------------------------

    def advance(self, stream: Any) -> Any:
        if isinstance(stream, DaskStream):
            return stream.items.pop(0) if stream.items else END
        return super().advance(stream)

    # -- facts --------------------------------------------------------------------------------------

    def check_callable(self, fn: Callable[[Any], Any], processor_id: str) -> None:
        """Serialize ``fn`` as Dask will; refuse it with the reason."""
        super().check_callable(fn, processor_id)
        import cloudpickle  # type: ignore[import-untyped]  # what Dask serializes functions with

        target = fn.fn if isinstance(fn, DaskCall) else fn
        try:
            cloudpickle.dumps(target)
        except Exception as exc:
            raise ConfigurationError(
                f"processor {processor_id!r} cannot be serialized for Dask: "
                f"{type(exc).__name__}: {exc}",
                "execution",
            ) from exc

    def concurrency(self, stateful: bool) -> int:
        # Each task gets its own copy of the processor: state does not carry between firings
        # anyway, so stateful processors overlap too. Outputs leave in input order, so a slow
        # task holds back the slots of those after it: a deep window keeps every worker busy.
        return self.tasks_per_processor

    def metrics(self) -> dict[str, Any]:
        out = super().metrics()
        out["scheduler"] = self._where
        out["in_flight"] = len(self._pending)
        return out

    def worker_pids(self) -> list[int]:
        cluster = self._cluster
        if cluster is None:
            return []
        pids = []
        for worker in cluster.workers.values():
            process = getattr(worker, "process", None)
            pid = getattr(getattr(process, "process", None), "pid", None)
            if pid is not None:
                pids.append(int(pid))
        return pids


class DaskCall:
    """A Dask-placed processor's firing function with what the backend needs to know of its node.

    Args:
        fn: The processor's firing function.
        outputs: Its output pipe names (a dict keyed by several of them is routed key by key).
        sink: Whether its outputs are sink results (its values come home).
    """

    __slots__ = ("fn", "outputs", "sink")

    def __init__(self, fn: Callable[[Any], Any], outputs: tuple[str, ...], sink: bool) -> None:
        self.fn = fn
        self.outputs = outputs
        self.sink = sink

    def __call__(self, arg: Any) -> Any:
        return self.fn(arg)


@contextlib.contextmanager
def environ_kept() -> Iterator[DaskEnviron]:
    """Take back, on exit, what Dask's nannies wrote into ``os.environ`` inside.

    A nanny writes the variables it wants its worker to start with (``MALLOC_TRIM_THRESHOLD_``,
    ``OMP_NUM_THREADS`` and the like: Dask's ``distributed.nanny`` settings) into the process
    that starts the workers, and every process started later inherits them: an mpipe process
    pool started after a local Dask cluster would run numpy with glibc giving each large
    temporary's pages back (a page fault per 4 KiB on the next one) and one BLAS thread, neither
    of which the caller asked for. Only those names are looked at: any other variable set
    meanwhile stays. Yields the :class:`DaskEnviron`, for a later :meth:`DaskEnviron.undo`.
    """
    kept = DaskEnviron()
    try:
        yield kept
    finally:
        kept.note_written()
        kept.undo()


class DaskEnviron:
    """The variables Dask's nannies write into the starting process: their values before,
    and the values written (see :func:`environ_kept`)."""

    def __init__(self) -> None:
        import dask

        names = {"PYTHONHASHSEED", "__DASK_PARENT_PID"}
        for key in ("distributed.nanny.pre-spawn-environ", "distributed.nanny.environ"):
            names.update(str(name) for name in dask.config.get(key, None) or {})
        self.before = {name: os.environ.get(name) for name in names}
        self.written: dict[str, str | None] = {}

    def note_written(self) -> None:
        """Note the values that differ from the ones before: the nannies wrote them."""
        for name, value in self.before.items():
            now = os.environ.get(name)
            if now != value:
                self.written[name] = now

    def undo(self) -> None:
        """Put back the variables that still hold the values written (another change stays)."""
        for name, value in self.written.items():
            if os.environ.get(name) != value:
                continue
            old = self.before[name]
            if old is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = old


async def _local_cluster(distributed: Any, workers: int, options: Mapping[str, Any]) -> Any:
    """A LocalCluster of ``workers`` single-threaded worker processes.

    Dask would retry a task whose worker died on another worker three times before giving up;
    here the error strategy decides, so one death is enough (``allowed-failures: 0``).
    """
    import dask

    kwargs: dict[str, Any] = {
        "n_workers": workers,
        "threads_per_worker": 1,
        "processes": True,
        "dashboard_address": ":0",
        "asynchronous": True,
    }
    kwargs.update(options)
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        cluster = distributed.LocalCluster(**kwargs)
        await cluster
    return cluster


async def _quietly(awaitable: Any) -> None:
    with contextlib.suppress(Exception):
        await awaitable


def _large(value: Any) -> bool:
    if isinstance(value, (int, float, str, bool, type(None))):
        return False
    try:
        from dask.sizeof import sizeof

        return bool(sizeof(value) > SCATTER_BYTES)
    except Exception:  # sizeof is a guess; a value it cannot size travels in the task
        return False


def _translate(exc: BaseException, tb: Any, slot: FiringSlot) -> BaseException:
    """A task's exception as the strategy should see it: a lost worker is a crash; any other
    exception gets the worker's traceback as ``__cause__``."""
    from distributed import KilledWorker

    if isinstance(exc, KilledWorker):
        worker = getattr(exc, "last_worker", None)
        where = getattr(worker, "address", "a Dask worker")
        return WorkerCrashedError(
            f"{where} died while running processor {slot.processor_id!r}, item {slot.index}",
            slot.processor_id,
            item_index=slot.index,
        )
    if tb is not None:
        import traceback

        from ._process._protocol import RemoteTraceback

        text = "".join(traceback.format_tb(tb)) + f"{type(exc).__name__}: {exc}\n"
        exc.__cause__ = RemoteTraceback(f"on a Dask worker:\n{text}")
    return exc
