"""``"module:attr"`` references: how a config names Python code.

A reference imports ``module`` and walks the dotted ``attr`` path in it. Importing runs the
module's code, so a config that uses references is as trusted as a Python script.
"""

from __future__ import annotations

import builtins
import importlib
import re
from typing import Any

from .._errors import ConfigurationError

__all__ = ["is_reference", "resolve_exception", "resolve_reference"]

_DOTTED = r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*"
_REFERENCE = re.compile(rf"^({_DOTTED}):({_DOTTED})$")


def is_reference(text: Any) -> bool:
    """Whether ``text`` has the ``"module:attr"`` shape."""
    return isinstance(text, str) and _REFERENCE.match(text) is not None


def resolve_reference(text: str, field: str | None = None) -> Any:
    """The object that ``"module:attr"`` names.

    Args:
        text: The reference, e.g. ``"mypkg.steps:clean"`` or ``"mypkg:Outer.inner"``.
        field: The config field it came from, for the error.

    Raises:
        ConfigurationError: A malformed reference, a module that cannot be imported, or a
            missing attribute; the message says which.
    """
    match = _REFERENCE.match(text) if isinstance(text, str) else None
    if match is None:
        raise ConfigurationError(f"expected a 'module:attr' reference, got {text!r}", field=field)
    module_name, attr_path = match.groups()
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigurationError(
            f"cannot import module {module_name!r} of reference {text!r}: {exc}", field=field
        ) from exc
    except Exception as exc:  # the module itself raised while importing
        raise ConfigurationError(
            f"importing module {module_name!r} of reference {text!r} failed: "
            f"{type(exc).__name__}: {exc}",
            field=field,
        ) from exc
    for part in attr_path.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ConfigurationError(
                f"reference {text!r}: {module_name!r} has no attribute {attr_path!r}", field=field
            ) from None
    return obj


def resolve_exception(name: str, field: str | None = None) -> type[BaseException]:
    """An exception class from a builtin name (``"ValueError"``) or a ``"module:Class"``.

    Raises:
        ConfigurationError: Unknown name, or the object is not an exception class.
    """
    obj = resolve_reference(name, field) if ":" in name else getattr(builtins, name, None)
    if not (isinstance(obj, type) and issubclass(obj, BaseException)):
        raise ConfigurationError(
            f"expected an exception class such as ValueError or 'module:Class', got {name!r}",
            field=field,
        )
    return obj
