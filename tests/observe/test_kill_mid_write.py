"""A checkpoint writer killed with SIGKILL at random moments never leaves a torn checkpoint."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from mpipe import CheckpointManager, CheckpointWarning

TRIALS = 50


@pytest.mark.slow
def test_sigkill_mid_write_never_leaves_a_listed_file_that_fails(tmp_path: Path) -> None:
    script = Path(__file__).with_name("_kill_writer.py")
    root = Path(__file__).resolve().parents[2]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]),
    }
    done = subprocess.run(
        [sys.executable, str(script), str(tmp_path), str(TRIALS), "1234"],
        check=True,
        env=env,
        timeout=50,
        capture_output=True,
        text=True,
    )
    reported = int(done.stdout.split()[-1])
    torn = 0
    restored = 0
    for trial in range(TRIALS):
        folder = tmp_path / f"trial_{trial}"
        torn += sum(1 for p in folder.iterdir() if p.name.endswith(".tmp"))
        with warnings.catch_warnings():
            warnings.simplefilter("error", CheckpointWarning)  # an unreadable file would fail here
            manager = CheckpointManager(folder)
            listed = manager.list_checkpoints()
        assert len(listed) == len(list(folder.glob("*.arrow")))
        for info in listed:
            manager.restore_checkpoint(info["checkpoint_id"])
            restored += 1
        # the dead writer's temp file is cleaned up by the next manager
        assert not [p for p in folder.iterdir() if p.name.endswith(".tmp")]
    assert restored >= reported > 0  # every checkpoint reported finished is there
    print(f"{restored} checkpoints restored, {torn} writers killed mid-write")
    assert torn > 0, torn  # and some were killed mid-write, so the test did test something
