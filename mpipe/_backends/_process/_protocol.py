"""The wire protocol between the pool and its workers: message kinds and frames.

Both sides import this module and nothing else of each other. Every ring message is a frame: a
16-byte prefix ``(kind: u8, 3 pad, extra: u32, firing id: u64)`` followed by codec messages.
Firing id 0 is the pool's own (the readiness ping); real firings count from 1.

Requests (pool -> worker):

- ``CALL``: ``extra`` bytes of the callable's message, then the argument's message. Answered by
  ``RESULT`` (the value), ``ERROR`` (the exception and its traceback text) or ``STREAM`` when the
  call returned a generator; then the generator's items follow as ``ITEM`` frames, as far as the
  pool's credit allows, ended by ``END`` or ``ERROR``.
- ``TIMED_CALL``: a ``CALL`` whose firing has a timeout. The worker first answers ``STARTED``,
  whose body is the worker's ``time.monotonic()`` as it starts the firing (``CLOCK``), so that
  the pool measures the timeout from there: time spent queued behind other calls in the
  worker's ring does not count.
- ``BATCH``: like ``CALL`` with ``(index of the first firing, list of arguments)``; answered by
  one ``BATCH_RESULT`` frame carrying ``(values, kinds, seconds spent)``: one value per firing,
  and ``kinds`` None when each is a plain value, else one kind per firing: ``BATCH_VALUE``,
  ``BATCH_ITEMS`` (a generator's items) or ``BATCH_ERROR`` (the value is then the error, which
  names its firing by index in the processor's stream).
- ``NEXT``: ``extra`` more items of a generator may be sent.
- ``DROP``: the pool no longer wants a generator's items: the worker closes it.
- ``TRIM``: the pool went idle: the worker gives the free memory of its heap back to the
  system (glibc's ``malloc_trim``; its malloc settings keep up to 64 MiB of it while it works).
  No answer.
- ``LOAD``: ``extra`` bytes of a callable's message and nothing after: the worker loads the
  callable (importing what it needs) ahead of its first call, while the parent goes on. No
  answer; a callable that fails to load fails its first call with the loading error.

The answers that end a firing (``RESULT``, ``ERROR``, ``END``, ``BATCH_RESULT``) carry the
worker's own timing after the prefix, before the codec message: ``TIMES``, four doubles of the
worker's ``time.perf_counter()`` (on Linux the system-wide monotonic clock, which the parent
reads too): when the worker took the request off its ring, when the call began, when it ended
(for a generator: when it was exhausted), and the seconds spent running it (for a generator,
the time spent inside it, not the time it waited for credit between items).

Closing the request ring is a planned exit: the worker returns after draining it.
"""

from __future__ import annotations

import struct
import traceback

__all__ = [
    "BATCH",
    "BATCH_ERROR",
    "BATCH_ITEMS",
    "BATCH_RESULT",
    "BATCH_VALUE",
    "CALL",
    "CLOCK",
    "DROP",
    "END",
    "ERROR",
    "ITEM",
    "LOAD",
    "NEXT",
    "PREFIX",
    "RESULT",
    "STARTED",
    "STREAM",
    "STREAM_WINDOW",
    "TIMED",
    "TIMED_CALL",
    "TIMES",
    "TRIM",
    "RemoteTraceback",
    "call_frame",
    "error_payload",
    "frame",
    "noop",
    "read_frame",
]

PREFIX = struct.Struct("<BxxxIQ")
#: The worker's timing of a firing: (picked, start, end, busy seconds), see above.
TIMES = struct.Struct("<dddd")

# Requests.
CALL, BATCH, NEXT, DROP, TIMED_CALL, TRIM, LOAD = 1, 2, 3, 4, 5, 6, 7
# Responses.
RESULT, ERROR, STREAM, ITEM, END, BATCH_RESULT, STARTED = 1, 2, 3, 4, 5, 6, 7
#: The body of ``STARTED``: the worker's monotonic clock (system-wide on Linux, as the
#: event loop's ``loop.time()`` is) when the firing started.
CLOCK = struct.Struct("<d")
#: Responses that carry ``TIMES``.
TIMED = frozenset({RESULT, ERROR, END, BATCH_RESULT})
#: Kinds of a batch outcome: an error, a value, or a generator's items (drained in the worker).
BATCH_ERROR, BATCH_VALUE, BATCH_ITEMS = 0, 1, 2
#: Items a generator may run ahead of the pool's consumption.
STREAM_WINDOW = 16


def noop(arg: object) -> None:
    """The callable of the readiness ping. It lives here, in a module every worker imports
    anyway, because callables travel by reference: the worker imports the callable's module."""
    return None


def frame(kind: int, fid: int, extra: int = 0, body: bytes = b"") -> bytes:
    """One message: the prefix, then ``body`` (codec messages, or nothing)."""
    return PREFIX.pack(kind, extra, fid) + body


def call_frame(kind: int, fid: int, fn_message: bytes, arg_message: bytes) -> bytes:
    """A ``CALL`` or ``BATCH`` request: ``extra`` is the length of the callable's message."""
    return PREFIX.pack(kind, len(fn_message), fid) + fn_message + arg_message


def read_frame(message: bytes) -> tuple[int, int, int]:
    """``(kind, extra, fid)`` of a message; its body starts at ``PREFIX.size``."""
    return PREFIX.unpack_from(message)


class RemoteTraceback(Exception):
    """The traceback of an exception raised in a worker process (set as ``__cause__``)."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text

    def __str__(self) -> str:
        return f'\n\nThe error in the worker process:\n"""\n{self.text}"""'


def error_payload(exc: BaseException) -> tuple[BaseException, str]:
    """An exception and its formatted traceback, made picklable if it is not."""
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    exc.__traceback__ = None
    exc.__context__ = None
    exc.__cause__ = None
    return exc, text
