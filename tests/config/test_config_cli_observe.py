"""``mpipe run --progress/--trace/--events/--checkpoints/--resume`` and ``mpipe checkpoints``."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import cfg_helpers
import pytest
import yaml

from mpipe import CheckpointManager
from mpipe._cli import main

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent


def cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out, err)
    return code, out.getvalue(), err.getvalue()


def graph(second: str = "cfg_helpers:fail_when_armed", **sections: Any) -> dict[str, Any]:
    return {
        "graph_id": "two",
        "processors": [
            {
                "processor_id": "first",
                "processor_type": "simple",
                "parameters": {"function": "cfg_helpers:counted"},
            },
            {
                "processor_id": "second",
                "processor_type": "simple",
                "parameters": {"function": second},
            },
        ],
        "connections": [
            {
                "from_processor": "first",
                "from_output": "output",
                "to_processor": "second",
                "to_input": "input",
            }
        ],
        **sections,
    }


def write_config(tmp_path: Path, data: dict[str, Any]) -> str:
    path = tmp_path / "g.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


@pytest.fixture(autouse=True)
def _reset_helpers() -> None:
    cfg_helpers.ALERTS.clear()
    cfg_helpers.CALLS.clear()
    cfg_helpers.ARMED[0] = False


def one_error_line(err: str) -> str:
    assert err.count("\n") == 1 and err.startswith("mpipe: error: "), err
    return err


# -- run: progress, trace, events, alerts ---------------------------------------------------------


def test_run_writes_a_trace_and_events_and_shows_progress(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, graph())
    trace, events = tmp_path / "t.json", tmp_path / "e.jsonl"
    code, out, err = cli(
        "run", cfg, "--input", "1", "--progress", "--trace", str(trace), "--events", str(events)
    )
    assert code == 0, err
    assert out == "second:output = 2\n"  # stdout holds results only; progress is on stderr
    assert "first: 1 done" in err and "second: 1 done" in err and " - done" in err
    assert f"trace written to {trace}; events written to {events}" in err.splitlines()[-1]
    spans = [e for e in json.loads(trace.read_text())["traceEvents"] if e.get("cat") != "run"]
    assert {e["name"] for e in spans if e["ph"] == "X"} == {"first", "second"}
    kinds = [json.loads(line)["event_type"] for line in events.read_text().splitlines()]
    assert kinds[0] == "graph_start" and kinds[-1] == "graph_complete"
    assert kinds.count("processor_complete") == 2


def test_a_failed_run_still_writes_its_trace_and_events(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, graph())
    cfg_helpers.ARMED[0] = True
    trace, events = tmp_path / "t.json", tmp_path / "e.jsonl"
    code, out, err = cli("run", cfg, "--input", "1", "--trace", str(trace), "--events", str(events))
    assert code == 1 and out == ""
    assert "run failed: processor 'second' failed: RuntimeError: armed" in one_error_line(err)
    errors = [e for e in json.loads(trace.read_text())["traceEvents"] if "error" in e["args"]]
    assert [e["name"] for e in errors] == ["second"]
    assert '"event_type":"graph_error"' in events.read_text()


def test_config_alerts_are_reported_and_the_config_monitor_exports(tmp_path: Path) -> None:
    monitoring = {
        "log_level": "debug",
        "alerts": [{"name": "errors", "condition": "cfg_helpers:has_errors", "cooldown": 60}],
    }
    cfg = write_config(tmp_path, graph(error_strategy="skip", monitoring=monitoring))
    cfg_helpers.ARMED[0] = True
    events = tmp_path / "e.jsonl"
    code, out, err = cli("run", cfg, "--input", "1", "--events", str(events))
    assert code == 0 and out == "(no results: the sinks produced nothing)\n", err
    assert "mpipe: alert: rule 'errors' fired" in err.splitlines()
    assert '"event_type":"alert"' in events.read_text()
    # The monitor's own log lines stay out of the way unless --debug asks for them.
    assert "processor_error" not in err
    code, _, err = cli("run", cfg, "--input", "1", "--debug")
    assert code == 0 and "mpipe: log: ERROR: processor_error second" in err


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        (["--trace", "/no/such/folder/t.json"], "--trace '/no/such/folder/t.json': folder"),
        (["--events", "."], "--events '.' is a folder"),
        (["--resume", "abc", "--input", "1"], "--resume needs checkpoints"),
        (["--checkpoints", "{cfg}", "--input", "1"], "is a file, not a folder"),
    ],
)
def test_observation_flags_that_cannot_work_exit_2(
    tmp_path: Path, extra: list[str], words: str
) -> None:
    cfg = write_config(tmp_path, graph())
    code, _, err = cli("run", cfg, *[e.replace("{cfg}", cfg) for e in extra])
    assert code == 2 and words in one_error_line(err)


# -- run: checkpoints and resume ------------------------------------------------------------------


def test_a_failed_checkpointed_run_resumes_from_the_command_line(tmp_path: Path) -> None:
    ckpt = tmp_path / "ckpt"
    cfg = write_config(tmp_path, graph())
    cfg_helpers.ARMED[0] = True
    code, _, err = cli("run", cfg, "--input", "1", "--checkpoints", str(ckpt))
    assert code == 1
    line = one_error_line(err)
    run_id = line.rsplit("--resume ", 1)[1].strip()
    assert f"checkpoints of run {run_id} are in {ckpt}" in line
    cfg_helpers.ARMED[0] = False
    code, out, err = cli("run", cfg, "--input", "1", "--checkpoints", str(ckpt), "--resume", run_id)
    assert code == 0, err
    assert out == "second:output = 2\n" and cfg_helpers.CALLS == [1]  # "first" ran once
    assert f"run {run_id} checkpointed in {ckpt}" in err
    code, _, err = cli("run", cfg, "--input", "1", "--checkpoints", str(ckpt), "--resume", "zz")
    assert code == 2 and "--resume zz: cannot resume run 'zz'" in one_error_line(err)


def test_the_config_checkpoints_section_is_used_by_run(tmp_path: Path) -> None:
    ckpt = tmp_path / "from_config"
    cfg = write_config(tmp_path, graph(checkpoints={"storage_path": str(ckpt)}))
    code, _, err = cli("run", cfg, "--input", "1")
    assert code == 0, err
    assert len(CheckpointManager(ckpt).list_checkpoints()) == 3  # the manifest and 2 outputs


# -- mpipe checkpoints ----------------------------------------------------------------------------


@pytest.fixture
def folder(tmp_path: Path) -> tuple[Path, str]:
    """A checkpoint folder holding one run of the two-step graph; (folder, run id)."""
    ckpt = tmp_path / "ckpt"
    cfg = write_config(tmp_path, graph())
    code, _, err = cli("run", cfg, "--input", "1", "--checkpoints", str(ckpt))
    assert code == 0, err
    run_id = err.rsplit("run ", 1)[1].split()[0]
    return ckpt, run_id


def test_checkpoints_list_as_a_table_and_as_json(folder: tuple[Path, str]) -> None:
    ckpt, run_id = folder
    code, out, err = cli("checkpoints", "list", str(ckpt))
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0].startswith(f"3 checkpoints in {ckpt} (")
    assert lines[1].split() == ["ID", "CREATED", "KIND", "PROCESSOR", "RUN", "SIZE", "NAME"]
    assert [line.split()[4] for line in lines[2:]] == ["<run>", "first", "second"]
    code, out, _ = cli("checkpoints", "list", str(ckpt), "--json", "--run", run_id)
    infos = [json.loads(line) for line in out.splitlines()]
    kinds = [i["metadata"]["kind"] for i in infos]
    assert kinds == ["run", "processor_outputs", "processor_outputs"]
    code, out, _ = cli("checkpoints", "list", str(ckpt), "--run", "other")
    assert code == 0 and out == f"0 checkpoints of run other in {ckpt} (0 B)\n"


def test_checkpoints_show_prints_the_header_and_the_value(folder: tuple[Path, str]) -> None:
    ckpt, _ = folder
    second = CheckpointManager(ckpt).list_checkpoints("second")[0]["checkpoint_id"]
    code, out, err = cli("checkpoints", "show", str(ckpt), second)
    assert code == 0, err
    assert out.splitlines()[0] == f"checkpoint {second}"
    assert "  processor: second" in out and '"kind":"processor_outputs"' in out
    assert "{'output': [2]}" in out
    code, out, _ = cli("checkpoints", "show", str(ckpt), second, "--length", "20")
    assert code == 0 and out.splitlines()[-1] == "  value:     [two/second outpu..."


def test_checkpoints_rm_by_id_by_run_and_all(folder: tuple[Path, str]) -> None:
    ckpt, run_id = folder
    ids = [c["checkpoint_id"] for c in CheckpointManager(ckpt).list_checkpoints()]
    code, out, _ = cli("checkpoints", "rm", str(ckpt), ids[1], ids[1])
    assert code == 0 and out == f"removed 1 checkpoint from {ckpt}\n"
    code, _, err = cli("checkpoints", "rm", str(ckpt), ids[2], "0123456789abcdef-01234567")
    assert code == 2 and "unknown checkpoint id '0123456789abcdef-01234567'" in err
    assert len(CheckpointManager(ckpt).list_checkpoints()) == 2  # nothing removed on error
    code, out, _ = cli("checkpoints", "rm", str(ckpt), "--run", run_id)
    assert code == 0 and out == f"removed 2 checkpoints from {ckpt}\n"
    code, _, err = cli("checkpoints", "rm", str(ckpt), "--run", run_id)
    assert code == 2 and f"no checkpoints of run '{run_id}'" in err
    code, out, _ = cli("checkpoints", "rm", str(ckpt), "--all")
    assert code == 0 and out == f"removed 0 checkpoints from {ckpt}\n"


def test_an_unreadable_checkpoint_is_a_warning_in_list_and_a_failure_in_show(
    folder: tuple[Path, str],
) -> None:
    ckpt, _ = folder
    first = sorted(ckpt.glob("*.arrow"))[0]
    first.write_bytes(first.read_bytes()[:100])  # truncated
    code, out, err = cli("checkpoints", "list", str(ckpt))
    assert code == 0 and out.startswith(f"2 checkpoints in {ckpt}")
    assert err.count("\n") == 1 and err.startswith("mpipe: warning: skipping unreadable")
    code, _, err = cli("checkpoints", "show", str(ckpt), first.stem)
    assert code == 1 and "is unreadable" in one_error_line(err)


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["list", "{tmp}/none"], "checkpoint folder '{tmp}/none' does not exist"),
        (["list", "{tmp}/file.txt"], "'{tmp}/file.txt' is not a folder"),
        (["list", "{tmp}"], "'{tmp}' is not a checkpoint folder (none of its 2 entries"),
        (["show", "{tmp}/empty", "nope"], "unknown checkpoint id 'nope' in '{tmp}/empty'"),
        (["show", "{tmp}/empty", "x", "--length", "3"], "--length must be at least 10"),
        (["rm", "{tmp}/empty"], "needs checkpoint ids, --run RUN_ID or --all"),
        (["rm", "{tmp}/empty", "--all", "--run", "r"], "needs checkpoint ids, --run RUN_ID"),
        (["show", "{tmp}/empty"], "the following arguments are required: ID"),
        (["prune", "{tmp}"], "invalid choice: 'prune'"),
        ([], "the following arguments are required: ACTION"),
    ],
)
def test_checkpoints_usage_errors_exit_2_with_one_line(
    tmp_path: Path, argv: list[str], words: str
) -> None:
    (tmp_path / "file.txt").write_text("x")
    (tmp_path / "empty").mkdir()
    tmp = str(tmp_path)
    code, out, err = cli("checkpoints", *[a.replace("{tmp}", tmp) for a in argv])
    assert code == 2 and out == ""
    assert words.replace("{tmp}", tmp) in one_error_line(err)
    assert not (tmp_path / "none").exists()  # list never creates a folder


def test_an_empty_folder_has_no_checkpoints(tmp_path: Path) -> None:
    code, out, _ = cli("checkpoints", "list", str(tmp_path))
    assert code == 0 and out == f"0 checkpoints in {tmp_path} (0 B)\n"


# -- through a real subprocess ------------------------------------------------------------------


def run_module(*argv: str, fail: bool = False) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(HERE)])}
    env.pop("CFG_HELPERS_FAIL", None)
    if fail:
        env["CFG_HELPERS_FAIL"] = "1"
    return subprocess.run(
        [sys.executable, "-m", "mpipe", *argv],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=60,
    )


@pytest.mark.slow
def test_python_m_mpipe_checkpoint_resume_and_list(tmp_path: Path) -> None:
    ckpt = tmp_path / "ckpt"
    cfg = write_config(tmp_path, graph(second="cfg_helpers:fail_if_env"))
    trace = tmp_path / "t.json"
    proc = run_module(
        "run", cfg, "--input", "1", "--checkpoints", str(ckpt), "--trace", str(trace), fail=True
    )
    assert proc.returncode == 1 and proc.stdout == ""
    assert "CFG_HELPERS_FAIL is set" in one_error_line(proc.stderr) and trace.is_file()
    run_id = proc.stderr.rsplit("--resume ", 1)[1].strip()
    proc = run_module("run", cfg, "--input", "1", "--checkpoints", str(ckpt), "--resume", run_id)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "second:output = 2\n"
    proc = run_module("checkpoints", "list", str(ckpt), "--json")
    assert proc.returncode == 0, proc.stderr
    kinds = [json.loads(line)["processor_id"] for line in proc.stdout.splitlines()]
    assert sorted(kinds) == ["<run>", "first", "second"]
    proc = run_module("checkpoints", "show", str(ckpt), "0000000000000000-00000000")
    assert proc.returncode == 2 and "unknown checkpoint id" in one_error_line(proc.stderr)


def test_show_unpickles_only_when_asked(tmp_path: Path) -> None:
    from fractions import Fraction

    cid = CheckpointManager(tmp_path, allow_pickle=True).create_checkpoint(
        "odd", "p", Fraction(1, 3)
    )
    code, out, _ = cli("checkpoints", "show", str(tmp_path), cid)
    assert code == 0 and "holding pickled objects; restore with allow_pickle=True" in out
    code, out, _ = cli("checkpoints", "show", str(tmp_path), cid, "--allow-pickle")
    assert code == 0 and "Fraction(1, 3)" in out


def test_help_names_the_new_flags_and_actions() -> None:
    code, out, _ = cli("run", "--help")
    assert code == 0
    assert all(f in out for f in ("--progress", "--trace", "--events", "--checkpoints", "--resume"))
    code, out, _ = cli("checkpoints", "--help")
    assert code == 0 and all(a in out for a in ("list", "show", "rm"))


# -- run --report, bench CONFIG -------------------------------------------------------------------


def test_run_writes_a_report(tmp_path: Path) -> None:
    pytest.importorskip("bokeh")
    cfg = write_config(tmp_path, graph())
    report = tmp_path / "run.html"
    code, _out, err = cli("run", cfg, "--input", "1", "--report", str(report))
    assert code == 0, err
    assert f"report written to {report}" in err.splitlines()[-1]
    page = report.read_text()
    assert page.startswith("<!DOCTYPE html>") and "first" in page and "second" in page


@pytest.mark.slow
def test_bench_a_config_across_workers_and_backends(tmp_path: Path) -> None:
    pytest.importorskip("bokeh")
    cfg = write_config(tmp_path, graph())
    items = tmp_path / "in.jsonl"
    items.write_text("".join(f"{n}\n" for n in range(6)))
    report = tmp_path / "scaling.html"
    code, out, err = cli(
        "bench", cfg, "--input-file", str(items), "--workers", "1,2",
        "--backend", "thread,inline", "--rounds", "1", "--report", str(report),
    )  # fmt: skip
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split() == [
        "backend", "workers", "median", "best", "items/s", "speedup", "efficiency"
    ]  # fmt: skip
    rows = [line.split() for line in lines[1:5]]
    assert [(r[0], r[1]) for r in rows] == [
        ("thread", "1"),
        ("thread", "2"),
        ("inline", "1"),
        ("inline", "2"),
    ]
    assert rows[0][5] == "1.00x" and rows[0][6] == "100%"
    assert any(line.startswith("limits throughput: ") for line in lines)
    assert "round 1/1 done" in err and report.read_text().startswith("<!DOCTYPE html>")


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--workers", "1,x"], "--workers: 'x' is not valid"),
        (["--workers", "0"], "--workers: counts must be positive"),
        (["--backend", "gpu"], "--backend: unknown 'gpu'"),
    ],
)
def test_bench_usage_errors(tmp_path: Path, argv: list[str], words: str) -> None:
    cfg = write_config(tmp_path, graph())
    code, _out, err = cli("bench", cfg, "--input", "1", *argv)
    assert code == 2 and words in err, err


def test_bench_report_without_a_config_is_refused() -> None:
    code, _out, err = cli("bench", "--report", "x.html")
    assert code == 2 and "--report needs a graph config" in err
