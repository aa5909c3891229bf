"""How a run's external input reaches the graph.

An *entry* is an input pipe that no connection feeds: every input pipe of a source processor,
plus the single virtual ``"input"`` pipe of a source that declares none. The caller's input is
turned into *feeds*: one iterable of items each, with the entries it fills. A batch run is a
stream of one: each feed is a one-item list.

Addressing (the keys of a mapping): a processor id, ``"processor:pipe"``, or an entry pipe's name
(which fills that pipe on every processor that has it). A mapping that addresses nothing is
everyone's payload; one that addresses some entries and also has unknown keys is an error.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ._errors import ValidationError

__all__ = ["Entry", "Feed", "resolve_feeds"]


@dataclass(frozen=True)
class Entry:
    """An input pipe fed from outside the graph."""

    processor_id: str
    pipe_name: str
    is_source: bool


@dataclass
class Feed:
    """One stream of external items and where they go.

    ``targets`` maps a routing name to entries: with one name, every item goes to all of them;
    with several (a processor's own pipe names), each item is a dict routed key by key.
    """

    name: str
    items: Any
    targets: dict[str, list[Entry]] = field(default_factory=dict)


def resolve_feeds(entries: list[Entry], data: Any, streaming: bool) -> list[Feed]:
    """Turn a run's input into feeds that fill every entry exactly once.

    Args:
        entries: Every entry of the graph.
        data: ``execute``'s ``input_data`` (batch) or ``stream``'s ``inputs``.
        streaming: Whether values are iterables of items (stream) or items (batch).

    Raises:
        ValidationError: Unknown keys next to known ones, an entry fed twice or not at all, or
            a value of the wrong shape; the message names each.
    """
    by_proc: dict[str, list[Entry]] = {}
    by_pipe: dict[str, list[Entry]] = {}
    by_ref: dict[str, Entry] = {}
    for e in entries:
        by_proc.setdefault(e.processor_id, []).append(e)
        by_pipe.setdefault(e.pipe_name, []).append(e)
        by_ref[f"{e.processor_id}:{e.pipe_name}"] = e

    def one(items: Any) -> Any:
        return items if streaming else [items]

    if not isinstance(data, Mapping) or not any(
        k in by_proc or k in by_ref or k in by_pipe for k in data
    ):
        if streaming and isinstance(data, Mapping):
            raise ValidationError(
                "stream inputs must map source processors (or their input pipes) to iterables",
                [f"unknown input key {k!r}" for k in data] or ["no input given"],
            )
        feed = Feed("input", one(_check_stream("input", data) if streaming else data))
        _target_all(feed, [e for e in entries if e.is_source])
        _require_fed(entries, {e for e in entries if e.is_source})
        return [feed]

    problems: list[str] = []
    feeds: list[Feed] = []
    fed: dict[Entry, str] = {}

    def claim(entry: Entry, key: str) -> None:
        if entry in fed:
            problems.append(
                f"input pipe {entry.processor_id}:{entry.pipe_name} is given twice "
                f"(by {fed[entry]!r} and {key!r})"
            )
        fed[entry] = key

    unknown = [k for k in data if not (k in by_proc or k in by_ref or k in by_pipe)]
    for key, value in data.items():
        if key in unknown:
            continue
        if streaming:
            try:
                value = _check_stream(key, value)
            except ValidationError as exc:
                problems.extend(exc.validation_errors)
                continue
        if key in by_proc:
            own = by_proc[key]
            feed = Feed(key, one(value))
            if len(own) == 1:
                feed.targets[own[0].pipe_name] = [own[0]]
            else:
                names = {e.pipe_name for e in own}
                if not streaming and not (isinstance(value, Mapping) and set(value) == names):
                    problems.append(
                        f"input for {key!r} must be a dict with exactly its input pipes "
                        f"{sorted(names)}, got {_describe(value)}"
                    )
                    continue
                for e in own:
                    feed.targets[e.pipe_name] = [e]
            for e in own:
                claim(e, key)
        elif key in by_ref:
            feed = Feed(key, one(value), {by_ref[key].pipe_name: [by_ref[key]]})
            claim(by_ref[key], key)
        else:
            feed = Feed(key, one(value), {key: list(by_pipe[key])})
            for e in by_pipe[key]:
                claim(e, key)
        feeds.append(feed)
    if unknown:
        known = sorted(by_proc) + sorted(by_ref)
        problems.append(
            f"unknown input key(s) {', '.join(map(repr, unknown))}; inputs can name "
            f"{', '.join(map(repr, known))}"
        )
    if problems:
        raise ValidationError("invalid input", problems)

    unnamed = [e for e in entries if e not in fed]
    if unnamed and not streaming:
        # A source not named receives the whole input mapping.
        rest = [e for e in unnamed if e.is_source]
        if rest:
            feed = Feed("input", [data])
            _target_all(feed, rest)
            feeds.append(feed)
            fed.update(dict.fromkeys(rest, "input"))
    _require_fed(entries, set(fed))
    return feeds


def _target_all(feed: Feed, entries: list[Entry]) -> None:
    feed.targets["input"] = list(entries)


def _require_fed(entries: list[Entry], fed: set[Entry]) -> None:
    missing = [e for e in entries if e not in fed]
    if missing:
        raise ValidationError(
            "invalid input",
            [
                f"input pipe {e.processor_id}:{e.pipe_name} is not connected and gets no input"
                for e in missing
            ],
        )


def _check_stream(key: str, value: Any) -> Iterable[Any]:
    if isinstance(value, (str, bytes, bytearray, Mapping)) or not (
        hasattr(value, "__iter__") or hasattr(value, "__aiter__")
    ):
        raise ValidationError(
            "invalid input",
            [f"stream input {key!r} must be an iterable or async iterable of items, "
             f"got {_describe(value)}"],
        )
    return value  # type: ignore[no-any-return]


def _describe(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text[:60] + '...' if len(text) > 60 else text}"
