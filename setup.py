"""Build hook for the native shared-memory extension (``mpipe._native``).

All metadata lives in ``pyproject.toml``; this file only declares the C extension, whose sources
are the ``.c`` files under ``native/``.
"""

import sys
from glob import glob

from setuptools import Extension, setup

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
            include_dirs=["native"],
            extra_compile_args=["-O2", "-std=gnu11", "-Wall"],
        )
    )

setup(ext_modules=ext_modules)
