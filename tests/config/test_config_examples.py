"""Every example runs: each script in its own Python process, each config through the CLI."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest

from mpipe._cli import main

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
SCRIPTS = sorted(p for p in EXAMPLES.glob("*.py") if not p.name.startswith("_"))
CONFIGS = sorted([*EXAMPLES.glob("*.yaml"), *EXAMPLES.glob("*.json")])
#: Smaller inputs than the defaults, to keep the suite fast.
ARGS = {
    "stream_arrow.py": ["200000"],
    "performance_report.py": ["build/test-artifacts/example-report.html", "--items", "40"],
    "process_backend.py": ["3"],
    "progress_stream.py": ["12"],
    "parquet_to_parquet.py": ["20000"],
}


def test_the_examples_are_all_here() -> None:
    names = {p.name for p in SCRIPTS}
    assert {
        "quick_start.py",
        "dag.py",
        "custom_processors.py",
        "error_strategies.py",
        "configs.py",
        "stream_arrow.py",
        "monitoring_alerts.py",
        "checkpoints_resume.py",
        "breakpoints.py",
        "dask_cluster.py",
        "performance_report.py",
        "v2_api.py",
        "process_backend.py",
        "progress_stream.py",
        "parquet_to_parquet.py",
    } <= names
    assert {
        "text_pipeline.yaml",
        "numbers_pipeline.json",
        "arrow_stats.yaml",
        "observed_pipeline.yaml",
    } <= {p.name for p in CONFIGS}


@pytest.mark.slow
@pytest.mark.timeout(170)  # every script at once, several with worker pools, on a small machine
def test_every_example_script_runs() -> None:
    (ROOT / "build" / "test-artifacts").mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    # Started together and awaited in turn: the scripts are independent.
    procs = {
        script.name: subprocess.Popen(
            [sys.executable, str(script), *ARGS.get(script.name, [])],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=ROOT,
        )
        for script in SCRIPTS
    }
    failures = []
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=150)
        if proc.returncode != 0 or not out.strip():
            failures.append(f"{name} exited {proc.returncode}: {err.strip()[-500:]}")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.name)
def test_every_example_config_validates(config: Path) -> None:
    out, err = io.StringIO(), io.StringIO()
    assert main(["validate", str(config)], out, err) == 0, err.getvalue()
    assert "valid" in out.getvalue()


def test_arrow_stats_config_streams_an_arrow_file(tmp_path: Path) -> None:
    table = pa.table({"v": list(range(1000))})
    path = tmp_path / "t.arrow"
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table, max_chunksize=300)
    out, err = io.StringIO(), io.StringIO()
    argv = ["run", str(EXAMPLES / "arrow_stats.yaml"), "--input-file", str(path), "--stream"]
    assert main([*argv, "--batch-size", "250"], out, err) == 0, err.getvalue()
    lines = out.getvalue().splitlines()
    assert lines[0] == "total:output: 7 items"  # 300-row batches cut to 250 + 50; then 100
    assert lines[1:4] == ["  [0] 250", "  [1] 50", "  [2] 250"]


def test_observed_pipeline_config_monitors_alerts_and_checkpoints(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # its checkpoint folder is relative to the current directory
    items = tmp_path / "items.jsonl"
    items.write_text('"1"\n"x"\n"3"\n')
    out, err = io.StringIO(), io.StringIO()
    argv = ["run", str(EXAMPLES / "observed_pipeline.yaml"), "--input-file", str(items)]
    assert main([*argv, "--events", "events.jsonl"], out, err) == 0, err.getvalue()
    assert out.getvalue().splitlines() == ["square:output: 2 items", "  [0] 1.0", "  [1] 9.0"]
    assert "mpipe: alert: rule 'error_rate_above_10pct' fired" in err.getvalue()
    assert '"event_type":"alert"' in (tmp_path / "events.jsonl").read_text()
    assert len(list((tmp_path / "mpipe_checkpoints").glob("*.arrow"))) == 3
