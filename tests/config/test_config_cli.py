"""The ``mpipe`` command: in-process for breadth, through ``python -m mpipe`` for the real thing."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from mpipe._cli import main

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
TEXT = str(EXAMPLES / "text_pipeline.yaml")
NUMBERS = str(EXAMPLES / "numbers_pipeline.json")


def cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out, err)
    return code, out.getvalue(), err.getvalue()


def write_config(tmp_path: Path, data: dict[str, Any], name: str = "g.yaml") -> str:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return str(path)


def one_step(function: str, **extra: Any) -> dict[str, Any]:
    return {
        "graph_id": "one",
        "processors": [
            {
                "processor_id": "p",
                "processor_type": "simple",
                "parameters": {"function": function},
                **extra,
            }
        ],
    }


def test_run_with_inline_json() -> None:
    code, out, err = cli("run", TEXT, "--input", '{"clean": "  hi there "}')
    assert code == 0, err
    assert out == 'report:output = {"text":"HI THERE","length":8}\n'
    assert "ran graph 'text_pipeline' (4 processors, backend inline)" in err


def test_run_json_file_backend_and_workers(tmp_path: Path) -> None:
    data = tmp_path / "in.json"
    data.write_text('[1, 2, "x", 4]')
    code, out, err = cli(
        "run", NUMBERS, "--input-file", str(data), "--backend", "thread", "--workers", "2"
    )
    assert code == 0, err
    assert 'summary:output = {"total":7,"count":3}' in out
    assert "backend thread" in err


def test_run_jsonl_streams_items_and_writes_jsonl(tmp_path: Path) -> None:
    data = tmp_path / "in.jsonl"
    data.write_text('" a "\n\n"bb"\n" c"\n')
    output = tmp_path / "out.jsonl"
    cfg = write_config(
        tmp_path,
        {
            "processors": [
                {
                    "processor_id": "s",
                    "processor_type": "text_transformer",
                    "parameters": {"transformation": "strip"},
                }
            ]
        },
    )
    code, out, err = cli("run", cfg, "--input-file", str(data), "--output", str(output))
    assert code == 0, err
    assert out.splitlines()[0] == "s:output: 3 items"
    lines = [json.loads(line) for line in output.read_text().splitlines()]
    assert lines == [{"key": "s:output", "value": v} for v in ("a", "bb", "c")]


def test_run_jsonl_with_several_sources_needs_every_source_per_line(tmp_path: Path) -> None:
    cfg = write_config(
        tmp_path,
        {
            "processors": [
                {
                    "processor_id": "a",
                    "processor_type": "simple",
                    "parameters": {"function": "passthrough"},
                },
                {
                    "processor_id": "b",
                    "processor_type": "simple",
                    "parameters": {"function": "passthrough"},
                },
            ]
        },
    )
    good = tmp_path / "good.jsonl"
    good.write_text('{"a": 1, "b": 2}\n{"a": 3, "b": 4}\n')
    code, out, err = cli("run", cfg, "--input-file", str(good))
    assert code == 0, err
    assert "a:output: 2 items" in out and "b:output: 2 items" in out
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"a": 1}\n')
    code, out, err = cli("run", cfg, "--input-file", str(bad))
    assert code == 2 and "line 1: with several sources each line must be an object naming" in err


def _table(n: int) -> pa.Table:
    return pa.table({"x": list(range(n)), "y": [f"r{i}" for i in range(n)]})


def test_run_arrow_and_parquet_as_tables_and_streams(tmp_path: Path) -> None:
    table = _table(10)
    arrow_file = tmp_path / "t.arrow"
    with pa.OSFile(str(arrow_file), "wb") as sink, pa.ipc.new_file(sink, table.schema) as w:
        w.write_table(table, max_chunksize=4)
    arrow_stream = tmp_path / "s.arrow"
    with pa.OSFile(str(arrow_stream), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as w:
        w.write_table(table)
    parquet = tmp_path / "t.parquet"
    pq.write_table(table, str(parquet))
    cfg = write_config(tmp_path, one_step("passthrough"))
    for path in (arrow_file, arrow_stream, parquet):
        code, out, err = cli("run", cfg, "--input-file", str(path))
        assert code == 0, err
        assert out.startswith("p:output = Table 10 rows x 2 columns (x: int64, y: string)")
        assert 'first rows: [{"x":0,"y":"r0"},{"x":1,"y":"r1"}]' in out
    code, out, err = cli("run", cfg, "--input-file", str(arrow_file), "--stream")
    assert code == 0, err
    assert out.splitlines()[0] == "p:output: 3 items" and "RecordBatch 4 rows" in out
    code, out, err = cli("run", cfg, "--input-file", str(parquet), "--stream", "--batch-size", "3")
    assert code == 0, err
    assert out.splitlines()[0] == "p:output: 4 items"
    # Streamed batches written back as one table.
    output = tmp_path / "back.parquet"
    code, _, err = cli(
        "run",
        cfg,
        "--input-file",
        str(arrow_file),
        "--stream",
        "--batch-size",
        "3",
        "--output",
        str(output),
    )
    assert code == 0, err
    assert pq.read_table(str(output)).equals(table)
    output = tmp_path / "back.arrow"
    code, _, err = cli("run", cfg, "--input-file", str(parquet), "--output", str(output))
    assert code == 0, err
    with pa.memory_map(str(output)) as source:
        assert pa.ipc.open_file(source).read_all().equals(table)


def test_run_writes_json_with_tables_and_numpy(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, one_step("passthrough"))
    table = tmp_path / "t.parquet"
    pq.write_table(_table(2), str(table))
    output = tmp_path / "out.json"
    code, _, err = cli("run", cfg, "--input-file", str(table), "--output", str(output))
    assert code == 0, err
    assert json.loads(output.read_text()) == {
        "p:output": [{"x": 0, "y": "r0"}, {"x": 1, "y": "r1"}]
    }


def test_long_results_are_summarized_not_dumped(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, one_step("passthrough"))
    code, out, _ = cli("run", cfg, "--input", json.dumps("x" * 5000))
    assert code == 0 and len(out) < 300 and "(5,000 chars)" in out
    code, out, _ = cli("run", cfg, "--input", json.dumps(list(range(10000))))
    assert code == 0 and len(out) < 300


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["run", "missing.yaml"], "cannot read config"),
        (["run", TEXT, "--input", "{bad"], "--input: malformed JSON"),
        (["run", TEXT, "--input", '{"nope": 1, "clean": "x"}'], "unknown input key(s) 'nope'"),
        (["run", TEXT, "--input-file", "nope.csv"], "unsupported type '.csv'"),
        (["run", TEXT, "--input-file", "nope.json"], "no such file"),
        (["run", TEXT, "--input", "1", "--output", "out.txt"], "unsupported type '.txt'"),
        (["run", TEXT, "--input", "1", "--input-file", "x.json"], "not allowed with argument"),
        (["run", TEXT, "--stream"], "--stream needs --input-file"),
        (["run", TEXT], "no input: the graph's sources (clean) need some; give it with --input"),
        (["run", TEXT, "--workers", "0"], "expected a positive integer"),
        (["run", TEXT, "--backend", "gpu"], "invalid choice: 'gpu'"),
        (["validate"], "the following arguments are required: config"),
        (["viz", TEXT, "--format", "gif"], "invalid choice: 'gif'"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
        ([], "the following arguments are required: COMMAND"),
        (["bench", "--scale", "0"], "--scale must be in"),
    ],
)
def test_usage_and_config_errors_exit_2_with_one_line(argv: list[str], words: str) -> None:
    code, out, err = cli(*argv)
    assert code == 2, (out, err)
    assert err.count("\n") == 1 and err.startswith("mpipe: error: ")
    assert words in err


def test_bad_config_exits_2_naming_the_field(tmp_path: Path) -> None:
    data = one_step("passthrough")
    data["processors"][0]["parameters"] = {"function": 5}
    data["processors"].append({"processor_id": "p", "processor_type": "bogus"})
    cfg = write_config(tmp_path, data)
    for command in ("run", "validate", "viz"):
        code, _, err = cli(command, cfg)
        assert code == 2 and err.count("\n") == 1
        assert "processors[0].parameters.function: expected a string" in err
        assert "processors[1].processor_type: unknown processor type 'bogus'" in err
        assert "processors[1].processor_id: duplicate processor id 'p'" in err


def test_yaml_with_python_tags_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "evil.yaml"
    path.write_text("processors: !!python/object/apply:os.system ['echo pwned']\n")
    code, out, err = cli("validate", str(path))
    assert code == 2 and "YAML tag not allowed" in err and "pwned" not in out


def test_run_failure_exits_1_and_debug_shows_the_traceback(tmp_path: Path) -> None:
    cfg = write_config(
        tmp_path, {"processors": [{"processor_id": "t", "processor_type": "text_transformer"}]}
    )
    code, out, err = cli("run", cfg, "--input", "5")
    assert code == 1 and out == ""
    assert err == (
        "mpipe: error: run failed: processor 't' failed: ProcessorError: "
        "text_transformer 't' (uppercase) needs a string, got int 5 (item 0)\n"
    )
    code, _, err = cli("run", cfg, "--input", "5", "--debug")
    assert code == 1 and "Traceback (most recent call last)" in err
    assert err.splitlines()[-1].startswith("mpipe: error: run failed")


def test_output_that_does_not_fit_exits_1(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, one_step("passthrough"))
    code, _, err = cli("run", cfg, "--input", "3", "--output", str(tmp_path / "o.parquet"))
    assert code == 1 and "needs exactly one result that is Arrow data" in err


def test_module_attr_references_resolve_next_to_the_config(tmp_path: Path) -> None:
    (tmp_path / "my_steps_for_cli.py").write_text("def triple(x):\n    return 3 * x\n")
    cfg = write_config(tmp_path, one_step("my_steps_for_cli:triple"))
    code, out, err = cli("run", cfg, "--input", "4")
    assert (code, out) == (0, "p:output = 12\n"), err


def test_validate_and_viz() -> None:
    code, out, _ = cli("validate", TEXT)
    assert code == 0
    assert out == (
        f"{TEXT}: valid: graph 'text_pipeline', 4 processors, 4 connections; sources: clean; "
        "sinks: report\n"
    )
    code, out, _ = cli("viz", NUMBERS)
    assert code == 0 and out.startswith("Graph numbers (4 processors, 4 connections)")
    assert "level 1: total (Aggregator), count (Aggregator)" in out
    code, out, _ = cli("viz", NUMBERS, "--format", "mermaid")
    assert code == 0 and out.startswith("graph TD") and "-->|output → total|" in out
    code, out, _ = cli("viz", NUMBERS, "--format", "dot")
    assert code == 0 and out.startswith('digraph "numbers"') and '"total" -> "summary"' in out


def test_help_exits_0() -> None:
    code, out, _ = cli("--help")
    assert code == 0 and "demo" in out and "bench" in out
    code, out, _ = cli("run", "--help")
    assert code == 0 and "--input-file" in out


def test_demo_small_prints_results_metrics_and_speedup() -> None:
    code, out, err = cli(
        "demo",
        "--chunks",
        "3",
        "--rounds",
        "2",
        "--span",
        "200",
        "--chunk-kib",
        "4",
        "--workers",
        "2",
    )
    assert code == 0, err
    assert "mpipe demo: 3 chunks of 4 KiB" in out and "backend process, 2 workers" in out
    assert "chunk   2: digest" in out
    for pid in ("generate", "hash", "primes", "join"):
        assert f"  {pid:<10}" in out
    assert "speedup over serial: " in out and "DIFFER" not in out


@pytest.mark.slow
def test_demo_progress_and_trace(tmp_path: Path) -> None:
    trace = tmp_path / "demo.json"
    code, out, err = cli(
        *("demo", "--chunks", "3", "--rounds", "2", "--span", "200", "--chunk-kib", "4"),
        *("--workers", "2", "--progress", "--trace", str(trace)),
    )
    assert code == 0, err
    assert "mean run ms" in out and "mean wait ms" in out
    assert "mpipe demo run " in err and "  hash: 3 done" in err  # progress: stderr, not stdout
    assert "mpipe demo run " not in out
    assert f"trace written to {trace}" in err
    events = json.loads(trace.read_text())["traceEvents"]
    tracks = [e["args"]["name"] for e in events if e["name"] == "thread_name"]
    assert sorted(t for t in tracks if t.startswith("worker-")) == sorted(
        {t for t in tracks if t.startswith("worker-")}
    )
    assert len([t for t in tracks if t.startswith("worker-")]) <= 2
    fired = {e["name"].split(" x")[0] for e in events if e.get("cat") == "firing"}
    assert {"hash", "primes", "join"} <= fired


def test_demo_trace_folder_must_exist(tmp_path: Path) -> None:
    code, _, err = cli("demo", "--trace", str(tmp_path / "no" / "t.json"))
    assert code == 2 and "--trace" in err and "does not exist" in err


def test_validate_counts_read_as_words(tmp_path: Path) -> None:
    code, out, err = cli("validate", write_config(tmp_path, one_step("passthrough")))
    assert code == 0, err
    assert "1 processor, 0 connections" in out


def test_summaries_show_floats_to_ten_digits() -> None:
    from mpipe._cli._io import summarize

    assert summarize({"x": 0.1 + 0.2, "y": [1 / 3]}) == '{"x":0.3,"y":[0.3333333333]}'


def test_demo_on_the_thread_backend() -> None:
    code, out, err = cli(
        "demo",
        "--chunks",
        "2",
        "--rounds",
        "1",
        "--span",
        "100",
        "--chunk-kib",
        "1",
        "--backend",
        "thread",
        "--workers",
        "2",
    )
    assert code == 0, err
    assert "backend thread, 2 workers" in out


@pytest.mark.slow
def test_bench_prints_ratios_against_dask() -> None:
    code, out, err = cli("bench", "--rounds", "1", "--scale", "0.1")
    assert code == 0, err
    lines = out.splitlines()
    assert "vs dask-sync" in lines[1] and "vs dask-threads" in lines[1]
    assert [line.split()[0] for line in lines[2:5]] == ["chains", "fan-in", "stream"]
    assert "ratio = anchor time / mpipe time (above 1: mpipe is ahead)" in out


# -- through a real subprocess ---------------------------------------------------------------


def run_module(*argv: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "mpipe", *argv],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd or ROOT,
        timeout=60,
    )


@pytest.mark.slow
def test_python_m_mpipe_run_validate_and_errors(tmp_path: Path) -> None:
    proc = run_module("run", TEXT, "--input", '{"clean": " sub process "}')
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == 'report:output = {"text":"SUB PROCESS","length":11}\n'
    proc = run_module("validate", str(tmp_path / "none.yaml"))
    assert proc.returncode == 2
    missing = tmp_path / "none.yaml"
    assert (
        proc.stderr == f"mpipe: error: cannot read config '{missing}': No such file or directory\n"
    )
    proc = run_module("run", TEXT, "--input", '{"clean": 3}')
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr


@pytest.mark.slow
def test_python_m_mpipe_demo() -> None:
    proc = run_module("demo", "--chunks", "2", "--rounds", "1", "--span", "100", "--chunk-kib", "1")
    assert proc.returncode == 0, proc.stderr
    assert "per-processor metrics" in proc.stdout and "speedup over serial" in proc.stdout


@pytest.mark.parametrize(
    ("name", "content", "stream", "words"),
    [
        ("bad.jsonl", '"a"\n{bad\n', False, "bad.jsonl line 2: malformed JSON"),
        ("bad.arrow", "garbage", False, "not an Arrow IPC file or stream"),
        ("bad.arrow", "garbage", True, "not an Arrow IPC file or stream"),
        ("bad.parquet", "garbage", False, "cannot read input file"),
        ("bad.parquet", "garbage", True, "cannot read input file"),
        ("bad.json", "[1,", False, "malformed JSON"),
        ("ok.json", "[1]", True, "--stream needs a .jsonl, .arrow or .parquet input"),
    ],
)
def test_malformed_input_files_exit_2(
    tmp_path: Path, name: str, content: str, stream: bool, words: str
) -> None:
    path = tmp_path / name
    path.write_text(content)
    argv = ["run", TEXT, "--input-file", str(path), *(["--stream"] if stream else [])]
    code, _, err = cli(*argv)
    assert code == 2 and err.count("\n") == 1 and words in err, err


def test_streams_need_one_source(tmp_path: Path) -> None:
    table = tmp_path / "t.parquet"
    pq.write_table(_table(3), str(table))
    cfg = write_config(
        tmp_path,
        {
            "processors": [
                {
                    "processor_id": s,
                    "processor_type": "simple",
                    "parameters": {"function": "passthrough"},
                }
                for s in ("a", "b")
            ]
        },
    )
    code, _, err = cli("run", cfg, "--input-file", str(table), "--stream")
    assert code == 2 and "needs a graph with one source; this one has 2 (a, b)" in err


def test_main_leaves_sys_path_as_it_found_it(tmp_path: Path) -> None:
    before = list(sys.path)
    cfg = write_config(tmp_path, one_step("passthrough"))
    assert cli("validate", cfg)[0] == 0
    assert sys.path == before


def test_summaries_of_arrays_and_json_output_of_numpy(tmp_path: Path) -> None:
    import numpy as np

    from mpipe._cli._io import summarize, write_output

    assert summarize(np.zeros((3, 4))) == "ndarray float64 shape (3, 4)"
    assert summarize(pa.array([1, 2, 3])) == "Int64Array<int64> of 3 values"
    assert summarize(pa.chunked_array([[1], [2]])) == "ChunkedArray<int64> of 2 values"
    assert summarize({1: "a"}) == '{"1":"a"}'
    assert summarize(object()).startswith("<object object at")
    path = tmp_path / "o.json"
    write_output(path, {"k": np.arange(3), "t": pa.table({"a": [1]})}, streaming=False)
    assert json.loads(path.read_text()) == {"k": [0, 1, 2], "t": [{"a": 1}]}


def test_demo_settings_are_checked() -> None:
    from mpipe import ConfigurationError
    from mpipe._cli._demo import DemoSettings

    with pytest.raises(ConfigurationError, match="demo setting chunks must be a positive integer"):
        DemoSettings(chunks=0)
