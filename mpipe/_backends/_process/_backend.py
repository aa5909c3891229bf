"""The process backend: firings run in a pool of worker processes over shared memory.

One owner of pool state: this object, on the event-loop thread. It waits on every worker's
response doorbell and every worker's process sentinel through the loop (``add_reader``), so a
result and a death are noticed the moment they happen, never by polling.

Payloads travel as codec messages: small values inline in the ring message, Arrow data and
numpy arrays as zero-copy blocks of the shared arena, other objects as pickle-5 with their
buffers in the arena. Functions and processors are sent once per worker (dill) and cached there.

One failure path per worker: its sentinel fires, the responses it managed to send are handled,
every call still on it fails with :class:`WorkerCrashedError` (exit code or signal, processor,
item), its arena slot is reclaimed and a fresh worker takes the slot. Planned exits (closing the
backend) mark the worker as retiring first, so they are never mistaken for crashes.

Timeouts run from the moment the worker starts the firing (it announces it with ``STARTED``),
never from when the call was queued. A timed-out firing fails alone: its worker is killed and
the calls queued behind it, which never started, run again elsewhere, each exactly once.
Workers the pool kills itself never count against its restart budget: only workers that die
before they are ready, ``START_FAILURES`` of them within ``START_WINDOW`` seconds, break the pool,
and a broken pool fails every call (a failure no error strategy can skip) until it is started
again.

Why one module of this length: the pool is one state machine (workers starting, ready, busy,
timed out, retiring, dead; calls queued, running, answered, resent) with one owner, and every
transition of it is here; what it says to a worker is in ``_protocol.py``, how a worker starts
in ``_launch.py``, and what a worker does in ``_worker.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import signal
import time
from collections import deque
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

from ..._errors import (
    ConfigurationError,
    ProcessorTimeoutError,
    WorkerCrashedError,
    mark_fatal,
)
from ..._transport._errors import ArenaFullError, PayloadTooLargeError, SerializationError
from .. import check_process_options
from .._base import END as END_OF_STREAM
from .._base import Backend, FiringSlot, Stream
from ._launch import launch, worker_threads
from ._protocol import (
    BATCH,
    BATCH_RESULT,
    CALL,
    CLOCK,
    DROP,
    END,
    ERROR,
    ITEM,
    LOAD,
    NEXT,
    PREFIX,
    RESULT,
    STARTED,
    STREAM,
    STREAM_WINDOW,
    TIMED,
    TIMED_CALL,
    TIMES,
    TRIM,
    RemoteTraceback,
    call_frame,
    frame,
    noop,
    read_frame,
)

__all__ = ["ProcessBackend", "RemoteStream", "describe_exit"]

_log = logging.getLogger("mpipe")
_MiB = 1 << 20
#: Seconds a closing pool waits for workers to exit before killing them.
EXIT_GRACE = 2.0
#: Seconds to wait for a new worker to say it is ready.
START_TIMEOUT = 60.0
#: This many workers dying before they are ready within ``START_WINDOW`` seconds (with no worker
#: becoming ready in between) break the pool: its workers cannot start.
START_FAILURES = 3
START_WINDOW = 60.0
#: Bytes of shared memory a pool faults in up front and keeps, unless told otherwise.
ARENA_SIZE = 64 * _MiB
#: Workers one pool can hold: the arena counts references per process in 64 slots, and the
#: parent holds slot 0.
MAX_WORKERS = 63
#: Seconds after the last run ends (with none started since) before the arena gives the
#: memory that payloads grew it by back to the system. Back-to-back runs keep it: faulting
#: shared memory in again costs more than copying into it.
TRIM_DELAY = 1.0


def describe_exit(exitcode: int | None) -> str:
    """``exit code 3`` or ``killed by SIGKILL``."""
    if exitcode is None:
        return "still running"
    if exitcode < 0:
        try:
            return f"killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"killed by signal {-exitcode}"
    return f"exit code {exitcode}"


class RemoteStream(Stream):
    """A generator running in a worker: items arrive ahead of use, up to a credit window."""

    __slots__ = ("consumed", "done", "error", "fid", "items", "waiter", "worker")

    def __init__(self, worker: _Worker, fid: int) -> None:
        self.worker = worker
        self.fid = fid
        self.items: deque[Any] = deque()
        self.done = False
        self.error: BaseException | None = None
        self.waiter: asyncio.Future[Any] | None = None
        self.consumed = 0


class _Call:
    """A submission in a worker: kept with its function and argument until answered, so that
    a call that never started when its worker died can run on another worker."""

    __slots__ = ("arg", "fn", "future", "op", "slot", "stream", "timer")

    def __init__(
        self, future: asyncio.Future[Any] | None, slot: FiringSlot, op: int, fn: Any, arg: Any
    ) -> None:
        self.future = future
        self.slot = slot
        self.op = op
        self.fn = fn
        self.arg = arg
        self.stream: RemoteStream | None = None
        self.timer: asyncio.TimerHandle | None = None


class _Worker:
    __slots__ = (
        "calls",
        "channel",
        "exited",
        "killed",
        "looking",
        "name",
        "outbox",
        "pid",
        "process",
        "ready",
        "retiring",
        "slot",
        "timed_out",
    )

    def __init__(
        self, slot: int, process: Any, channel: Any, loop: asyncio.AbstractEventLoop
    ) -> None:
        self.slot = slot
        self.process = process
        self.channel = channel
        self.pid: int = process.pid
        self.name = f"worker-{slot} (pid {self.pid})"
        self.calls: dict[int, _Call] = {}
        self.outbox: deque[bytes] = deque()
        self.ready: asyncio.Future[None] = loop.create_future()
        self.exited: asyncio.Future[None] = loop.create_future()
        self.retiring = False
        # Killed by the pool (a timeout): takes no new calls, and its death counts against
        # no restart budget.
        self.killed = False
        self.timed_out: set[int] = set()
        self.looking = False  # a look at its response ring is due (see ProcessBackend._look)


class ProcessBackend(Backend):
    """A pool of ``max_workers`` worker processes sharing one arena.

    Args:
        max_workers: Worker processes (at most ``MAX_WORKERS``).
        arena_size: Bytes of shared memory mapped and faulted in up front, and kept (the
            arena grows beyond them as payloads need, and gives the growth back when idle);
            None: ``ARENA_SIZE``.
        start_method: ``"spawn"``: every worker is a fresh interpreter (the one method, safe
            when the parent has threads); kept as an option for forward compatibility.
        message_size: Largest ring message in bytes; larger payloads go through the arena.
    """

    name = "process"
    enforces_timeout = True
    batches = True
    replies = True

    def __init__(
        self,
        max_workers: int,
        arena_size: int | None = None,
        start_method: str = "spawn",
        message_size: int = 1016,
    ) -> None:
        super().__init__(max_workers)
        if max_workers > MAX_WORKERS:
            raise ConfigurationError(
                f"max_workers={max_workers} is more than a process pool holds ({MAX_WORKERS} "
                "worker processes share one arena)",
                "max_workers",
            )
        check_process_options(arena_size, start_method)
        if arena_size is None:
            arena_size = ARENA_SIZE
        self.arena_size = arena_size
        self.start_method = start_method
        self.message_size = message_size
        self._loop: asyncio.AbstractEventLoop | None = None
        # Bytes of input the first run brings (``expect``): faulted in while the workers start.
        self._expected = 0
        self._arena: Any = None
        self._codec: Any = None
        self._workers: dict[int, _Worker] = {}
        self._pins: dict[int, int] = {}  # id(stateful callable) -> worker slot
        self.broken: WorkerCrashedError | None = None
        self._fids = itertools.count(1)
        # Times (monotonic) at which workers died before they were ready, within START_WINDOW.
        self._start_failures: deque[float] = deque()
        self._rr = 0
        self._trim: asyncio.TimerHandle | None = None
        #: Whether workers ran calls since they last gave their heaps' free memory back.
        self._worked = False

    # -- lifecycle --------------------------------------------------------------------------------

    async def start(self) -> None:
        if self.started:
            if self.broken is None:
                return
            await self.close()  # a broken pool starts afresh, or says why it cannot
        from ..._transport import Codec, open_arena

        expected, self._expected = self._expected, 0  # told for this start only
        self._loop = asyncio.get_running_loop()
        self.broken = None
        self._start_failures.clear()
        _check_arena_size(self.arena_size)
        # The floor is faulted in once the workers are launched: their interpreters start
        # meanwhile (tens of milliseconds each that the parent used to wait for first).
        self._arena = open_arena(self.arena_size, populate=False)
        self._codec = Codec(self._arena, (self.message_size - PREFIX.size) // 2)
        self.started = True
        try:
            for slot in range(1, self.max_workers + 1):
                self._spawn(slot)
            self._arena.populate_floor()
            self._grow_ahead(expected)
            waits = [w.ready for w in self._workers.values()]
            await asyncio.wait_for(asyncio.gather(*waits), START_TIMEOUT)
        except BaseException:
            await self.close()
            raise

    def expect(self, nbytes: int) -> None:
        """Before ``start()``: the first run brings ``nbytes`` of input payloads. Past half the
        arena's floor (which holds smaller inputs), the pool grows the arena by that much and
        faults it in while its workers start, rather than in the run, when the payload's block
        is allocated; the memory is given back when the pool goes idle, as any growth is.
        Ignored by a pool that runs already."""
        if not self.started or self.broken is not None:
            self._expected = nbytes

    def _grow_ahead(self, nbytes: int) -> None:
        if nbytes <= self.arena_size // 2:
            return  # the floor holds it
        # A block that big, faulted in and freed at once: the payloads take its pages. No room
        # is no error here; the payload that needs the room reports it.
        with contextlib.suppress(ArenaFullError, PayloadTooLargeError):
            self._arena.alloc(nbytes, 0.0).release()

    def _spawn(self, slot: int) -> _Worker:
        from ..._transport import open_channel

        assert self._loop is not None
        channel = open_channel(self._arena, slot, capacity=256, message_size=self.message_size)
        try:
            process = launch(channel.endpoint(), worker_threads(self.max_workers))
        except BaseException:
            channel.close()
            raise
        worker = _Worker(slot, process, channel, self._loop)
        channel.bind(worker.pid)
        channel.watch(self._loop, partial(self._on_message, worker))
        self._loop.add_reader(process.sentinel, self._on_exit, worker)
        self._workers[slot] = worker
        # The worker is ready once its first message arrives, or once it answers a ping: send
        # a no-op batch of nothing, whose answer proves the worker reads and writes its rings.
        self._ping(worker)
        return worker

    def _ping(self, worker: _Worker) -> None:
        codec = self._codec
        fn = codec.encode_callable(noop, worker.slot)
        message = call_frame(BATCH, 0, fn, codec.encode((0, []), worker.slot))
        self._send(worker, message)

    async def close(self) -> None:
        if not self.started:
            return
        self.started = False
        workers = list(self._workers.values())
        for worker in workers:
            worker.retiring = True
            if worker.channel.requests is not None:
                worker.channel.requests.close()
        if workers:
            _, pending = await asyncio.wait([w.exited for w in workers], timeout=EXIT_GRACE)
            for worker in workers:
                if not worker.exited.done():
                    worker.process.kill()
            if pending:
                await asyncio.wait([w.exited for w in workers], timeout=EXIT_GRACE * 5)
        self._workers.clear()
        self._pins.clear()
        if self._trim is not None:
            self._trim.cancel()
            self._trim = None
        if self._arena is not None:
            # Results the caller still holds keep the shared memory mapped: give back every
            # page that is not theirs.
            self._arena.trim(0)
            self._arena.close()
            self._arena = None
        self._codec = None

    # -- submitting -------------------------------------------------------------------------------

    def _choose(self, fn: Any) -> _Worker:
        if self.broken is not None:
            raise self._broken_error()
        if not self._workers:
            raise WorkerCrashedError("the process backend has no workers (it is closed)")
        if _stateful(fn):
            # A stateful processor lives in one worker for the whole run.
            slot = self._pins.get(id(fn))
            worker = self._workers.get(slot) if slot is not None else None
            if worker is None or worker.retiring or worker.killed:
                worker = self._least_loaded()
                self._pins[id(fn)] = worker.slot
            return worker
        return self._least_loaded()

    def _least_loaded(self) -> _Worker:
        if len(self._workers) == 1:
            (only,) = self._workers.values()
            if not only.retiring:
                return only  # killed or not: see below
        workers = list(self._workers.values())
        n = len(workers)
        self._rr = (self._rr + 1) % n
        best = None
        for i in range(n):
            w = workers[(self._rr + i) % n]
            if w.retiring:
                continue
            if (
                best is None
                or (best.killed and not w.killed)
                or (best.killed == w.killed and len(w.calls) < len(best.calls))
            ):
                best = w
        if best is None:
            raise WorkerCrashedError("every worker process of the pool is exiting")
        # A killed worker gets a call only when every worker is being killed: the call waits
        # in its ring, never starts, and runs on the replacement once the death is handled.
        return best

    def _submit(self, op: int, fn: Any, arg: Any, slot: FiringSlot) -> asyncio.Future[Any] | None:
        assert self._loop is not None
        # Answered through slot.on_reply when set (see FiringSlot): then there is no future.
        future = None if slot.on_reply is not None else self._loop.create_future()
        self._dispatch(_Call(future, slot, op, fn, arg))
        return future

    def _dispatch(self, call: _Call) -> None:
        """Send a call to a worker: the request is the op, the callable's message (its key
        once the worker has it) and the argument's."""
        assert self._loop is not None
        if self._trim is not None:  # busy again: keep the memory it grew by
            self._trim.cancel()
            self._trim = None
        fn = call.fn
        worker = self._choose(fn)
        self._worked = True
        codec = self._codec
        fn_message: bytes = codec.encode_callable(fn, worker.slot)
        arg_message: bytes = codec.encode(call.arg, worker.slot)
        fid = next(self._fids)
        worker.calls[fid] = call
        slot = call.slot
        slot.worker = worker.name
        op = call.op
        if op == CALL and slot.timeout is not None:
            op = TIMED_CALL  # the timer starts when the worker says the firing started
        self._send(worker, call_frame(op, fid, fn_message, arg_message))
        if not worker.looking:
            worker.looking = True
            self._loop.call_soon(self._look, worker)

    @staticmethod
    def _look(worker: _Worker) -> None:
        """One look at a worker's responses, an event-loop turn after a request went out.

        A worker that is awake answers a tiny firing within a few microseconds: by the time of
        this look (or of the loop's next poll, which this look delays by as much) the answer
        is often in, and the parent takes it without sleeping on the doorbell and being woken
        across cores, which costs more than the look (docs/process.md). One look per request
        burst, never a loop: the parent does not spin.
        """
        worker.looking = False
        worker.channel.look()

    def submit(self, fn: Callable[[Any], Any], arg: Any, slot: FiringSlot) -> Any:
        return self._submit(CALL, fn, arg, slot)

    def idle(self) -> None:
        """A run ended: unless another starts within ``TRIM_DELAY`` seconds, give memory back
        to the system: what the arena grew by (only when it grew), and the free memory the
        workers' heaps keep while they work (``TRIM``; only when they ran calls)."""
        arena = self._arena
        if arena is None or self._loop is None or not (arena.rewarmed or self._worked):
            return
        if self._trim is not None:
            self._trim.cancel()
        if TRIM_DELAY <= 0:
            self._trim_now()
        else:
            self._trim = self._loop.call_later(TRIM_DELAY, self._trim_now)

    def _trim_now(self) -> None:
        self._trim = None
        if self._arena is not None and self._arena.rewarmed:
            self._arena.trim()
        if self._worked and self.broken is None:
            self._worked = False
            for worker in self._serving():
                self._send(worker, frame(TRIM, 0))

    def _serving(self) -> list[_Worker]:
        """The workers a request may go to: not one on its way out, nor one whose ring is
        already closed (a worker that died before it was ready, in a pool that could not
        replace it)."""
        return [
            w
            for w in self._workers.values()
            if not (w.retiring or w.killed) and w.channel.requests is not None
        ]

    def submit_batch(self, fn: Callable[[Any], Any], args: list[Any], slot: FiringSlot) -> Any:
        # The worker names a firing that fails by its index in the stream: slot.index + place.
        return self._submit(BATCH, fn, (slot.index, args), slot)

    def preload(self, fns: Sequence[Callable[[Any], Any]]) -> None:
        """Send each worker the callables it will run (``LOAD``), to load while the parent goes
        on: a stateful processor to the one worker it lives in, anything else to every worker.
        A worker that has a callable is not sent it again; one that cannot be sent is left to
        its first call, which reports why."""
        codec = self._codec
        if codec is None or self.broken is not None:
            return
        serving = self._serving()
        for fn in fns:
            for worker in [self._choose(fn)] if _stateful(fn) else serving:
                try:
                    message = codec.encode_callable(fn, worker.slot)
                except SerializationError:
                    break
                if not codec.is_callable_ref(message):
                    self._send(worker, call_frame(LOAD, 0, message, b""))

    def _send(self, worker: _Worker, message: bytes) -> None:
        if worker.outbox or not worker.channel.try_send(message):
            worker.outbox.append(message)

    def _flush(self, worker: _Worker) -> None:
        outbox = worker.outbox
        while outbox and worker.channel.requests is not None:
            if not worker.channel.try_send(outbox[0]):
                return
            outbox.popleft()

    # -- generators ---------------------------------------------------------------------------

    def advance(self, stream: Any) -> Any:
        if not isinstance(stream, RemoteStream):
            return super().advance(stream)
        if stream.items:
            item = stream.items.popleft()
            self._credit(stream)
            return item
        if stream.error is not None:
            raise stream.error
        if stream.done:
            return END_OF_STREAM
        assert self._loop is not None
        stream.waiter = self._loop.create_future()
        return stream.waiter

    def release(self, stream: Any) -> None:
        """Tell the worker to close a generator whose items nobody wants any more."""
        if not isinstance(stream, RemoteStream) or stream.done or stream.error is not None:
            return
        stream.done = True
        stream.items.clear()
        worker = stream.worker
        call = worker.calls.pop(stream.fid, None)
        if call is not None and call.timer is not None:
            call.timer.cancel()
        if not worker.retiring and worker.channel.requests is not None:
            self._send(worker, frame(DROP, stream.fid))

    def _credit(self, stream: RemoteStream) -> None:
        stream.consumed += 1
        if stream.consumed >= STREAM_WINDOW // 2 and not stream.done:
            worker = stream.worker
            if not worker.retiring:
                self._send(worker, frame(NEXT, stream.fid, stream.consumed))
            stream.consumed = 0

    # -- responses ----------------------------------------------------------------------------------

    def _on_message(self, worker: _Worker, message: bytes) -> None:
        try:
            self._handle(worker, message)
        except Exception as exc:
            # A response that cannot be understood fails its call, never the event loop.
            fid = read_frame(message)[2] if len(message) >= PREFIX.size else 0
            call = worker.calls.pop(fid, None)
            if call is not None:
                if call.stream is not None:
                    call.stream.error = exc
                    self._wake(call.stream)
                else:
                    _answer(call, error=exc)
        if worker.outbox:
            self._flush(worker)

    def _handle(self, worker: _Worker, message: bytes) -> None:
        op, _extra, fid = read_frame(message)
        if op == STARTED:
            self._started(worker, fid, CLOCK.unpack_from(message, PREFIX.size)[0])
            return
        if op in TIMED:
            times: tuple[float, float, float, float] | None = TIMES.unpack_from(
                message, PREFIX.size
            )
            body = message[PREFIX.size + TIMES.size :]
        else:
            times = None
            body = message[PREFIX.size :]
        # Always decode: a message carries a reference to its arena block that only decoding
        # takes over (and dropping the value then releases).
        value: Any = self._codec.decode(body) if body else None
        if fid == 0:
            if not worker.ready.done():
                worker.ready.set_result(None)
                self._start_failures.clear()
            return
        call = worker.calls.get(fid)
        if call is None:
            return  # a late answer for a call that timed out or was abandoned
        if times is not None and times[1] > 0.0:
            call.slot.ran = times
        if op == RESULT:
            self._finish(worker, fid, call)
            _answer(call, value)
        elif op == BATCH_RESULT:
            self._finish(worker, fid, call)
            values, kinds, seconds = value
            if kinds is not None:
                values = [
                    v if kind else _remote(v, worker) for kind, v in zip(kinds, values, strict=True)
                ]
            _answer(call, (values, kinds, seconds))
        elif op == ERROR:
            self._finish(worker, fid, call)
            error = _remote(value, worker)
            stream = call.stream
            if stream is None:
                _answer(call, error=error)
            else:
                stream.error = error
                self._wake(stream)
        elif op == STREAM:
            call.stream = RemoteStream(worker, fid)
            if call.timer is not None:
                call.timer.cancel()
                call.timer = None
            _answer(call, call.stream)
        elif op == ITEM:
            stream = call.stream
            assert stream is not None
            waiter = stream.waiter
            if waiter is not None and not waiter.done():
                stream.waiter = None
                waiter.set_result(value)
                self._credit(stream)
            else:
                stream.items.append(value)
        elif op == END:
            self._finish(worker, fid, call)
            stream = call.stream
            assert stream is not None
            stream.done = True
            self._wake(stream)

    def _started(self, worker: _Worker, fid: int, started: float) -> None:
        """A timed firing started in its worker at ``started`` (the worker's monotonic clock):
        its timeout runs from there."""
        call = worker.calls.get(fid)
        timeout = call.slot.timeout if call is not None else None
        if call is None or timeout is None or call.timer is not None or worker.killed:
            return
        assert self._loop is not None
        now = self._loop.time()
        if not now - START_TIMEOUT <= started <= now:
            started = now  # not the loop's clock after all: measure from the notice
        call.timer = self._loop.call_at(started + timeout, self._on_timeout, worker, fid)

    def _finish(self, worker: _Worker, fid: int, call: _Call) -> None:
        del worker.calls[fid]
        if call.timer is not None:
            call.timer.cancel()

    @staticmethod
    def _wake(stream: RemoteStream) -> None:
        waiter = stream.waiter
        if waiter is None or waiter.done() or stream.items:
            return
        stream.waiter = None
        if stream.error is not None:
            waiter.set_exception(stream.error)
        else:
            waiter.set_result(END_OF_STREAM)

    # -- failures -----------------------------------------------------------------------------------

    def _on_timeout(self, worker: _Worker, fid: int) -> None:
        call = worker.calls.pop(fid, None)
        if call is None:
            return
        slot = call.slot
        worker.timed_out.add(fid)
        worker.killed = True
        _answer(
            call,
            error=ProcessorTimeoutError(
                f"processor {slot.processor_id!r}: firing {slot.index} ran past its timeout of "
                f"{slot.timeout} s in {worker.name}; the worker was killed and replaced",
                slot.processor_id,
            ),
        )
        worker.process.kill()

    def _on_exit(self, worker: _Worker) -> None:
        assert self._loop is not None
        self._loop.remove_reader(worker.process.sentinel)
        exitcode = worker.process.reap()
        if not worker.retiring and worker.channel.responses is not None:
            for message in worker.channel.drain():
                self._on_message(worker, message)
        how = describe_exit(exitcode)
        # A worker runs its calls one at a time, in the order sent: the oldest unanswered call
        # was running when it died (unless a timeout already named the culprit, or the worker
        # died before it was ready and ran nothing); the calls queued behind it never started
        # and run again elsewhere. Generators it was running lose their state and fail.
        culprit_found = bool(worker.timed_out) or not worker.ready.done()
        innocent: list[_Call] = []
        for call in worker.calls.values():
            if call.timer is not None:
                call.timer.cancel()
                call.timer = None
            if call.stream is None and culprit_found:
                innocent.append(call)
                continue
            slot = call.slot
            error = WorkerCrashedError(
                f"{worker.name} died ({how}) while running processor "
                f"{slot.processor_id!r}, item {slot.index}",
                slot.processor_id,
                exitcode=exitcode,
                item_index=slot.index,
            )
            if call.stream is None:
                culprit_found = True
            _fail(call, error)
        worker.calls.clear()
        worker.outbox.clear()
        worker.channel.close()
        if self._arena is not None:
            self._arena.reclaim(worker.slot)
        if self._codec is not None:
            self._codec.forget_peer(worker.slot)
        if not worker.ready.done():
            worker.ready.set_exception(
                WorkerCrashedError(f"{worker.name} could not start ({how})", exitcode=exitcode)
            )
            worker.ready.exception()  # retrieved: start() reports it, or nobody waits
            if not worker.killed:
                self._start_failures.append(self._loop.time())
        if not worker.exited.done():
            worker.exited.set_result(None)
        if not self.started or worker.retiring:
            for call in innocent:
                _fail(call, WorkerCrashedError(f"{worker.name} exited: the pool is closing"))
            return
        if self.broken is not None:
            for call in innocent:
                _fail(call, self._broken_error())
            return
        failures = self._start_failures
        while failures and failures[0] < self._loop.time() - START_WINDOW:
            failures.popleft()
        if len(failures) >= START_FAILURES:
            self._break(
                f"worker processes cannot start: {len(failures)} died before they were ready "
                f"within {START_WINDOW:g} s (last: {how})",
                exitcode,
                innocent,
            )
            return
        try:
            self._spawn(worker.slot)
        except Exception as exc:  # no process or descriptors to be had: nothing to retry with
            del self._workers[worker.slot]
            self._break(
                f"worker processes cannot start: {type(exc).__name__}: {exc}", None, innocent
            )
            return
        for call in innocent:
            if call.slot.on_reply is not None or (
                call.future is not None and not call.future.done()
            ):
                try:
                    self._dispatch(call)
                except Exception as exc:  # answered, never lost in the event loop's log
                    _fail(call, exc)

    def _break(self, message: str, exitcode: int | None, orphans: list[_Call]) -> None:
        """Mark the pool broken: every call still pending, on any worker, fails with
        ``message``, and so does every later one until the pool is started again."""
        self.broken = self._broken_error(message, exitcode)
        _log.error("process pool broken: %s", message)
        for other in self._workers.values():
            calls = list(other.calls.values())
            other.calls.clear()
            for call in calls:
                if call.timer is not None:
                    call.timer.cancel()
                _fail(call, self._broken_error())
        for call in orphans:
            _fail(call, self._broken_error())

    def _broken_error(
        self, message: str | None = None, exitcode: int | None = None
    ) -> WorkerCrashedError:
        """A fresh error saying why the pool is broken (each failure gets its own, so that no
        traceback grows across runs); no error strategy can skip or retry it."""
        if message is None:
            assert self.broken is not None
            message, exitcode = self.broken.message, self.broken.exitcode
        return mark_fatal(WorkerCrashedError(message, exitcode=exitcode))

    # -- facts ----------------------------------------------------------------------------------------

    def metrics(self) -> dict[str, Any]:
        out = super().metrics()
        out["workers"] = {
            w.name: {"pid": w.pid, "in_flight": len(w.calls)} for w in self._workers.values()
        }
        if self._arena is not None:
            stats = self._arena.stats()
            out["arena"] = stats
            # shared memory in use, as the monitor reports: what was given back is not
            out["shm_bytes"] = stats["resident_bytes"]
        return out

    def worker_pids(self) -> list[int]:
        return [w.pid for w in self._workers.values() if not w.retiring]

    def check_callable(self, fn: Callable[[Any], Any], processor_id: str) -> None:
        """Serialize ``fn`` once as a worker would receive it; refuse it with the reason."""
        import dill

        try:
            dill.dumps(fn, protocol=5, recurse=True)
        except Exception as exc:
            raise ConfigurationError(
                f"processor {processor_id!r} cannot be sent to a worker process: "
                f"{type(exc).__name__}: {exc}",
                "execution",
            ) from exc

    def concurrency(self, stateful: bool) -> int:
        # Two submissions per worker keep each busy while the next one is on its way; a
        # stateful processor lives in one worker, whose FIFO ring keeps its firings in order.
        return 2 if stateful else 2 * self.max_workers


def _stateful(fn: Any) -> bool:
    """Whether ``fn`` is a stateful processor's method (it lives in one worker)."""
    owner = getattr(fn, "__self__", None)
    return owner is not None and bool(getattr(owner, "stateful", False))


def _fail(call: _Call, error: BaseException) -> None:
    """Fail a call: its generator's consumer, when it returned one, else the call itself."""
    stream = call.stream
    if stream is None:
        _answer(call, error=error)
    elif not stream.done and stream.error is None:
        stream.error = error
        ProcessBackend._wake(stream)


def _check_arena_size(size: int) -> None:
    """Refuse an ``arena_size`` the machine cannot fault in (before trying to)."""
    from ..._transport._memory import format_size, memory_facts

    facts = memory_facts()
    if size > facts.available:
        raise ConfigurationError(
            f"arena_size={size} ({format_size(size)}) is more memory than the system can give "
            f"({facts.describe()}); the arena grows beyond arena_size by itself as payloads "
            "need, so a smaller one loses nothing",
            "arena_size",
        )


def _answer(call: _Call, value: Any = None, error: BaseException | None = None) -> None:
    """Answer a call (``error`` None on success): through its slot's ``on_reply`` when it has
    one, else its future, if it has one that is still pending (a call answered through
    ``on_reply`` has none; its caller gives the answer up by clearing ``on_reply``)."""
    reply = call.slot.on_reply
    if reply is not None:
        call.slot.on_reply = None
        reply(call.slot, value, error)
    elif call.future is not None and not call.future.done():
        if error is None:
            call.future.set_result(value)
        else:
            call.future.set_exception(error)


def _remote(payload: Any, worker: _Worker) -> BaseException:
    """Rebuild a worker's exception with its traceback attached as ``__cause__``."""
    exc, text = payload
    cause = RemoteTraceback(f"in {worker.name}, at {time.strftime('%H:%M:%S')}:\n{text}")
    exc.__cause__ = cause
    return exc  # type: ignore[no-any-return]
