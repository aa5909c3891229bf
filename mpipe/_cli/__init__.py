"""The ``mpipe`` command line: run, validate and draw configs, the demo, checkpoints."""

from ._main import main

__all__ = ["main"]
