"""Import of the native extension, with a clear error where it cannot exist or was not built."""

from __future__ import annotations

import importlib
import sys
from types import ModuleType

from ._errors import (
    ArenaFullError,
    CorruptMessageError,
    PayloadTooLargeError,
    PeerDiedError,
    RingClosedError,
    RingFullError,
    TransportError,
)

__all__ = ["native"]


def _load() -> ModuleType:
    if not sys.platform.startswith("linux"):
        raise ImportError(
            f"mpipe's shared-memory transport needs Linux (memfd, eventfd, futex); this is "
            f"{sys.platform!r}. Use the inline, thread or dask backends here."
        )
    try:
        _native = importlib.import_module("mpipe._native")
    except ImportError as exc:  # pragma: no cover - depends on the build
        raise ImportError(
            "mpipe._native is not built: install the package with pip (it compiles native/*.c), "
            "or run `python setup.py build_ext --inplace` in a source checkout"
        ) from exc
    _native._set_exceptions(
        TransportError,
        ArenaFullError,
        PayloadTooLargeError,
        PeerDiedError,
        CorruptMessageError,
        RingClosedError,
        RingFullError,
    )
    return _native


native = _load()
