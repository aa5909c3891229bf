"""The processor pipeline v2 API, served by mpipe (names only; no logic lives here).

Every public name of mpipe, plus ``TimeoutError``: the v2 name of
:class:`mpipe.PipelineTimeoutError` (not the builtin). The v2 submodules (``core.graph``,
``execution.strategies``, ``config.loader``, ``utils.helpers``, ...) expose the same objects.
Like mpipe itself, each name loads on first use: ``import processor_pipeline.v2`` imports none
of mpipe's layers.
"""

from typing import TYPE_CHECKING, Any

import mpipe
from mpipe import PipelineTimeoutError as TimeoutError

if TYPE_CHECKING:
    from mpipe import *  # noqa: F403

__all__ = [*mpipe.__all__, "TimeoutError"]


def __getattr__(name: str) -> Any:
    if name not in mpipe.__all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(mpipe, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
