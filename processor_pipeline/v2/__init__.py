"""The processor pipeline v2 API, served by mpipe (names only; no logic lives here)."""

from mpipe import *  # noqa: F403
from mpipe import __all__ as __all__
