"""The benchmark report: one run of the suite, one dated table.

Run from the repository root, with the package and the ``bench`` extra installed
(``pip install -e ".[bench]"``)::

    python benchmarks/report.py            # the whole suite (about ten minutes on 2 cores)
    python benchmarks/report.py --readme   # the same, and the table replaces the README's
    python benchmarks/report.py --quick    # every benchmark at a tiny size: checks, not figures

The benchmark files run in one pytest session, so every figure of the table comes from that one
run. The table has one row per comparison and per mpipe entry in it (a warm and a fresh
executor are two rows): mpipe's median time per unit; the nearest anchor, that is the fastest
other tool timed on the same work, whether mpipe is ahead of it or behind; the lower bound
where the comparison has one (one ``np.copyto`` of the same bytes, an ``os.pipe`` ping-pong),
which is no tool; and the ratios (the other's time over mpipe's: above 1, mpipe is ahead).
Entries named ``~ ...`` are diagnostics and left out. The table is printed, and written with its
date, machine and commit to ``benchmarks/results/report-DATE.md`` (or ``--out``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
#: The files of the report's run, in this order.
FILES = [
    "bench_engine.py",
    "bench_process.py",
    "bench_process_interleaved.py",
    "bench_fusion.py",
    "bench_dask.py",
]
#: The README's table lies between these lines; ``--readme`` replaces what is between them.
BEGIN = "<!-- benchmark table: made by python benchmarks/report.py --readme -->"
END = "<!-- end of the benchmark table -->"
#: Entries that are lower bounds for the work, not tools a user would pick instead.
FLOORS = ("one np.copyto", "os.pipe ping-pong")
#: Scale of a ``--quick`` run (see ``_knobs.py``).
QUICK_SCALE = "0.01"


def unit_of(group: str) -> str:
    """What one unit of a comparison group is."""
    if "through an identity stage" in group:
        return "round trip"
    if group.startswith("stream") or "stream of" in group or "cpu-heavy" in group:
        return "item"
    return "firing"


def show_time(us: float) -> str:
    """Microseconds as a short human figure."""
    if us >= 1e6:
        return f"{us / 1e6:.3g} s"
    if us >= 1e3:
        return f"{us / 1e3:.3g} ms"
    return f"{us:.3g} us"


def show_ratio(other_us: float, mpipe_us: float) -> str:
    ratio = other_us / mpipe_us if mpipe_us > 0 else float("inf")
    return f"{ratio:.2f}x" if ratio < 10 else f"{ratio:.0f}x"


def rows(results: dict[str, dict[str, dict[str, Any]]]) -> list[list[str]]:
    """The table's rows: what, mpipe, nearest anchor, its ratio, lower bound and its ratio."""
    out = []
    for group, entries in results.items():
        mpipes = [n for n in entries if n.startswith("mpipe")]
        others = {
            n: e["per_unit_us"]
            for n, e in entries.items()
            if not n.startswith(("mpipe", "~")) and not n.startswith(FLOORS)
        }
        floors = {n: e["per_unit_us"] for n, e in entries.items() if n.startswith(FLOORS)}
        unit = unit_of(group)
        for name in mpipes:
            us = entries[name]["per_unit_us"]
            what = group if len(mpipes) == 1 else f"{group}, {name.removeprefix('mpipe ')}"
            row = [what, f"{show_time(us)} / {unit}"]
            if others:
                anchor = min(others, key=lambda n: others[n])
                row += [f"{anchor} {show_time(others[anchor])}", show_ratio(others[anchor], us)]
            else:
                row += ["-", "-"]
            if floors:
                floor = min(floors, key=lambda n: floors[n])
                row += [f"{floor} {show_time(floors[floor])}", show_ratio(floors[floor], us)]
            else:
                row += ["-", "-"]
            out.append(row)
    return out


def table(report: dict[str, Any], when: str, commit: str | None) -> str:
    """The dated markdown table of a run's results."""
    machine = report["machine"]
    load = ", ".join(f"{x:.1f}" for x in machine.get("load_average_at_end", ()))
    head = [
        f"Measured by `python benchmarks/report.py` on {when}"
        + (f" at commit {commit}" if commit else "")
        + f": {machine['usable_cpus']} usable cores of {machine['cpus']}, Python "
        f"{machine['python']}, {machine['system']}; load average {load} at the end.",
        "",
    ]
    if report.get("scale", 1) < 1:
        head[0:0] = [
            f"**Scaled down (MPIPE_BENCH_SCALE={report['scale']}): a check that the suite "
            "runs; these figures are not measurements.**",
            "",
        ]
    lines = [
        "| what | mpipe | nearest anchor | ratio | lower bound | ratio |",
        "|---|---:|---|---:|---|---:|",
    ]
    lines += ["| " + " | ".join(r) + " |" for r in rows(report["results"])]
    notes = [
        "",
        "Median time per unit of each entry; ratio = the other's time / mpipe's "
        "(above 1: mpipe is ahead; below 1: it is behind). The nearest anchor is the fastest "
        "other tool timed on the same work; entries marked `*` run a module-level function "
        "instead of the same lambda.",
    ]
    return "\n".join(head + lines + notes) + "\n"


def git_commit() -> str | None:
    try:
        done = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return done.stdout.strip() or None


def replace_readme(readme: Path, text: str) -> None:
    """Put ``text`` between the README's table markers."""
    content = readme.read_text()
    pattern = re.compile(re.escape(BEGIN) + r".*?" + re.escape(END), re.S)
    if not pattern.search(content):
        raise SystemExit(f"report: {readme} has no benchmark table markers ({BEGIN!r})")
    readme.write_text(pattern.sub(lambda _: f"{BEGIN}\n{text}{END}", content, count=1))


def run(files: list[str], quick: bool, json_path: Path) -> None:
    """One pytest session over ``files``; its results land in ``json_path``."""
    env = {**os.environ, "MPIPE_BENCH_JSON": str(json_path)}
    if quick:
        env["MPIPE_BENCH_SCALE"] = QUICK_SCALE
    command = [
        sys.executable,
        "-m",
        "pytest",
        *(str(HERE / f) for f in files),
        "--benchmark-only",
        "-q",
        "-p",
        "no:randomly",
    ]
    done = subprocess.run(command, cwd=ROOT, env=env)
    if done.returncode != 0:
        raise SystemExit(f"report: the benchmark run failed (pytest exit code {done.returncode})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="every benchmark at a tiny size: checks, not figures"
    )
    parser.add_argument(
        "--files", nargs="+", default=FILES, metavar="FILE", help="benchmark files to run"
    )
    parser.add_argument("--out", type=Path, help="where to write the table (markdown)")
    parser.add_argument("--readme", action="store_true", help="also put the table into README.md")
    parser.add_argument(
        "--from-json", type=Path, metavar="FILE", help="make the table of an earlier run's JSON"
    )
    args = parser.parse_args(argv)
    if args.readme and args.quick:
        parser.error("--readme takes a full run, not --quick")
    for name in args.files:
        if not (HERE / name).is_file():
            parser.error(f"no benchmark file {name!r} in {HERE}")
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    if args.from_json is not None:
        report = json.loads(args.from_json.read_text())
    else:
        with tempfile.TemporaryDirectory() as tmp:
            json_path = Path(tmp) / "results.json"
            run(args.files, args.quick, json_path)
            report = json.loads(json_path.read_text())
    if args.readme and report.get("scale", 1) < 1:
        parser.error("--readme takes a full run; this one was scaled down")
    text = table(report, when, git_commit())
    out = args.out
    if out is None:
        folder = HERE / "results"
        folder.mkdir(exist_ok=True)
        out = folder / f"report-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}.md"
    out.write_text(text)
    print(text)
    print(f"written to {out}", file=sys.stderr)
    if args.readme:
        replace_readme(ROOT / "README.md", text)
        print("README.md's benchmark table replaced", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
