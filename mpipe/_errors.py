"""The exceptions mpipe raises.

Every exception derives from :class:`PipelineError` and can describe itself as a JSON-compatible
dict with ``to_dict()`` (for event logs, checkpoints and the command line).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

__all__ = [
    "CheckpointError",
    "CheckpointWarning",
    "ConfigurationError",
    "ExecutionError",
    "GraphError",
    "PipeError",
    "PipeTimeoutError",
    "PipelineError",
    "PipelineTimeoutError",
    "ProcessorError",
    "ProcessorTimeoutError",
    "ValidationError",
    "WorkerCrashedError",
]


class PipelineError(Exception):
    """Base class of every error mpipe raises.

    Args:
        message: What went wrong, in one sentence.
        details: Extra JSON-compatible facts about the error (``context=`` among them: a dict
            of the circumstances, reported under ``context`` by :meth:`to_dict`).

    Attributes:
        timestamp: Wall-clock time (``time.time()``) the error was made.
        context: The ``context`` detail, or an empty dict.
    """

    #: True for a failure of the run itself rather than of one firing (a worker pool that
    #: cannot start workers): it halts the run whatever the error strategy says.
    fatal = False

    def __init__(self, message: str = "", **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = details
        self.timestamp = time.time()
        context = details.get("context")
        #: The circumstances of the error (``context=`` when it was made; else empty).
        self.context: dict[str, Any] = dict(context) if isinstance(context, Mapping) else {}

    def to_dict(self) -> dict[str, Any]:
        """Describe the error as a JSON-compatible dict.

        Keys: ``type`` and ``error_type`` (the class name), ``message``, ``processor_id`` (None
        when no processor is concerned), ``context``, ``timestamp``, ``cause`` (the type and
        message of ``__cause__``, or None), and ``details`` when there are any.
        """
        out: dict[str, Any] = {
            "type": type(self).__name__,
            "error_type": type(self).__name__,
            "message": self.message,
            "processor_id": _jsonable(getattr(self, "processor_id", None)),
            "context": _jsonable(self.context),
            "timestamp": self.timestamp,
            "cause": None,
        }
        if self.details:
            out["details"] = {k: _jsonable(v) for k, v in self.details.items()}
        cause = self.__cause__
        if cause is not None:
            out["cause"] = {"type": type(cause).__name__, "message": str(cause)}
        return out


class ProcessorError(PipelineError):
    """A processor failed, or was used wrongly.

    Args:
        message: What went wrong.
        processor_id: The processor concerned, when known.
    """

    def __init__(self, message: str = "", processor_id: str | None = None, **details: Any) -> None:
        super().__init__(message, **details)
        self.processor_id = processor_id


class GraphError(PipelineError):
    """A graph was built wrongly: an unknown or duplicate processor id, say."""


class ValidationError(PipelineError):
    """A graph or an input failed validation.

    Args:
        message: A summary.
        validation_errors: Every problem found, one sentence each.
    """

    def __init__(self, message: str = "", validation_errors: Sequence[str] | None = None) -> None:
        self.validation_errors = list(validation_errors or [])
        if self.validation_errors and message and not message.endswith(":"):
            full = message + ": " + "; ".join(self.validation_errors)
        else:
            full = message or "; ".join(self.validation_errors)
        super().__init__(full)

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out["validation_errors"] = list(self.validation_errors)
        return out


class ExecutionError(PipelineError):
    """A run stopped before it finished.

    Args:
        message: What stopped the run.
        failed_processors: Ids of the processors whose errors stopped it.
        cause: The original exception, also set as ``__cause__``.
        item_index: The index, in its processor's stream, of the item whose firing failed
            (None when no firing's failure stopped the run).
    """

    def __init__(
        self,
        message: str = "",
        failed_processors: Sequence[str] | None = None,
        cause: BaseException | None = None,
        *,
        item_index: int | None = None,
    ) -> None:
        super().__init__(message)
        self.failed_processors = list(failed_processors or [])
        self.cause = cause
        self.item_index = item_index
        if cause is not None:
            self.__cause__ = cause

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out["failed_processors"] = list(self.failed_processors)
        out["item_index"] = self.item_index
        return out


class PipeError(PipelineError):
    """A pipe was used wrongly: getting from a closed, drained pipe, or putting into a closed one.

    Args:
        message: What went wrong.
        pipe_id: The pipe concerned, when known.
        operation: What was being done (``"get"``, ``"put"``, ``"connect"``...), when known.
    """

    def __init__(
        self,
        message: str = "",
        pipe_id: str | None = None,
        operation: str | None = None,
        **details: Any,
    ) -> None:
        super().__init__(message, **details)
        self.pipe_id = pipe_id
        self.operation = operation

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out["pipe_id"] = self.pipe_id
        out["operation"] = self.operation
        return out


class PipelineTimeoutError(PipelineError):
    """Something waited longer than it was allowed to (a pipe's ``get`` or ``put``).

    Not the builtin :class:`TimeoutError`; ``processor_pipeline.v2`` exports it under the name
    ``TimeoutError`` (``core.errors.TimeoutError``).

    Args:
        message: What timed out.
        timeout_duration: The time allowed, in seconds.
        processor_id: The processor concerned, when known.
        context: The circumstances, as a dict.
    """

    def __init__(
        self,
        message: str = "",
        timeout_duration: float = 0.0,
        processor_id: str | None = None,
        context: Mapping[str, Any] | None = None,
        **details: Any,
    ) -> None:
        if context is not None:
            details["context"] = dict(context)
        super().__init__(message, **details)
        self.timeout_duration = float(timeout_duration)
        self.processor_id = processor_id

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out["timeout_duration"] = self.timeout_duration
        return out


class PipeTimeoutError(PipelineTimeoutError, PipeError):
    """A pipe stayed empty (``get``) or full (``put``) for the whole ``timeout``.

    Args:
        message: What timed out.
        timeout_duration: The time allowed, in seconds.
        pipe_id: The pipe.
        operation: ``"get"`` or ``"put"``.
    """

    def __init__(
        self,
        message: str = "",
        timeout_duration: float = 0.0,
        pipe_id: str | None = None,
        operation: str | None = None,
    ) -> None:
        super().__init__(message, timeout_duration)
        self.pipe_id = pipe_id
        self.operation = operation


class ConfigurationError(PipelineError, ValueError):
    """A configuration value is wrong (also a :class:`ValueError`).

    Args:
        message: What is wrong and what was expected.
        field: The path of the offending field (``processors[2].processor_type``), when known.
    """

    def __init__(self, message: str = "", field: str | None = None, **details: Any) -> None:
        super().__init__(message, **details)
        self.field = field

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out["field"] = self.field
        return out


class ProcessorTimeoutError(ProcessorError):
    """A firing ran past its processor's ``timeout``."""


class WorkerCrashedError(ProcessorError):
    """A worker process died while running a firing.

    Args:
        message: What died and how.
        processor_id: The processor whose firing was running.
        exitcode: The worker's exit code (negative: the signal that killed it).
        item_index: The index of the firing's item within the processor's stream.
    """

    def __init__(
        self,
        message: str = "",
        processor_id: str | None = None,
        exitcode: int | None = None,
        item_index: int | None = None,
        **details: Any,
    ) -> None:
        super().__init__(message, processor_id, **details)
        self.exitcode = exitcode
        self.item_index = item_index

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out["exitcode"] = self.exitcode
        out["item_index"] = self.item_index
        return out


class CheckpointError(PipelineError):
    """A checkpoint cannot be saved, found or restored; the message says which and why."""


class CheckpointWarning(UserWarning):
    """A checkpoint file in the folder could not be read and was left out of a listing."""


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return repr(value)


_E = TypeVar("_E", bound=PipelineError)


def mark_fatal(exc: _E) -> _E:
    """Mark ``exc`` as a failure of the run, not of a firing: no strategy skips or retries it."""
    exc.fatal = True
    return exc


def describe_error(exc: BaseException) -> str:
    """``Type: message``; an exception without a message still says what it is."""
    name = type(exc).__name__
    text = str(exc)
    if text:
        return f"{name}: {text}"
    if isinstance(exc, MemoryError):
        return f"{name} (out of memory)"
    return f"{name} (no message)"
