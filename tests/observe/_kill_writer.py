"""Run as a script: fork checkpoint writers and SIGKILL each at a random moment.

Usage: ``python _kill_writer.py FOLDER TRIALS SEED``. Each trial forks a child that writes
checkpoints into ``FOLDER/trial_<n>`` in a loop, reporting each finished one on a pipe; the
parent waits for a random number (0-3) of them, then kills the child with SIGKILL after a
random short delay, and reaps it. It prints how many checkpoints the children reported.
Forking from this one process keeps each trial short (no interpreter start, no pyarrow import).
"""

from __future__ import annotations

import os
import random
import signal
import sys
import time

import numpy as np
import pyarrow as pa

from mpipe._observe._checkpoints import CheckpointManager


def _write_forever(folder: str, seed: int, report: int) -> None:
    manager = CheckpointManager(folder, max_checkpoints=4)
    rng = np.random.default_rng(seed)
    table = pa.table({"x": rng.integers(0, 1000, 100_000), "y": rng.random(100_000)})
    values = [table, rng.random((200, 300)), {"rows": list(range(20_000))}]
    i = 0
    while True:
        manager.create_checkpoint(f"c{i}", "writer", values[i % len(values)], {"i": i})
        os.write(report, b".")
        i += 1


def main() -> None:
    folder, trials, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    rnd = random.Random(seed)
    reported = 0
    for trial in range(trials):
        target = os.path.join(folder, f"trial_{trial}")
        os.makedirs(target)
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child writes until killed
            try:
                os.close(read_end)
                _write_forever(target, seed + trial, write_end)
            finally:
                os._exit(1)
        os.close(write_end)
        wait_for = rnd.randint(0, 2)
        got = 0
        while got < wait_for:
            got += len(os.read(read_end, wait_for - got))
        time.sleep(rnd.uniform(0, 0.01))
        os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        os.close(read_end)
        assert os.WIFSIGNALED(status), f"writer {pid} ended by itself: {status}"
        reported += min(got, 4)  # max_checkpoints=4 keeps at most 4
    print(reported)


if __name__ == "__main__":
    main()
