"""Execution: error strategies (the names of ``strategies``; served by mpipe)."""

from .strategies import *  # noqa: F403
from .strategies import __all__ as __all__
