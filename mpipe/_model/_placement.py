"""Where a processor's firings run: the names of the placements and their validation."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .._errors import ConfigurationError

#: Every placement mpipe knows, in the order of the docs.
PLACEMENTS = ("inline", "thread", "process", "dask")


def check_placement(value: Any, what: str) -> str:
    """Return ``value`` if it names a placement, else raise a :class:`ConfigurationError`."""
    if value not in PLACEMENTS:
        raise ConfigurationError(
            f"{what}: execution must be one of {', '.join(PLACEMENTS)}; got {value!r}",
            field="execution",
        )
    return str(value)


def placement_from_config(config: Mapping[str, Any], what: str) -> str | None:
    """The placement a processor's config asks for, or None for the executor's default.

    ``cpu_bound=True`` means ``"process"``; combined with another ``execution`` it is an error.
    """
    execution = config.get("execution")
    cpu_bound = config.get("cpu_bound", False)
    if not isinstance(cpu_bound, bool):
        raise ConfigurationError(
            f"{what}: cpu_bound must be true or false, got {cpu_bound!r}", field="cpu_bound"
        )
    if execution is None:
        return "process" if cpu_bound else None
    placement = check_placement(execution, what)
    if cpu_bound and placement != "process":
        raise ConfigurationError(
            f"{what}: cpu_bound=True asks for execution='process' but execution={placement!r}",
            field="execution",
        )
    return placement
