"""The shared-memory transport of the process backend (Linux).

- :func:`open_arena`: one memfd-backed arena per executor, mapped by the parent and every worker,
  with a crash-safe block allocator (:class:`Arena`, :class:`Block`).
- :func:`open_channel`: one worker's request and response rings with eventfd doorbells
  (:class:`Channel` in the parent, :class:`Endpoint` / :class:`WorkerChannel` in the worker).
- :class:`Codec`: objects to small ring messages plus arena blocks and back, zero-copy for Arrow
  and numpy.

The design, its invariants and its crash-safety argument: ``docs/transport.md``.
"""

from ._arena import Arena, ArenaHandle, Block, open_arena
from ._channel import Channel, Endpoint, WorkerChannel, open_channel
from ._codec import Codec
from ._errors import (
    ArenaFullError,
    CorruptMessageError,
    PayloadTooLargeError,
    PeerDiedError,
    RingClosedError,
    RingFullError,
    SerializationError,
    TransportError,
)

__all__ = [
    "Arena",
    "ArenaFullError",
    "ArenaHandle",
    "Block",
    "Channel",
    "Codec",
    "CorruptMessageError",
    "Endpoint",
    "PayloadTooLargeError",
    "PeerDiedError",
    "RingClosedError",
    "RingFullError",
    "SerializationError",
    "TransportError",
    "WorkerChannel",
    "open_arena",
    "open_channel",
]
