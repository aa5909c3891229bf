"""The README and the docs agree with the code and with CI.

The README's quick start is what ``.ci/run`` runs, word for word; every ``mpipe`` command the docs
show parses; every script, file and folder they name ships; the README's Python example runs; the
benchmark table is made by ``benchmarks/report.py`` from one run's results; and nothing cites a
document that is not part of the project.
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from mpipe._cli._main import build_parser

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = [README, ROOT / "examples" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def blocks(text: str, language: str | None = None) -> list[list[str]]:
    """The fenced code blocks of markdown text (of one language when given), as lines."""
    out: list[list[str]] = []
    current: list[str] | None = None
    keep = False
    for line in text.splitlines():
        if line.startswith("```"):
            if current is None:
                current, keep = [], language is None or line[3:].strip() == language
            else:
                if keep:
                    out.append(current)
                current = None
        elif current is not None:
            current.append(line)
    return out


def commands(path: Path) -> list[str]:
    """Shell lines of a file's code blocks, without their trailing comments."""
    lines = []
    text = path.read_text()
    for block in blocks(text, "sh") + blocks(text, ""):
        for line in block:
            text = re.sub(r"\s+#\s.*$", "", line).strip()
            if text and not text.startswith("#"):
                lines.append(text)
    return lines


def report_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_report", ROOT / "benchmarks" / "report.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_quick_start_is_what_ci_runs_word_for_word() -> None:
    text = README.read_text()
    quick = text[text.index("## Quick start") :]
    first = blocks(quick, "sh")[0]
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert first == [line for line in ci if line in first], "CI must run them in this order"
    assert first[0].startswith("pip install . && mpipe demo")  # non-editable first


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_mpipe_command_in_the_docs_parses(doc: Path) -> None:
    parser = build_parser()
    for line in commands(doc):
        for part in line.split("&&"):
            words = shlex.split(part)
            if words[:1] == ["mpipe"]:
                argv = words[1:]
            elif words[:3] == ["python", "-m", "mpipe"]:
                argv = words[3:]
            else:
                continue
            parser.parse_args(argv)  # raises on a flag or command the code does not have


SHIPPED = re.compile(r"(?<![\w/.])((?:docs|examples|benchmarks|mpipe|native|tests)/[\w./-]*[\w/])")


@pytest.mark.parametrize(
    "doc",
    [*DOCS, ROOT / "CHANGELOG.md"],
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_files_and_folders_the_docs_name_ship(doc: Path) -> None:
    missing = []
    for match in SHIPPED.finditer(doc.read_text()):
        name = match.group(1).rstrip(".")
        if "results" in name or "DATE" in name or "NAME" in name:
            continue  # written by a run, or a pattern
        if not (ROOT / name).exists():
            missing.append(name)
    assert not missing, missing


def test_nothing_cites_documents_that_do_not_ship() -> None:
    pattern = re.compile(r"\bSPEC\b|\bDESIGN(\.md)?\b|\bSTYLE\.md\b|\bthe issue\b|\bissue \d")
    found = []
    folders = ["mpipe", "tests", "benchmarks", "examples", "docs", "native", "processor_pipeline"]
    files = [README, ROOT / "CHANGELOG.md", ROOT / ".ci" / "run", ROOT / "pyproject.toml"]
    for folder in folders:
        files += [p for p in (ROOT / folder).rglob("*") if p.suffix in (".py", ".md", ".c", ".h")]
    for path in files:
        if path == Path(__file__).resolve():
            continue
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if pattern.search(line):
                found.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    assert not found, "\n".join(found)


@pytest.mark.slow
def test_the_readme_python_example_runs() -> None:
    text = README.read_text()
    (code,) = blocks(text[text.index("## Twenty lines") :], "python")[:1]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", "\n".join(code)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("{'fmt:output': ['0', '332,833,500', ")


def test_the_readme_has_the_benchmark_tables_place() -> None:
    report = report_module()
    text = README.read_text()
    assert text.count(report.BEGIN) == 1 and text.count(report.END) == 1
    assert text.index(report.BEGIN) < text.index(report.END)


RESULTS: dict[str, Any] = {
    "machine": {
        "cpus": 2,
        "usable_cpus": 2,
        "python": "3.11.7",
        "system": "Linux",
        "load_average_at_end": [0.5, 0.4, 0.3],
    },
    "scale": 1.0,
    "results": {
        "overhead: chains 100x100": {
            "mpipe warm": {"per_unit_us": 4.5},
            "mpipe cold (new executor)": {"per_unit_us": 19.0},
            "dask sync": {"per_unit_us": 28.8},
            "dask threads": {"per_unit_us": 64.8},
        },
        "process: stream of 20,000 tiny items, one stage": {
            "mpipe": {"per_unit_us": 0.69},
            "multiprocess.Pool.map (auto chunks)": {"per_unit_us": 1.31},
            "ProcessPoolExecutor.map(chunksize=n/(4 workers)) *": {"per_unit_us": 0.28},
        },
        "process: round trip of one tiny firing": {
            "mpipe execute()": {"per_unit_us": 24.0},
            "~ mpipe backend.submit()": {"per_unit_us": 14.0},
            "os.pipe ping-pong (32 B)": {"per_unit_us": 42.0},
            "ProcessPoolExecutor.submit": {"per_unit_us": 196.0},
        },
        "a group without mpipe": {"every pool in turn": {"per_unit_us": 1.0}},
    },
}


def test_the_report_table_takes_every_figure_from_one_run(tmp_path: Path) -> None:
    report = report_module()
    text = report.table(RESULTS, "2026-12-01 10:00 UTC", "abc1234")
    assert "on 2026-12-01 10:00 UTC at commit abc1234: 2 usable cores of 2" in text
    rows = [line for line in text.splitlines() if line.startswith("| ") and "---" not in line]
    assert rows[0].startswith("| what | mpipe | nearest anchor |")
    body = {r.split(" | ")[0].lstrip("| "): r for r in rows[1:]}
    # A warm and a fresh executor are two rows; the nearest anchor is the fastest other tool.
    assert "dask sync 28.8 us | 6.40x" in body["overhead: chains 100x100, warm"]
    assert "dask sync 28.8 us | 1.52x" in body["overhead: chains 100x100, cold (new executor)"]
    # Where another tool is faster, the row shows it, with a ratio below 1.
    stream = body["process: stream of 20,000 tiny items, one stage"]
    assert "| 0.69 us / item | ProcessPoolExecutor.map(chunksize=n/(4 workers)) * 0.28 us" in stream
    assert "| 0.41x |" in stream
    # A lower bound is its own column; diagnostics (~) are left out.
    trip = body["process: round trip of one tiny firing"]
    assert (
        "ProcessPoolExecutor.submit 196 us | 8.17x | os.pipe ping-pong (32 B) 42 us | 1.75x" in trip
    )
    assert "submit()" not in text
    assert "a group without mpipe" not in text
    # The README's place is replaced, markers kept.
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{report.BEGIN}\nold\n{report.END}\nend\n")
    report.replace_readme(readme, text)
    new = readme.read_text()
    assert new == f"intro\n{report.BEGIN}\n{text}{report.END}\nend\n"
    scaled = json.loads(json.dumps(RESULTS))
    scaled["scale"] = 0.01
    assert "not measurements" in report.table(scaled, "now", None)


def test_the_example_commands_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The command-line walk-through of examples/README.md, from a folder of its own (the
    # files it writes land there). mpipe demo and mpipe bench have tests of their own.
    from mpipe._cli import main

    monkeypatch.chdir(tmp_path)
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    ran = []
    for line in commands(ROOT / "examples" / "README.md"):
        words = shlex.split(line)
        if words[0] == "printf":
            (tmp_path / words[-1]).write_text(words[1].encode().decode("unicode_escape"))
            continue
        assert words[0] == "mpipe", line
        if words[1] in ("demo", "bench") or "--dashboard" in words:
            continue  # each has tests of its own (a dashboard waits for a viewer)
        if words[-1] == "ID":
            listing = io.StringIO()
            assert main(["checkpoints", "list", words[-2], "--json"], listing, io.StringIO()) == 0
            words[-1] = json.loads(listing.getvalue().splitlines()[0])["checkpoint_id"]
        out, err = io.StringIO(), io.StringIO()
        assert main(words[1:], out, err) == 0, (line, err.getvalue())
        ran.append(words[1])
    assert ran.count("run") == 3 and "checkpoints" in ran
    assert (tmp_path / "out.json").exists() and (tmp_path / "run.json").exists()
