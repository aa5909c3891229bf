"""The ``mpipe`` command (also ``python -m mpipe``).

Exit codes: 0 success; 1 the run failed; 2 a usage, config or input error. Results go to
stdout; errors, warnings, progress and the closing summary to stderr. An error is reported as
one line on stderr (``mpipe: error: ...``); ``--debug`` adds the traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
import time
import traceback
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from .._config import ConfigLoader, GraphConfig
from .._config._observe import wanted
from .._engine._executor import GraphExecutor, planned_fusion
from .._errors import (
    ConfigurationError,
    ExecutionError,
    GraphError,
    PipelineError,
    ValidationError,
    describe_error,
)
from .._model._graph import ProcessingGraph
from .._model._placement import PLACEMENTS
from .._observe._checkpoints import CheckpointError, CheckpointManager, CheckpointWarning
from .._observe._monitor import Monitor, ProgressDisplay
from .._observe._visualize import visualize_graph
from ._checkpoints import run_checkpoint_command
from ._io import (
    OutputError,
    UsageError,
    check_file_path,
    check_output_path,
    read_input,
    summarize,
    summarize_items,
    write_output,
)
from ._parser import build_parser

__all__ = ["build_parser", "main"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


# -- commands ----------------------------------------------------------------------------------


def _load(path: str) -> tuple[ConfigLoader, GraphConfig, ProcessingGraph]:
    # "module:attr" references in a config resolve against the config's folder and the
    # current directory, as they would for a script run from there.
    for folder in (str(Path(path).resolve().parent), str(Path.cwd())):
        if folder not in sys.path:
            sys.path.insert(0, folder)
    loader = ConfigLoader()
    cfg = loader.load_from_file(path)
    return loader, cfg, loader.create_graph_from_config(cfg)


class RunFailed(Exception):
    """A run failed; the message adds what the command line knows (the run id to resume)."""


def _observers(
    args: argparse.Namespace, cfg: GraphConfig, err: TextIO
) -> tuple[Monitor | None, CheckpointManager | None, ProgressDisplay | None]:
    """The monitor, checkpoint manager and progress display the flags ask for (None: the
    config's, or nothing)."""
    monitor = None
    seen = args.trace or args.events or args.report or args.dashboard is not None
    if seen and not wanted(cfg.monitoring):
        monitor = Monitor()
    manager = None
    if args.checkpoints:
        try:
            manager = CheckpointManager(args.checkpoints)
        except CheckpointError as exc:
            raise UsageError(f"--checkpoints {args.checkpoints!r}: {exc.message}") from None
    elif args.resume and not wanted(cfg.checkpoints):
        raise UsageError(
            "--resume needs checkpoints: a 'checkpoints' section in the config or --checkpoints DIR"
        )
    if args.progress is None:  # by default, live progress on a terminal only
        isatty = getattr(err, "isatty", None)
        args.progress = bool(isatty and isatty())
    progress = ProgressDisplay(err) if args.progress else None
    return monitor, manager, progress


def _count_items(path: Path) -> int | None:
    """Items in a ``.jsonl`` input (its non-blank lines), for progress; None otherwise."""
    if path.suffix.lower() != ".jsonl":
        return None
    try:
        with path.open("rb") as f:
            return sum(1 for line in f if line.strip())
    except OSError:
        return None


def _require_report_extra(flag: str) -> None:
    from .._observe._report import require_bokeh

    try:
        require_bokeh()
    except ConfigurationError as exc:
        raise UsageError(f"{flag}: {exc.message}") from None


def _export(
    monitor: Any, trace: Path | None, events: Path | None, report: Path | None = None
) -> list[str]:
    """Write the trace, the events and the report; what was written, for the closing line."""
    written: list[str] = []
    if not isinstance(monitor, Monitor):
        return written
    try:
        if trace is not None:
            monitor.export_trace(trace)
            written.append(f"trace written to {trace}")
        if events is not None:
            monitor.export_events("json", path=events)
            written.append(f"events written to {events}")
        if report is not None and monitor.series is not None:
            monitor.write_report(report)
            written.append(f"report written to {report}")
    except OSError as exc:
        raise OutputError(f"{exc.filename}: {exc.strerror or exc}") from exc
    return written


def _alert_lines(monitor: Any) -> list[str]:
    alerts = getattr(monitor, "alert_manager", None)
    if alerts is None:
        return []
    fired: dict[str, int] = {}
    for alert in alerts.get_active_alerts():
        fired[alert["rule"]] = fired.get(alert["rule"], 0) + 1
    return [
        f"mpipe: alert: rule {rule!r} fired{f' {n} times' if n > 1 else ''}"
        for rule, n in fired.items()
    ]


def _cmd_run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    loader, cfg, graph = _load(args.config)
    output = check_output_path(args.output) if args.output else None
    trace = check_file_path(args.trace, "--trace") if args.trace else None
    events = check_file_path(args.events, "--events") if args.events else None
    report = check_file_path(args.report, "--report") if args.report else None
    if args.report or args.dashboard is not None:
        _require_report_extra("--report" if args.report else "--dashboard")
    if args.linger < 0:
        raise UsageError(f"--linger must be 0 or more seconds, got {args.linger}")
    if args.stream and not args.input_file:
        raise UsageError("--stream needs --input-file")
    if args.input is None and args.input_file is None:
        sources = ", ".join(graph.sources())
        raise UsageError(
            f"no input: the graph's sources ({sources}) need some; give it with --input JSON "
            "(a value for the one source, or an object naming each source) or --input-file "
            "FILE (.json, .jsonl, .arrow, .parquet); --input null runs sources that take none"
        )
    data = read_input(args.input, args.input_file, graph.sources(), args.stream, args.batch_size)
    if args.resume and data.streaming:
        raise UsageError("--resume works on batch runs only, not on a stream of items")
    monitor, manager, progress = _observers(args, cfg, err)
    if progress is not None and data.streaming and args.input_file:
        progress.total = _count_items(Path(args.input_file))
    executor = loader.create_executor_from_config(
        cfg,
        graph,
        backend=args.backend,
        max_workers=args.workers,
        monitor=monitor,
        checkpoint_manager=manager,
        progress=progress,
    )
    dashboard = None
    if args.dashboard is not None:
        if not isinstance(executor.monitor, Monitor):
            raise UsageError("--dashboard needs the run's monitor to be an mpipe Monitor")
        try:
            dashboard = executor.monitor.open_dashboard(args.dashboard)
        except OSError as exc:
            raise UsageError(f"--dashboard {args.dashboard}: {exc.strerror or exc}") from None
        print(f"mpipe: dashboard at {dashboard.url}", file=err, flush=True)
    start = time.perf_counter()
    failure: BaseException | None = None
    results: dict[str, Any] = {}
    try:
        try:
            if data.streaming:
                results = asyncio.run(executor.execute_stream(data.data))
            else:
                results = asyncio.run(executor.execute(data.data, resume=args.resume))
        except BaseException as exc:
            failure = exc
        seconds = time.perf_counter() - start
        if dashboard is not None and args.linger > 0 and not isinstance(failure, KeyboardInterrupt):
            print(
                f"mpipe: run ended; the dashboard stays at {dashboard.url} for "
                f"{args.linger:g} s (Ctrl-C to stop)",
                file=err,
                flush=True,
            )
            with contextlib.suppress(KeyboardInterrupt):
                dashboard.wait(args.linger)
    finally:
        if dashboard is not None:
            dashboard.close()
    run_id = executor.get_execution_status().get("run_id")
    storage = getattr(executor.checkpoint_manager, "storage_path", None)
    try:
        written = _export(executor.monitor, trace, events, report)
    except OutputError:
        if failure is None:
            raise
        written = []  # the run's own error is the one to report
    for line in _alert_lines(executor.monitor):
        print(line, file=err)
    if isinstance(failure, ExecutionError):
        if data.late_errors:  # the input itself was bad: a usage error, not a failed run
            raise data.late_errors[0] from failure
        if storage is not None and run_id:
            raise RunFailed(
                f"{failure}; checkpoints of run {run_id} are in {storage}: "
                f"resume with --resume {run_id}"
            ) from failure
    if isinstance(failure, CheckpointError) and args.resume:  # an unknown or foreign run id
        raise UsageError(f"--resume {args.resume}: {failure.message}") from failure
    if failure is not None:
        raise failure
    for key, value in results.items():
        if data.streaming:
            lines = summarize_items(value)
            print(f"{key}: {lines[0]}", file=out)
            for line in lines[1:]:
                print(line, file=out)
        else:
            print(f"{key} = {summarize(value)}", file=out)
    if not results:
        print("(no results: the sinks produced nothing)", file=out)
    if output is not None:
        write_output(output, results, data.streaming)
        written.insert(0, f"results written to {output}")
    if storage is not None and run_id:
        written.append(f"run {run_id} checkpointed in {storage}")
    where = "".join(f"; {w}" for w in written)
    print(
        f"ran graph {graph.graph_id!r} ({_count(len(graph.nodes), 'processor')}, backend "
        f"{executor.backend}) in {seconds:.3f} s{where}",
        file=err,
    )
    return EXIT_OK


def _cmd_validate(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    loader, cfg, graph = _load(args.config)
    extras = []
    if wanted(cfg.monitoring):  # resolves the alert rules' references; creates nothing on disk
        loader.create_monitor_from_config(cfg)
        rules = len(cfg.monitoring.get("alerts") or [])
        extras.append(f"monitoring on ({rules} alert rule{'s' if rules != 1 else ''})")
    if wanted(cfg.checkpoints):
        folder = cfg.checkpoints.get("storage_path")
        extras.append(f"checkpoints in {folder!r}" if folder else "checkpoints in memory")
    print(
        f"{args.config}: valid: graph {graph.graph_id!r}, {_count(len(graph.nodes), 'processor')}, "
        f"{_count(len(graph.connections), 'connection')}; sources: {', '.join(graph.sources())}; "
        f"sinks: {', '.join(graph.sinks())}" + "".join(f"; {e}" for e in extras),
        file=out,
    )
    return EXIT_OK


def _fused_groups(cfg: GraphConfig, graph: ProcessingGraph) -> list[list[str]]:
    """The processors the config's executor would run fused (none when it keeps checkpoints,
    or when the graph is invalid: the picture then says why)."""
    if wanted(cfg.checkpoints):
        return []
    try:
        return planned_fusion(GraphExecutor(graph, **cfg.executor))
    except PipelineError:
        return []


def _cmd_viz(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    _, cfg, graph = _load(args.config)
    target = check_file_path(args.output, "--output") if args.output else None
    binary = args.format == "png"
    if binary and target is None and _is_terminal(out):
        raise UsageError("--format png writes binary data: give --output FILE or redirect stdout")
    picture = visualize_graph(graph, args.format, fused=_fused_groups(cfg, graph))
    if target is not None:
        try:
            if isinstance(picture, bytes):
                target.write_bytes(picture)
            else:
                target.write_text(picture + "\n", encoding="utf-8")
        except OSError as exc:
            raise OutputError(f"{target}: {exc.strerror or exc}") from exc
        print(f"{args.format} picture of graph {graph.graph_id!r} written to {target}", file=err)
    elif isinstance(picture, bytes):
        buffer = getattr(out, "buffer", None)
        if buffer is None:
            raise UsageError("--format png needs --output FILE here (stdout takes text only)")
        out.flush()
        buffer.write(picture)
        buffer.flush()
    else:
        print(picture, file=out)
    return EXIT_OK


def _is_terminal(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def _cmd_demo(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from dataclasses import replace

    from ._demo import DEMO_BACKEND, DemoSettings, run_demo

    settings = DemoSettings()
    changes = {
        name: value
        for name, value in (
            ("chunks", args.chunks),
            ("rounds", args.rounds),
            ("span", args.span),
            ("chunk_bytes", args.chunk_kib * 1024 if args.chunk_kib else None),
        )
        if value is not None
    }
    trace = check_file_path(args.trace, "--trace") if args.trace else None
    monitor = Monitor() if trace is not None else None
    progress = ProgressDisplay(err) if args.progress else False
    report = run_demo(
        args.backend or DEMO_BACKEND,
        args.workers,
        replace(settings, **changes),
        monitor=monitor,
        progress=progress,
    )
    for line in report.lines():
        print(line, file=out)
    for line in _export(monitor, trace, None):
        print(line, file=err)
    if not report.matches_serial:
        print("mpipe: error: the demo's results differ from the serial run", file=err)
        return EXIT_FAILED
    return EXIT_OK


def _cmd_bench(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from ._bench import bench_lines, run_bench

    if args.config is not None:
        return _bench_config(args, out, err)
    for flag in ("input", "input_file", "report"):
        if getattr(args, flag) is not None:
            raise UsageError(f"--{flag.replace('_', '-')} needs a graph config to benchmark")
    if not 0 < args.scale <= 100:
        raise UsageError(f"--scale must be in (0, 100], got {args.scale}")
    rounds = args.rounds or 5
    print(f"mpipe bench: inline backend, best of {rounds} rounds", file=out)
    for line in bench_lines(run_bench(rounds, args.scale)):
        print(line, file=out)
    return EXIT_OK


def _bench_config(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from ._scaling import parse_list, run_scaling, scaling_lines

    loader, cfg, graph = _load(args.config)
    try:
        workers = parse_list(args.workers, "--workers", int)
        backends = parse_list(args.backend, "--backend", str)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if any(w < 1 for w in workers):
        raise UsageError(f"--workers: counts must be positive, got {args.workers!r}")
    unknown = [b for b in backends if b not in PLACEMENTS]
    if unknown:
        raise UsageError(
            f"--backend: unknown {', '.join(map(repr, unknown))}; expected {', '.join(PLACEMENTS)}"
        )
    report = check_file_path(args.report, "--report") if args.report else None
    if report is not None:
        _require_report_extra("--report")
    data = read_input(args.input, args.input_file, graph.sources())
    payload = data.data
    if data.streaming:  # read once; every run gets the same items
        payload = {key: list(items) for key, items in payload.items()}
        if data.late_errors:
            raise data.late_errors[0]
    rounds = args.rounds or 3

    def make_executor(backend: str, n: int, monitor: Monitor) -> Any:
        return loader.create_executor_from_config(
            cfg, graph, backend=backend, max_workers=n, monitor=monitor, progress=False
        )

    print(
        f"mpipe bench {graph.graph_id!r}: backends {', '.join(backends)}, workers "
        f"{', '.join(map(str, sorted(set(workers))))}, {rounds} interleaved rounds",
        file=err,
    )
    result = run_scaling(
        make_executor,
        graph.graph_id,
        payload,
        data.streaming,
        backends,
        workers,
        rounds,
        progress=lambda line: print(f"mpipe bench: {line}", file=err, flush=True),
    )
    lines = scaling_lines(result)
    for line in lines:
        print(line, file=out)
    if report is not None:
        from .._observe._report._scaling import write_scaling_report

        try:
            write_scaling_report(result, lines, report)
        except OSError as exc:
            raise OutputError(f"{report}: {exc.strerror or exc}") from exc
        print(f"mpipe bench: report written to {report}", file=err)
    return EXIT_OK


def _count(n: int, noun: str) -> str:
    """``1 processor``, ``2 processors``."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _cmd_checkpoints(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    return run_checkpoint_command(args, out)


_COMMANDS = {
    "run": _cmd_run,
    "checkpoints": _cmd_checkpoints,
    "validate": _cmd_validate,
    "viz": _cmd_viz,
    "demo": _cmd_demo,
    "bench": _cmd_bench,
}


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


class _Notes(logging.Handler):
    """Shows the ``"mpipe"`` logger's records and mpipe's warnings as one line each.

    Without ``--debug``: warnings and up, except the monitor's events (those go to
    ``--events``). With it: every record that reaches the logger. A line is shown once.
    """

    def __init__(self, err: TextIO, debug: bool) -> None:
        super().__init__(logging.DEBUG if debug else logging.WARNING)
        self.err = err
        self.debug = debug
        self.seen: set[str] = set()

    def emit(self, record: logging.LogRecord) -> None:
        if record.module == "_eventlog" and not self.debug:
            return
        level = f"log: {record.levelname}" if self.debug else "warning"
        self.note(level, record.getMessage())

    def note(self, level: str, text: str) -> None:
        line = _one_line(text)
        if line not in self.seen:
            self.seen.add(line)
            print(f"mpipe: {level}: {line}", file=self.err)


def main(
    argv: Sequence[str] | None = None, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    """Run the ``mpipe`` command line.

    Args:
        argv: The arguments (default: ``sys.argv[1:]``).
        out: Where results go (default: stdout).
        err: Where errors and notes go (default: stderr).

    Returns:
        The exit code: 0 success, 1 the run failed, 2 a usage, config or input error.
    """
    out = out or sys.stdout
    err = err or sys.stderr
    args_list = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args_list
    saved_path = list(sys.path)  # commands add the config's folder; main() leaves no trace
    notes = _Notes(err, debug)
    logger = logging.getLogger("mpipe")
    logger.addHandler(notes)
    try:
        with contextlib.redirect_stdout(out):  # --help goes where results go
            args = build_parser().parse_args(args_list)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", CheckpointWarning)
            try:
                return _COMMANDS[args.command](args, out, err)
            finally:
                for w in caught:
                    notes.note("warning", str(w.message))
    except SystemExit as exc:  # --help, --version
        return exc.code if isinstance(exc.code, int) else EXIT_OK
    except KeyboardInterrupt:
        print("mpipe: interrupted", file=err)
        return 130
    except BaseException as exc:
        if debug:
            traceback.print_exc(file=err)
        code, text = _describe(exc, args_list[0] if args_list else "")
        print(f"mpipe: error: {_one_line(text)}", file=err)
        return code
    finally:
        logger.removeHandler(notes)
        sys.path[:] = saved_path


def _describe(exc: BaseException, command: str) -> tuple[int, str]:
    """The exit code and the line for an error (``command``: the first argument)."""
    if isinstance(exc, (UsageError, ConfigurationError, ValidationError, GraphError)):
        return EXIT_USAGE, str(exc)
    if isinstance(exc, (ExecutionError, RunFailed)):
        return EXIT_FAILED, f"run failed: {exc}"
    if isinstance(exc, OutputError):
        return EXIT_FAILED, f"cannot write results: {exc}"
    if isinstance(exc, PipelineError):
        return EXIT_FAILED, f"{type(exc).__name__}: {exc}"
    if isinstance(exc, MemoryError):
        detail = f": {exc}" if str(exc) else ""
        return EXIT_FAILED, (
            f"ran out of memory in 'mpipe {command}' (MemoryError{detail}; run with --debug "
            "for where)"
        )
    return EXIT_FAILED, f"unexpected {describe_error(exc)} (run with --debug for details)"
