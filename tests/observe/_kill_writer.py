"""Run as a script: fork checkpoint writers and SIGKILL each at a random moment.

Usage: ``python _kill_writer.py FOLDER TRIALS SEED``. Each trial forks a child that writes
checkpoints into ``FOLDER/trial_<n>`` in a loop; the parent kills it with SIGKILL after a random
delay and reaps it. Forking from this one process keeps 50 trials to a fraction of a second
each (no interpreter start, no pyarrow import per trial).
"""

from __future__ import annotations

import os
import random
import signal
import sys
import time

import numpy as np
import pyarrow as pa

from mpipe._checkpoints import CheckpointManager


def _write_forever(folder: str, seed: int) -> None:
    manager = CheckpointManager(folder, max_checkpoints=4)
    rng = np.random.default_rng(seed)
    table = pa.table({"x": rng.integers(0, 1000, 100_000), "y": rng.random(100_000)})
    values = [table, rng.random((200, 300)), {"rows": list(range(20_000))}]
    i = 0
    while True:
        manager.create_checkpoint(f"c{i}", "writer", values[i % len(values)], {"i": i})
        i += 1


def main() -> None:
    folder, trials, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    rnd = random.Random(seed)
    for trial in range(trials):
        target = os.path.join(folder, f"trial_{trial}")
        os.makedirs(target)
        pid = os.fork()
        if pid == 0:  # the child writes until killed
            try:
                _write_forever(target, seed + trial)
            finally:
                os._exit(1)
        time.sleep(rnd.uniform(0.01, 0.06))
        os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        assert os.WIFSIGNALED(status), f"writer {pid} ended by itself: {status}"


if __name__ == "__main__":
    main()
