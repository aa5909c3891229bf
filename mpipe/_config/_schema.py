"""Checking a config against the published JSON Schema (``mpipe/config.schema.json``).

The schema is the single description of the file format: editors and CI can use the same file.
``jsonschema`` finds every violation; this module turns each into a :class:`Problem` whose field
path and wording match the rest of mpipe's config errors.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

import jsonschema

from ._model import Problem, field_path, short_repr

__all__ = ["load_schema", "schema_problems", "section_problems"]

_JSON_TYPES = {
    "object": "a mapping",
    "array": "a list",
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "null": "null",
}


@cache
def _schema_text() -> str:
    return resources.files("mpipe").joinpath("config.schema.json").read_text(encoding="utf-8")


def load_schema() -> dict[str, Any]:
    """The config format's JSON Schema, as shipped in the package (a fresh copy each call)."""
    schema: dict[str, Any] = json.loads(_schema_text())
    return schema


@cache
def _validator() -> Any:
    schema = load_schema()
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


#: Fields whose pattern is the ``"module:attr"`` reference shape.
_REFERENCE_FIELDS = ("condition", "action")


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    return type(value).__name__


def _choices(values: Any) -> str:
    return ", ".join(str(v) for v in values)


def _describe(error: Any, prefix: list[str | int]) -> list[Problem]:
    path = [*prefix, *error.absolute_path]
    where = field_path(path)
    kind = error.validator
    value = error.validator_value
    instance = error.instance
    if kind == "required":
        return [
            Problem(field_path([*path, name]), "required field is missing")
            for name in value
            if isinstance(instance, dict) and name not in instance
        ]
    if kind == "additionalProperties" and isinstance(instance, dict):
        known = list(error.schema.get("properties", {}))
        return [
            Problem(
                field_path([*path, str(name)]),
                f"unknown field; expected one of: {_choices(known)}" if known else "unexpected",
            )
            for name in instance
            if name not in known
        ]
    if kind == "enum":
        return [Problem(where, f"expected one of {_choices(value)}; got {short_repr(instance)}")]
    if kind == "const":
        return [Problem(where, f"expected {value!r}; got {short_repr(instance)}")]
    if kind == "type":
        names = value if isinstance(value, list) else [value]
        expected = " or ".join(_JSON_TYPES.get(str(n), str(n)) for n in names)
        got = f"{_type_name(instance)} {short_repr(instance)}"
        return [Problem(where, f"expected {expected}; got {got}")]
    if kind == "minimum":
        return [Problem(where, f"expected a number >= {value}; got {short_repr(instance)}")]
    if kind == "exclusiveMinimum":
        return [Problem(where, f"expected a number > {value}; got {short_repr(instance)}")]
    if kind == "minLength":
        return [Problem(where, "expected a non-empty string")]
    if kind == "minItems":
        return [Problem(where, f"expected at least {value} item{'s' if value != 1 else ''}")]
    if kind == "uniqueItems":
        reprs = [repr(v) for v in instance]
        dupes = sorted({r for r in reprs if reprs.count(r) > 1})
        return [Problem(where, f"expected unique values; repeated: {', '.join(dupes)}")]
    if kind == "pattern":
        last = path[-1] if path else ""
        if isinstance(last, str) and (last.endswith("callback") or last in _REFERENCE_FIELDS):
            expected = "a 'module:attr' reference"
        elif last == "log_level":
            expected = "a log level (debug, info, warning, error, critical; any case)"
        elif isinstance(path[-2] if len(path) > 1 else None, str) and path[-2] == "retry_on":
            expected = "an exception class name such as ValueError or 'module:Class'"
        else:
            expected = f"a string matching {value}"
        return [Problem(where, f"expected {expected}; got {short_repr(instance)}")]
    return [Problem(where, str(error.message))]


def _sort_key(error: Any) -> tuple[tuple[int, int, str], ...]:
    return tuple(
        (0, part, "") if isinstance(part, int) else (1, 0, str(part))
        for part in error.absolute_path
    )


@cache
def _section_validator(name: str) -> Any:
    schema = load_schema()
    sub = {"$schema": schema.get("$schema"), "$defs": schema["$defs"], "$ref": f"#/$defs/{name}"}
    return jsonschema.validators.validator_for(schema)(sub)


def schema_problems(data: Any) -> list[Problem]:
    """Every violation of the config schema in ``data``, in field order; empty when valid."""
    return _problems(_validator(), data, [])


def section_problems(name: str, data: Any) -> list[Problem]:
    """Every violation of one top-level section's schema (``monitoring``, ``checkpoints``).

    Field paths start with the section's name, as they would in a whole config.
    """
    return _problems(_section_validator(name), data, [name])


def _problems(validator: Any, data: Any, prefix: list[str | int]) -> list[Problem]:
    errors = sorted(validator.iter_errors(data), key=_sort_key)
    out: list[Problem] = []
    seen: set[Problem] = set()
    for error in errors:
        for problem in _describe(error, prefix):
            if problem not in seen:
                seen.add(problem)
                out.append(problem)
    return out
