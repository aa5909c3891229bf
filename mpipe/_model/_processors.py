"""Processors: the units of work in a graph.

A processor declares named input and output pipes and turns one item from each input pipe (a
*firing*) into output. The executor, not the processor, moves items; a processor only computes.
"""

from __future__ import annotations

import difflib
import inspect
import itertools
import time
import weakref
from abc import abstractmethod
from collections.abc import AsyncIterator, Callable
from typing import Any

from .._errors import ConfigurationError, ProcessorError
from ._interfaces import ProcessorInterface, ProcessorState
from ._pipe import Pipe, PipeType
from ._placement import placement_from_config

__all__ = [
    "OPTIONS",
    "AsyncProcessor",
    "BaseProcessor",
    "GeneratorProcessor",
    "ProcessorState",
    "SimpleProcessor",
]

CALLBACK_EVENTS = ("start", "complete", "error")
_ids = itertools.count(1)

#: The keywords of a processor's config that mpipe itself reads.
OPTIONS = ("execution", "cpu_bound", "timeout", "max_concurrent", "error_strategy")


#: How alike (``difflib`` ratio, 0 to 1) a keyword must be to an option to count as a near miss.
NEAR_MISS = 0.85


def near_miss(key: str) -> str | None:
    """The option of :data:`OPTIONS` that ``key`` is probably a misspelling of, or None.

    A near miss is the same as an option but for case, or alike to one by :data:`NEAR_MISS` or
    more (``cpu_bund``, ``timout``, ``max_concurency``); an option itself is not a near miss.
    """
    if key in OPTIONS:
        return None
    found = difflib.get_close_matches(key.lower(), OPTIONS, n=1, cutoff=NEAR_MISS)
    return found[0] if found else None


def _check_options(config: dict[str, Any], what: str) -> None:
    for key in config:
        meant = near_miss(key) if isinstance(key, str) else None
        if meant is not None:
            raise ConfigurationError(
                f"{what}: unknown option {key!r}; did you mean {meant!r}? (mpipe reads "
                f"{', '.join(OPTIONS)}; a keyword of your own must not be this close to one)",
                key,
            )


def _positive_int(value: Any, what: str, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigurationError(f"{what}: {name} must be a positive integer, got {value!r}", name)
    return value


class BaseProcessor(ProcessorInterface):
    """A processor you subclass: implement ``async def process_data(self, input_data)``.

    ``input_data`` maps each input pipe name to this firing's item. The return value becomes the
    output (see the routing rules in the docs); a generator's every yielded value is one output item.

    Args:
        processor_id: Unique id within a graph; generated when omitted.
        **config: Kept in ``self.config``. mpipe reads ``execution`` ("inline", "thread",
            "process", "dask"), ``cpu_bound`` (True means "process"), ``timeout`` (seconds per
            firing), ``max_concurrent`` (firings of this processor in flight at once) and
            ``error_strategy`` (an error strategy object); other keywords are your own.

    Raises:
        ConfigurationError: A config value mpipe reads is invalid, or a keyword is a near miss
            of one it reads (``cpu_bund``, ``timout``): the message names the option meant.
    """

    #: Weak references to the graphs that hold this processor, told when something they
    #: compile changes (set by ``ProcessingGraph.add_processor``; never sent to a worker).
    _graphs: tuple[weakref.ref[Any], ...] = ()

    #: Whether the processor keeps state between firings; stateful processors never run two
    #: firings at once unless ``max_concurrent`` says so, and stay in one worker process.
    stateful = True

    def __init__(self, processor_id: str | None = None, **config: Any) -> None:
        if processor_id is not None and (not isinstance(processor_id, str) or not processor_id):
            raise ConfigurationError(
                f"processor_id must be a non-empty string, got {processor_id!r}", "processor_id"
            )
        self.processor_id = processor_id or f"{type(self).__name__}_{next(_ids)}"
        self.config: dict[str, Any] = dict(config)
        self.input_pipes: dict[str, Pipe] = {}
        self.output_pipes: dict[str, Pipe] = {}
        self.state = ProcessorState.IDLE
        what = f"processor {self.processor_id!r}"
        _check_options(self.config, what)
        self._execution: str | None = placement_from_config(self.config, what)
        timeout = self.config.get("timeout")
        if timeout is not None and (
            isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0
        ):
            raise ConfigurationError(
                f"{what}: timeout must be a positive number of seconds, got {timeout!r}", "timeout"
            )
        self._timeout: float | None = None if timeout is None else float(timeout)
        mc = self.config.get("max_concurrent")
        self._max_concurrent = None if mc is None else _positive_int(mc, what, "max_concurrent")
        self._callbacks: dict[str, list[Callable[..., Any]]] = {}
        #: Whether any callback is registered (read per firing, so a plain attribute).
        self.has_callbacks = False
        self.reset_metrics()

    # -- what executors compile (setting any of these makes them re-plan) ---------------------

    def _changed(self) -> None:
        """Something executors compile changed: the graphs holding this processor re-plan."""
        for ref in self._graphs:
            graph = ref()
            if graph is not None:
                graph._version += 1

    @property
    def execution(self) -> str | None:
        """Where firings run ("inline", "thread", "process", "dask"); None: the executor's default."""
        return self._execution

    @execution.setter
    def execution(self, value: str | None) -> None:
        what = f"processor {self.processor_id!r}"
        self._execution = (
            None if value is None else placement_from_config({"execution": value}, what)
        )
        self._changed()

    @property
    def timeout(self) -> float | None:
        """Seconds a firing may take, or None."""
        return self._timeout

    @timeout.setter
    def timeout(self, value: float | None) -> None:
        self._timeout = value
        self._changed()

    @property
    def max_concurrent(self) -> int | None:
        """Firings in flight at once, or None for the backend's choice."""
        return self._max_concurrent

    @max_concurrent.setter
    def max_concurrent(self, value: int | None) -> None:
        what = f"processor {self.processor_id!r}"
        self._max_concurrent = (
            None if value is None else _positive_int(value, what, "max_concurrent")
        )
        self._changed()

    def __getstate__(self) -> dict[str, Any]:
        # What a worker process needs of the processor: its config and its own state, not the
        # callbacks registered in the parent.
        state = self.__dict__.copy()
        state["_callbacks"] = {}
        state["has_callbacks"] = False
        state.pop("_graphs", None)
        return state

    # -- pipes -------------------------------------------------------------------------------

    def register_input_pipe(self, name: str, pipe: Pipe) -> None:
        """Declare an input pipe under ``name``."""
        self.input_pipes[name] = pipe
        self._changed()

    def register_output_pipe(self, name: str, pipe: Pipe) -> None:
        """Declare an output pipe under ``name``."""
        self.output_pipes[name] = pipe
        self._changed()

    def create_default_pipes(
        self, inputs: list[str] | None = None, outputs: list[str] | None = None
    ) -> None:
        """Declare input and output pipes by name (default ``["input"]`` and ``["output"]``)."""
        for name in inputs if inputs is not None else ["input"]:
            pid = f"{self.processor_id}:{name}"
            self.register_input_pipe(name, Pipe(pid, pipe_type=PipeType.INPUT))
        for name in outputs if outputs is not None else ["output"]:
            pid = f"{self.processor_id}:{name}"
            self.register_output_pipe(name, Pipe(pid, pipe_type=PipeType.OUTPUT))

    # -- lifecycle ------------------------------------------------------------------------------

    async def initialize(self) -> None:
        """Called once before a run's first firing. Override to acquire resources."""

    async def cleanup(self) -> None:
        """Called once after a run, whatever happened. Override to release resources."""

    @abstractmethod
    async def process_data(self, input_data: dict[str, Any]) -> Any:
        """Compute one firing's output from ``input_data`` (input pipe name -> item)."""

    async def process(self, input_data: dict[str, Any]) -> Any:
        """Run one firing by hand, outside an executor, with metrics and callbacks.

        Returns:
            The firing's output; a coroutine's result is awaited.
        """
        self._fire_callbacks("start", input_data)
        start = time.perf_counter()
        try:
            result = self.process_data(input_data)
            if inspect.isawaitable(result):
                result = await result
        except Exception as exc:
            self._record(time.perf_counter() - start, failed=True)
            self._fire_callbacks("error", exc)
            raise
        self._record(time.perf_counter() - start, failed=False)
        self._fire_callbacks("complete", result)
        return result

    def _firing_call(self) -> tuple[Callable[[Any], Any], bool]:
        """What the scheduler calls per firing, and whether it takes the bare item.

        Returns ``(fn, item_arg)``: with ``item_arg`` False, ``fn`` takes the dict of pipe name
        -> item; with True, the single item itself.
        """
        return self.process_data, False

    # -- callbacks -----------------------------------------------------------------------------

    def add_callback(self, event: str, fn: Callable[..., Any]) -> None:
        """Call ``fn`` on every firing's ``"start"`` (input), ``"complete"`` (output) or ``"error"``.

        Raises:
            ConfigurationError: Unknown event, or ``fn`` is not callable.
        """
        if event not in CALLBACK_EVENTS:
            raise ConfigurationError(
                f"processor {self.processor_id!r}: callback event must be one of "
                f"{', '.join(CALLBACK_EVENTS)}; got {event!r}",
                "event",
            )
        if not callable(fn):
            raise ConfigurationError(
                f"processor {self.processor_id!r}: callback for {event!r} is not callable", "fn"
            )
        self._callbacks.setdefault(event, []).append(fn)
        self.has_callbacks = True

    def _fire_callbacks(self, event: str, arg: Any) -> None:
        for fn in self._callbacks.get(event, ()):
            fn(self, arg)

    # -- metrics -------------------------------------------------------------------------------

    def reset_metrics(self) -> None:
        """Zero the counters."""
        self._firings = 0
        self._errors = 0
        self._items_out = 0
        self._total_time = 0.0
        self._max_time = 0.0
        self._queue_time = 0.0
        self._transfer_time = 0.0

    def _waited(self, queue: float, transfer: float) -> None:
        """Seconds firings waited for a worker, and spent moving their data to and from it."""
        self._queue_time += queue
        self._transfer_time += transfer

    def _record_many(self, n: int, duration: float, longest: float | None = None) -> None:
        """``n`` successful firings that took ``duration`` seconds together, the longest of them
        ``longest`` seconds (when known; else their mean counts as the longest)."""
        self._firings += n
        self._total_time += duration
        if longest is None:
            longest = duration / n if n else 0.0
        if longest > self._max_time:
            self._max_time = longest

    def _record(self, duration: float, failed: bool) -> None:
        self._firings += 1
        self._total_time += duration
        if duration > self._max_time:
            self._max_time = duration
        if failed:
            self._errors += 1

    def get_metrics(self) -> dict[str, Any]:
        """Counters of this processor's firings (JSON-compatible values only).

        Times are in seconds. ``total_time``, ``mean_time`` and ``max_time`` are run time: on a
        worker process or a thread, measured there, so that waiting for a free worker is not
        counted; that wait is ``queue_time``, and moving inputs to the worker and outputs back
        is ``transfer_time`` (totals over the firings).
        """
        n = self._firings
        return {
            "processor_id": self.processor_id,
            "state": self.state.value,
            "firings": n,
            "errors": self._errors,
            "items_out": self._items_out,
            "total_time": self._total_time,
            "mean_time": self._total_time / n if n else 0.0,
            "max_time": self._max_time,
            "queue_time": self._queue_time,
            "transfer_time": self._transfer_time,
        }

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.processor_id!r})"


class SimpleProcessor(BaseProcessor):
    """A processor made of one function.

    ``func`` may be sync or async, a plain function or a (sync or async) generator function. With
    exactly one input pipe it receives the item itself; with several, the dict of pipe name ->
    item; with none (a source), the source's input.

    Args:
        func: The function to run per firing.
        processor_id: Unique id within a graph; defaults to the function's name and a number.
        **config: As for :class:`BaseProcessor`.

    Raises:
        ConfigurationError: ``func`` is not callable.
    """

    stateful = False

    def __init__(self, func: Callable[..., Any], processor_id: str | None = None, **config: Any):
        if not callable(func):
            name = f"SimpleProcessor {processor_id!r}" if processor_id else "SimpleProcessor"
            raise ConfigurationError(
                f"{name}: func must be callable, got {type(func).__name__} {func!r}", "func"
            )
        if processor_id is None:
            base = getattr(func, "__name__", type(func).__name__)
            base = "lambda" if base == "<lambda>" else base
            processor_id = f"{base}_{next(_ids)}"
        super().__init__(processor_id, **config)
        self._func = func

    @property
    def func(self) -> Callable[..., Any]:
        """The function each firing calls."""
        return self._func

    @func.setter
    def func(self, value: Callable[..., Any]) -> None:
        if not callable(value):
            raise ConfigurationError(
                f"SimpleProcessor {self.processor_id!r}: func must be callable, got {value!r}",
                "func",
            )
        self._func = value
        self._changed()

    async def process_data(self, input_data: dict[str, Any]) -> Any:
        """Call ``func`` on the firing's input (unwrapped when there is one input pipe)."""
        if len(self.input_pipes) <= 1 and len(input_data) == 1:
            (arg,) = input_data.values()
        else:
            arg = input_data
        result = self.func(arg)
        if inspect.isawaitable(result):
            result = await result
        return result

    def _firing_call(self) -> tuple[Callable[[Any], Any], bool]:
        return self.func, len(self.input_pipes) <= 1


class AsyncProcessor(BaseProcessor):
    """A processor whose firings overlap: up to ``max_concurrent`` in flight at once.

    Outputs still leave in input order. Subclass and implement ``async def process_data``.

    Args:
        processor_id: Unique id within a graph.
        max_concurrent: Firings in flight at once (default 10).
        **config: As for :class:`BaseProcessor`.
    """

    def __init__(
        self, processor_id: str | None = None, max_concurrent: int = 10, **config: Any
    ) -> None:
        super().__init__(processor_id, max_concurrent=max_concurrent, **config)


class GeneratorProcessor(BaseProcessor):
    """A processor whose firings are async generators: override ``_process_generator``.

    Each firing calls ``_process_generator(input_data)`` and every value it yields is one output
    item (routed as any output is: with several output pipes, a dict whose keys are all output
    pipe names goes key by key, anything else down every pipe). ``input_data`` maps each input
    pipe name to the firing's item; a processor without input pipes gets its source input as is
    (``execute({})`` gives ``{}``).

    Args:
        processor_id: Unique id within a graph; generated when omitted.
        **config: Kept in ``self.config``, as for :class:`BaseProcessor`.
    """

    async def _process_generator(self, input_data: Any) -> AsyncIterator[Any]:
        """Yield the output items of one firing (by default: each input value in turn)."""
        values = input_data.values() if isinstance(input_data, dict) else [input_data]
        for value in values:
            yield value

    async def process_data(self, input_data: dict[str, Any]) -> None:
        """Unused: a generator processor's firings run ``_process_generator``. Returns None."""
        return None

    def _firing_call(self) -> tuple[Callable[[Any], Any], bool]:
        # Without input pipes the generator takes the source's input itself.
        return self._process_generator, not self.input_pipes

    async def process(self, input_data: Any = None) -> list[Any]:
        """Run one firing by hand, outside an executor: drain the generator.

        ``state`` goes RUNNING, then COMPLETED (or ERROR). Each yielded value counts as one
        output item in the metrics.

        Args:
            input_data: The firing's input (default ``{}``).

        Returns:
            The yielded values, in order.

        Raises:
            ProcessorError: The generator raised; the original error is the ``__cause__``.
        """
        data = {} if input_data is None else input_data
        self.state = ProcessorState.RUNNING
        self._fire_callbacks("start", data)
        start = time.perf_counter()
        out: list[Any] = []
        try:
            async for item in self._process_generator(data):
                out.append(item)
        except Exception as exc:
            self._record(time.perf_counter() - start, failed=True)
            self.state = ProcessorState.ERROR
            self._fire_callbacks("error", exc)
            raise ProcessorError(
                f"processor {self.processor_id!r} failed after {len(out)} item(s): "
                f"{type(exc).__name__}: {exc}",
                self.processor_id,
            ) from exc
        self._record(time.perf_counter() - start, failed=False)
        self._items_out += len(out)
        self.state = ProcessorState.COMPLETED
        self._fire_callbacks("complete", out)
        return out
