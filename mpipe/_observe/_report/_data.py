"""What a report shows, as plain columns: built from a run's series and spans, with numpy only.

The same data feeds the HTML report (written once) and the live dashboard (sent as JSON every
second), so both show the same views. Everything here reads, never writes, the run's state, so
the dashboard's thread may call it while the run goes.

Large runs are reduced before they reach the browser:

- the task stream draws each firing as a bar up to ``MAX_BARS`` bars; past that, firings of
  one processor on one worker are merged per slice of time (``BINS`` slices over the run), each
  merged bar saying how many firings it holds;
- the series are already thinned to a bounded number of points (see ``_series.py``).

Queue waits are inferred: a worker process or thread runs one firing at a time, so a firing
handed to a worker that was still busy waited until the worker's earlier firings had ended.
The bar of such a firing is split into its wait (drawn apart, light) and its run. Firings in the
event loop (``main``) may really overlap (async processors), so they get no inferred wait.
"""

from __future__ import annotations

import html
import re
from typing import Any

import numpy as np

from .._layout import graph_layout, svg_of_layout
from .._monitor._series import RunSeries

__all__ = ["BINS", "MAX_BARS", "PALETTE", "report_data"]

#: Firings drawn one bar each in the task stream; past this, merged per time slice.
MAX_BARS = 20_000

#: Time slices of a merged task stream.
BINS = 1_000

#: Colours by processor (and by pipe, by process) in order of appearance.
PALETTE = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94",
    "#f7b6d2", "#c7c7c7", "#dbdb8d", "#9edae5",
]  # fmt: skip

MARK_STYLE = {
    "error": ("#d62728", "x"),
    "retry": ("#ff7f0e", "triangle"),
    "skip": ("#bcbd22", "inverted_triangle"),
    "crash": ("#000000", "diamond"),
}

EVENTS_ROW = "errors, retries, skips, crashes"

_PID_IN_NAME = re.compile(r"pid (\d+)")


def _colour(n: int) -> str:
    return PALETTE[n % len(PALETTE)]


def _fmt_seconds(s: float) -> str:
    if s >= 100:
        return f"{s:,.0f} s"
    if s >= 1:
        return f"{s:.2f} s"
    if s >= 1e-3:
        return f"{s * 1e3:.1f} ms"
    return f"{s * 1e6:.0f} us"


def _fmt_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024
    return f"{n:,.1f} GiB"  # pragma: no cover


def _producer_id(node: Any) -> str | None:
    """The processor whose outputs enter a lane: the node's, or a fused group's last one."""
    fused = getattr(node, "fused", None)
    if fused is not None:
        return str(fused.ids[-1])
    return getattr(node, "node_id", None)


def _lane_label(lane: Any, cid: str | None) -> str:
    if cid is not None:
        return cid
    producer = _producer_id(lane.producer)
    consumer = getattr(lane.consumer, "node_id", None)
    if consumer is not None:  # an entry lane: the run's input into a source
        return f"input->{consumer}:{_pipe_name(lane, consumer)}"
    if producer is not None:
        return f"{producer}:{_pipe_name(lane, producer)}->results"
    return str(lane.pipe_id)


def _pipe_name(lane: Any, pid: str) -> str:
    for node in (lane.consumer, lane.producer):
        proc = getattr(node, "processor", None)
        fused = getattr(node, "fused", None)
        if fused is not None and pid in fused.ids:  # a fused group's node: its processor's
            proc = fused.processors[fused.ids.index(pid)]
        elif proc is None or getattr(node, "node_id", None) != pid:
            continue
        for pipes in (proc.input_pipes, proc.output_pipes):
            for name, pipe in pipes.items():
                if pipe is lane.pipe:
                    return str(name)
    return str(lane.pipe_id)


class _Spans:
    """The run's spans as columns, with inferred waits."""

    def __init__(self, series: RunSeries, max_spans: int, tail: int | None) -> None:
        timeline = series.timeline
        stop = min(len(timeline), max_spans)
        first = max(stop - tail, 0) if tail is not None else 0
        rows = timeline.rows(first, stop)
        self.first = first
        self.kept = len(rows)
        origin = series.started
        pids = [r[0] for r in rows]
        workers = [r[4] for r in rows]
        self.start = np.fromiter((r[2] for r in rows), np.float64, len(rows)) - origin
        self.end = np.fromiter((r[3] for r in rows), np.float64, len(rows)) - origin
        self.index = np.fromiter((r[1] for r in rows), np.int64, len(rows))
        self.proc_names = list(dict.fromkeys([*series.processor_ids, *pids]))
        code = {p: n for n, p in enumerate(self.proc_names)}
        self.proc = np.fromiter((code[p] for p in pids), np.intp, len(rows))
        self.worker_names = sorted(set(workers), key=_worker_order)
        wcode = {w: n for n, w in enumerate(self.worker_names)}
        self.worker = np.fromiter((wcode[w] for w in workers), np.intp, len(rows))
        self.failed = np.zeros(len(rows), bool)
        for row in list(timeline.errors):
            if first <= row < stop:
                self.failed[row - first] = True
        self.wait = self._waits()

    def _waits(self) -> Any:
        wait = np.zeros(len(self.start))
        for w, name in enumerate(self.worker_names):
            if name == "main":
                continue
            idx = np.flatnonzero(self.worker == w)
            if len(idx) < 2:
                continue
            order = idx[np.argsort(self.start[idx], kind="stable")]
            ends = self.end[order]
            free_at = np.maximum.accumulate(ends)
            prev = np.concatenate(([-np.inf], free_at[:-1]))
            starts = self.start[order]
            wait[order] = np.clip(prev - starts, 0.0, ends - starts)
        return wait


def _worker_order(name: str) -> tuple[int, str]:
    return (0 if name == "main" else 1, name)


def _task_stream(spans: _Spans, colours: list[str]) -> tuple[dict[str, Any], dict[str, Any], int]:
    """Bars (runs) and wait bars; merged per time slice past MAX_BARS firings."""
    n = len(spans.start)
    names = spans.proc_names
    if n == 0:
        empty: dict[str, Any] = {
            k: [] for k in ("y", "left", "right", "processor", "color", "info")
        }
        return empty, {k: [] for k in ("y", "left", "right", "processor")}, 0
    run_left = spans.start + spans.wait
    if n <= MAX_BARS:
        workers = [spans.worker_names[w] for w in spans.worker.tolist()]
        procs = [names[p] for p in spans.proc.tolist()]
        info = [
            f"#{i}, {_fmt_seconds(d)}"
            + (f" after {_fmt_seconds(w)} queued" if w > 0 else "")
            + (" (failed)" if f else "")
            for i, d, w, f in zip(
                spans.index.tolist(),
                (spans.end - run_left).tolist(),
                spans.wait.tolist(),
                spans.failed.tolist(),
                strict=True,
            )
        ]
        bars = {
            "y": workers,
            "left": run_left.tolist(),
            "right": spans.end.tolist(),
            "processor": procs,
            "color": [colours[p] for p in spans.proc.tolist()],
            "info": info,
        }
        waited = np.flatnonzero(spans.wait > 0)
        waits = {
            "y": [workers[i] for i in waited.tolist()],
            "left": spans.start[waited].tolist(),
            "right": run_left[waited].tolist(),
            "processor": [procs[i] for i in waited.tolist()],
        }
        return bars, waits, 0
    # Merge: one bar per (worker, processor, time slice), from its first start to last end.
    t_end = float(spans.end.max()) or 1.0
    width = t_end / BINS
    slices = np.minimum((spans.start / width).astype(np.int64), BINS - 1)
    n_procs = len(names)
    key = (spans.worker.astype(np.int64) * n_procs + spans.proc) * BINS + slices
    order = np.argsort(key, kind="stable")
    key_sorted = key[order]
    heads = np.flatnonzero(np.concatenate(([True], key_sorted[1:] != key_sorted[:-1])))
    counts = np.diff(np.concatenate((heads, [n])))
    left = np.minimum.reduceat(run_left[order], heads)
    right = np.maximum.reduceat(spans.end[order], heads)
    wait_left = np.minimum.reduceat(spans.start[order], heads)
    waited = np.add.reduceat(spans.wait[order], heads)
    head_keys = key_sorted[heads]
    worker_codes = (head_keys // BINS) // n_procs
    proc_codes = (head_keys // BINS) % n_procs
    workers = [spans.worker_names[w] for w in worker_codes.tolist()]
    procs = [names[p] for p in proc_codes.tolist()]
    bars = {
        "y": workers,
        "left": left.tolist(),
        "right": right.tolist(),
        "processor": procs,
        "color": [colours[p] for p in proc_codes.tolist()],
        "info": [
            f"{c} firings merged" + (f", {_fmt_seconds(w)} queued in all" if w > 0 else "")
            for c, w in zip(counts.tolist(), waited.tolist(), strict=True)
        ],
    }
    some = np.flatnonzero(waited > 0)
    waits = {
        "y": [workers[i] for i in some.tolist()],
        "left": wait_left[some].tolist(),
        "right": np.minimum(left[some], right[some]).tolist(),
        "processor": [procs[i] for i in some.tolist()],
    }
    return bars, waits, n - len(heads)


def _lines(
    t: Any, rows: list[tuple[str, Any]], colours: list[str] | None = None
) -> dict[str, list[Any]]:
    """A multi-line source: one line per (label, values)."""
    ts = t.tolist() if hasattr(t, "tolist") else list(t)
    return {
        "xs": [ts for _ in rows],
        "ys": [v.tolist() if hasattr(v, "tolist") else list(v) for _, v in rows],
        "label": [label for label, _ in rows],
        "color": colours if colours is not None else [_colour(n) for n in range(len(rows))],
    }


def report_data(series: RunSeries, max_spans: int, tail: int | None = None) -> dict[str, Any]:
    """Every view of one run, as JSON-compatible columns and HTML fragments.

    Args:
        series: The run's series (from the monitor).
        max_spans: Span rows kept in the run's trace.
        tail: Draw only the last this many firings of the trace (the live dashboard).

    Returns:
        ``sources`` (name -> columns, for the plots), ``workers`` (task stream rows),
        ``processors``, ``summary`` (numbers), ``summary_html``, ``graph_svg``,
        ``table_html``, ``table`` (per processor: firings, run and wait seconds, ...),
        ``pipes`` (per pipe: peak fill, capacity, seconds producers were blocked), ``live``,
        ``dask_dashboard``.
    """
    points = series.snapshot()
    procs_samples = list(series.procs)
    marks = list(series.marks)
    live = series.live
    wall = series.wall()
    spans = _Spans(series, max_spans, tail)
    proc_names = spans.proc_names
    colours = [_colour(n) for n in range(len(proc_names))]
    colour_of = dict(zip(proc_names, colours, strict=True))

    # Per processor: counts and busy time from the series (exact); waits from the spans.
    pids = series.processor_ids
    last = points[-1] if points else None
    firings = dict(zip(pids, last[3], strict=True)) if last else dict.fromkeys(pids, 0)
    busy = dict(zip(pids, last[4], strict=True)) if last else dict.fromkeys(pids, 0.0)
    if live:  # firings since the last sample, counted without touching the series
        spans_now = series.timeline.spans
        stop = len(spans_now)
        start = min(series.cursor, stop)
        if last is not None and start < stop:
            for pid in spans_now.ids(start, stop):
                if pid in firings:
                    firings[pid] += 1
    wait_of = dict.fromkeys(proc_names, 0.0)
    run_of = dict.fromkeys(proc_names, 0.0)
    durations: dict[str, Any] = {}
    if len(spans.start):
        dur = spans.end - spans.start
        w = np.bincount(spans.proc, weights=spans.wait, minlength=len(proc_names))
        r = np.bincount(spans.proc, weights=dur - spans.wait, minlength=len(proc_names))
        wait_of = dict(zip(proc_names, w.tolist(), strict=True))
        run_of = dict(zip(proc_names, r.tolist(), strict=True))
        order = np.argsort(spans.proc, kind="stable")
        bounds = np.searchsorted(spans.proc[order], np.arange(len(proc_names) + 1))
        for n, pid in enumerate(proc_names):
            durations[pid] = (dur - spans.wait)[order[bounds[n] : bounds[n + 1]]]
    traced_all = spans.first == 0 and spans.kept == sum(firings.values())
    for pid in pids:  # past the trace: the series' busy time, less the waits seen
        if not traced_all:
            run_of[pid] = max(busy.get(pid, 0.0) - wait_of.get(pid, 0.0), run_of.get(pid, 0.0))

    # Lanes: labels, traffic, and which connection each carries.
    graph = series.graph
    cid_of: dict[int, str] = {}
    if graph is not None:
        cid_of = {id(pipe): cid for cid, pipe in graph.pipes.items()}
    lane_labels = [_lane_label(lane, cid_of.get(id(lane.pipe))) for lane in series.lanes]
    lane_metrics = series.lane_metrics or [lane.get_metrics() for lane in series.lanes]
    lane_bytes_in = {lbl: m["bytes_in"] for lbl, m in zip(lane_labels, lane_metrics, strict=True)}
    bytes_in = dict.fromkeys(proc_names, 0)
    bytes_out = dict.fromkeys(proc_names, 0)
    for lane, m in zip(series.lanes, lane_metrics, strict=True):
        consumer = getattr(lane.consumer, "node_id", None)
        producer = _producer_id(lane.producer)
        if consumer in bytes_in:
            bytes_in[consumer] += m["bytes_in"]
        if producer in bytes_out:
            bytes_out[producer] += m["bytes_in"]

    # Time series.
    if points:
        t = np.array([0.0] + [p[0] for p in points])
        counts = np.array([[0] * len(pids)] + [list(p[3]) for p in points], dtype=np.float64)
        items = np.array([[0] * len(lane_labels)] + [list(p[1]) for p in points], np.float64)
        nbytes = np.array([[0.0] * len(lane_labels)] + [list(p[2]) for p in points])
        used = np.array([0] + [p[5] for p in points], np.float64)
        mapped = np.array([0] + [p[6] for p in points], np.float64)
    else:
        t = np.zeros(1)
        counts = np.zeros((1, len(pids)))
        items = np.zeros((1, len(lane_labels)))
        nbytes = np.zeros((1, len(lane_labels)))
        used = mapped = np.zeros(1)
    # Items per second: over a window of a few points, so that bursts read as rates.
    step = 3 if len(t) > 6 else 1
    if len(t) > 1:
        back = np.maximum(np.arange(len(t)) - step, 0)
        span_t = np.maximum(t - t[back], 1e-9)
        rates = (counts - counts[back]) / span_t[:, None]
        rates[0] = 0.0
    else:
        rates = np.zeros_like(counts)
    rate_src = _lines(
        t, [(pid, rates[:, n]) for n, pid in enumerate(pids)], [colour_of[p] for p in pids]
    )
    fill_items = _lines(t, [(lbl, items[:, n]) for n, lbl in enumerate(lane_labels)])
    fill_bytes = _lines(t, [(lbl, nbytes[:, n] / 2**20) for n, lbl in enumerate(lane_labels)])
    arena = {
        "x": t.tolist(),
        "used": (used / 2**20).tolist(),
        "mapped": (mapped / 2**20).tolist(),
    }

    # Processes: CPU% and RSS of the parent and each worker.
    names_by_pid = _worker_names(series)
    proc_rows: dict[str, tuple[list[float], list[float], list[float]]] = {}
    for at, sample in procs_samples:
        facts = [("parent", sample.get("parent") or {})]
        facts += [
            (names_by_pid.get(int(k), f"worker (pid {k})"), v)
            for k, v in (sample.get("workers") or {}).items()
        ]
        for label, f in facts:
            if not f:
                continue
            row = proc_rows.setdefault(label, ([], [], []))
            row[0].append(at)
            row[1].append(float(f.get("cpu_percent", 0.0)))
            row[2].append(float(f.get("rss_bytes", 0)) / 2**20)
    labels = list(proc_rows)
    cpu = {
        "xs": [proc_rows[k][0] for k in labels],
        "ys": [proc_rows[k][1] for k in labels],
        "label": labels,
        "color": [_colour(n) for n in range(len(labels))],
    }
    rss = {**cpu, "ys": [proc_rows[k][2] for k in labels]}

    # Task stream and marks.
    bars, waits, merged = _task_stream(spans, colours)
    mark_src: dict[str, list[Any]] = {
        k: [] for k in ("x", "y", "kind", "processor", "text", "color", "marker")
    }
    for at, kind, pid, text in marks:
        colour, marker = MARK_STYLE.get(kind, ("#000000", "circle"))
        mark_src["x"].append(at)
        mark_src["y"].append(EVENTS_ROW)
        mark_src["kind"].append(kind)
        mark_src["processor"].append(pid)
        mark_src["text"].append(text[:200])
        mark_src["color"].append(colour)
        mark_src["marker"].append(marker)
    worker_rows = [EVENTS_ROW, *reversed(spans.worker_names)]

    breakdown = {
        "processor": list(reversed(proc_names)),
        "run": [run_of.get(p, 0.0) for p in reversed(proc_names)],
        "wait": [wait_of.get(p, 0.0) for p in reversed(proc_names)],
    }

    # Summary.
    sources = graph.sources() if graph is not None else []
    sinks = graph.sinks() if graph is not None else []
    inputs = sum(firings.get(s, 0) for s in sources)
    outputs = sum(
        m["items_in"]
        for lane, m in zip(series.lanes, lane_metrics, strict=True)
        if _producer_id(lane.producer) in sinks and getattr(lane.consumer, "node_id", None) is None
    )
    summed = sum(run_of.values())
    kinds = [k for _, k, _, _ in marks]
    summary = {
        "graph_id": series.graph_id,
        "run_id": series.run_id,
        "state": "running" if live else ("failed" if series.error else "done"),
        "error": series.error,
        "wall_seconds": wall,
        "inputs": inputs,
        "outputs": outputs,
        "firings": int(sum(firings.values())),
        "summed_run_seconds": summed,
        "speedup": summed / wall if wall > 0 else 0.0,
        "errors": kinds.count("error"),
        "retries": kinds.count("retry"),
        "skips": kinds.count("skip"),
        "crashes": kinds.count("crash"),
        "marks_dropped": series.marks_dropped,
        "traced_firings": spans.kept,
        "merged_bars": merged,
        "workers": [w for w in spans.worker_names],
    }
    peaks = {
        lbl: (m["peak_size"], m["max_size"], m["blocked_time"])
        for lbl, m in zip(lane_labels, lane_metrics, strict=True)
    }
    if not live:  # the lanes were emptied at the end; the series saw their peaks while live
        for n, lbl in enumerate(lane_labels):
            seen = int(items[:, n].max()) if len(items) else 0
            peak, size, blocked = peaks[lbl]
            peaks[lbl] = (max(peak, seen), size, blocked)
    table_rows = []
    for pid in proc_names:
        d = durations.get(pid)
        table_rows.append(
            {
                "processor": pid,
                "placement": series.placements.get(pid, ""),
                "firings": int(firings.get(pid, len(d) if d is not None else 0)),
                "total": series.totals.get(pid),
                "run": run_of.get(pid, 0.0),
                "wait": wait_of.get(pid, 0.0),
                "mean": float(d.mean()) if d is not None and len(d) else 0.0,
                "p95": float(np.percentile(d, 95)) if d is not None and len(d) else 0.0,
                "bytes_in": bytes_in.get(pid, 0),
                "bytes_out": bytes_out.get(pid, 0),
                "errors": sum(1 for _, k, p, _ in marks if k == "error" and p == pid),
                "retries": sum(1 for _, k, p, _ in marks if k == "retry" and p == pid),
                "skips": sum(1 for _, k, p, _ in marks if k == "skip" and p == pid),
            }
        )
    return {
        "sources": {
            "tasks": bars,
            "waits": waits,
            "marks": mark_src,
            "rate": rate_src,
            "fill_items": fill_items,
            "fill_bytes": fill_bytes,
            "cpu": cpu,
            "rss": rss,
            "arena": arena,
            "breakdown": breakdown,
        },
        "workers": worker_rows,
        "processors": proc_names,
        "summary": summary,
        "summary_html": _summary_html(summary, series),
        "graph_svg": _graph_svg(series, peaks, lane_labels, cid_of),
        "table_html": _table_html(table_rows, lane_labels, lane_metrics, lane_bytes_in, peaks),
        "table": table_rows,
        "pipes": [
            {"pipe": lbl, "peak": p[0], "max_size": p[1], "blocked_seconds": p[2]}
            for lbl, p in peaks.items()
        ],
        "live": live,
        "dask_dashboard": series.dask_dashboard(),
    }


def _worker_names(series: RunSeries) -> dict[int, str]:
    names: dict[int, str] = {}
    for backend in series.backends:
        try:
            workers = backend.metrics().get("workers") or {}
        except Exception:
            continue
        for name, facts in workers.items():
            pid = facts.get("pid") if isinstance(facts, dict) else None
            if isinstance(pid, int):
                names[pid] = str(name)
            else:
                found = _PID_IN_NAME.search(str(name))
                if found:
                    names[int(found.group(1))] = str(name)
    return names


def _summary_html(s: dict[str, Any], series: RunSeries) -> str:
    esc = html.escape
    cells = [
        ("graph", esc(str(s["graph_id"]))),
        ("run", esc(str(s["run_id"]))),
        ("state", esc(s["state"]) + (f": {esc(s['error'])}" if s["error"] else "")),
        ("wall time", _fmt_seconds(s["wall_seconds"])),
        ("inputs", f"{s['inputs']:,}"),
        ("outputs", f"{s['outputs']:,}"),
        ("firings", f"{s['firings']:,}"),
        ("summed run time", _fmt_seconds(s["summed_run_seconds"])),
        ("speedup over summed run time", f"{s['speedup']:.2f}x"),
        (
            "errors / retries / skips / crashes",
            f"{s['errors']} / {s['retries']} / {s['skips']} / {s['crashes']}",
        ),
        ("workers", esc(", ".join(w for w in s["workers"]) or "none")),
    ]
    out = ['<table class="summary">']
    out += [f'<tr><th>{k}</th><td data-key="{esc(k)}">{v}</td></tr>' for k, v in cells]
    out.append("</table>")
    notes = []
    if s["traced_firings"] < s["firings"]:
        notes.append(
            f"The task stream and queue waits show the first {s['traced_firings']:,} firings "
            f"(the trace's limit); counts and rates cover all {s['firings']:,}."
        )
    if s["merged_bars"]:
        notes.append(
            "Firings too many to draw one by one are merged per time slice; hover a bar "
            "for how many it holds."
        )
    if s["marks_dropped"]:
        notes.append(f"{s['marks_dropped']:,} more errors, retries or skips were not marked.")
    link = series.dask_dashboard()
    if link:
        notes.append(
            f'Dask cluster dashboard: <a href="{esc(link)}" target="_blank">{esc(link)}</a>'
        )
    out += [f'<p class="note">{n}</p>' for n in notes]
    return "\n".join(out)


def _graph_svg(
    series: RunSeries,
    peaks: dict[str, tuple[int, int, float]],
    lane_labels: list[str],
    cid_of: dict[int, str],
) -> str:
    graph = series.graph
    if graph is None or not graph.nodes:
        return "<p>(no graph)</p>"
    notes = {}
    for conn in graph.connections:
        cid = f"{conn[0]}:{conn[1]}->{conn[2]}:{conn[3]}"
        if cid not in peaks:
            continue
        peak, size, blocked = peaks[cid]
        share = peak / size if size else 0.0
        colour = "#2ca02c" if share < 0.5 else "#ff7f0e" if share < 0.9 else "#d62728"
        text = f"peak {peak}/{size}" + (f", blocked {_fmt_seconds(blocked)}" if blocked else "")
        notes[conn] = (text, colour)
    return svg_of_layout(graph_layout(graph), str(series.graph_id), notes)


def _table_html(
    rows: list[dict[str, Any]],
    lane_labels: list[str],
    lane_metrics: list[dict[str, Any]],
    lane_bytes: dict[str, int],
    peaks: dict[str, tuple[int, int, float]],
) -> str:
    esc = html.escape
    head = (
        "<tr><th>processor</th><th>placement</th><th>firings</th><th>run time</th>"
        "<th>queue wait</th><th>mean run</th><th>p95 run</th><th>bytes in</th>"
        "<th>bytes out</th><th>errors</th><th>retries</th><th>skips</th></tr>"
    )
    out = ['<table class="breakdown">', head]
    for r in rows:
        done = f"{r['firings']:,}" + (f" / {r['total']:,}" if r["total"] is not None else "")
        out.append(
            f"<tr><td>{esc(r['processor'])}</td><td>{esc(r['placement'])}</td><td>{done}</td>"
            f"<td>{_fmt_seconds(r['run'])}</td><td>{_fmt_seconds(r['wait'])}</td>"
            f"<td>{_fmt_seconds(r['mean'])}</td><td>{_fmt_seconds(r['p95'])}</td>"
            f"<td>{_fmt_bytes(r['bytes_in'])}</td><td>{_fmt_bytes(r['bytes_out'])}</td>"
            f"<td>{r['errors']}</td><td>{r['retries']}</td><td>{r['skips']}</td></tr>"
        )
    out.append("</table>")
    out.append('<table class="pipes">')
    out.append(
        "<tr><th>pipe</th><th>items</th><th>bytes</th><th>peak fill</th>"
        "<th>producer blocked</th></tr>"
    )
    for lbl, m in zip(lane_labels, lane_metrics, strict=True):
        peak, size, blocked = peaks[lbl]
        out.append(
            f"<tr><td>{esc(lbl)}</td><td>{m['items_in']:,}</td>"
            f"<td>{_fmt_bytes(lane_bytes[lbl])}</td><td>{peak} / {size}</td>"
            f"<td>{_fmt_seconds(blocked)}</td></tr>"
        )
    out.append("</table>")
    return "\n".join(out)
