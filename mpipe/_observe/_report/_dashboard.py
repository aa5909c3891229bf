"""The live dashboard: the report's page, served on localhost and updated while a run goes.

A :class:`Dashboard` runs an HTTP server on a thread of its own; the scheduler's event loop
never serves a request. ``GET /`` is the report page of the monitor's current (or last) run,
with a script that fetches ``GET /data.json`` every ``interval`` seconds and swaps the plots'
data in place. The data is built on the server's thread from what the monitor's series and the
run's timeline hold (read, never written), at most once per interval whatever the number of
open pages, and from the last ``LIVE_SPANS`` firings only while the run is live, so that
watching a run costs it little.
"""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson

from ..._errors import ConfigurationError
from ._data import report_data
from ._html import render_page, require_bokeh

__all__ = ["LIVE_SPANS", "Dashboard"]

#: Firings drawn in the live task stream (the most recent); a finished run's page has them all.
LIVE_SPANS = 5000

_WAITING = b"""<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">
<meta http-equiv="refresh" content="1"><title>mpipe dashboard</title></head>
<body data-state="waiting"><h1>mpipe dashboard</h1>
<p>Waiting for a run to start; this page reloads every second.</p></body></html>"""


class Dashboard:
    """A live view of a monitor's runs in the browser (see :meth:`mpipe.Monitor.open_dashboard`).

    Args:
        monitor: The monitor whose runs are shown.
        port: TCP port (0: a free one).
        host: Address to listen on.
        interval: Seconds between the page's updates.

    Raises:
        ConfigurationError: Bokeh is not installed, or a bad port or interval.
        OSError: The port cannot be opened.
    """

    def __init__(
        self, monitor: Any, *, port: int = 0, host: str = "127.0.0.1", interval: float = 1.0
    ) -> None:
        require_bokeh()
        if not isinstance(port, int) or isinstance(port, bool) or not 0 <= port <= 65535:
            raise ConfigurationError(f"dashboard port must be 0 to 65535, got {port!r}", "port")
        if not isinstance(interval, (int, float)) or isinstance(interval, bool) or interval <= 0:
            raise ConfigurationError(
                f"dashboard interval must be a positive number, got {interval!r}", "interval"
            )
        self.monitor = monitor
        self.interval = float(interval)
        self.requests = 0
        self._lock = threading.Lock()
        self._cache: tuple[float, int, bool, bytes] | None = None  # when, series, live, json
        self._closed = threading.Event()
        dashboard = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                dashboard._serve(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # no line per request on stderr

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="mpipe-dashboard", daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        """The page's address."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/"

    @property
    def port(self) -> int:
        """The port it listens on."""
        return int(self._server.server_address[1])

    def _data(self) -> bytes | None:
        series = self.monitor.series
        if series is None:
            return None
        with self._lock:
            now = time.monotonic()
            cached = self._cache
            if (
                cached is not None
                and cached[1] == id(series)
                and (not cached[2] or now - cached[0] < self.interval * 0.9)
            ):
                return cached[3]
            live = series.live
            data = report_data(
                series, self.monitor.trace.max_spans, tail=LIVE_SPANS if live else None
            )
            body = orjson.dumps(data, option=orjson.OPT_SERIALIZE_NUMPY)
            self._cache = (now, id(series), live, body)
            return body

    def _serve(self, request: BaseHTTPRequestHandler) -> None:
        self.requests += 1
        path = request.path.split("?", 1)[0]
        try:
            if path in ("/", "/index.html"):
                body = self._data()
                if body is None:
                    self._reply(request, 200, "text/html; charset=utf-8", _WAITING)
                    return
                page = render_page(orjson.loads(body), poll_ms=int(self.interval * 1000))
                self._reply(request, 200, "text/html; charset=utf-8", page.encode())
            elif path == "/data.json":
                body = self._data()
                if body is None:
                    self._reply(request, 404, "application/json", b'{"error": "no run yet"}')
                    return
                self._reply(request, 200, "application/json", body)
            elif path == "/favicon.ico":
                self._reply(request, 204, "image/x-icon", b"")
            else:
                self._reply(request, 404, "text/plain; charset=utf-8", b"not found")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the browser went away

    @staticmethod
    def _reply(request: BaseHTTPRequestHandler, code: int, kind: str, body: bytes) -> None:
        request.send_response(code)
        request.send_header("Content-Type", kind)
        request.send_header("Content-Length", str(len(body)))
        request.send_header("Cache-Control", "no-store")
        request.end_headers()
        request.wfile.write(body)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the dashboard is closed or ``timeout`` seconds pass (Ctrl-C ends the
        wait with KeyboardInterrupt). Returns whether it was closed."""
        return self._closed.wait(timeout)

    def close(self) -> None:
        """Stop serving and release the port. Idempotent."""
        if self._closed.is_set():
            return
        self._closed.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def __enter__(self) -> Dashboard:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed.is_set() else self.url
        return f"<Dashboard {state}>"
