"""Reading config files: strict YAML and JSON, within limits that keep a hostile file cheap.

YAML is read with the safe loader, refusing a key repeated in one mapping, an alias inside the
node it names, and a document that expands past ``MAX_YAML_NODES`` nodes through its aliases
(counted on the composed node graph, where an alias is one shared node, before anything is
constructed or walked). JSON is strict: no repeated keys, no ``NaN``. No file over
``MAX_CONFIG_BYTES`` is read at all. Every refusal is a :class:`ConfigurationError`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from .._errors import ConfigurationError

__all__ = ["MAX_CONFIG_BYTES", "MAX_YAML_NODES", "read_config_file"]

#: The largest config file read, in bytes (a config is a description, not data).
MAX_CONFIG_BYTES = 10 * 2**20
#: The most nodes (mappings, sequences, scalars) a YAML document may hold once every alias is
#: expanded: anchors reused over and over (a "billion laughs" document of a few hundred bytes)
#: would otherwise expand to more than any memory or check can hold.
MAX_YAML_NODES = 1_000_000


class _StrictSafeLoader(yaml.SafeLoader):
    """The safe loader, refusing a key repeated in one mapping (YAML would keep the last), a
    recursive alias, and a document that expands past ``MAX_YAML_NODES`` nodes."""

    def get_single_node(self) -> Any:
        node = super().get_single_node()  # type: ignore[no-untyped-call]
        if node is not None:
            _check_expansion(node)
        return node

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)  # type: ignore[no-untyped-call]
            try:
                repeated = key in seen
                seen.add(key)
            except TypeError:  # an unhashable key: the base class reports it
                break
            if repeated:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} appears twice in one mapping", key_node.start_mark
                )
        return super().construct_mapping(node, deep=deep)


def _check_expansion(root: yaml.Node) -> None:
    """Count the nodes of a composed document as if every alias were expanded, without expanding
    anything (each node's expanded size once, in one pass); refuse too many or a cycle."""
    sizes: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, finished = stack.pop()
        key = id(node)
        children = _children(node)
        if finished:
            on_path.discard(key)
            sizes[key] = min(1 + sum(sizes[id(c)] for c in children), MAX_YAML_NODES + 1)
            continue
        if key in sizes:
            continue
        on_path.add(key)
        stack.append((node, True))
        for child in children:
            if id(child) in on_path:
                raise _Refused(
                    None, None, "an alias refers to a node that contains it", child.start_mark
                )
            if id(child) not in sizes:
                stack.append((child, False))
    if sizes[id(root)] > MAX_YAML_NODES:
        raise _Refused(
            None,
            None,
            f"the document expands to more than {MAX_YAML_NODES:,} nodes through its aliases "
            "(anchors reused too often)",
            None,
        )


class _Refused(yaml.composer.ComposerError):
    """A well-formed YAML document that a config may not be (too big once expanded)."""


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _json_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object, refusing a key repeated in it (as YAML configs are; JSON keeps the last)."""
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            keys = ", ".join(repr(k) for k, _ in pairs[:6]) + (", ..." if len(pairs) > 6 else "")
            raise _DuplicateKey(f"key {key!r} appears twice in one object (keys: {keys})")
        obj[key] = value
    return obj


class _DuplicateKey(ValueError):
    pass


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _parse(raw: bytes, json_file: bool) -> Any:
    """A config file's document: JSON (strict: no repeated keys, no NaN) or YAML (safe)."""
    if json_file:
        return json.loads(raw, object_pairs_hook=_json_object, parse_constant=_no_constant)
    return yaml.load(raw, _StrictSafeLoader)


def _yaml_problem(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    problem = getattr(exc, "problem", None) or str(exc)
    if isinstance(exc, _Refused):
        return f"YAML refused{where}: {problem}"
    if isinstance(exc, yaml.constructor.ConstructorError) and "constructor for the tag" in str(
        problem
    ):
        return (
            f"YAML tag not allowed{where}: {problem} (configs are read with the safe loader; "
            "name Python code with 'module:attr' strings instead)"
        )
    return f"malformed YAML{where}: {problem}"


def read_config_file(p: Path) -> tuple[bytes, Any]:
    """The bytes of a ``.yaml``, ``.yml`` or ``.json`` config file and the document they hold.

    Raises:
        ConfigurationError: The file cannot be read, is too large, malformed or refused.
    """
    try:
        with p.open("rb") as f:
            raw = f.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ConfigurationError(
            f"cannot read config {str(p)!r}: {exc.strerror or exc}", "path"
        ) from exc
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigurationError(
            f"config {str(p)!r} is larger than {MAX_CONFIG_BYTES // 2**20} MiB; a config "
            "describes a graph (pass data as input instead)",
            "path",
        )
    try:
        return raw, _parse(raw, p.suffix.lower() == ".json")
    except yaml.YAMLError as exc:
        raise ConfigurationError(f"config {str(p)!r}: {_yaml_problem(exc)}", "path") from exc
    except RecursionError as exc:
        raise ConfigurationError(
            f"config {str(p)!r}: nested too deeply to be read", "path"
        ) from exc
    except ValueError as exc:  # JSON's errors (YAML's are YAMLErrors)
        raise ConfigurationError(f"config {str(p)!r}: malformed JSON: {exc}", "path") from exc
    except MemoryError as exc:
        raise ConfigurationError(
            f"config {str(p)!r}: ran out of memory while parsing its {len(raw):,} bytes", "path"
        ) from exc
