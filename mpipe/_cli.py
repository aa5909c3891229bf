"""The ``mpipe`` command (also ``python -m mpipe``).

Exit codes: 0 success; 1 the run failed; 2 a usage, config or input error. Every error is one
line on stderr (``mpipe: error: ...``); ``--debug`` adds the traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn, TextIO

from ._cli_io import (
    OutputError,
    check_output_path,
    read_input,
    summarize,
    summarize_items,
    write_output,
)
from ._config import ConfigLoader, GraphConfig
from ._errors import ConfigurationError, ExecutionError, GraphError, PipelineError, ValidationError
from ._graph import ProcessingGraph
from ._placement import PLACEMENTS
from ._visualize import FORMATS, visualize_graph

__all__ = ["main"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """The command line itself is wrong."""


class _Parser(argparse.ArgumentParser):
    """An argument parser that reports mistakes as one line (through :class:`UsageError`)."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see '{self.prog} --help')")


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The ``mpipe`` argument parser."""
    common = _Parser(add_help=False)
    common.add_argument(
        "--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks"
    )
    parser = _Parser(
        prog="mpipe",
        description="Run, check and draw mpipe processing graphs.",
        parents=[common],
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    run = sub.add_parser("run", parents=[common], help="run a graph config")
    run.add_argument("config", help="the graph config (.yaml, .yml or .json)")
    source = run.add_mutually_exclusive_group()
    source.add_argument("--input", metavar="JSON", help="the run's input as JSON")
    source.add_argument(
        "--input-file",
        metavar="FILE",
        help="input from .json, .jsonl (a stream of items), .arrow or .parquet",
    )
    run.add_argument(
        "--stream",
        action="store_true",
        help="feed an .arrow/.parquet input as a stream of record batches",
    )
    run.add_argument(
        "--batch-size", type=_positive, metavar="N", help="rows per record batch when streaming"
    )
    run.add_argument(
        "--output", metavar="FILE", help="write results (.json, .jsonl, .arrow, .parquet)"
    )
    run.add_argument("--backend", choices=PLACEMENTS, help="default placement of firings")
    run.add_argument("--workers", type=_positive, metavar="N", help="workers per pool backend")

    validate = sub.add_parser("validate", parents=[common], help="check a graph config")
    validate.add_argument("config")

    viz = sub.add_parser("viz", parents=[common], help="draw a graph config")
    viz.add_argument("config")
    viz.add_argument("--format", choices=FORMATS, default="text")

    demo = sub.add_parser("demo", parents=[common], help="run the built-in CPU-heavy graph")
    demo.add_argument("--backend", choices=PLACEMENTS, help="where firings run")
    demo.add_argument("--workers", type=_positive, metavar="N", help="workers per pool backend")
    demo.add_argument("--chunks", type=_positive, metavar="N", help="chunks to process")
    demo.add_argument("--rounds", type=_positive, metavar="N", help="SHA-256 rounds per chunk")
    demo.add_argument("--span", type=_positive, metavar="N", help="numbers per chunk to sieve")
    demo.add_argument("--chunk-kib", type=_positive, metavar="N", help="KiB per chunk")

    bench = sub.add_parser("bench", parents=[common], help="quick benchmark against Dask")
    bench.add_argument("--rounds", type=_positive, default=5, help="runs per shape (best counts)")
    bench.add_argument("--scale", type=float, default=1.0, help="size of the shapes")
    return parser


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


def _cmd_run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    loader, cfg, graph = _load(args.config)
    output = check_output_path(args.output) if args.output else None
    if args.stream and not args.input_file:
        raise UsageError("--stream needs --input-file")
    data = read_input(args.input, args.input_file, graph.sources(), args.stream, args.batch_size)
    executor = loader.create_executor_from_config(
        cfg, graph, backend=args.backend, max_workers=args.workers
    )
    start = time.perf_counter()
    try:
        if data.streaming:
            results: dict[str, Any] = asyncio.run(executor.execute_stream(data.data))
        else:
            results = asyncio.run(executor.execute(data.data))
    except ExecutionError as exc:
        if data.late_errors:  # the input itself was bad: a usage error, not a failed run
            raise data.late_errors[0] from exc
        raise
    seconds = time.perf_counter() - start
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
    where = f"; results written to {output}" if output else ""
    print(
        f"ran graph {graph.graph_id!r} ({len(graph.nodes)} processors, backend "
        f"{executor.backend}) in {seconds:.3f} s{where}",
        file=err,
    )
    return EXIT_OK


def _cmd_validate(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    _, _, graph = _load(args.config)
    print(
        f"{args.config}: valid: graph {graph.graph_id!r}, {len(graph.nodes)} processors, "
        f"{len(graph.connections)} connections; sources: {', '.join(graph.sources())}; "
        f"sinks: {', '.join(graph.sinks())}",
        file=out,
    )
    return EXIT_OK


def _cmd_viz(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    _, _, graph = _load(args.config)
    print(visualize_graph(graph, args.format), file=out)
    return EXIT_OK


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
    report = run_demo(args.backend or DEMO_BACKEND, args.workers, replace(settings, **changes))
    for line in report.lines():
        print(line, file=out)
    if not report.matches_serial:
        print("mpipe: error: the demo's results differ from the serial run", file=err)
        return EXIT_FAILED
    return EXIT_OK


def _cmd_bench(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from ._bench import bench_lines, run_bench

    if not 0 < args.scale <= 100:
        raise UsageError(f"--scale must be in (0, 100], got {args.scale}")
    print(f"mpipe bench: inline backend, best of {args.rounds} rounds", file=out)
    for line in bench_lines(run_bench(args.rounds, args.scale)):
        print(line, file=out)
    return EXIT_OK


_COMMANDS = {
    "run": _cmd_run,
    "validate": _cmd_validate,
    "viz": _cmd_viz,
    "demo": _cmd_demo,
    "bench": _cmd_bench,
}


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


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
    try:
        with contextlib.redirect_stdout(out):  # --help goes where results go
            args = build_parser().parse_args(args_list)
        return _COMMANDS[args.command](args, out, err)
    except SystemExit as exc:  # --help, --version
        return exc.code if isinstance(exc.code, int) else EXIT_OK
    except KeyboardInterrupt:
        print("mpipe: interrupted", file=err)
        return 130
    except BaseException as exc:
        if debug:
            traceback.print_exc(file=err)
        code, text = _describe(exc)
        print(f"mpipe: error: {_one_line(text)}", file=err)
        return code
    finally:
        sys.path[:] = saved_path


def _describe(exc: BaseException) -> tuple[int, str]:
    """The exit code and the line for an error."""
    if isinstance(exc, (UsageError, ConfigurationError, ValidationError, GraphError)):
        return EXIT_USAGE, str(exc)
    if isinstance(exc, ExecutionError):
        return EXIT_FAILED, f"run failed: {exc}"
    if isinstance(exc, OutputError):
        return EXIT_FAILED, f"cannot write results: {exc}"
    if isinstance(exc, PipelineError):
        return EXIT_FAILED, f"{type(exc).__name__}: {exc}"
    return EXIT_FAILED, f"unexpected {type(exc).__name__}: {exc} (run with --debug for details)"
