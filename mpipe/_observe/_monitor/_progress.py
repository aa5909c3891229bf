"""Live progress of a run: firings done, items per second, mean run time and wait for a worker,
and errors per processor, and the CPU and memory of the parent and its workers.

On a terminal the display is a ``rich`` live table (``pip install processor-pipeline[progress]``;
imported only when used); otherwise, or without rich, plain lines every few seconds.
"""

from __future__ import annotations

import sys
import time
from typing import IO, Any

from .._hooks import RunHooks, RunInfo
from ._sampler import ProcessSampler, Ticker, shm_bytes_of, worker_pids_of

__all__ = ["ProgressDisplay"]

#: Processors shown at once; the busiest first, the rest summed up in one row.
MAX_ROWS = 12


class _Row:
    __slots__ = (
        "done",
        "errors",
        "finished",
        "first",
        "last",
        "queued",
        "replayed",
        "run",
        "waited",
    )

    def __init__(self) -> None:
        self.done = 0
        self.errors = 0
        self.run = 0.0  # seconds the firings ran (where they ran)
        self.queued = 0  # firings that waited for a worker
        self.waited = 0.0  # seconds they waited
        self.finished = False
        self.replayed = False
        self.first: float | None = None
        self.last = 0.0

    def rate(self) -> float:
        if self.first is None or self.last <= self.first:
            return 0.0
        return self.done / (self.last - self.first)

    def mean_run_ms(self) -> float:
        return self.run / self.done * 1e3 if self.done else 0.0

    def mean_wait_ms(self) -> float:
        return self.waited / self.queued * 1e3 if self.queued else 0.0


class ProgressDisplay(RunHooks):
    """A run observer that shows live progress.

    Args:
        file: Where to write (default ``sys.stderr``, where diagnostics go: results stay on
            stdout).
        interval: Seconds between refreshes of the live display.
        line_interval: Seconds between plain lines when ``file`` is not a terminal.
        force_terminal: Use the live display even when ``file`` is not a terminal (True), or
            never (False); by default, when ``file.isatty()``.
    """

    def __init__(
        self,
        file: IO[str] | None = None,
        *,
        interval: float = 0.5,
        line_interval: float = 2.0,
        force_terminal: bool | None = None,
    ) -> None:
        self.file = file
        self.interval = interval
        self.line_interval = line_interval
        self.force_terminal = force_terminal
        self.rows: dict[str, _Row] = {}
        self.run: RunInfo | None = None
        self._backends: list[Any] = []
        self._sampler: ProcessSampler | None = None
        self._ticker = Ticker(interval, self._tick)
        self._live: Any = None
        self._last_line = 0.0
        self._started = 0.0
        self.lines_written = 0

    def _out(self) -> IO[str]:
        return self.file if self.file is not None else sys.stderr

    def _terminal(self) -> bool:
        if self.force_terminal is not None:
            return self.force_terminal
        isatty = getattr(self._out(), "isatty", None)
        return bool(isatty and isatty())

    # -- hooks -------------------------------------------------------------------------------------

    def run_start(self, run: RunInfo) -> None:
        self.run = run
        self.rows = {pid: _Row() for pid in run.processor_ids}
        for pid in run.extra.get("resumed", ()):  # completed in the run being resumed
            if pid in self.rows:
                self.rows[pid].finished = self.rows[pid].replayed = True
        self._backends = list(run.extra.get("backends", []))
        self._sampler = ProcessSampler()
        self._started = self._last_line = time.perf_counter()
        self._live = None
        if self._terminal():
            try:
                from rich.console import Console
                from rich.live import Live
            except ImportError:  # the plain lines need nothing
                pass
            else:
                console = Console(file=self._out(), force_terminal=True)
                self._live = Live(console=console, auto_refresh=False, transient=False)
                self._live.start()
        self._ticker.start()

    def firing_end(
        self,
        processor_id: str,
        index: int,
        start: float,
        end: float,
        worker: str,
        error: BaseException | None,
    ) -> None:
        row = self.rows.get(processor_id)
        if row is None:
            row = self.rows[processor_id] = _Row()
        row.done += 1
        row.run += end - start
        if error is not None:
            row.errors += 1
        if row.first is None:
            row.first = start
        row.last = end

    def firing_waited(
        self,
        processor_id: str,
        index: int,
        submitted: float,
        picked: float,
        worker: str,
        transfer: float,
    ) -> None:
        row = self.rows.get(processor_id)
        if row is None:
            row = self.rows[processor_id] = _Row()
        row.queued += 1
        row.waited += picked - submitted

    def processor_end(self, processor_id: str, firings: int) -> None:
        row = self.rows.get(processor_id)
        if row is not None:
            row.finished = True

    def run_end(self, run: RunInfo, error: BaseException | None) -> None:
        self._ticker.stop()
        status = "done" if error is None else f"failed: {type(error).__name__}"
        self._render(final=status)
        if self._live is not None:
            self._live.stop()
            self._live = None

    # -- rendering ---------------------------------------------------------------------------------

    def _tick(self) -> None:
        now = time.perf_counter()
        if self._live is None and now - self._last_line < self.line_interval:
            return
        self._last_line = now
        self._render()

    def _process_facts(self) -> tuple[dict[str, Any], dict[str, Any]]:
        assert self._sampler is not None
        sample, _, _ = self._sampler.sample(
            worker_pids_of(self._backends), shm_bytes_of(self._backends)
        )
        return sample["parent"], sample["workers"]

    def _top_rows(self) -> tuple[list[tuple[str, _Row]], int]:
        """The rows shown, in graph order: all of them, or the busiest that are still running."""
        rows = list(self.rows.items())
        if len(rows) <= MAX_ROWS:
            return rows, 0
        order = {pid: n for n, (pid, _) in enumerate(rows)}
        busiest = sorted(rows, key=lambda kv: (kv[1].finished, -kv[1].done))[:MAX_ROWS]
        return sorted(busiest, key=lambda kv: order[kv[0]]), len(rows) - MAX_ROWS

    def _render(self, final: str | None = None) -> None:
        if self.run is None:
            return
        elapsed = time.perf_counter() - self._started
        parent, workers = self._process_facts()
        done = sum(r.done for r in self.rows.values())
        errors = sum(r.errors for r in self.rows.values())
        finished = sum(1 for r in self.rows.values() if r.finished)
        head = (
            f"mpipe {self.run.graph_id} run {self.run.run_id}: {elapsed:.1f} s, "
            f"{finished}/{len(self.rows)} processors finished, {done} firings, {errors} errors"
            + (f" - {final}" if final else "")
        )
        shown, hidden = self._top_rows()
        if self._live is not None:
            self._live.update(self._table(head, shown, hidden, parent, workers), refresh=True)
            return
        out = self._out()
        lines = [head]
        for pid, row in shown:
            wait = f", wait {row.mean_wait_ms():.1f} ms" if row.queued else ""
            lines.append(
                f"  {pid}: {row.done} done, {row.rate():.1f}/s, run {row.mean_run_ms():.1f} ms"
                f"{wait}, {row.errors} errors"
                + (" (replayed)" if row.replayed else " (finished)" if row.finished else "")
            )
        if hidden:
            lines.append(f"  ... and {hidden} more processors")
        lines.append(f"  {_proc_line('parent', parent)}")
        for facts in workers.values():
            lines.append(f"  {_proc_line('worker', facts)}")
        out.write("\n".join(lines) + "\n")
        out.flush()
        self.lines_written += len(lines)

    def _table(
        self,
        head: str,
        shown: list[tuple[str, _Row]],
        hidden: int,
        parent: dict[str, Any],
        workers: dict[str, Any],
    ) -> Any:
        from rich.console import Group
        from rich.table import Table

        table = Table(title=head, expand=False)
        for col in ("processor", "done", "items/s", "run ms", "wait ms", "errors", "state"):
            table.add_column(col, justify="left" if col in ("processor", "state") else "right")
        for pid, row in shown:
            table.add_row(
                pid,
                str(row.done),
                f"{row.rate():.1f}",
                f"{row.mean_run_ms():.1f}",
                f"{row.mean_wait_ms():.1f}" if row.queued else "-",
                str(row.errors),
                "replayed" if row.replayed else "finished" if row.finished else "running",
            )
        if hidden:
            table.add_row(f"... {hidden} more", "", "", "", "", "", "")
        procs = Table(expand=False)
        for col in ("process", "pid", "cpu %", "rss MiB"):
            procs.add_column(col, justify="left" if col == "process" else "right")
        for label, facts in [("parent", parent), *(("worker", v) for v in workers.values())]:
            procs.add_row(
                label,
                str(facts["pid"]),
                f"{facts['cpu_percent']:.0f}",
                f"{facts['rss_bytes'] / 2**20:.0f}",
            )
        return Group(table, procs)


def _proc_line(label: str, facts: dict[str, Any]) -> str:
    return (
        f"{label} (pid {facts['pid']}): cpu {facts['cpu_percent']:.0f}%, "
        f"rss {facts['rss_bytes'] / 2**20:.0f} MiB"
    )
