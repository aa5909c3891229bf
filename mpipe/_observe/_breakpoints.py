"""Breakpoints: pause a firing before it runs, look at its input, then resume, skip or abort.

The scheduler knows only a per-node *gate*: ``node.gate`` is None for a node without
breakpoints (the hot path pays one attribute check), else a function called with the firing's
processor id, index and input dict. The gate returns None (run the firing now) or an awaitable
of ``(action, input)`` — ``"resume"`` with the (maybe replaced) input, or ``"skip"`` — and raises
:class:`BreakpointAbort` to end the run. The :class:`BreakpointManager` sets and clears the
gates of the running nodes whenever breakpoints change.

A hit is handed to whoever awaits ``wait_for_break()``, or to the ``on_break`` callback when one
is set (non-interactive use). ``step()`` breaks at the very next firing of any processor.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from .._errors import PipelineError, ProcessorError

__all__ = ["Breakpoint", "BreakpointAPI", "BreakpointAbort", "BreakpointHit", "BreakpointManager"]

_log = logging.getLogger("mpipe")


class BreakpointAbort(ProcessorError):
    """A paused firing was aborted at its breakpoint; the run stops with this as the cause."""


_bp_ids = itertools.count(1)


class Breakpoint:
    """A processor's firings pause here before they run, while the breakpoint is enabled and its
    condition holds.

    Set one with ``set_breakpoint`` on an executor or a checkpoint manager (a run honours the
    breakpoints of the manager it is given), or make one and check it by hand with
    :meth:`should_break`.

    Args:
        processor_id: The processor whose firings it pauses.
        condition: ``condition(input)`` over the firing's input dict (pipe name -> item);
            None: every firing. A condition that raises is logged and counts as False.
        hit_count: The most hits that pause (0: no limit); later matching firings run on.
        enabled: Whether it pauses at all.

    Raises:
        TypeError: A processor id that is not a non-empty string, a condition that is not
            callable, or a ``hit_count`` that is not a non-negative integer.
    """

    def __init__(
        self,
        processor_id: str,
        condition: Callable[[Any], Any] | None = None,
        hit_count: int = 0,
        enabled: bool = True,
        *,
        breakpoint_id: str | None = None,
    ) -> None:
        if not isinstance(processor_id, str) or not processor_id:
            raise TypeError(f"processor_id must be a non-empty string, got {processor_id!r}")
        if condition is not None and not callable(condition):
            raise TypeError(f"breakpoint condition must be callable, got {condition!r}")
        if not isinstance(hit_count, int) or isinstance(hit_count, bool) or hit_count < 0:
            raise TypeError(f"hit_count must be a non-negative integer, got {hit_count!r}")
        self.breakpoint_id = breakpoint_id or f"bp-{next(_bp_ids)}"
        self.processor_id = processor_id
        self.condition = condition
        self.hit_count = hit_count
        self.enabled = bool(enabled)
        self.total_hits = 0
        self.created_at = time.time()
        self.last_hit: float | None = None

    def _condition_holds(self, data: Any) -> bool:
        if self.condition is None:
            return True
        try:
            return bool(self.condition(data))
        except Exception:
            _log.exception(
                "breakpoint %s condition failed on %r", self.breakpoint_id, self.processor_id
            )
            return False

    def would_break(self, data: Any) -> bool:
        """Whether :meth:`should_break` would answer True now, without counting a hit."""
        if not self.enabled or not self._condition_holds(data):
            return False
        return self.hit_count == 0 or self.total_hits < self.hit_count

    def should_break(self, data: Any) -> bool:
        """Whether a firing on ``data`` pauses here; counts a hit when enabled and the
        condition holds.

        Returns False (counting nothing) when disabled or when the condition fails; otherwise
        counts the hit and returns True while ``hit_count`` is 0 or the hits so far are at most
        ``hit_count``.
        """
        if not self.enabled or not self._condition_holds(data):
            return False
        self.total_hits += 1
        self.last_hit = time.time()
        return self.hit_count == 0 or self.total_hits <= self.hit_count

    @property
    def hits(self) -> int:
        """The hits counted so far (``total_hits``)."""
        return self.total_hits

    def to_dict(self) -> dict[str, Any]:
        """``breakpoint_id``, ``processor_id``, ``enabled``, ``hit_count``, ``total_hits`` (also
        as ``hits``), ``created_at``, ``last_hit`` and ``has_condition``."""
        return {
            "breakpoint_id": self.breakpoint_id,
            "processor_id": self.processor_id,
            "enabled": self.enabled,
            "hit_count": self.hit_count,
            "total_hits": self.total_hits,
            "hits": self.total_hits,
            "created_at": self.created_at,
            "last_hit": self.last_hit,
            "has_condition": self.condition is not None,
        }

    def __repr__(self) -> str:
        return (
            f"Breakpoint({self.breakpoint_id!r}, {self.processor_id!r}, hits={self.total_hits}, "
            f"{'enabled' if self.enabled else 'disabled'})"
        )


class BreakpointHit:
    """A firing paused at a breakpoint, waiting for a decision.

    Attributes:
        processor_id: The processor whose firing paused.
        index: The firing's index in the processor's stream (0-based).
        input: The firing's input: input pipe name -> item (what ``process_data`` receives).
        breakpoint_id: The breakpoint that matched, or None for :meth:`BreakpointManager.step`.
        hit_at: Wall-clock time of the hit.
    """

    def __init__(
        self, processor_id: str, index: int, input_data: dict[str, Any], breakpoint_id: str | None
    ) -> None:
        self.processor_id = processor_id
        self.index = index
        self.input = input_data
        self.breakpoint_id = breakpoint_id
        self.hit_at = time.time()
        self.action: str | None = None
        self._replaced = False
        self._reason = ""
        self._decided = asyncio.get_running_loop().create_future()

    @property
    def done(self) -> bool:
        """Whether the hit was resumed, skipped or aborted."""
        return self.action is not None

    def replace_input(self, input_data: dict[str, Any]) -> None:
        """Run the firing on ``input_data`` instead (a dict with the same pipe names).

        Raises:
            ValueError: Not a dict with exactly the input's pipe names.
            PipelineError: The hit was already decided.
        """
        self._check_open()
        if not isinstance(input_data, dict) or set(input_data) != set(self.input):
            raise ValueError(
                f"replacement input for {self.processor_id!r} must be a dict with the keys "
                f"{sorted(self.input)}, got {input_data!r}"
            )
        self.input = input_data
        self._replaced = True

    def resume(self, input_data: dict[str, Any] | None = None) -> None:
        """Let the firing run (on ``input_data`` when given, see :meth:`replace_input`)."""
        if input_data is not None:
            self.replace_input(input_data)
        self._decide("resume")

    def skip(self) -> None:
        """Drop the firing: it never runs and produces no output; the run goes on."""
        self._decide("skip")

    def abort(self, reason: str = "aborted at a breakpoint") -> None:
        """Stop the run: ``execute`` raises ExecutionError naming this processor."""
        self._reason = reason
        self._decide("abort")

    def _check_open(self) -> None:
        if self.action is not None:
            raise PipelineError(
                f"breakpoint hit of {self.processor_id!r} #{self.index} was already {self.action}d"
            )

    def _decide(self, action: str) -> None:
        self._check_open()
        self.action = action
        if not self._decided.done():
            self._decided.set_result(None)

    def to_dict(self) -> dict[str, Any]:
        """The hit as a JSON-compatible dict (the input's pipe names, not its items)."""
        return {
            "processor_id": self.processor_id,
            "index": self.index,
            "breakpoint_id": self.breakpoint_id,
            "inputs": sorted(self.input),
            "hit_at": self.hit_at,
            "action": self.action,
        }

    def __repr__(self) -> str:
        return f"BreakpointHit({self.processor_id!r}, index={self.index}, action={self.action})"


class BreakpointManager:
    """Breakpoints of one executor (or checkpoint manager) and the hits of the current run."""

    def __init__(self) -> None:
        self._bps: dict[str, Breakpoint] = {}
        self._stepping = False
        self._gated = False  # whether any node of the run may hold a gate now
        self._nodes: list[Any] = []
        self._notify: Callable[[str, str | None, dict[str, Any]], None] | None = None
        self._pending: deque[BreakpointHit] = deque()
        self._waiters: deque[asyncio.Future[BreakpointHit]] = deque()
        self.paused: list[BreakpointHit] = []
        self.on_break: Callable[[BreakpointHit], Any] | None = None

    # -- the breakpoints ---------------------------------------------------------------------------

    def set_breakpoint(
        self,
        processor_id: str,
        condition: Callable[[dict[str, Any]], Any] | None = None,
        hit_count: int = 0,
    ) -> str:
        """Pause every firing of ``processor_id`` (whose input satisfies ``condition``; at most
        ``hit_count`` times when it is not 0).

        Raises:
            TypeError: A processor id that is not a non-empty string, a condition that is not
                callable, or a bad ``hit_count``.
        """
        return self.add_breakpoint(Breakpoint(processor_id, condition, hit_count))

    def add_breakpoint(self, breakpoint: Breakpoint) -> str:
        """Add a :class:`Breakpoint` made by hand; returns its id.

        Raises:
            TypeError: Not a Breakpoint.
        """
        if not isinstance(breakpoint, Breakpoint):
            raise TypeError(f"add_breakpoint needs a Breakpoint, got {breakpoint!r}")
        self._bps[breakpoint.breakpoint_id] = breakpoint
        self._refresh()
        return breakpoint.breakpoint_id

    def get_breakpoint(self, breakpoint_id: str) -> Breakpoint:
        """The breakpoint with this id. Raises KeyError for an unknown id."""
        return self._get(breakpoint_id)

    def _get(self, breakpoint_id: str) -> Breakpoint:
        bp = self._bps.get(breakpoint_id)
        if bp is None:
            raise KeyError(f"unknown breakpoint id {breakpoint_id!r}")
        return bp

    def remove_breakpoint(self, breakpoint_id: str) -> None:
        """Remove a breakpoint. Raises KeyError for an unknown id."""
        self._get(breakpoint_id)
        del self._bps[breakpoint_id]
        self._refresh()

    def enable_breakpoint(self, breakpoint_id: str) -> None:
        """Make a disabled breakpoint pause again. Raises KeyError for an unknown id."""
        self._get(breakpoint_id).enabled = True
        self._refresh()

    def disable_breakpoint(self, breakpoint_id: str) -> None:
        """Keep a breakpoint but stop it pausing. Raises KeyError for an unknown id."""
        self._get(breakpoint_id).enabled = False
        self._refresh()

    def list_breakpoints(self) -> list[dict[str, Any]]:
        """Every breakpoint as :meth:`Breakpoint.to_dict` describes it."""
        return [bp.to_dict() for bp in self._bps.values()]

    def __bool__(self) -> bool:
        """Whether any breakpoint is set."""
        return bool(self._bps)

    def processor_ids(self) -> set[str]:
        """The processors that have breakpoints."""
        return {bp.processor_id for bp in self._bps.values()}

    def step(self) -> None:
        """Pause at the next firing of any processor (once)."""
        self._stepping = True
        self._refresh()

    def _match(self, processor_id: str, data: dict[str, Any]) -> Breakpoint | None:
        """The first breakpoint that pauses this firing (each matching one counts a hit)."""
        found = None
        for bp in self._bps.values():
            if bp.processor_id == processor_id and bp.should_break(data) and found is None:
                found = bp
        return found

    def check_breakpoint(self, processor_id: str, data: dict[str, Any]) -> bool:
        """Whether a firing of ``processor_id`` on ``data`` would pause (step mode aside);
        counts no hit."""
        return any(
            bp.processor_id == processor_id and bp.would_break(data) for bp in self._bps.values()
        )

    # -- a run -------------------------------------------------------------------------------------

    def attach(
        self, nodes: Iterable[Any], notify: Callable[[str, str | None, dict[str, Any]], None]
    ) -> None:
        """A run starts: gate its nodes as the breakpoints say."""
        self._nodes = nodes if isinstance(nodes, list) else list(nodes)
        self._notify = notify
        if self._bps or self._stepping:
            self._refresh()

    def detach(self) -> None:
        """The run ended: ungate, and fail anyone still waiting for a hit."""
        self._notify = None
        if self._gated:
            for node in self._nodes:
                node.gate = None
            self._gated = False
        self._nodes = []
        if self._pending:
            self._pending.clear()
        if self.paused:
            self.paused.clear()  # their gates were cancelled with the run
        while self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_exception(PipelineError("the run ended without pausing at a breakpoint"))

    def _refresh(self) -> None:
        wanted = {bp.processor_id for bp in self._bps.values() if bp.enabled}
        if not wanted and not self._stepping and not self._gated:
            return  # no gate anywhere, none to set: a run without breakpoints pays nothing
        for node in self._nodes:
            node.gate = self.gate if (self._stepping or node.node_id in wanted) else None
        self._gated = bool(wanted) or self._stepping

    def gate(
        self, processor_id: str, index: int, data: dict[str, Any]
    ) -> Awaitable[tuple[str, Any]] | None:
        """The scheduler's question before a gated firing runs (see the module docstring)."""
        if self._stepping:
            self._stepping = False
            self._refresh()
            bp_id = None
        else:
            bp = self._match(processor_id, data)
            if bp is None:
                return None
            bp_id = bp.breakpoint_id
        return self._pause(BreakpointHit(processor_id, index, data, bp_id))

    async def _pause(self, hit: BreakpointHit) -> tuple[str, Any]:
        self.paused.append(hit)
        if self._notify is not None:
            self._notify("breakpoint_hit", hit.processor_id, hit.to_dict())
        try:
            if self.on_break is not None:
                await self._callback(hit)
            else:
                self._publish(hit)
            await hit._decided
        finally:
            if hit in self.paused:
                self.paused.remove(hit)
            if hit in self._pending:
                self._pending.remove(hit)
        if hit.action == "abort":
            raise BreakpointAbort(
                f"processor {hit.processor_id!r}: firing {hit.index} {hit._reason}",
                hit.processor_id,
            )
        if hit.action == "skip":
            return "skip", None
        return "resume", (hit.input if hit._replaced else None)

    async def _callback(self, hit: BreakpointHit) -> None:
        assert self.on_break is not None
        try:
            result = self.on_break(hit)
            if inspect.isawaitable(result):
                result = await result
        except Exception as exc:
            if not hit.done:
                hit.abort(f"aborted: on_break callback failed: {exc!r}")
            return
        if hit.done:
            return
        if result is None or result == "resume":
            hit.resume()
        elif result == "skip":
            hit.skip()
        elif result == "abort":
            hit.abort()
        else:
            hit.abort(
                f"aborted: on_break returned {result!r}; expected None, 'resume', 'skip' or 'abort'"
            )

    def _publish(self, hit: BreakpointHit) -> None:
        while self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_result(hit)
                return
        self._pending.append(hit)

    async def wait_for_break(self, timeout: float | None = None) -> BreakpointHit:
        """The next firing paused at a breakpoint (one hit goes to one waiter).

        Raises:
            PipelineError: The run ended without pausing.
            TimeoutError: No hit within ``timeout`` seconds.
        """
        if self._pending:
            return self._pending.popleft()
        fut: asyncio.Future[BreakpointHit] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        try:
            return await asyncio.wait_for(fut, timeout)
        except asyncio.TimeoutError:
            raise TimeoutError(f"no breakpoint hit within {timeout} s") from None
        finally:
            if fut in self._waiters:
                self._waiters.remove(fut)


class BreakpointAPI:
    """The breakpoint methods shared by :class:`~mpipe.GraphExecutor` and
    :class:`~mpipe.CheckpointManager`; they act on ``self.breakpoints``."""

    breakpoints: BreakpointManager

    def _check_processor(self, processor_id: str) -> None:
        """Refuse an unknown processor (the executor knows its graph; a manager does not)."""

    def set_breakpoint(
        self,
        processor_id: str,
        condition: Callable[[dict[str, Any]], Any] | None = None,
        hit_count: int = 0,
    ) -> str:
        """Pause firings of ``processor_id`` before they run; ``condition(input)`` narrows it,
        and a ``hit_count`` other than 0 caps how many times it pauses.

        Returns:
            The breakpoint's id.

        Raises:
            GraphError: (on an executor) no such processor in the graph.
            TypeError: A bad processor id, condition or hit count.
        """
        self._check_processor(processor_id)
        return self.breakpoints.set_breakpoint(processor_id, condition, hit_count)

    def remove_breakpoint(self, breakpoint_id: str) -> None:
        """Remove a breakpoint. Raises KeyError for an unknown id."""
        self.breakpoints.remove_breakpoint(breakpoint_id)

    def list_breakpoints(self) -> list[dict[str, Any]]:
        """Every breakpoint as a dict."""
        return self.breakpoints.list_breakpoints()

    def enable_breakpoint(self, breakpoint_id: str) -> None:
        """Re-enable a breakpoint. Raises KeyError for an unknown id."""
        self.breakpoints.enable_breakpoint(breakpoint_id)

    def disable_breakpoint(self, breakpoint_id: str) -> None:
        """Disable a breakpoint without removing it. Raises KeyError for an unknown id."""
        self.breakpoints.disable_breakpoint(breakpoint_id)

    def check_breakpoint(self, processor_id: str, data: dict[str, Any]) -> bool:
        """Whether a firing of ``processor_id`` on ``data`` would pause."""
        return self.breakpoints.check_breakpoint(processor_id, data)

    def step(self) -> None:
        """Pause at the next firing of any processor (once)."""
        self.breakpoints.step()

    async def wait_for_break(self, timeout: float | None = None) -> BreakpointHit:
        """Await the next paused firing; see :meth:`BreakpointManager.wait_for_break`."""
        return await self.breakpoints.wait_for_break(timeout)
