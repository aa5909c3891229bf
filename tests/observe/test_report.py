"""The HTML performance report: what it holds, that it stands alone, and how it looks in a
real browser."""

from __future__ import annotations

import html
import itertools
import re
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from mpipe import (
    ConfigurationError,
    GraphExecutor,
    Monitor,
    ProcessingGraph,
    SimpleProcessor,
    SkipStrategy,
)
from mpipe._observe._hooks import RunInfo, Timeline
from mpipe._observe._monitor._series import RunSeries
from mpipe._observe._report import report_data
from mpipe._observe._report._data import BINS, MAX_BARS

from ._pages import artifacts, open_browser

pytest.importorskip("bokeh")


def load(n: int) -> Any:
    yield from range(n)


def work(x: int) -> int:
    total = 0
    for i in range(20_000):
        total += i * x
    if x == 5:
        raise ValueError("five is refused")
    return total


def shout(v: int) -> str:
    return f"{v:,}"


def stream_graph(placement: str) -> ProcessingGraph:
    graph = ProcessingGraph("report_me", error_strategy=SkipStrategy())
    for pid, fn, config in [
        ("load", load, {}),
        ("work", work, {"execution": placement}),
        ("shout", shout, {}),
    ]:
        p = SimpleProcessor(fn, pid, **config)
        p.create_default_pipes()
        graph.add_processor(p)
    graph.connect("load", "output", "work", "input")
    graph.connect("work", "output", "shout", "input")
    return graph


@pytest.fixture(scope="module")
def process_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Monitor]:
    """A report of a run on two worker processes, written once for the module's tests."""
    import asyncio

    monitor = Monitor(log_level="critical", series_interval=0.02)
    executor = GraphExecutor(stream_graph("process"), monitor, max_workers=2)
    result = asyncio.run(executor.execute({"load": 40}))
    assert len(result["shout:output"]) == 39  # item 5 skipped
    path = monitor.write_report(tmp_path_factory.mktemp("report") / "run.html")
    return path, monitor


@pytest.mark.slow
def test_the_report_stands_alone_and_names_everything(
    process_report: tuple[Path, Monitor],
) -> None:
    path, _ = process_report
    page = path.read_text()
    assert page.startswith("<!DOCTYPE html>")
    # Every script and style is in the page: nothing to fetch.
    assert not re.search(r"<script[^>]*\bsrc=", page)
    assert not re.search(r"<link[^>]*\bhref=", page)
    assert "Bokeh" in page and len(page) > 500_000  # BokehJS itself is inline
    for name in ("load", "work", "shout", "load:output->work:input", "work:output->shout:input"):
        assert html.escape(name) in page
    assert "speedup over summed run time" in page
    assert "peak " in page  # each pipe's peak fill on the graph


@pytest.mark.slow
def test_report_data_of_a_process_run(process_report: tuple[Path, Monitor]) -> None:
    _, monitor = process_report
    assert monitor.series is not None
    data = report_data(monitor.series, monitor.trace.max_spans)
    s = data["summary"]
    assert s["state"] == "done" and s["inputs"] == 1 and s["outputs"] == 39
    assert s["firings"] == 1 + 40 + 39
    assert (s["errors"], s["skips"], s["retries"], s["crashes"]) == (1, 1, 0, 0)
    workers = [w for w in s["workers"] if w != "main"]
    assert len(workers) == 2 and all("pid" in w for w in workers)
    rows = {r["processor"]: r for r in data["table"]}
    assert rows["work"]["firings"] == 40 and rows["work"]["placement"] == "process"
    assert rows["work"]["run"] > 0 and rows["work"]["bytes_in"] > 0
    tasks = data["sources"]["tasks"]
    assert len(tasks["y"]) == s["firings"]  # one bar per firing: too few to merge
    assert set(tasks["y"]) == {"main", *workers}
    cpu = data["sources"]["cpu"]
    # A sample at the start and, unless the run was shorter than the interval, at the end.
    assert "parent" in cpu["label"] and all(len(xs) >= 1 for xs in cpu["xs"])
    assert any(y > 0 for ys in data["sources"]["fill_items"]["ys"] for y in ys)
    marks = data["sources"]["marks"]
    assert sorted(marks["kind"]) == ["error", "skip"] and set(marks["processor"]) == {"work"}
    assert max(data["sources"]["arena"]["mapped"]) > 0  # the shared-memory arena


def test_waits_are_inferred_per_worker_and_runs_never_overlap(run: Any) -> None:
    monitor = Monitor(log_level="critical")
    graph = stream_graph("thread")
    run(GraphExecutor(graph, monitor, max_workers=2).execute({"load": 30}))
    assert monitor.series is not None
    data = report_data(monitor.series, monitor.trace.max_spans)
    tasks = data["sources"]["tasks"]
    by_worker: dict[str, list[tuple[float, float]]] = {}
    for y, left, right in zip(tasks["y"], tasks["left"], tasks["right"], strict=True):
        if y != "main":
            by_worker.setdefault(y, []).append((left, right))
    assert by_worker
    for bars in by_worker.values():  # a thread runs one firing at a time
        bars.sort()
        for (_, end), (start, _) in itertools.pairwise(bars):
            assert start >= end - 1e-9


def test_a_million_firings_are_merged_and_still_counted() -> None:
    """The report of a huge run draws merged bars; counts and rates still cover every firing."""
    timeline = Timeline()
    t0 = time.perf_counter()
    info = RunInfo("r", "huge", ["a", "b"], {"a": "inline", "b": "thread"}, time.time())
    series = RunSeries(info, timeline)
    chunk = 1000
    for n in range(500):  # 1,000,000 rows: 500 chunks of 1,000 per processor
        start = t0 + n * 0.002
        timeline.spans.add_run("a", n * chunk, start, start + 0.001, "main", chunk)
        timeline.spans.add_run("b", n * chunk, start, start + 0.002, "worker-1", chunk)
    series.sample()
    series.end(None)
    data = report_data(series, max_spans=10**7)
    assert data["summary"]["firings"] == 1_000_000
    bars = data["sources"]["tasks"]
    assert len(bars["y"]) <= 2 * BINS < MAX_BARS
    merged = sum(int(i.split()[0]) for i in bars["info"])
    assert merged == 1_000_000
    assert data["summary"]["merged_bars"] == 1_000_000 - len(bars["y"])


def test_write_report_before_any_run_and_without_bokeh(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ValueError, match="has not watched a run yet"):
        Monitor().write_report(tmp_path / "r.html")
    monkeypatch.setitem(sys.modules, "bokeh", None)
    with pytest.raises(ConfigurationError, match=r"pip install 'processor-pipeline\[report\]'"):
        Monitor().write_report(tmp_path / "r.html")


@pytest.mark.slow
def test_the_report_renders_in_a_browser_offline(process_report: tuple[Path, Monitor]) -> None:
    path, _ = process_report
    with open_browser() as browser:
        browser.page.goto(path.as_uri())
        inked = browser.wait_for_plots()
        shot = artifacts() / "report.png"
        browser.page.screenshot(path=str(shot), full_page=True)
        text = browser.text()
        outside = [u for u in browser.requests if not u.startswith("file:")]
    assert sum(1 for n in inked if n > 500) >= 8  # every plot drew something
    assert not browser.errors, browser.errors
    assert not outside, outside  # nothing fetched: it opens offline
    for pid in ("load", "work", "shout"):
        assert pid in text
    assert "Task stream" in text or "errors / retries / skips / crashes" in text
    assert shot.stat().st_size > 10_000
