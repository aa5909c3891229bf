"""A processor whose module tells when a process imports it.

Where ``MPIPE_TEST_IMPORT_MARKS`` names a folder, importing this module leaves a file named by
the process id there; where ``MPIPE_TEST_IMPORT_FAILS`` is set, importing it fails. The test
process imports it before setting either, so only the worker processes it starts see them.
"""

from __future__ import annotations

import os

if os.environ.get("MPIPE_TEST_IMPORT_FAILS"):
    raise ImportError("import_marks may not be imported in this process")

_marks = os.environ.get("MPIPE_TEST_IMPORT_MARKS")
if _marks:
    with open(os.path.join(_marks, str(os.getpid())), "w"):
        pass


def double(x: int) -> int:
    return 2 * x
