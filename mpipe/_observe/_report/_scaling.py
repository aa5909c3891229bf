"""The scaling report of ``mpipe bench CONFIG``: one self-contained HTML page (Bokeh inline)
with the scaling curve per backend, parallel efficiency, and what kept each processor busy at
the most workers."""

from __future__ import annotations

import html
import os
from pathlib import Path
from typing import Any

from ._data import PALETTE
from ._html import _STYLE, require_bokeh

__all__ = ["write_scaling_report"]


def write_scaling_report(result: Any, lines: list[str], path: str | os.PathLike[str]) -> Path:
    """Write the page for a :class:`~mpipe._cli._scaling.ScalingResult`.

    Raises:
        ConfigurationError: Bokeh is not installed.
        OSError: The file cannot be written.
    """
    require_bokeh()
    from bokeh.embed import components
    from bokeh.layouts import column
    from bokeh.models import ColumnDataSource, DataRange1d, FactorRange, HoverTool
    from bokeh.plotting import figure
    from bokeh.resources import Resources

    backends = list(dict.fromkeys(s.backend for s in result.settings))
    curve = figure(
        title="Items per second by workers (dashed: perfect scaling from the fewest workers)",
        height=320,
        sizing_mode="stretch_width",
        x_axis_label="workers",
        y_axis_label="items / s",
        tools="save",
    )
    eff = figure(
        title="Parallel efficiency (speedup over the ratio of workers)",
        height=260,
        sizing_mode="stretch_width",
        x_axis_label="workers",
        y_axis_label="efficiency",
        y_range=DataRange1d(start=0),
        tools="save",
    )
    for n, backend in enumerate(backends):
        settings = [s for s in result.settings if s.backend == backend]
        colour = PALETTE[n % len(PALETTE)]
        src = ColumnDataSource(
            {
                "workers": [s.workers for s in settings],
                "rate": [s.rate for s in settings],
                "ideal": [
                    result.base(s).rate * s.workers / result.base(s).workers for s in settings
                ],
                "efficiency": [result.efficiency(s) for s in settings],
                "speedup": [result.speedup(s) for s in settings],
                "median_ms": [s.median * 1e3 for s in settings],
            },
            name=f"src_scaling_{backend}",
        )
        curve.line("workers", "rate", source=src, color=colour, line_width=2, legend_label=backend)
        curve.scatter("workers", "rate", source=src, color=colour, size=8)
        curve.line("workers", "ideal", source=src, color=colour, line_dash="dashed", alpha=0.6)
        eff.line(
            "workers", "efficiency", source=src, color=colour, line_width=2, legend_label=backend
        )
        eff.scatter("workers", "efficiency", source=src, color=colour, size=8)
    curve.add_tools(
        HoverTool(
            tooltips=[
                ("workers", "@workers"),
                ("items/s", "@rate{0,0.0}"),
                ("speedup", "@speedup{0.00}x"),
                ("median", "@median_ms{0.0} ms"),
            ]
        )
    )
    for p in (curve, eff):
        p.toolbar.logo = None
        p.legend.location = "top_left"

    top = max(result.settings, key=lambda s: (s.workers, s.rate))
    procs = sorted(top.busy, key=lambda k: top.busy[k])
    busy = figure(
        title=(
            f"Busy fraction per processor at {top.workers} workers ({top.backend}): "
            "summed firing time over wall time and the slots it could use"
        ),
        height=max(200, 60 + 30 * len(procs)),
        sizing_mode="stretch_width",
        y_range=FactorRange(factors=procs),
        x_range=DataRange1d(start=0),
        x_axis_label="busy fraction",
        tools="save",
    )
    busy.hbar(
        y="processor",
        right="busy",
        height=0.7,
        source=ColumnDataSource(
            {"processor": procs, "busy": [top.busy[p] for p in procs]}, name="src_busy"
        ),
        color="#1f77b4",
    )
    busy.toolbar.logo = None
    script, div = components(column(curve, eff, busy, sizing_mode="stretch_width"))
    resources = Resources(mode="inline", components=["bokeh"])
    esc = html.escape
    title = f"mpipe scaling: {result.graph_id}"
    page = f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{esc(title)}</title>
{resources.render_js()}
{resources.render_css()}
<style>{_STYLE}</style>
</head>
<body>
<h1>{esc(title)}</h1>
<pre id="table">{esc(chr(10).join(lines))}</pre>
{div}
{script}
</body>
</html>
"""
    target = Path(path)
    target.write_text(page, encoding="utf-8")
    return target
