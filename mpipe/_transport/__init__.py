"""The shared-memory transport of the process backend (Linux).

- :func:`open_arena`: one memfd-backed arena per executor, mapped by the parent and every worker,
  with a crash-safe block allocator (:class:`Arena`, :class:`Block`).
- :func:`open_channel`: one worker's request and response rings with eventfd doorbells
  (:class:`Channel` in the parent, :class:`Endpoint` / :class:`WorkerChannel` in the worker).
- :class:`Codec`: objects to small ring messages plus arena blocks and back, zero-copy for Arrow
  and numpy.

The names load lazily: importing the exceptions (``mpipe`` does, for its public API) needs
neither the native extension nor numpy or pyarrow, so ``import mpipe`` works everywhere.
The design, its invariants and its crash-safety argument: ``docs/transport.md``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_names
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

if TYPE_CHECKING:
    from ._arena import Arena, ArenaHandle, Block, open_arena
    from ._channel import Channel, Endpoint, WorkerChannel, open_channel
    from ._codec import Codec

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

_LAZY = {
    "Arena": "._arena",
    "ArenaHandle": "._arena",
    "Block": "._arena",
    "open_arena": "._arena",
    "Channel": "._channel",
    "Endpoint": "._channel",
    "WorkerChannel": "._channel",
    "open_channel": "._channel",
    "Codec": "._codec",
}

__getattr__, __dir__ = lazy_names(__name__, _LAZY, globals())
