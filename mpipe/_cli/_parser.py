"""The ``mpipe`` command line: its commands, options and their checks (no behaviour)."""

from __future__ import annotations

import argparse
from typing import NoReturn

from .._model._placement import PLACEMENTS
from .._observe._visualize import FORMATS
from ._checkpoints import add_checkpoint_commands
from ._io import UsageError

__all__ = ["build_parser"]


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


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port from 0 to 65535, got {text!r}")
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
    shown = run.add_mutually_exclusive_group()
    shown.add_argument(
        "--progress",
        action="store_true",
        default=None,
        help="show live progress on stderr (the default when stderr is a terminal)",
    )
    shown.add_argument(
        "--no-progress", dest="progress", action="store_false", help="show no live progress"
    )
    run.add_argument(
        "--report",
        metavar="FILE",
        help="write an HTML performance report of the run (needs the 'report' extra)",
    )
    run.add_argument(
        "--dashboard",
        metavar="PORT",
        nargs="?",
        const=0,
        type=_port,
        help="serve the run live on http://127.0.0.1:PORT/ (a free port when PORT is left out)",
    )
    run.add_argument(
        "--linger",
        metavar="SECONDS",
        type=float,
        default=30.0,
        help="keep the dashboard up this long after the run (Ctrl-C stops it; default 30)",
    )
    run.add_argument(
        "--trace", metavar="FILE", help="write the run as a Chrome trace (JSON; ui.perfetto.dev)"
    )
    run.add_argument("--events", metavar="FILE", help="write the monitor's events as JSON lines")
    run.add_argument(
        "--checkpoints",
        metavar="DIR",
        help="save every processor's outputs in DIR (overrides the config's checkpoints)",
    )
    run.add_argument(
        "--resume",
        metavar="RUN_ID",
        help="resume a checkpointed run: processors that completed in it are not run again",
    )

    validate = sub.add_parser("validate", parents=[common], help="check a graph config")
    validate.add_argument("config")

    viz = sub.add_parser("viz", parents=[common], help="draw a graph config")
    viz.add_argument("config")
    viz.add_argument("--format", choices=FORMATS, default="text")
    viz.add_argument(
        "--output", "-o", metavar="FILE", help="write the picture to FILE instead of stdout"
    )

    demo = sub.add_parser("demo", parents=[common], help="run the built-in CPU-heavy graph")
    demo.add_argument("--backend", choices=PLACEMENTS, help="where firings run")
    demo.add_argument("--workers", type=_positive, metavar="N", help="workers per pool backend")
    demo.add_argument("--chunks", type=_positive, metavar="N", help="chunks to process")
    demo.add_argument("--rounds", type=_positive, metavar="N", help="SHA-256 rounds per chunk")
    demo.add_argument("--span", type=_positive, metavar="N", help="numbers per chunk to sieve")
    demo.add_argument("--chunk-kib", type=_positive, metavar="N", help="KiB per chunk")
    demo.add_argument(
        "--progress", action="store_true", help="show live progress on stderr while it runs"
    )
    demo.add_argument(
        "--trace", metavar="FILE", help="write the run as a Chrome trace (JSON; ui.perfetto.dev)"
    )

    add_checkpoint_commands(sub, common)

    bench = sub.add_parser(
        "bench",
        parents=[common],
        help="benchmark a graph config across worker counts (no config: a quick check "
        "of the engine against Dask)",
    )
    bench.add_argument(
        "config", nargs="?", help="the graph config to benchmark (.yaml, .yml or .json)"
    )
    bench_source = bench.add_mutually_exclusive_group()
    bench_source.add_argument("--input", metavar="JSON", help="the runs' input as JSON")
    bench_source.add_argument(
        "--input-file", metavar="FILE", help="input from .json, .jsonl, .arrow or .parquet"
    )
    bench.add_argument(
        "--workers", metavar="N,N,...", default="1,2,4,8", help="worker counts (default 1,2,4,8)"
    )
    bench.add_argument(
        "--backend",
        metavar="B,B,...",
        default="process",
        help=f"default placements to compare ({', '.join(PLACEMENTS)}; default process)",
    )
    bench.add_argument(
        "--rounds",
        type=_positive,
        default=None,
        help="timed runs per setting (default: 3 for a config, 5 for the built-in shapes)",
    )
    bench.add_argument("--report", metavar="FILE", help="write the scaling curve as HTML")
    bench.add_argument(
        "--scale", type=float, default=1.0, help="size of the built-in shapes (no config)"
    )
    return parser
