"""The live dashboard: served from its own thread, updated while a run goes."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from mpipe import ConfigurationError, GraphExecutor, Monitor

from ._graphs import chain
from ._pages import artifacts, open_browser

pytest.importorskip("bokeh")


def data_when(url: str, ready: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """The dashboard's data once ``ready(data)`` holds (the run's thread reports on its own
    time); fails after 30 s."""
    deadline = time.monotonic() + 30
    while True:
        data: dict[str, Any] = json.loads(get(url + "data.json")[1])
        if ready(data) or time.monotonic() > deadline:
            return data
        time.sleep(0.02)


def firings(data: dict[str, Any]) -> dict[str, int]:
    return {r["processor"]: r["firings"] for r in data["table"]}


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=20) as reply:
            return reply.status, reply.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


class Gate:
    """Lets a thread-placed processor through one item at a time, on the test's word."""

    def __init__(self) -> None:
        self.passed = threading.Semaphore(0)
        self.arrived = threading.Semaphore(0)

    def __call__(self, x: int) -> int:
        self.arrived.release()
        assert self.passed.acquire(timeout=30)
        return x

    def let_through(self, n: int) -> None:
        for _ in range(n):
            assert self.arrived.acquire(timeout=30)
            self.passed.release()


@pytest.fixture
def gated_run() -> Iterator[tuple[Monitor, Gate, threading.Thread]]:
    """A stream of 10 items through a gated thread stage, run on a thread of the test."""
    gate = Gate()
    monitor = Monitor(log_level="critical", series_interval=0.02)
    graph = chain(("first", lambda x: x), ("gated", gate), graph_id="watched")
    graph.get_processor("gated").execution = "thread"  # type: ignore[attr-defined]
    executor = GraphExecutor(graph, monitor, backend="inline", max_workers=1)
    done = threading.Event()

    def go() -> None:
        asyncio.run(executor.execute_stream({"first": range(10)}))
        done.set()

    runner = threading.Thread(target=go)
    yield monitor, gate, runner
    if runner.is_alive():
        gate.passed.release(20)
        runner.join(30)


def test_bad_settings_are_refused() -> None:
    monitor = Monitor()
    with pytest.raises(ConfigurationError, match="port must be 0 to 65535"):
        monitor.open_dashboard(70000)
    with pytest.raises(ConfigurationError, match="interval must be a positive number"):
        monitor.open_dashboard(interval=0)


def test_waiting_page_before_a_run_and_unknown_paths() -> None:
    with Monitor().open_dashboard() as dash:
        status, body = get(dash.url)
        assert status == 200 and b"Waiting for a run" in body
        assert get(dash.url + "data.json")[0] == 404
        assert get(dash.url + "nope")[0] == 404
    with pytest.raises(OSError):
        urllib.request.urlopen(dash.url, timeout=5)  # closed: the port is released


@pytest.mark.slow
def test_data_follows_the_run_while_it_goes(
    gated_run: tuple[Monitor, Gate, threading.Thread],
) -> None:
    monitor, gate, runner = gated_run
    with monitor.open_dashboard(interval=0.05) as dash:
        runner.start()
        gate.let_through(3)
        assert gate.arrived.acquire(timeout=30)  # the 4th waits at the gate
        data = data_when(dash.url, lambda d: firings(d)["gated"] == 3)
        assert data["live"] and data["summary"]["state"] == "running"
        assert firings(data)["gated"] == 3
        assert dash._thread.name == "mpipe-dashboard"  # served apart from the event loop
        gate.passed.release()
        gate.let_through(6)
        runner.join(30)
        data = data_when(dash.url, lambda d: not d["live"])
        assert data["summary"]["state"] == "done"
        assert firings(data) == {"first": 10, "gated": 10}


@pytest.mark.slow
def test_the_live_page_updates_in_a_browser(
    gated_run: tuple[Monitor, Gate, threading.Thread],
) -> None:
    monitor, gate, runner = gated_run
    with monitor.open_dashboard(interval=0.2) as dash, open_browser() as browser:
        runner.start()
        gate.let_through(2)
        assert gate.arrived.acquire(timeout=30)
        page = browser.page
        page.goto(dash.url)
        browser.wait_for_plots()
        page.wait_for_function("() => Number(document.body.dataset.updates) >= 1")
        assert page.evaluate("document.body.dataset.state") == "running"
        before = int(page.evaluate("document.body.dataset.firings"))
        gate.passed.release()
        gate.let_through(3)
        assert gate.arrived.acquire(timeout=30)
        page.wait_for_function(f"() => Number(document.body.dataset.firings) > {before}")
        page.screenshot(path=str(artifacts() / "dashboard-live.png"), full_page=True)
        gate.passed.release()
        gate.let_through(3)
        runner.join(30)
        page.wait_for_function("() => document.body.dataset.state === 'done'")
        text = browser.text()
        page.screenshot(path=str(artifacts() / "dashboard-done.png"), full_page=True)
    assert not browser.errors, browser.errors
    assert "first" in text and "gated" in text and "run ended" in text
    assert all(u.startswith(dash.url) for u in browser.requests)


def test_cli_dashboard_prints_its_address(tmp_path: Any) -> None:
    from mpipe._cli import main

    cfg = tmp_path / "g.yaml"
    cfg.write_text(
        "processors:\n"
        "  - {processor_id: a, processor_type: simple, parameters: {function: passthrough}}\n"
    )
    import io

    out, err = io.StringIO(), io.StringIO()
    code = main(["run", str(cfg), "--input", "1", "--dashboard", "--linger", "0"], out, err)
    assert code == 0, err.getvalue()
    assert "mpipe: dashboard at http://127.0.0.1:" in err.getvalue()
    assert main(["run", str(cfg), "--dashboard", "99999"], out, err) == 2
    assert "expected a port from 0 to 65535" in err.getvalue()
