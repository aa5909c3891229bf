"""The error tracker: the errors of runs (or any errors handed to it), counted and summed up.

An :class:`ErrorTracker` is a run observer: given to an executor (``hooks=[tracker]``) or to one
``execute(..., monitor=tracker)``, it records every failed firing as it is reported (the
processor's own exception, a crash of its worker, a timeout), whatever the error strategy then
decides. Errors may also be recorded by hand with :meth:`ErrorTracker.record_error`.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from .._errors import PipelineError
from ._hooks import RunHooks

__all__ = ["ErrorTracker"]

#: How many of the latest errors ``get_error_summary`` lists in ``recent_errors``.
RECENT = 10


@dataclass
class _Recorded:
    error: BaseException
    processor_id: str | None
    timestamp: float

    def to_dict(self) -> dict[str, Any]:
        error = self.error
        if isinstance(error, PipelineError):
            out = error.to_dict()
            if out.get("processor_id") is None:
                out["processor_id"] = self.processor_id
            return out
        cause = error.__cause__
        return {
            "type": type(error).__name__,
            "error_type": type(error).__name__,
            "message": str(error),
            "processor_id": self.processor_id,
            "context": {},
            "timestamp": self.timestamp,
            "cause": None
            if cause is None
            else {"type": type(cause).__name__, "message": str(cause)},
        }


class ErrorTracker(RunHooks):
    """Keeps errors and answers questions about them.

    Errors are kept until :meth:`clear_errors`; the tracker keeps the exceptions themselves
    (and so what their tracebacks reference), so clear it between long series of runs.
    """

    def __init__(self) -> None:
        self._errors: list[_Recorded] = []

    # -- recording -----------------------------------------------------------------------------

    def record_error(self, error: BaseException, processor_id: str | None = None) -> None:
        """Record one error.

        Args:
            error: The exception (a :class:`~mpipe.PipelineError` or any other).
            processor_id: The processor it belongs to, when the error does not say
                (``error.processor_id`` wins when set).

        Raises:
            TypeError: ``error`` is not an exception.
        """
        if not isinstance(error, BaseException):
            raise TypeError(f"record_error needs an exception, got {type(error).__name__}")
        own = getattr(error, "processor_id", None)
        pid = own if isinstance(own, str) else processor_id
        self._errors.append(_Recorded(error, pid, time.time()))

    def clear_errors(self) -> None:
        """Forget every recorded error."""
        self._errors.clear()

    def firing_end(
        self,
        processor_id: str,
        index: int,
        start: float,
        end: float,
        worker: str,
        error: BaseException | None,
    ) -> None:
        if error is not None:
            self.record_error(error, processor_id)

    # -- reading -------------------------------------------------------------------------------

    @property
    def errors(self) -> list[BaseException]:
        """The recorded exceptions, oldest first."""
        return [r.error for r in self._errors]

    def get_error_summary(self) -> dict[str, Any]:
        """The errors summed up (JSON-compatible).

        Keys: ``total_errors``, ``error_counts_by_type`` (type name -> count),
        ``errors_by_processor`` (processor id -> the errors' dicts, oldest first; errors of no
        processor are left out) and ``recent_errors`` (the dicts of the last 10).
        """
        by_processor: dict[str, list[dict[str, Any]]] = {}
        for r in self._errors:
            if r.processor_id is not None:
                by_processor.setdefault(r.processor_id, []).append(r.to_dict())
        return {
            "total_errors": len(self._errors),
            "error_counts_by_type": dict(Counter(type(r.error).__name__ for r in self._errors)),
            "errors_by_processor": by_processor,
            "recent_errors": [r.to_dict() for r in self._errors[-RECENT:]],
        }

    def get_processor_error_rate(self, processor_id: str) -> float:
        """The share of all recorded errors that belong to ``processor_id`` (0.0 without any)."""
        if not self._errors:
            return 0.0
        return sum(r.processor_id == processor_id for r in self._errors) / len(self._errors)

    def has_recurring_errors(self, processor_id: str, threshold: int = 3) -> bool:
        """Whether ``processor_id`` has at least ``threshold`` recorded errors."""
        return sum(r.processor_id == processor_id for r in self._errors) >= threshold

    def __repr__(self) -> str:
        return f"ErrorTracker({len(self._errors)} errors)"
