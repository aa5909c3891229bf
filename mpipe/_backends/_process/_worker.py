"""The worker process of the process backend: runs firings that arrive on its request ring.

It never imports the scheduler or the pool: it speaks the protocol of ``_protocol`` (message
kinds and frames). A dead parent is noticed by the ring (``PeerDiedError``) and by
``PR_SET_PDEATHSIG``: the worker exits at once.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib
import inspect
import os
import signal
import sys
import time
from typing import TYPE_CHECKING, Any

from ..._transport._errors import SerializationError, TransportError
from ._protocol import (
    BATCH,
    BATCH_ERROR,
    BATCH_ITEMS,
    BATCH_RESULT,
    BATCH_VALUE,
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
    error_payload,
    frame,
    read_frame,
)

if TYPE_CHECKING:
    import asyncio
    from collections.abc import Sequence

# Results of these types need no awaitable or generator check.
_PLAIN = frozenset({int, float, str, bytes, bool, type(None), dict, list, tuple, set, complex})


def _die_with_parent() -> None:
    """Ask Linux to SIGKILL this process when its parent dies."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


#: The timing of an answer that ran nothing of the firing (its request could not be decoded).
_NO_TIMES = (0.0, 0.0, 0.0, 0.0)


class _Generator:
    __slots__ = ("busy", "credit", "gen", "picked", "start")

    def __init__(self, gen: Any, picked: float, start: float, busy: float) -> None:
        self.gen = gen
        self.credit = STREAM_WINDOW
        self.picked = picked  # when the worker took the call off its ring
        self.start = start  # when the call began
        self.busy = busy  # seconds spent inside the call and the generator so far


class Worker:
    """One worker's loop over its channel.

    Args:
        channel: The worker's side of its rings.
    """

    def __init__(self, channel: Any) -> None:
        from ..._transport import Codec

        self.channel = channel
        # Room for the frame's prefix and the worker's timing (on the answers that end a
        # firing): whatever the codec keeps inline must fit in one ring message with both.
        self.codec = Codec(channel.arena, channel.responses.max_message - PREFIX.size - TIMES.size)
        self.generators: dict[int, _Generator] = {}
        self._callables: dict[bytes, Any] = {}  # callable-reference message -> the callable
        self._loop: asyncio.AbstractEventLoop | None = None

    def send(
        self,
        op: int,
        fid: int,
        value: Any = None,
        extra: int = 0,
        times: tuple[float, float, float, float] = _NO_TIMES,
        first: int = 0,
    ) -> bool:
        """Send one response; a value that cannot be serialized, or that finds no room in the
        arena (the system's memory is short), becomes that firing's error (then False). For a
        batch, ``first`` is the index of its first firing, which such errors name.

        The answers that end a firing carry ``times`` (see ``_protocol.TIMES``).
        """
        body = b""
        sent = op
        if op not in (STREAM, END):
            try:
                body = self.codec.encode(value, 0)
            except SerializationError as exc:
                if op == BATCH_RESULT:
                    value = self._mark_unserializable(value, first)
                    body = self.codec.encode(value, 0)
                else:
                    op, body = ERROR, self._error_body(exc)
            except TransportError as exc:  # no memory for it: the firing fails, not the worker
                op, body = ERROR, self._error_body(exc)
        if op in TIMED:
            body = TIMES.pack(*times) + body
        self.channel.send(frame(op, fid, extra, body))
        return op == sent

    def _error_body(self, exc: BaseException) -> bytes:
        """An error's message. It fits inline in the ring message when the arena has no room:
        the traceback is cut to its end, then dropped, but never the error itself."""
        payload = error_payload(exc)
        try:
            return self.codec.encode(payload, 0)
        except TransportError:
            pass
        for keep in (2000, 200):
            try:
                return self.codec.encode((payload[0], payload[1][-keep:]), 0)
            except TransportError:
                continue
        return self.codec.encode((TransportError(str(exc)[:200]), ""), 0)

    @staticmethod
    def _mark_unserializable(batch: tuple[list[Any], list[int] | None, float], first: int) -> Any:
        """Replace each output that cannot be serialized by an error naming the item (by its
        index in the processor's stream: the batch's ``first`` firing plus its place)."""
        import dill

        from ..._transport import SerializationError

        values, kinds, seconds = batch
        kinds = list(kinds) if kinds is not None else [BATCH_VALUE] * len(values)
        fixed: list[Any] = []
        for j, value in enumerate(values):
            try:
                dill.dumps(value, protocol=5, buffer_callback=lambda b: None, recurse=True)
            except Exception as exc:
                error = SerializationError(
                    f"the output of item {first + j} cannot be serialized: {exc!r}"
                )
                kinds[j] = BATCH_ERROR
                value = error_payload(error)
            fixed.append(value)
        return fixed, kinds, seconds

    def _await(self, awaitable: Any) -> Any:
        if self._loop is None:
            import asyncio  # loaded by the first processor that awaits, not by every worker

            self._loop = asyncio.new_event_loop()
        return self._loop.run_until_complete(awaitable)

    def _settle(self, result: Any) -> Any:
        """An awaitable's value; anything else as it is."""
        return self._await(result) if inspect.isawaitable(result) else result

    def serve(self) -> None:
        """Answer requests until the parent closes the ring (or dies)."""
        from ..._transport import PeerDiedError, RingClosedError

        channel, decode, callables = self.channel, self.codec.decode, self._callables
        is_ref = self.codec.is_callable_ref
        while True:
            try:
                message = channel.recv()
            except RingClosedError:
                return
            except PeerDiedError:
                os._exit(0)
            if message is None:
                continue
            picked = time.perf_counter()
            op, extra, fid = read_frame(message)
            if op in (CALL, BATCH, TIMED_CALL):
                try:
                    fn_message = message[PREFIX.size : PREFIX.size + extra]
                    fn = callables.get(fn_message)
                    if fn is None:
                        fn = decode(fn_message)
                        if is_ref(fn_message):
                            callables[fn_message] = fn
                    held = [decode(message[PREFIX.size + extra :])]
                except Exception as exc:
                    self.send(ERROR, fid, error_payload(exc), times=(picked, picked, picked, 0.0))
                    continue
                # The firing takes the argument over and drops it before it answers: an input's
                # arena block is free by the time the parent reads the answer.
                if op == CALL:
                    self._call(fid, fn, held, picked)
                elif op == TIMED_CALL:
                    # The pool's timer for this firing starts from this moment, not from
                    # when the call was queued.
                    channel.send(frame(STARTED, fid) + CLOCK.pack(time.monotonic()))
                    self._call(fid, fn, held, picked)
                else:
                    self._batch(fid, fn, held, picked)
                del fn
            elif op == NEXT:
                stream = self.generators.get(fid)
                if stream is not None:
                    stream.credit += extra
                    self._pump(fid, stream)
            elif op == DROP:
                stream = self.generators.pop(fid, None)
                if stream is not None:
                    _close(stream.gen)
            elif op == TRIM:
                _trim_heap()
            elif op == LOAD:
                # The codec keeps a callable that fails to load as its error, which its first
                # call then reports; a call already names the firing, a load does not.
                with contextlib.suppress(Exception):
                    decode(message[PREFIX.size : PREFIX.size + extra])

    def _call(self, fid: int, fn: Any, held: list[Any], picked: float) -> None:
        arg = held.pop()
        start = time.perf_counter()
        try:
            result = fn(arg)
            plain = type(result) in _PLAIN  # the common case: no awaitable, no generator
            if not plain:
                result = self._settle(result)
        except Exception as exc:
            end = time.perf_counter()
            del arg
            self.send(ERROR, fid, error_payload(exc), times=(picked, start, end, end - start))
            return
        end = time.perf_counter()
        del arg
        if not plain and (inspect.isgenerator(result) or inspect.isasyncgen(result)):
            stream = self.generators[fid] = _Generator(result, picked, start, end - start)
            self.send(STREAM, fid)
            self._pump(fid, stream)
        else:
            self.send(RESULT, fid, result, times=(picked, start, end, end - start))

    def _batch(self, fid: int, fn: Any, held: list[Any], picked: float) -> None:
        # The argument is (index of the first firing, the firings' arguments). The answer is
        # (values, kinds, seconds); kinds stays None while every firing gave a plain value (the
        # common case: one flat list to pickle), else one kind per firing.
        first, args = held.pop()
        values: list[Any] = []
        kinds: list[int] | None = None
        start = time.perf_counter()
        arg: Any = None
        for arg in args:
            kind = BATCH_VALUE
            try:
                result = fn(arg)
                if type(result) not in _PLAIN:
                    if inspect.isawaitable(result):
                        result = self._await(result)
                    if inspect.isgenerator(result) or inspect.isasyncgen(result):
                        kind, result = BATCH_ITEMS, self._drain(result)
            except Exception as exc:
                kind, result = BATCH_ERROR, error_payload(exc)
            if kind != BATCH_VALUE and kinds is None:
                kinds = [BATCH_VALUE] * len(values)
            if kinds is not None:
                kinds.append(kind)
            values.append(result)
        del args, arg
        end = time.perf_counter()
        self.send(
            BATCH_RESULT,
            fid,
            (values, kinds, end - start),
            times=(picked, start, end, end - start),
            first=first,
        )

    def _drain(self, gen: Any) -> list[Any]:
        if inspect.isasyncgen(gen):

            async def collect() -> list[Any]:
                return [item async for item in gen]

            return self._await(collect())  # type: ignore[no-any-return]
        return list(gen)

    def _next(self, gen: Any) -> tuple[bool, Any]:
        if inspect.isasyncgen(gen):
            try:
                return True, self._await(gen.__anext__())
            except StopAsyncIteration:
                return False, None
        try:
            return True, next(gen)
        except StopIteration:
            return False, None

    def _pump(self, fid: int, stream: _Generator) -> None:
        while stream.credit > 0:
            begin = time.perf_counter()
            try:
                more, item = self._next(stream.gen)
            except Exception as exc:
                end = time.perf_counter()
                stream.busy += end - begin
                del self.generators[fid]
                times = (stream.picked, stream.start, end, stream.busy)
                self.send(ERROR, fid, error_payload(exc), times=times)
                return
            end = time.perf_counter()
            stream.busy += end - begin
            if not more:
                del self.generators[fid]
                self.send(END, fid, times=(stream.picked, stream.start, end, stream.busy))
                return
            stream.credit -= 1
            if not self.send(ITEM, fid, item):  # the item failed to travel: so did the stream
                del self.generators[fid]
                _close(stream.gen)
                return


def _trim_heap() -> None:
    """Give the free memory of this process's heap back to the system, where the C library
    can (glibc's ``malloc_trim``; elsewhere nothing happens). Once per idle pool at most."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).malloc_trim(0)


def _close(gen: Any) -> None:
    try:
        if inspect.isasyncgen(gen):
            return
        gen.close()
    except Exception:
        pass


def main(endpoint: Any, imports: Sequence[str] = ()) -> None:
    """Serve one endpoint (the worker's life), after importing ``imports``: the payload
    libraries the parent uses, imported before the worker says it is ready (``_launch``)."""
    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    for name in imports:
        # A library that fails to import here is left to the first payload that needs it,
        # which fails its firing with the import's own error.
        with contextlib.suppress(Exception):
            importlib.import_module(name)
    with endpoint.connect() as channel:
        Worker(channel).serve()


def boot() -> None:
    """Entry point of a worker interpreter: read the endpoint from stdin, then serve it."""
    import pickle

    _die_with_parent()
    data = pickle.loads(sys.stdin.buffer.read())
    sys.stdin.close()
    for path in reversed(data["sys_path"]):
        if path not in sys.path:
            sys.path.insert(0, path)
    from ..._transport import ArenaHandle, Endpoint
    from ..._transport._fds import FdHandle

    arena_fd, request_fd, response_fd = data["fds"]
    endpoint = Endpoint(
        arena=ArenaHandle(FdHandle(arena_fd, owned=True), data["slot"], data["wait"]),
        requests=data["requests"],
        responses=data["responses"],
        request_bell=FdHandle(request_fd, owned=True),
        response_bell=FdHandle(response_fd, owned=True),
        parent_pid=data["parent_pid"],
        spin=data["spin"],
    )
    if os.getppid() != data["parent_pid"]:
        os._exit(0)  # the parent died while this worker was starting
    main(endpoint, data["imports"])
    _leave()


def _leave() -> None:
    """End the worker once its rings are closed and its shared memory released.

    Tearing the interpreter down (every module's globals, numpy's among them) costs tens of
    milliseconds per worker, which a closing pool waits for. What an ordinary exit does that
    anyone could see is kept: the standard streams are flushed and the ``atexit`` functions
    run; the rest is skipped with ``os._exit``. A worker whose processors left threads of their
    own running exits the ordinary way, which waits for them.
    """
    import threading

    if threading.active_count() > 1:
        return
    import atexit

    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError, AttributeError):  # closed or replaced
            stream.flush()
    os._exit(0)
