"""Processors that report what their worker process has imported.

This module imports nothing but ``sys``: a worker that runs one of them imports this module and
nothing else for it, so what the answer lists is what the worker imported for itself (plus
whatever decoding the argument needed).
"""

from __future__ import annotations

import sys


def loaded_modules(arg: object) -> list[str]:
    """The names of the modules loaded in this process (``arg`` is ignored)."""
    return sorted(sys.modules)
