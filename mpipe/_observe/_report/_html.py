"""The report page: Bokeh plots of a run's data, in one self-contained HTML file.

Bokeh's JavaScript and styles are written into the page itself, so the file opens offline and
nothing is fetched. Every plot's data source has a name (``src_<view>``), so the live dashboard
serves this same page and swaps the sources' data every second (see ``_dashboard.py``).

Bokeh is the ``report`` extra: ``pip install 'processor-pipeline[report]'``.
"""

from __future__ import annotations

import html
from typing import Any

from ..._errors import ConfigurationError

__all__ = ["REPORT_EXTRA", "render_page", "require_bokeh"]

REPORT_EXTRA = "pip install 'processor-pipeline[report]'"

#: Plot height in pixels.
HEIGHT = 260

_STYLE = """
body { font-family: Helvetica, Arial, sans-serif; margin: 18px 28px; color: #222; }
h1 { font-size: 22px; margin: 4px 0 10px; }
h2 { font-size: 16px; margin: 22px 0 6px; border-bottom: 1px solid #ddd; padding-bottom: 3px; }
table { border-collapse: collapse; font-size: 13px; margin: 6px 0 12px; }
th, td { border: 1px solid #ddd; padding: 3px 8px; text-align: right; }
th { background: #f4f6fa; }
td:first-child, th:first-child { text-align: left; }
table.summary th { text-align: left; width: 230px; }
table.summary td { text-align: left; }
p.note { font-size: 13px; color: #555; margin: 4px 0; }
#graph { overflow-x: auto; }
#live-status { font-size: 13px; color: #555; }
.hint { font-size: 12px; color: #666; margin: 2px 0 4px; }
"""

_POLL = """
(function () {
  var every = %(every)d;
  var status = document.getElementById("live-status");
  var updates = 0;
  function apply(d) {
    var docs = (window.Bokeh && Bokeh.documents) || [];
    var doc = docs.length ? docs[0] : null;
    if (doc) {
      Object.keys(d.sources).forEach(function (name) {
        var src = doc.get_model_by_name("src_" + name);
        if (src) { src.data = d.sources[name]; }
      });
      var workers = doc.get_model_by_name("workers_range");
      if (workers) { workers.factors = d.workers; }
      var procs = doc.get_model_by_name("processors_range");
      if (procs) { procs.factors = d.sources.breakdown.processor; }
    }
    document.getElementById("summary").innerHTML = d.summary_html;
    document.getElementById("graph").innerHTML = d.graph_svg;
    document.getElementById("tables").innerHTML = d.table_html;
    updates += 1;
    document.body.dataset.updates = String(updates);
    document.body.dataset.state = d.summary.state;
    document.body.dataset.firings = String(d.summary.firings);
    status.textContent = (d.live ? "live: " : "run ended: ") + d.summary.firings +
      " firings, " + d.summary.wall_seconds.toFixed(1) + " s (updated " +
      new Date().toLocaleTimeString() + ")";
  }
  function poll() {
    fetch("data.json", {cache: "no-store"})
      .then(function (r) { return r.json(); })
      .then(apply)
      .catch(function (e) { status.textContent = "dashboard not reachable (" + e + ")"; })
      .then(function () { setTimeout(poll, every); });
  }
  setTimeout(poll, every);
})();
"""


def require_bokeh() -> Any:
    """Import Bokeh, or say which extra to install.

    Raises:
        ConfigurationError: Bokeh is not installed.
    """
    try:
        import bokeh
    except ImportError:
        raise ConfigurationError(
            "reports and the dashboard need Bokeh: " + REPORT_EXTRA, "report"
        ) from None
    return bokeh


def _figures(data: dict[str, Any]) -> Any:
    from bokeh.layouts import column
    from bokeh.models import (
        ColumnDataSource,
        DataRange1d,
        FactorRange,
        HoverTool,
    )
    from bokeh.plotting import figure

    src = {
        name: ColumnDataSource(data=cols, name=f"src_{name}")
        for name, cols in data["sources"].items()
    }
    x_range = DataRange1d(start=0, name="time_range")
    tools = "xpan,xwheel_zoom,box_zoom,reset,save"

    def timeplot(title: str, y_label: str, **kw: Any) -> Any:
        p = figure(
            title=title,
            height=HEIGHT,
            sizing_mode="stretch_width",
            x_range=x_range,
            tools=tools,
            x_axis_label="seconds since the run started",
            y_axis_label=y_label,
            **kw,
        )
        p.toolbar.logo = None
        return p

    def lines(p: Any, name: str) -> Any:
        r = p.multi_line(
            xs="xs",
            ys="ys",
            line_color="color",
            line_width=2,
            source=src[name],
            legend_field="label",
        )
        p.add_layout(p.legend[0], "right")  # beside the plot, not over the lines
        p.add_tools(HoverTool(renderers=[r], tooltips=[("", "@label"), ("value", "$y{0,0.0}")]))
        return r

    workers = FactorRange(factors=data["workers"], name="workers_range")
    stream = figure(
        title="Task stream: one row per worker (light bars: queued, waiting for the worker)",
        height=max(HEIGHT, 60 + 34 * len(data["workers"])),
        sizing_mode="stretch_width",
        x_range=x_range,
        y_range=workers,
        tools=tools,
        x_axis_label="seconds since the run started",
    )
    stream.toolbar.logo = None
    stream.hbar(
        y="y", left="left", right="right", height=0.7, source=src["waits"],
        fill_color="#d9d9d9", line_color=None, fill_alpha=0.8,
    )  # fmt: skip
    bars = stream.hbar(
        y="y", left="left", right="right", height=0.7, source=src["tasks"],
        fill_color="color", line_color=None,
    )  # fmt: skip
    marks = stream.scatter(
        x="x", y="y", marker="marker", size=11, color="color", source=src["marks"]
    )
    stream.add_tools(
        HoverTool(renderers=[bars], tooltips=[("processor", "@processor"), ("", "@info")]),
        HoverTool(renderers=[marks], tooltips=[("", "@kind @processor"), ("", "@text")]),
    )

    rate = timeplot(
        "Items per second per processor (each firing takes one item from each input)", "items / s"
    )
    lines(rate, "rate")
    fill = timeplot("Pipe fill (items waiting)", "items")
    lines(fill, "fill_items")
    fill_bytes = timeplot("Pipe fill (bytes waiting, estimated)", "MiB")
    lines(fill_bytes, "fill_bytes")
    cpu = timeplot("CPU per process", "CPU %")
    lines(cpu, "cpu")
    rss = timeplot("Memory (RSS) per process", "MiB")
    lines(rss, "rss")
    arena = timeplot("Shared-memory arena", "MiB")
    arena.line(x="x", y="used", source=src["arena"], line_width=2, legend_label="in use")
    arena.line(
        x="x", y="mapped", source=src["arena"], line_width=2, line_dash="dashed",
        color="#888888", legend_label="mapped",
    )  # fmt: skip
    arena.legend.location = "top_left"

    procs = FactorRange(factors=data["sources"]["breakdown"]["processor"], name="processors_range")
    breakdown = figure(
        title="Time per processor: run time and queue wait (seconds, summed over firings)",
        height=max(HEIGHT - 60, 50 + 28 * len(data["processors"])),
        sizing_mode="stretch_width",
        y_range=procs,
        x_range=DataRange1d(start=0),
        tools="save",
        x_axis_label="seconds",
    )
    breakdown.toolbar.logo = None
    breakdown.hbar_stack(
        ["run", "wait"], y="processor", height=0.7, color=["#1f77b4", "#d9d9d9"],
        source=src["breakdown"], legend_label=["run", "queue wait"],
    )  # fmt: skip
    breakdown.legend.location = "bottom_right"
    return column(
        stream, breakdown, rate, fill, fill_bytes, cpu, rss, arena, sizing_mode="stretch_width"
    )  # fmt: skip


def render_page(data: dict[str, Any], *, poll_ms: int | None = None) -> str:
    """The page for one run's data.

    Args:
        data: From :func:`~mpipe._observe._report._data.report_data`.
        poll_ms: Live: fetch ``data.json`` every this many milliseconds and update the page
            (the dashboard); None for a static report.

    Raises:
        ConfigurationError: Bokeh is not installed.
    """
    require_bokeh()
    from bokeh.embed import components
    from bokeh.resources import Resources

    script, div = components(_figures(data))
    resources = Resources(mode="inline", components=["bokeh"])
    s = data["summary"]
    esc = html.escape
    live = poll_ms is not None
    title = f"mpipe {'dashboard' if live else 'report'}: {s['graph_id']} run {s['run_id']}"
    status = (
        '<p id="live-status">live: waiting for the first update</p>'
        if live
        else '<p id="live-status"></p>'
    )
    poll = f"<script>{_POLL % {'every': poll_ms}}</script>" if live else ""
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{esc(title)}</title>
{resources.render_js()}
{resources.render_css()}
<style>{_STYLE}</style>
</head>
<body data-state="{esc(s["state"])}" data-firings="{s["firings"]}" data-updates="0">
<h1>{esc(title)}</h1>
{status}
<h2>Summary</h2>
<div id="summary">{data["summary_html"]}</div>
<h2>Graph: each pipe's peak fill (red: full, where backpressure held producers back)</h2>
<div id="graph">{data["graph_svg"]}</div>
<h2>Timeline</h2>
<p class="hint">Drag to pan and scroll to zoom the time axis, which the plots share; hover
bars and lines for details.</p>
{div}
<h2>Per processor and per pipe</h2>
<div id="tables">{data["table_html"]}</div>
{script}
{poll}
</body>
</html>
"""
