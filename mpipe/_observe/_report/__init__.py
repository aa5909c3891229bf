"""Seeing a run: the HTML performance report and the live dashboard (Bokeh, the ``report``
extra), both built from the monitor's series of a run (``_data.py``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ._data import report_data
from ._html import REPORT_EXTRA, render_page, require_bokeh

__all__ = ["REPORT_EXTRA", "render_page", "report_data", "require_bokeh", "write_report"]


def write_report(series: Any, max_spans: int, path: str | os.PathLike[str]) -> Path:
    """Write the report of one run's series to ``path``; see :meth:`mpipe.Monitor.write_report`."""
    require_bokeh()
    page = render_page(report_data(series, max_spans))
    target = Path(path)
    target.write_text(page, encoding="utf-8")
    return target
