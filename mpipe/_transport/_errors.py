"""The exceptions of the shared-memory transport.

All derive from :class:`TransportError`, itself a :class:`~mpipe.PipelineError`, so that callers
catching mpipe's errors catch these too. The native extension raises these very classes.
"""

from __future__ import annotations

from .._errors import PipelineError

__all__ = [
    "ArenaFullError",
    "CorruptMessageError",
    "PayloadTooLargeError",
    "PeerDiedError",
    "RingClosedError",
    "RingFullError",
    "SerializationError",
    "TransportError",
]


class TransportError(PipelineError):
    """Something went wrong moving data through shared memory."""


class ArenaFullError(TransportError, MemoryError):
    """The arena had no room for a payload, even after growing and waiting for frees."""


class PayloadTooLargeError(TransportError, ValueError):
    """A payload is larger than the arena could ever hold."""


class PeerDiedError(TransportError, BrokenPipeError):
    """The process at the other end of a ring has exited."""


class CorruptMessageError(TransportError, ValueError):
    """A ring message or block handle is malformed, stale or not from this arena."""


class RingClosedError(TransportError, EOFError):
    """The ring was closed (and, for a receiver, drained)."""


class RingFullError(TransportError, TimeoutError):
    """A ring stayed full for the whole timeout of a send."""


class SerializationError(TransportError, TypeError):
    """An object could not be encoded or decoded; the message names the object that failed."""
