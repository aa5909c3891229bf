"""Error strategies: what happens when a firing fails.

The scheduler hands every failed firing to the strategy of its processor (or of the graph) and
acts on the answer: RETRY runs the same firing again with the same input, SKIP drops that
firing's output and goes on, HALT stops the run. ``True`` means SKIP and ``False`` HALT.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from enum import Enum
from typing import Any

from .._errors import ConfigurationError, ProcessorError
from ._interfaces import ErrorHandlerInterface

__all__ = [
    "AdaptiveStrategy",
    "CircuitBreakerStrategy",
    "CircuitOpenError",
    "CompositeStrategy",
    "ErrorAction",
    "ErrorStrategy",
    "HaltStrategy",
    "RetryStrategy",
    "SkipStrategy",
    "create_default_error_strategy",
    "resolve_action",
]

_log = logging.getLogger("mpipe")


class ErrorAction(Enum):
    """What to do with a failed firing."""

    RETRY = "retry"
    SKIP = "skip"
    HALT = "halt"


def resolve_action(answer: Any) -> ErrorAction:
    """Turn a strategy's answer (``bool`` or :class:`ErrorAction`) into an action.

    Raises:
        ConfigurationError: The answer is neither.
    """
    if isinstance(answer, ErrorAction):
        return answer
    if answer is True:
        return ErrorAction.SKIP
    if answer is False or answer is None:
        return ErrorAction.HALT
    raise ConfigurationError(
        f"an error strategy must answer True, False or an ErrorAction, got {answer!r}"
    )


async def _call(fn: Callable[..., Any] | None, *args: Any) -> None:
    if fn is None:
        return
    result = fn(*args)
    if inspect.isawaitable(result):
        await result


class ErrorStrategy(ErrorHandlerInterface):
    """Base class of error strategies: override ``handle_error``.

    The default answer is HALT.
    """

    async def handle_error(
        self, error: BaseException, processor_id: str, context: dict[str, Any]
    ) -> bool | ErrorAction:
        """Decide what to do with a failed firing.

        Args:
            error: The exception the firing raised.
            processor_id: The processor whose firing failed.
            context: ``attempt`` (1 for the first try), ``input`` (the firing's input),
                ``item_index``, ``run_id``.

        Returns:
            ``True`` (skip), ``False`` (halt) or an :class:`ErrorAction`.
        """
        return ErrorAction.HALT

    def allow(self, processor_id: str) -> bool:
        """Whether a firing of ``processor_id`` may run now (False fails it fast)."""
        return True

    def record_success(self, processor_id: str) -> None:
        """Hear that a firing of ``processor_id`` succeeded."""

    def reset(self) -> None:
        """Forget counts kept from earlier runs."""


class SkipStrategy(ErrorStrategy):
    """Drop the failed firing and go on; past ``max_skips`` skips, halt.

    Args:
        max_skips: How many firings may be skipped per run (None: no limit).
        skip_callback: Called as ``fn(error, processor_id, context)`` on every skip.
    """

    def __init__(
        self, max_skips: int | None = None, skip_callback: Callable[..., Any] | None = None
    ) -> None:
        if max_skips is not None and (not isinstance(max_skips, int) or max_skips < 0):
            raise ConfigurationError(f"max_skips must be a non-negative integer, got {max_skips!r}")
        self.max_skips = max_skips
        self.skip_callback = skip_callback
        self.skip_count = 0

    async def handle_error(
        self, error: BaseException, processor_id: str, context: dict[str, Any]
    ) -> bool | ErrorAction:
        if self.max_skips is not None and self.skip_count >= self.max_skips:
            return ErrorAction.HALT
        self.skip_count += 1
        await _call(self.skip_callback, error, processor_id, context)
        return ErrorAction.SKIP

    def reset(self) -> None:
        self.skip_count = 0


class RetryStrategy(ErrorStrategy):
    """Run the same firing again with the same input, after an exponential backoff.

    The n-th retry waits ``min(initial_delay * backoff_multiplier ** (n - 1), max_delay)``
    seconds. Once a firing has been retried ``max_retries`` times, the strategy halts.

    Args:
        max_retries: Retries per firing.
        initial_delay: Seconds before the first retry.
        max_delay: The longest wait.
        backoff_multiplier: Growth of the wait per retry.
        retry_on: Exception types worth retrying (default: every exception); others halt.
    """

    def __init__(
        self,
        max_retries: int = 3,
        initial_delay: float = 1.0,
        max_delay: float = 60.0,
        backoff_multiplier: float = 2.0,
        retry_on: Sequence[type[BaseException]] | type[BaseException] | None = None,
    ) -> None:
        if not isinstance(max_retries, int) or max_retries < 0:
            raise ConfigurationError(
                f"max_retries must be a non-negative integer, got {max_retries!r}"
            )
        for name, value in (("initial_delay", initial_delay), ("max_delay", max_delay)):
            if not isinstance(value, (int, float)) or value < 0:
                raise ConfigurationError(f"{name} must be a non-negative number, got {value!r}")
        if not isinstance(backoff_multiplier, (int, float)) or backoff_multiplier < 1:
            raise ConfigurationError(
                f"backoff_multiplier must be a number >= 1, got {backoff_multiplier!r}"
            )
        if isinstance(retry_on, type):
            retry_on = (retry_on,)
        self.max_retries = max_retries
        self.initial_delay = float(initial_delay)
        self.max_delay = float(max_delay)
        self.backoff_multiplier = float(backoff_multiplier)
        self.retry_on: tuple[type[BaseException], ...] | None = (
            None if retry_on is None else tuple(retry_on)
        )
        self.retry_count = 0
        self._sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep

    def delay_for(self, retry: int) -> float:
        """Seconds to wait before retry number ``retry`` (1 for the first)."""
        return min(self.initial_delay * self.backoff_multiplier ** (retry - 1), self.max_delay)

    async def handle_error(
        self, error: BaseException, processor_id: str, context: dict[str, Any]
    ) -> bool | ErrorAction:
        if self.retry_on is not None and not isinstance(error, self.retry_on):
            return ErrorAction.HALT
        attempt = int(context.get("attempt", 1))
        if attempt > self.max_retries:
            return ErrorAction.HALT
        self.retry_count += 1
        await self._sleep(self.delay_for(attempt))
        return ErrorAction.RETRY

    def reset(self) -> None:
        self.retry_count = 0


class HaltStrategy(ErrorStrategy):
    """Stop the run on the error (the default behaviour).

    Args:
        halt_callback: Called as ``fn(error, processor_id, context)`` before halting.
    """

    def __init__(self, halt_callback: Callable[..., Any] | None = None) -> None:
        self.halt_callback = halt_callback

    async def handle_error(
        self, error: BaseException, processor_id: str, context: dict[str, Any]
    ) -> bool | ErrorAction:
        await _call(self.halt_callback, error, processor_id, context)
        return ErrorAction.HALT


class CircuitOpenError(ProcessorError):
    """A firing failed fast because its processor's circuit breaker is open."""


class _Circuit:
    __slots__ = ("failures", "opened_at", "probe_successes", "state")

    def __init__(self) -> None:
        self.state = "closed"
        self.failures = 0
        self.opened_at = 0.0
        self.probe_successes = 0


class CircuitBreakerStrategy(ErrorStrategy):
    """Stop calling a failing processor for a while.

    After ``failure_threshold`` consecutive failures the circuit opens: the processor's firings
    fail fast with :class:`CircuitOpenError`, without running, and are skipped. After
    ``recovery_timeout`` seconds it is half-open: firings run as probes; ``success_threshold``
    successes close it, one failure opens it again. Failures are skipped (the run goes on).

    Args:
        failure_threshold: Consecutive failures that open the circuit.
        recovery_timeout: Seconds the circuit stays open before probing.
        success_threshold: Successful probes that close it again.
    """

    def __init__(
        self,
        failure_threshold: int = 5,
        recovery_timeout: float = 60.0,
        success_threshold: int = 3,
    ) -> None:
        for name, value in (
            ("failure_threshold", failure_threshold),
            ("success_threshold", success_threshold),
        ):
            if not isinstance(value, int) or value < 1:
                raise ConfigurationError(f"{name} must be a positive integer, got {value!r}")
        if not isinstance(recovery_timeout, (int, float)) or recovery_timeout < 0:
            raise ConfigurationError(
                f"recovery_timeout must be a non-negative number, got {recovery_timeout!r}"
            )
        self.failure_threshold = failure_threshold
        self.recovery_timeout = float(recovery_timeout)
        self.success_threshold = success_threshold
        self._circuits: dict[str, _Circuit] = {}
        self._clock: Callable[[], float] = time.monotonic

    def _circuit(self, processor_id: str) -> _Circuit:
        circuit = self._circuits.get(processor_id)
        if circuit is None:
            circuit = self._circuits[processor_id] = _Circuit()
        return circuit

    def state(self, processor_id: str) -> str:
        """``"closed"``, ``"open"`` or ``"half_open"`` for this processor."""
        circuit = self._circuit(processor_id)
        if circuit.state == "open" and self._clock() - circuit.opened_at >= self.recovery_timeout:
            circuit.state = "half_open"
            circuit.probe_successes = 0
        return circuit.state

    def allow(self, processor_id: str) -> bool:
        return self.state(processor_id) != "open"

    def record_success(self, processor_id: str) -> None:
        circuit = self._circuits.get(processor_id)
        if circuit is None:
            return
        if circuit.state == "half_open":
            circuit.probe_successes += 1
            if circuit.probe_successes >= self.success_threshold:
                circuit.state = "closed"
                circuit.failures = 0
        else:
            circuit.failures = 0

    async def handle_error(
        self, error: BaseException, processor_id: str, context: dict[str, Any]
    ) -> bool | ErrorAction:
        if isinstance(error, CircuitOpenError):
            return ErrorAction.SKIP
        circuit = self._circuit(processor_id)
        circuit.failures += 1
        if circuit.state == "half_open" or circuit.failures >= self.failure_threshold:
            circuit.state = "open"
            circuit.opened_at = self._clock()
        return ErrorAction.SKIP


class CompositeStrategy(ErrorStrategy):
    """Several strategies in turn, e.g. retry twice, then skip.

    With ``strategy_order="sequential"`` each strategy is asked in order and the first answer
    other than HALT wins; with ``"all"`` every strategy hears the error (for their counters and
    callbacks) and the first answer other than HALT still wins. HALT only when all say HALT.

    Args:
        strategies: The strategies, in order.
        strategy_order: ``"sequential"`` or ``"all"``.
    """

    ORDERS = ("sequential", "all")

    def __init__(
        self, strategies: Sequence[ErrorHandlerInterface], strategy_order: str = "sequential"
    ) -> None:
        if strategy_order not in self.ORDERS:
            raise ConfigurationError(
                f"strategy_order must be one of {', '.join(self.ORDERS)}, got {strategy_order!r}"
            )
        strategies = list(strategies)
        if not strategies:
            raise ConfigurationError("CompositeStrategy needs at least one strategy")
        for s in strategies:
            if not isinstance(s, ErrorHandlerInterface):
                raise ConfigurationError(f"not an error strategy: {s!r}")
        self.strategies = strategies
        self.strategy_order = strategy_order

    async def handle_error(
        self, error: BaseException, processor_id: str, context: dict[str, Any]
    ) -> bool | ErrorAction:
        chosen = ErrorAction.HALT
        for strategy in self.strategies:
            action = resolve_action(await strategy.handle_error(error, processor_id, context))
            if action is not ErrorAction.HALT and chosen is ErrorAction.HALT:
                chosen = action
                if self.strategy_order == "sequential":
                    break
        return chosen

    def allow(self, processor_id: str) -> bool:
        return all(_allow(s, processor_id) for s in self.strategies)

    def record_success(self, processor_id: str) -> None:
        for s in self.strategies:
            if isinstance(s, ErrorStrategy):
                s.record_success(processor_id)

    def reset(self) -> None:
        for s in self.strategies:
            if isinstance(s, ErrorStrategy):
                s.reset()


def record_success(strategy: Any, processor_id: str) -> None:
    """Tell a strategy that keeps score (a circuit breaker) that a firing succeeded."""
    record = getattr(strategy, "record_success", None)
    if record is not None:
        record(processor_id)


def _allow(strategy: Any, processor_id: str) -> bool:
    allow = getattr(strategy, "allow", None)
    return True if allow is None else bool(allow(processor_id))


class AdaptiveStrategy(ErrorStrategy):
    """Delegates to a strategy that changes with the recent errors.

    Every error is logged in ``error_history`` (``error_type``, ``processor_id``,
    ``timestamp``, ``context``; the newest ``adaptation_window`` entries are kept). Then the
    rules are checked in the order they were added: the first whose ``condition(history)``
    holds makes its strategy the one delegated to, from this error on. The history and the
    current strategy persist across runs; :meth:`reset` (at each run's start) resets the
    counters of every strategy involved.

    Args:
        base_strategy: The strategy delegated to until a rule switches.
        adaptation_window: How many of the latest errors the history keeps.

    Raises:
        ConfigurationError: ``base_strategy`` is not an error strategy, or the window is not a
            positive integer.
    """

    def __init__(self, base_strategy: ErrorHandlerInterface, adaptation_window: int = 100) -> None:
        if not isinstance(base_strategy, ErrorHandlerInterface):
            raise ConfigurationError(f"base_strategy is not an error strategy: {base_strategy!r}")
        if (
            not isinstance(adaptation_window, int)
            or isinstance(adaptation_window, bool)
            or adaptation_window < 1
        ):
            raise ConfigurationError(
                f"adaptation_window must be a positive integer, got {adaptation_window!r}"
            )
        self.base_strategy = base_strategy
        self.adaptation_window = adaptation_window
        self.current_strategy: ErrorHandlerInterface = base_strategy
        #: The latest errors, oldest first (a list, trimmed to ``adaptation_window``).
        self.error_history: list[dict[str, Any]] = []
        self.adaptation_rules: list[
            tuple[Callable[[list[dict[str, Any]]], Any], ErrorHandlerInterface]
        ] = []

    def get_strategy_name(self) -> str:
        return "adaptive"

    def add_adaptation_rule(
        self,
        condition: Callable[[list[dict[str, Any]]], Any],
        new_strategy: ErrorHandlerInterface,
    ) -> None:
        """Switch to ``new_strategy`` once ``condition(history)`` holds.

        Args:
            condition: Called with the error history (a list, oldest first) after each error.
            new_strategy: The strategy to delegate to from then on.

        Raises:
            ConfigurationError: ``condition`` is not callable or ``new_strategy`` is not an
                error strategy.
        """
        if not callable(condition):
            raise ConfigurationError(f"adaptation condition must be callable, got {condition!r}")
        if not isinstance(new_strategy, ErrorHandlerInterface):
            raise ConfigurationError(f"not an error strategy: {new_strategy!r}")
        self.adaptation_rules.append((condition, new_strategy))

    def _adapt(self) -> None:
        history = list(self.error_history)  # a copy: a rule cannot change the strategy's own
        for condition, strategy in self.adaptation_rules:
            try:
                hit = bool(condition(history))
            except Exception:
                _log.exception("adaptation rule %r failed", condition)
                continue
            if hit:
                if strategy is not self.current_strategy:
                    _log.info(
                        "adaptive strategy: switching from %s to %s after %d error(s)",
                        self.current_strategy.get_strategy_name(),
                        strategy.get_strategy_name(),
                        len(history),
                    )
                    self.current_strategy = strategy
                return

    async def handle_error(
        self, error: BaseException, processor_id: str, context: dict[str, Any]
    ) -> bool | ErrorAction:
        history = self.error_history
        history.append(
            {
                "error_type": type(error).__name__,
                "processor_id": processor_id,
                "timestamp": time.time(),
                "context": {k: v for k, v in context.items() if k != "input"},
            }
        )
        if len(history) > self.adaptation_window:
            del history[: len(history) - self.adaptation_window]
        self._adapt()
        answer: bool | ErrorAction = await self.current_strategy.handle_error(
            error, processor_id, context
        )
        return answer

    def allow(self, processor_id: str) -> bool:
        return _allow(self.current_strategy, processor_id)

    def record_success(self, processor_id: str) -> None:
        record_success(self.current_strategy, processor_id)

    def reset(self) -> None:
        seen: set[int] = set()
        for strategy in [self.base_strategy, *(s for _, s in self.adaptation_rules)]:
            if id(strategy) not in seen and isinstance(strategy, ErrorStrategy):
                seen.add(id(strategy))
                strategy.reset()


def create_default_error_strategy() -> CompositeStrategy:
    """Retry a failed firing twice (after 0.5 s, then 1 s), then skip it; past 10 skips, halt.

    ``CompositeStrategy([RetryStrategy(max_retries=2, initial_delay=0.5),
    SkipStrategy(max_skips=10)], strategy_order="sequential")``: each retry runs the firing
    again with the same input; the 10 skips are counted per run, over all processors that use
    this strategy.
    """
    return CompositeStrategy(
        [RetryStrategy(max_retries=2, initial_delay=0.5), SkipStrategy(max_skips=10)],
        strategy_order="sequential",
    )
