"""Build hook for the native shared-memory extension (``mpipe._native``).

All metadata lives in ``pyproject.toml``; this file only declares the C extension, whose sources
are the ``.c`` files under ``native/``. It is compiled with ``-Wall -Wextra``.

``MPIPE_NATIVE_TEST_HOOKS=1`` in the environment makes a test build: it compiles in the fault
injection the transport tests use (``Arena._crash_at``, ``Arena._poke``; ``_native.TEST_HOOKS``
says which build is installed), and turns every warning into an error, so that the project's own
tests and CI never let a warning through. Unset or ``0``: a release build, without hooks, where a
newer compiler's new warning never stops a user's install.
"""

import os
import sys
from glob import glob

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HOOKS_VARIABLE = "MPIPE_NATIVE_TEST_HOOKS"


class BuildExt(build_ext):
    """Always recompiles: whether the test hooks are in is not visible in the files' dates."""

    def finalize_options(self) -> None:
        super().finalize_options()
        self.force = True


def wants_test_hooks() -> bool:
    value = os.environ.get(HOOKS_VARIABLE, "")
    if value not in ("", "0", "1"):
        sys.exit(f"mpipe: {HOOKS_VARIABLE} must be 0 or 1 (or unset), got {value!r}")
    return value == "1"


TEST_BUILD = wants_test_hooks()
sources = sorted(glob("native/*.c"))
ext_modules = []
if sources and not sys.platform.startswith("linux"):
    # The transport needs memfd, eventfd, futexes and pidfds: the process backend is Linux-only.
    print(
        f"mpipe: not building mpipe._native on {sys.platform} (Linux only); "
        "the inline, thread and dask backends still work",
        file=sys.stderr,
    )
elif sources:
    ext_modules.append(
        Extension(
            "mpipe._native",
            sources=sources,
            depends=sorted(glob("native/*.h")),
            include_dirs=["native"],
            define_macros=[("MP_TEST_HOOKS", "1")] if TEST_BUILD else [],
            extra_compile_args=["-O2", "-std=gnu11", "-Wall", "-Wextra"]
            + (["-Werror"] if TEST_BUILD else []),
        )
    )

setup(ext_modules=ext_modules, cmdclass={"build_ext": BuildExt})
