"""The native extension's release build: it compiles without warnings and has no test hooks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Loads one extension file under its module name, whatever mpipe this interpreter would import.
LOAD = """
import importlib.util, sys
spec = importlib.util.spec_from_file_location("mpipe._native", sys.argv[1])
module = importlib.util.module_from_spec(spec)
print(module.TEST_HOOKS, hasattr(module.Arena, "_crash_at"), hasattr(module.Arena, "_poke"))
"""


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the extension is Linux-only")
def test_a_release_build_has_no_test_hooks(tmp_path: Path) -> None:
    setuptools = pytest.importorskip("setuptools", reason="building needs setuptools")
    if int(setuptools.__version__.split(".")[0]) < 77:
        pytest.skip("building needs setuptools>=77 (the pyproject.toml metadata)")
    env = dict(os.environ, MPIPE_NATIVE_TEST_HOOKS="0")
    for name in ("CFLAGS", "LDFLAGS", "LD_PRELOAD"):  # a sanitizer build's settings, say
        env.pop(name, None)
    dirs = ["--build-lib", str(tmp_path / "lib"), "--build-temp", str(tmp_path / "tmp")]
    build = subprocess.run(
        [sys.executable, "setup.py", "build_ext", *dirs],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert build.returncode == 0, build.stdout + build.stderr
    assert "warning:" not in build.stdout + build.stderr  # (a test build turns them into errors)
    (built,) = (tmp_path / "lib" / "mpipe").glob("_native*.so")
    loaded = subprocess.run(
        [sys.executable, "-c", LOAD, str(built)], env=env, capture_output=True, text=True
    )
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.split() == ["False", "False", "False"]
