"""The monitor: a run observer that records events, metrics, process samples and a trace.

It listens on the hook protocol (:class:`~mpipe.RunHooks`). Unless someone hears processor
events live (a handler, an alert manager, the logger at INFO), it takes the run's
:class:`~mpipe._observe._hooks.Timeline` instead of hook calls: the scheduler appends one span tuple per
firing and one tuple per processor start and end, and statistics, states and events are made
from them when read. Errors, retries, skips, checkpoints and breakpoints come as hook calls and
are recorded as they happen, so monitoring can stay on. See ``docs/observability.md``.
"""

from __future__ import annotations

import itertools
import logging
import os
import time
from collections import Counter, deque
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..._model._interfaces import MonitorInterface
from ..._model._pipe import Pipe, payload_nbytes
from .._hooks import RunHooks, RunInfo, Timeline
from ._eventlog import EventLog
from ._events import EventType, LogLevel
from ._runlog import RunLog
from ._sampler import ProcessSampler, Ticker, shm_bytes_of, worker_pids_of
from ._series import RunSeries
from ._spans import SpanBook
from ._stats import ProcessorStats
from ._taps import PipeTap
from ._trace import TraceRecorder

if TYPE_CHECKING:
    from .._report._dashboard import Dashboard

__all__ = ["Monitor"]

_log = logging.getLogger("mpipe")
_tap_ids = itertools.count(1)

#: A pipe_full event per pipe at most this often (seconds); the count is in the event data.
PIPE_FULL_EVERY = 1.0


_START = EventType.PROCESSOR_START.value
_COMPLETE = EventType.PROCESSOR_COMPLETE.value
_INFO = LogLevel.INFO.value

# The (type value, default level number) of the events the hooks record, computed once:
# enum hashing and ``.value`` are slow enough to matter once per processor.
_GRAPH_START = (EventType.GRAPH_START.value, _INFO)
_GRAPH_COMPLETE = (EventType.GRAPH_COMPLETE.value, _INFO)
_GRAPH_ERROR = (EventType.GRAPH_ERROR.value, LogLevel.ERROR.value)
_PROCESSOR_ERROR = (EventType.PROCESSOR_ERROR.value, LogLevel.ERROR.value)
_PROCESSOR_RETRY = (EventType.PROCESSOR_RETRY.value, LogLevel.WARNING.value)
_PROCESSOR_SKIP = (EventType.PROCESSOR_SKIP.value, LogLevel.WARNING.value)
_PIPE_FULL = (EventType.PIPE_FULL.value, LogLevel.DEBUG.value)
_PIPE_DATA_FLOW = (EventType.PIPE_DATA_FLOW.value, LogLevel.DEBUG.value)
_WORKER_START = (EventType.WORKER_START.value, _INFO)
_WORKER_CRASH = (EventType.WORKER_CRASH.value, LogLevel.ERROR.value)
_SYSTEM_METRICS = (EventType.SYSTEM_METRICS.value, LogLevel.DEBUG.value)


class Monitor(EventLog, RunHooks, MonitorInterface):
    """Records what runs do: events, per-processor metrics, process metrics and a trace.

    Pass it to :class:`~mpipe.GraphExecutor` (``monitor=``) or to one ``execute`` call.

    Args:
        max_events: Events kept (the oldest are dropped first; counters keep counting).
        log_level: Events at this level or above are also logged to the ``"mpipe"`` logger:
            a :class:`LogLevel` or its name in any case.
        sample_interval: Seconds between process samples while a run is live.
        series_interval: Seconds between samples of the run's time series (pipe fill,
            firings, arena use) for :meth:`write_report` and :meth:`open_dashboard`.

    Raises:
        ValueError: ``max_events`` is not a positive integer, ``log_level`` is unknown, or
            an interval is not a positive number.
    """

    def __init__(
        self,
        max_events: int = 10000,
        log_level: LogLevel | str = "INFO",
        *,
        sample_interval: float = 0.5,
        series_interval: float = 0.1,
    ) -> None:
        for name, value in (
            ("sample_interval", sample_interval),
            ("series_interval", series_interval),
        ):
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"{name} must be a positive number, got {value!r}")
        super().__init__(max_events, log_level)
        # Processor id -> waiting / running / completed / error / idle.
        self._state: dict[str, str] = {}
        # Firing spans (per run, in timelines) and the statistics folded from them.
        self._book = SpanBook()
        self._stats = self._book.stats
        self._registered: dict[str, Any] = {}
        self._pipes: dict[str, Pipe] = {}
        #: Every tap made by :meth:`tap_pipe` and not removed: tap id -> :class:`PipeTap`.
        self.pipe_taps: dict[str, PipeTap] = {}
        self._pipe_full_at: dict[str, float] = {}
        self._pipe_full_count: Counter[str] = Counter()
        self._backends: list[Any] = []
        self._sampler: ProcessSampler | None = None
        self._last_sample = -float("inf")
        self._ticker = Ticker(sample_interval, self._tick)
        self.trace = TraceRecorder(self._book)
        #: The time series of the current or last run (None before the first run).
        self.series: RunSeries | None = None
        self._series_ticker = Ticker(series_interval, self._series_tick)
        self._book.before_cut = self._series_catch_up
        # Processor starts and ends per run, applied to _state and the events when read.
        self._runlogs: deque[RunLog] = deque()
        self._plans: Counter[int] = Counter()  # kept logs per plan (processor_ids list)
        self._unread = 0  # events the kept ended logs would still add
        self._log: RunLog | None = None
        self._lend: Timeline | None = None  # the live run's timeline, when the scheduler has it
        self.run: RunInfo | None = None
        self.runs = 0
        self.live = False
        self.created = time.time()

    def _record(
        self, kind: tuple[str, int], processor_id: str | None, data: dict[str, Any]
    ) -> None:
        self._emit(kind[0], processor_id, data, kind[1])

    def start_monitoring(self) -> None:
        """Record events again after :meth:`stop_monitoring` (monitoring starts on)."""
        self._switch_notes(True)
        self.monitoring = True
        self._refresh_quiet()
        if self.live:
            self._ticker.start()
            self._series_ticker.start()

    def stop_monitoring(self) -> None:
        """Stop recording events and sampling processes until :meth:`start_monitoring`.

        Firing counts, timings and the trace go on (they cost one append per firing).
        """
        self._switch_notes(False)
        self.monitoring = False
        self._refresh_quiet()
        self._ticker.stop()
        self._series_ticker.stop()
        self._handler_errors.report()

    def _switch_notes(self, on: bool) -> None:
        """A live run on the timeline: its starts and ends so far follow the old setting,
        the later ones the new."""
        log = self._log
        if self._lend is not None and log is not None and not log.ended:
            self._settle()
            log.notes = on

    # -- processors and pipes ----------------------------------------------------------------------

    def _fold(self) -> None:
        """Account every span not yet counted in the per-processor statistics."""
        self._book.fold()

    # -- processor states and events, from the run logs ---------------------------------------

    def _settle(self) -> None:
        """Apply every run log not yet applied to the states (and to the events' notes)."""
        if not self._runlogs:
            return
        has_errors = self._has_errors
        for log in self._runlogs:
            firsts, ends = log.apply(self._state, has_errors)
            if log.notes and (firsts or ends):
                self._notes.extend(log.notes_for(firsts, ends, (_START, _COMPLETE), _INFO))
                noted = self._noted
                noted[_START] = noted.get(_START, 0) + len(firsts)
                noted[_COMPLETE] = noted.get(_COMPLETE, 0) + len(ends)
        self._runlogs = deque(log for log in self._runlogs if not log.closed)
        self._plans = Counter(id(log.processor_ids) for log in self._runlogs)
        self._unread = 0  # what is left is live

    def _has_errors(self, processor_id: str) -> bool:
        stats = self._stats.get(processor_id)
        return stats is not None and stats.errors > 0

    def _drain(self) -> None:
        self._settle()

    def _prune(self) -> None:
        """Drop the logs of ended runs whose events could no longer be among the kept ones.

        Oldest first, a log goes once the newer logs would add ``max_events`` events without
        it (or when it adds none): its events are counted by type without being made, and its
        states are applied only when no newer log of the same plan overrides them all. Runs
        in O(1) per run, however many logs are kept.
        """
        logs, plans = self._runlogs, self._plans
        while len(logs) > 1:
            oldest = logs[0]
            if not oldest.ended:  # another executor's run, still live
                return
            rest = self._unread - oldest.weight
            if oldest.notes and rest < self.max_events:
                return
            logs.popleft()
            self._unread = rest
            key = id(oldest.processor_ids)
            plans[key] -= 1
            if oldest.notes:
                starts, ends = oldest.unread()
                noted = self._noted
                noted[_START] = noted.get(_START, 0) + starts
                noted[_COMPLETE] = noted.get(_COMPLETE, 0) + ends
                oldest.notes = False
            if not plans[key]:
                oldest.apply(self._state, self._has_errors)

    def _stat(self, processor_id: str) -> ProcessorStats:
        return self._book.stat(processor_id)

    def register_processor(self, processor: Any) -> None:
        """Track a processor (an object with ``processor_id``, or an id) before it runs.

        Raises:
            TypeError: Neither a processor nor a non-empty string.
        """
        pid = processor if isinstance(processor, str) else getattr(processor, "processor_id", None)
        if not isinstance(pid, str) or not pid:
            raise TypeError(f"register_processor needs a processor or its id, got {processor!r}")
        if not isinstance(processor, str):
            self._registered[pid] = processor
        self._state.setdefault(pid, "idle")

    def get_processor_status(self, processor_id: str) -> dict[str, Any]:
        """State, counts and timings of one processor (plus its own ``get_metrics()``).

        Raises:
            KeyError: The monitor has not seen nor registered this processor.
        """
        self._fold()
        self._settle()
        state = self._state.get(processor_id)
        if state is None:
            raise KeyError(f"processor {processor_id!r} is not known to this monitor")
        stats = self._stats.get(processor_id) or ProcessorStats(processor_id)
        out = {
            "processor_id": processor_id,
            "state": state,
            **stats.summary(time.perf_counter()),
        }
        proc = self._registered.get(processor_id)
        if proc is not None and hasattr(proc, "get_metrics"):
            try:
                out["metrics"] = proc.get_metrics()
            except Exception as exc:
                out["metrics"] = {"error": repr(exc)}
        return out

    def get_all_processor_statuses(self) -> dict[str, dict[str, Any]]:
        """:meth:`get_processor_status` of every known processor."""
        self._settle()
        return {pid: self.get_processor_status(pid) for pid in self._state}

    def tap_pipe(
        self, pipe: Pipe, fn: Callable[[Any], Any] | None = None, *, events: bool = True
    ) -> str:
        """Watch every item that enters ``pipe``: call ``fn(item)`` and record a
        ``pipe_data_flow`` event (``events=False`` to skip the event).

        The tap is a :class:`PipeTap` in :attr:`pipe_taps` (its count of items seen, its last
        activity); an exception ``fn`` raises is logged and does not stop the flow.

        Returns:
            The tap id, for :meth:`untap_pipe`.

        Raises:
            TypeError: ``pipe`` is not a Pipe or ``fn`` is not callable.
        """
        if not isinstance(pipe, Pipe):
            raise TypeError(f"tap_pipe needs a Pipe, got {type(pipe).__name__}")
        if fn is not None and not callable(fn):
            raise TypeError(f"tap function must be callable, got {fn!r}")
        tap_id = f"monitor-tap-{next(_tap_ids)}"
        pipe_id = pipe.pipe_id

        def seen(item: Any) -> None:
            if events and self.monitoring:
                self._record(
                    _PIPE_DATA_FLOW,
                    pipe_id,
                    {
                        "pipe_id": pipe_id,
                        "item_type": type(item).__name__,
                        "nbytes": payload_nbytes(item),
                    },
                )
            if fn is not None:
                fn(item)

        tap = PipeTap(tap_id, pipe, seen)
        pipe.add_tap(tap_id, tap.on_data)
        self.pipe_taps[tap_id] = tap
        self._pipes.setdefault(pipe_id, pipe)
        return tap_id

    def untap_pipe(self, tap_id: str) -> None:
        """Remove a tap made by :meth:`tap_pipe`.

        Raises:
            KeyError: Unknown tap id.
        """
        tap = self.pipe_taps.pop(tap_id, None)
        if tap is None:
            raise KeyError(f"unknown tap id {tap_id!r}")
        tap.pipe.remove_tap(tap_id)

    def get_pipe_status(self, pipe: Pipe | str) -> dict[str, Any]:
        """Status and traffic of a pipe of the current or last run (or a tapped pipe).

        Raises:
            KeyError: The monitor has not seen this pipe.
        """
        if isinstance(pipe, Pipe):
            return pipe.get_status()
        found = self._pipes.get(pipe)
        if found is None:
            raise KeyError(f"pipe {pipe!r} is not known to this monitor")
        return found.get_status()

    # -- process metrics ---------------------------------------------------------------------------

    def _tick(self) -> None:
        if self.monitoring:
            self.sample_now()

    def sample_now(self) -> dict[str, Any]:
        """Take one psutil sample of the parent and the workers and record it as an event."""
        if self._sampler is None:
            self._sampler = ProcessSampler()
        self._last_sample = time.monotonic()
        sample, started, gone = self._sampler.sample(
            worker_pids_of(self._backends), shm_bytes_of(self._backends)
        )
        for pid in started:
            self._record(_WORKER_START, None, {"pid": pid})
        series = self.series
        for pid in gone:
            if self.live:
                self._record(_WORKER_CRASH, None, {"pid": pid, "reason": "process gone"})
                if series is not None:
                    series.mark("crash", None, f"worker process {pid} gone")
        if series is not None:
            series.add_process_sample(sample)
        self._record(_SYSTEM_METRICS, None, sample)
        return sample

    def _series_tick(self) -> None:
        series = self.series
        if series is not None and self.monitoring and series.live:
            series.sample()

    def _series_catch_up(self) -> None:
        series = self.series
        if series is not None and series.live:
            series.catch_up()

    # -- the hook protocol -------------------------------------------------------------------------

    def run_start(self, run: RunInfo) -> None:
        self._hear_loggers()
        # The last run's spans are counted later (when read), not on this run's clock.
        timeline = self._book.begin()
        self.trace.begin(run.run_id, run.graph_id, time.perf_counter())
        self.series = RunSeries(run, timeline, previous=self.series)
        self.run = run
        self.runs += 1
        self.live = True
        pipes = run.extra.get("pipes", {})
        if self.pipe_taps:
            pipes = {**{t.pipe.pipe_id: t.pipe for t in self.pipe_taps.values()}, **pipes}
        self._pipes = pipes
        self._backends = list(run.extra.get("backends", []))
        # Processor starts and ends come as hook calls when someone hears them live, else
        # through the run's timeline (no call per processor or firing).
        live = self.monitoring and bool(
            not self._quiet
            or self._listeners
            or _START in self._handlers
            or _COMPLETE in self._handlers
        )
        if live:
            self._settle()  # notes of earlier runs go before the ones this run makes live
        else:
            self._prune()
        offset = time.time() - time.perf_counter()
        log = RunLog(run.processor_ids, timeline, offset, notes=self.monitoring and not live)
        self._log = log
        self._runlogs.append(log)
        self._plans[id(log.processor_ids)] += 1
        self._lend = None if live else timeline
        self._record(
            _GRAPH_START,
            None,
            {
                "run_id": run.run_id,
                "graph_id": run.graph_id,
                "processors": len(run.processor_ids),
                "mode": run.mode,
            },
        )
        if self._sampler is None:
            self._sampler = ProcessSampler()  # the CPU% baseline
        if self.monitoring:
            # An opening sample (unless one is recent), so that even a run shorter than the
            # interval has a sample of each of its processes.
            if time.monotonic() - self._last_sample >= self._ticker.interval:
                self.sample_now()
            self._ticker.start()
            self._series_ticker.start()

    def take_timeline(self) -> Timeline | None:
        return self._lend

    def processor_start(self, processor_id: str) -> None:
        # Called when the scheduler does not write the timeline (or by hand): the event goes
        # out live.
        log = self._log
        if log is not None and not log.ended:
            log.firsts.add(processor_id, 0, time.perf_counter(), 0.0, None)
        else:
            self._state[processor_id] = "running"
        self._note(_START, processor_id, "index", 0, _INFO)

    def firing_end(
        self,
        processor_id: str,
        index: int,
        start: float,
        end: float,
        worker: str,
        error: BaseException | None,
    ) -> None:
        # Called for every firing when the scheduler does not write the timeline, else for
        # failed ones. Errors are kept as text, not as exceptions whose tracebacks would keep
        # the failed firing's frames (and data) alive.
        timeline = self._book.timeline
        if error is None:
            full = timeline.spans.add(processor_id, index, start, end, worker)
        else:
            message = f"{type(error).__name__}: {error}"
            timeline.errors[len(timeline.spans)] = message
            full = timeline.spans.add(processor_id, index, start, end, worker)
            self._stat(processor_id).errors += 1
            if self.series is not None:
                self.series.mark("error", processor_id, message, at=end)
            self._record(
                _PROCESSOR_ERROR,
                processor_id,
                {"index": index, "error": message, "worker": worker},
            )
        if full:
            timeline.full()

    def firing_waited(
        self,
        processor_id: str,
        index: int,
        submitted: float,
        picked: float,
        worker: str,
        transfer: float,
    ) -> None:
        # Called when the scheduler does not write the timeline.
        timeline = self._book.timeline
        timeline.waits.add(processor_id, index, submitted, picked, worker)
        timeline.transfer[processor_id] = timeline.transfer.get(processor_id, 0.0) + transfer

    def firing_retry(
        self, processor_id: str, index: int, attempt: int, error: BaseException
    ) -> None:
        self._stat(processor_id).retries += 1
        if self.series is not None:
            self.series.mark("retry", processor_id, f"{type(error).__name__}: {error}")
        self._record(
            _PROCESSOR_RETRY,
            processor_id,
            {"index": index, "attempt": attempt, "error": f"{type(error).__name__}: {error}"},
        )

    def firing_skip(self, processor_id: str, index: int, error: BaseException) -> None:
        self._stat(processor_id).skips += 1
        if self.series is not None:
            self.series.mark("skip", processor_id, f"{type(error).__name__}: {error}")
        self._record(
            _PROCESSOR_SKIP,
            processor_id,
            {"index": index, "error": f"{type(error).__name__}: {error}"},
        )

    def processor_end(self, processor_id: str, firings: int) -> None:
        log = self._log
        if log is not None and not log.ended:
            log.ends.add(processor_id, firings, time.perf_counter(), 0.0, None)
        else:
            self._state[processor_id] = "completed"
        self._note(_COMPLETE, processor_id, "firings", firings, _INFO)

    def pipe_full(self, pipe_id: str) -> None:
        self._pipe_full_count[pipe_id] += 1
        now = time.monotonic()
        last = self._pipe_full_at.get(pipe_id)
        if last is not None and now - last < PIPE_FULL_EVERY:
            return
        self._pipe_full_at[pipe_id] = now
        self._record(
            _PIPE_FULL,
            pipe_id,
            {"pipe_id": pipe_id, "times_full": self._pipe_full_count[pipe_id]},
        )

    def notice(self, kind: str, processor_id: str | None, data: dict[str, Any]) -> None:
        if kind == _WORKER_CRASH[0] and self.series is not None and self.live:
            self.series.mark("crash", processor_id, str(data.get("reason") or data))
        self.log_event(kind, processor_id, data)

    def run_end(self, run: RunInfo, error: BaseException | None) -> None:
        self._ticker.stop()
        self._series_ticker.stop()
        # A closing sample, unless one is recent: back-to-back short runs sample at most once
        # per interval (a sample costs tens of microseconds).
        if self.monitoring and time.monotonic() - self._last_sample >= self._ticker.interval:
            self.sample_now()
        self.live = False
        if self.series is not None:
            self.series.end(error)
        self.trace.end(time.perf_counter())
        self._lend = None
        log = self._log
        if log is not None and not log.ended:
            log.ended = True
            if error is not None:
                log.failed = set(getattr(error, "failed_processors", None) or [])
            if log.notes:
                log.weight = sum(log.unread())
                self._unread += log.weight
            else:  # no events to defer (heard live, or not monitoring): apply it now
                self._settle()
        if error is None:
            self._record(_GRAPH_COMPLETE, None, {"run_id": run.run_id, "graph_id": run.graph_id})
        else:
            self._record(
                _GRAPH_ERROR,
                None,
                {
                    "run_id": run.run_id,
                    "graph_id": run.graph_id,
                    "error": f"{type(error).__name__}: {error}",
                },
            )
        if self._handler_errors.counts:
            self._handler_errors.report()

    # -- summaries ---------------------------------------------------------------------------------

    def get_metrics_summary(self) -> dict[str, Any]:
        """Counters, per-processor timings, pipe traffic and process metrics (JSON-compatible).

        Keys: ``total_events``, ``events_by_type``, ``active_processors``, ``total_firings``,
        ``total_errors``, ``error_rate``, ``processors`` (per processor ``count``, ``mean_time``,
        ``p50_time``, ``p95_time``, ``items_per_second``, ``mean_queue_time``,
        ``mean_transfer_time``, ...), ``pipes`` (utilization in items and in bytes, and
        backpressure time), ``process`` (the latest psutil sample), ``runs``, ``uptime``. Run
        times are measured where firings ran (a worker process, a thread); waiting for a worker
        and moving data to it and back are the ``*_queue_time`` and ``*_transfer_time``
        entries, apart.
        """
        self._fold()
        self._settle()
        now = time.perf_counter()
        empty = ProcessorStats("")
        processors = {
            pid: {"state": self._state.get(pid, "idle"), **self._stats.get(pid, empty).summary(now)}
            for pid in {**self._state, **self._stats}
        }
        firings = sum(s.firings for s in self._stats.values())
        errors = sum(s.errors for s in self._stats.values())
        pipes = {}
        for pid, pipe in self._pipes.items():
            m = pipe.get_metrics()
            pipes[pid] = {
                "items_in": m["items_in"],
                "bytes_in": m["bytes_in"],
                "utilization": m["utilization"],
                "peak_utilization": m["peak_utilization"],
                "peak_bytes": m["peak_bytes"],
                "byte_utilization": m["byte_utilization"],
                "peak_byte_utilization": m["peak_byte_utilization"],
                "blocked_time": m["blocked_time"],
                "full_events": m["full_events"],
            }
        return {
            "total_events": self.total_events,
            "events_by_type": self.events_by_type,
            "active_processors": sum(1 for st in self._state.values() if st == "running"),
            "total_firings": firings,
            "total_errors": errors,
            "error_rate": errors / firings if firings else 0.0,
            "processors": processors,
            "pipes": pipes,
            "process": dict(self._sampler.last) if self._sampler is not None else {},
            "runs": self.runs,
            "live": self.live,
            "uptime": time.time() - self.created,
        }

    def export_trace(self, path: str | os.PathLike[str]) -> Path:
        """Write the current or last run as Chrome trace-event JSON (opens in Perfetto).

        One track per worker (one per worker process), one span per firing, when it ran there,
        with its processor id and item index; waits for a worker and generators' lives as
        async slices beside the tracks.

        Raises:
            ValueError: The monitor has not watched a run yet.
        """
        self._fold()
        return self.trace.export(path)

    def write_report(self, path: str | os.PathLike[str]) -> Path:
        """Write the current or last run as one self-contained HTML performance report.

        The page holds everything it needs (Bokeh's scripts included) and opens offline: the
        graph with each pipe's peak fill, a task stream per worker, items per second per
        processor, pipe fill, CPU% and RSS per process, shared-memory use, time per processor
        (run, queue wait, bytes moved), errors, retries, skips and crashes, and the run's
        summary. Needs the ``report`` extra (``pip install 'processor-pipeline[report]'``).

        Returns:
            The path written.

        Raises:
            ConfigurationError: Bokeh is not installed.
            ValueError: The monitor has not watched a run yet.
            OSError: The file cannot be written.
        """
        from .._report import require_bokeh, write_report

        require_bokeh()
        if self.series is None:
            raise ValueError("no run to report: the monitor has not watched a run yet")
        return write_report(self.series, self.trace.max_spans, path)

    def open_dashboard(
        self, port: int = 0, *, host: str = "127.0.0.1", interval: float = 1.0
    ) -> Dashboard:
        """Serve the report's views live on ``http://host:port/``, from a thread of its own.

        The page shows the current run (or the last one) and updates every ``interval``
        seconds; it follows each new run this monitor watches. Close the returned dashboard
        (or use it as a context manager) to stop serving.

        Args:
            port: The port (0: a free one; see ``Dashboard.url``).
            host: The address to listen on (the default serves this machine only).
            interval: Seconds between the page's updates.

        Raises:
            ConfigurationError: Bokeh is not installed, or a bad port or interval.
            OSError: The port cannot be opened.
        """
        from .._report._dashboard import Dashboard

        return Dashboard(self, port=port, host=host, interval=interval)
