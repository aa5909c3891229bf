"""Live progress of a run: a bar per processor with percent done and time left when the
number of its input items is known, firings done, items per second, mean run time and wait for
a worker, and errors, and the CPU and memory of the parent and its workers.

A processor's total is known when the run's input has a length: one item per source in a
batch, ``len()`` of a stream's input where it has one, or a ``total=`` hint. It carries
downstream through processors that make one output per firing (not through generators).

On a terminal, or in a notebook, the display is a ``rich`` live table (``pip install
processor-pipeline[progress]``; imported only when used). Given a file that is not a terminal,
or without rich, it prints plain lines every few seconds. With no file it writes to stderr, and
only when stderr is a terminal or a notebook shows it: progress never litters a log or a pipe
unless asked for with an explicit ``file`` (the command line's ``--progress``).
"""

from __future__ import annotations

import sys
import time
from typing import IO, Any

from .._hooks import RunHooks, RunInfo
from ._sampler import ProcessSampler, Ticker, shm_bytes_of, worker_pids_of

__all__ = ["ProgressDisplay"]


def _good_total(total: object) -> bool:
    def count(n: object) -> bool:
        return isinstance(n, int) and not isinstance(n, bool) and n >= 0

    if isinstance(total, dict):
        return all(isinstance(k, str) and count(v) for k, v in total.items())
    return count(total)


def _in_notebook() -> bool:
    """Whether this runs in a Jupyter kernel (where rich renders live displays as HTML)."""
    shell = sys.modules.get("IPython")
    get = getattr(shell, "get_ipython", None)
    ip = get() if get is not None else None
    return ip is not None and type(ip).__name__ == "ZMQInteractiveShell"


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
        "total",
        "waited",
    )

    def __init__(self) -> None:
        self.total: int | None = None
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

    def known_total(self) -> int | None:
        """The total, while it still holds (a processor past it has an unknown total)."""
        return self.total if self.total is not None and self.done <= self.total else None

    def percent(self) -> float | None:
        total = self.known_total()
        if total is None:
            return None
        return 100.0 if total == 0 or self.finished else 100.0 * self.done / total

    def left(self) -> float | None:
        """Seconds left at the current rate (None: unknown)."""
        total = self.known_total()
        if total is None or self.finished:
            return None if total is None else 0.0
        rate = self.rate()
        return (total - self.done) / rate if rate > 0 else None


def _fmt_left(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = int(seconds + 0.5)
    if seconds >= 3600:
        return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
    return f"{seconds // 60}:{seconds % 60:02d}"


def _totals(run: RunInfo, hint: int | dict[str, int] | None) -> dict[str, int]:
    """Each processor's expected firings: the sources' from the input (or the hint), carried
    downstream through processors that make one output per firing."""
    import inspect

    totals: dict[str, int] = dict(run.extra.get("totals", {}))
    graph = run.extra.get("graph")
    if isinstance(hint, int):
        sources = graph.sources() if graph is not None else []
        totals.update(dict.fromkeys(sources, hint))
    elif isinstance(hint, dict):
        totals.update(hint)
    if graph is None:
        return totals
    try:
        order = [pid for level in graph.get_execution_order() for pid in level]
    except Exception:
        return totals
    for pid in order:
        node = graph.nodes[pid]
        if pid in totals or not node.dependencies:
            continue
        known = []
        for dep in node.dependencies:
            proc = graph.nodes[dep].processor
            fn = getattr(proc, "func", None) or getattr(proc, "process_data", None)
            if (
                dep not in totals
                or inspect.isgeneratorfunction(fn)
                or inspect.isasyncgenfunction(fn)
            ):
                break
            known.append(totals[dep])
        else:
            if known:
                totals[pid] = min(known)
    return totals


class ProgressDisplay(RunHooks):
    """A run observer that shows live progress.

    Args:
        file: Where to write. Default: stderr, and only when stderr is a terminal (or the
            display is in a notebook); an explicit file is always written to.
        interval: Seconds between refreshes of the live display.
        line_interval: Seconds between plain lines when ``file`` is not a terminal.
        force_terminal: Use the live display even when ``file`` is not a terminal (True), or
            never (False); by default, when ``file.isatty()``.
        total: Input items expected per source (an int), or firings expected per processor
            (a dict), where the input's length does not tell.

    Raises:
        ValueError: ``total`` is not a non-negative int or a dict of them.
    """

    def __init__(
        self,
        file: IO[str] | None = None,
        *,
        interval: float = 0.5,
        line_interval: float = 2.0,
        force_terminal: bool | None = None,
        total: int | dict[str, int] | None = None,
    ) -> None:
        if total is not None and not _good_total(total):
            raise ValueError(
                f"total must be a non-negative int or a dict of processor id -> int, got {total!r}"
            )
        self.total = total
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
        self._quiet = False
        self.lines_written = 0

    def _out(self) -> IO[str]:
        return self.file if self.file is not None else sys.stderr

    def _terminal(self) -> bool:
        if self.force_terminal is not None:
            return self.force_terminal
        if self.file is None and _in_notebook():
            return True
        isatty = getattr(self._out(), "isatty", None)
        return bool(isatty and isatty())

    def _silent(self) -> bool:
        """No file given and nowhere to show live progress: write nothing."""
        return self.file is None and self.force_terminal is None and not self._terminal()

    # -- hooks -------------------------------------------------------------------------------------

    def run_start(self, run: RunInfo) -> None:
        self.run = run
        self.rows = {pid: _Row() for pid in run.processor_ids}
        for pid, total in _totals(run, self.total).items():
            if pid in self.rows:
                self.rows[pid].total = total
        for pid in run.extra.get("resumed", ()):  # completed in the run being resumed
            if pid in self.rows:
                self.rows[pid].finished = self.rows[pid].replayed = True
        self._backends = list(run.extra.get("backends", []))
        self._sampler = ProcessSampler()
        self._started = self._last_line = time.perf_counter()
        self._live = None
        self._quiet = self._silent()
        if self._quiet:
            return
        if self._terminal():
            try:
                from rich.console import Console
                from rich.live import Live
            except ImportError:  # the plain lines need nothing
                pass
            else:
                console = (
                    Console()  # in a notebook rich draws into the cell
                    if self.file is None and _in_notebook()
                    else Console(file=self._out(), force_terminal=True)
                )
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
        if self.run is None or self._quiet:
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
                f"  {pid}: {row.done} done{_of_total(row)}, {row.rate():.1f}/s, "
                f"run {row.mean_run_ms():.1f} ms{wait}, {row.errors} errors"
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
        from rich.progress_bar import ProgressBar
        from rich.table import Table

        table = Table(title=head, expand=False)
        # Eight columns fit an 80-column terminal: the bar is narrow, run and wait share one,
        # and a processor's state shows by its name (finished ones are marked, as are replays).
        for col in ("processor", "progress", "%", "done", "items/s", "left", "run/wait ms", "err"):
            table.add_column(col, justify="left" if col == "processor" else "right")
        for pid, row in shown:
            total = None if row.replayed else row.known_total()
            pct = None if row.replayed else row.percent()
            bar = ProgressBar(
                total=float(total) if total is not None else None,
                completed=float(total if row.finished and total is not None else row.done),
                width=12,
                pulse=total is None and not row.finished,
                animation_time=time.monotonic(),
            )
            mark = " (replayed)" if row.replayed else " ✓" if row.finished else ""
            table.add_row(
                pid + mark,
                bar,
                f"{pct:.0f}%" if pct is not None else "",
                f"{row.done}" + (f"/{total}" if total is not None else ""),
                f"{row.rate():.1f}",
                _fmt_left(row.left()) if total is not None else "",
                f"{row.mean_run_ms():.1f}" + (f"/{row.mean_wait_ms():.1f}" if row.queued else ""),
                str(row.errors),
            )
        if hidden:
            table.add_row(f"... {hidden} more", "", "", "", "", "", "", "")
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


def _of_total(row: _Row) -> str:
    """`` / 20 (50%, 0:03 left)`` when the row's total is known."""
    total = None if row.replayed else row.known_total()
    if total is None:
        return ""
    pct = row.percent() or 0.0
    return f" / {total} ({pct:.0f}%, {_fmt_left(row.left())} left)"


def _proc_line(label: str, facts: dict[str, Any]) -> str:
    return (
        f"{label} (pid {facts['pid']}): cpu {facts['cpu_percent']:.0f}%, "
        f"rss {facts['rss_bytes'] / 2**20:.0f} MiB"
    )
