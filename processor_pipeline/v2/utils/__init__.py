"""Utilities: shortcut builders and diagnostics (the names of ``helpers``; served by mpipe)."""

from .helpers import *  # noqa: F403
from .helpers import __all__ as __all__
