"""The processor pipeline v2 API, served by mpipe (names only; no logic lives here).

Every public name of mpipe, plus ``TimeoutError``: the v2 name of
:class:`mpipe.PipelineTimeoutError` (not the builtin). The v2 submodules (``core.graph``,
``execution.strategies``, ``config.loader``, ``utils.helpers``, ...) expose the same objects.
"""

from mpipe import *  # noqa: F403
from mpipe import PipelineTimeoutError as TimeoutError
from mpipe import __all__ as _mpipe_all

__all__ = [*_mpipe_all, "TimeoutError"]
