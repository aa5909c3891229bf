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

from collections.abc import Callable, Container, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .._errors import ValidationError

__all__ = ["Entry", "EntryIndex", "Feed", "resolve_feeds"]


@dataclass(eq=False)
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


class EntryIndex:
    """The entries of a graph, indexed by every way an input key can name them."""

    def __init__(self, entries: list[Entry]) -> None:
        self.entries = entries
        self.by_proc: dict[str, list[Entry]] = {}
        self.by_pipe: dict[str, list[Entry]] = {}
        self.by_ref: dict[str, Entry] = {}
        for e in entries:
            self.by_proc.setdefault(e.processor_id, []).append(e)
            self.by_pipe.setdefault(e.pipe_name, []).append(e)
            self.by_ref[f"{e.processor_id}:{e.pipe_name}"] = e
        #: Source -> its entry, when every source has one input pipe (the common graph); the
        #: executor's plan delivers a batch input keyed by exactly these sources directly.
        self.single: dict[str, Entry] | None = (
            {pid: es[0] for pid, es in self.by_proc.items()}
            if all(len(es) == 1 for es in self.by_proc.values())
            else None
        )


def resolve_feeds(
    index: EntryIndex,
    data: Any,
    streaming: bool,
    deliver: Callable[[Entry, Any], None] | None = None,
) -> list[Feed]:
    """Turn a run's input into feeds that fill every entry exactly once.

    Args:
        index: Every entry of the graph.
        data: ``execute``'s ``input_data`` (batch) or ``stream``'s ``inputs``.
        streaming: Whether values are iterables of items (stream) or items (batch).
        deliver: Batch only: called as ``deliver(entry, item)`` for each entry's item instead of
            building feeds (a graph with thousands of sources then allocates nothing per source).

    Returns:
        The feeds (empty when ``deliver`` took the items).

    Raises:
        ValidationError: Unknown keys next to known ones, an entry fed twice or not at all, or
            a value of the wrong shape; the message names each.
    """
    entries = index.entries
    by_proc, by_pipe, by_ref = index.by_proc, index.by_pipe, index.by_ref
    feeds: list[Feed] = []

    def feed(name: str, value: Any, targets: dict[str, list[Entry]]) -> None:
        if deliver is None:
            feeds.append(Feed(name, value if streaming else [value], targets))
        elif len(targets) == 1:
            for e in next(iter(targets.values())):
                deliver(e, value)
        else:
            for pipe_name, es in targets.items():
                for e in es:
                    deliver(e, value[pipe_name])

    if not isinstance(data, Mapping) or not any(
        k in by_proc or k in by_ref or k in by_pipe for k in data
    ):
        if streaming and isinstance(data, Mapping):
            raise ValidationError(
                "stream inputs must map source processors (or their input pipes) to iterables",
                [f"unknown input key {k!r}" for k in data] or ["no input given"],
            )
        sources = [e for e in entries if e.is_source]
        _require_fed(entries, set(sources))
        feed("input", _check_stream("input", data) if streaming else data, {"input": sources})
        return feeds

    unknown = [k for k in data if not (k in by_proc or k in by_ref or k in by_pipe)]
    if unknown:
        known = sorted(by_proc) + sorted(by_ref)
        raise ValidationError(
            "invalid input",
            [
                f"unknown input key(s) {', '.join(map(repr, unknown))}; inputs can name "
                f"{', '.join(map(repr, known))}"
            ],
        )
    problems: list[str] = []
    fed: dict[Entry, str] = {}
    plan: list[tuple[str, Any, dict[str, list[Entry]]]] = []
    for key, value in data.items():
        if streaming:
            try:
                value = _check_stream(key, value)
            except ValidationError as exc:
                problems.extend(exc.validation_errors)
                continue
        if key in by_proc:
            own = by_proc[key]
            if len(own) == 1 and deliver is not None and own[0] not in fed:
                # The common case of a batch run, short: one item for a one-pipe source. (Items
                # delivered before a later key turns out bad do no harm: nothing runs then.)
                fed[own[0]] = key
                deliver(own[0], value)
                continue
            if len(own) == 1:
                targets = {own[0].pipe_name: own}
            else:
                names = {e.pipe_name for e in own}
                if not streaming and not (isinstance(value, Mapping) and set(value) == names):
                    problems.append(
                        f"input for {key!r} must be a dict with exactly its input pipes "
                        f"{sorted(names)}, got {_describe(value)}"
                    )
                    continue
                targets = {e.pipe_name: [e] for e in own}
        elif key in by_ref:
            targets = {by_ref[key].pipe_name: [by_ref[key]]}
        else:
            targets = {key: by_pipe[key]}
        for es in targets.values():
            for e in es:
                if e in fed:
                    problems.append(
                        f"input pipe {e.processor_id}:{e.pipe_name} is given twice "
                        f"(by {fed[e]!r} and {key!r})"
                    )
                fed[e] = key
        plan.append((key, value, targets))
    if problems:
        raise ValidationError("invalid input", problems)

    rest: list[Entry] = []
    if len(fed) < len(entries) and not streaming:
        # A source not named receives the whole input mapping.
        rest = [e for e in entries if e not in fed and e.is_source]
        fed.update(dict.fromkeys(rest, "input"))
    _require_fed(entries, fed)
    for key, value, targets in plan:
        feed(key, value, targets)
    if rest:
        feed("input", data, {"input": rest})
    return feeds


def _require_fed(entries: list[Entry], fed: Container[Entry]) -> None:
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
            [
                f"stream input {key!r} must be an iterable or async iterable of items, "
                f"got {_describe(value)}"
            ],
        )
    return value  # type: ignore[no-any-return]


def _describe(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text[:60] + '...' if len(text) > 60 else text}"
