"""Configuration: the config loader and example configs (the names of ``loader``; served by mpipe)."""

from .loader import *  # noqa: F403
from .loader import __all__ as __all__
