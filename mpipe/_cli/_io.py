"""What the command line reads and writes: run inputs, result summaries, output files.

Inputs: JSON on the command line or in a ``.json`` file (one item per source, as for
``execute``), ``.jsonl`` (a stream of items), ``.arrow`` / ``.parquet`` (one Arrow table, or with
``stream`` a stream of record batches). Outputs: ``.json``, ``.jsonl``, ``.arrow``, ``.parquet``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from .._errors import ConfigurationError

__all__ = [
    "INPUT_SUFFIXES",
    "OUTPUT_SUFFIXES",
    "OutputError",
    "RunInput",
    "UsageError",
    "check_file_path",
    "check_output_path",
    "read_input",
    "summarize",
    "summarize_items",
    "write_output",
]

INPUT_SUFFIXES = (".json", ".jsonl", ".arrow", ".parquet")
OUTPUT_SUFFIXES = (".json", ".jsonl", ".arrow", ".parquet")


class UsageError(Exception):
    """The command line itself is wrong (exit code 2)."""


class OutputError(Exception):
    """Results could not be written where ``--output`` asked."""


@dataclass
class RunInput:
    """A run's input: one item per source (``streaming`` False) or a stream of items.

    ``late_errors`` collects input errors found while the stream is read during the run.
    """

    data: Any
    streaming: bool
    description: str
    late_errors: list[ConfigurationError] = field(default_factory=list)


def _parse_json(text: str | bytes, where: str) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise ConfigurationError(f"{where}: malformed JSON: {exc}", "input") from None


def _jsonl_items(path: Path, late_errors: list[ConfigurationError]) -> Iterator[Any]:
    with path.open("rb") as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                try:
                    yield _parse_json(line, f"{path} line {n}")
                except ConfigurationError as exc:
                    late_errors.append(exc)
                    raise


def _arrow_reader(path: Path) -> Any:
    import pyarrow as pa

    source = pa.memory_map(str(path))
    try:
        return pa.ipc.open_file(source)
    except pa.ArrowInvalid:
        source.seek(0)
        try:
            return pa.ipc.open_stream(source)
        except pa.ArrowInvalid as exc:
            raise ConfigurationError(
                f"{path}: not an Arrow IPC file or stream: {exc}", "input"
            ) from None


def _arrow_batches(path: Path, batch_size: int | None) -> Iterator[Any]:
    """Record batches of an Arrow file, opened now (format errors show before the run)."""
    reader = _arrow_reader(path)
    if hasattr(reader, "num_record_batches"):
        batches: Any = (reader.get_batch(i) for i in range(reader.num_record_batches))
    else:
        batches = iter(reader)
    return _rechunk(batches, batch_size)


def _rechunk(batches: Iterator[Any], batch_size: int | None) -> Iterator[Any]:
    for batch in batches:
        if batch_size is None or batch.num_rows <= batch_size:
            yield batch
        else:
            yield from (batch.slice(i, batch_size) for i in range(0, batch.num_rows, batch_size))


def read_input(
    inline_json: str | None,
    file: str | None,
    sources: list[str],
    stream: bool = False,
    batch_size: int | None = None,
) -> RunInput:
    """The run input the command line asked for.

    Args:
        inline_json: ``--input``: JSON text.
        file: ``--input-file``: a ``.json``, ``.jsonl``, ``.arrow`` or ``.parquet`` file.
        sources: The graph's source processor ids (a stream needs exactly one, or a ``.jsonl``
            whose lines name every source).
        stream: Feed ``.arrow`` / ``.parquet`` as a stream of record batches.
        batch_size: Largest record batch when streaming Arrow data.

    Raises:
        ConfigurationError: Unreadable or malformed input, or input that does not fit the graph.
    """
    if inline_json is not None:
        return RunInput(_parse_json(inline_json, "--input"), False, "--input")
    if file is None:
        return RunInput(None, False, "no input")
    path = Path(file)
    suffix = path.suffix.lower()
    if suffix not in INPUT_SUFFIXES:
        raise ConfigurationError(
            f"input file {file!r}: unsupported type {suffix or '(none)'!r}; expected "
            f"{', '.join(INPUT_SUFFIXES)}",
            "input",
        )
    if not path.is_file():
        raise ConfigurationError(f"cannot read input file {file!r}: no such file", "input")
    if stream and suffix == ".json":
        raise ConfigurationError("--stream needs a .jsonl, .arrow or .parquet input", "input")
    try:
        if suffix == ".json":
            return RunInput(_parse_json(path.read_bytes(), file), False, file)
        if suffix == ".jsonl":
            late: list[ConfigurationError] = []
            feed = _stream_to_sources(_jsonl_items(path, late), sources, file)
            return RunInput(feed, True, file, late)
        if suffix == ".arrow":
            if stream:
                batches = _arrow_batches(path, batch_size)
                return RunInput(_single_source(batches, sources, file), True, file)
            return RunInput(_arrow_reader(path).read_all(), False, file)
        import pyarrow.parquet as pq

        if stream:
            pf = pq.ParquetFile(str(path))
            batches = pf.iter_batches(batch_size=batch_size or 65536)
            return RunInput(_single_source(batches, sources, file), True, file)
        return RunInput(pq.read_table(str(path)), False, file)
    except OSError as exc:
        raise ConfigurationError(f"cannot read input file {file!r}: {exc}", "input") from None
    except Exception as exc:
        if isinstance(exc, ConfigurationError):
            raise
        raise ConfigurationError(
            f"cannot read input file {file!r}: {type(exc).__name__}: {exc}", "input"
        ) from None


def _single_source(items: Any, sources: list[str], file: str) -> dict[str, Any]:
    if len(sources) != 1:
        raise ConfigurationError(
            f"streaming {file!r} needs a graph with one source; this one has "
            f"{len(sources)} ({', '.join(sources)})",
            "input",
        )
    return {sources[0]: items}


def _stream_to_sources(items: Iterator[Any], sources: list[str], file: str) -> dict[str, Any]:
    """One source: the items as they come. Several: every line names each source."""
    if len(sources) == 1:
        return {sources[0]: items}
    columns: dict[str, list[Any]] = {s: [] for s in sources}
    for n, item in enumerate(items, 1):
        if not isinstance(item, dict) or set(item) != set(sources):
            raise ConfigurationError(
                f"{file} line {n}: with several sources each line must be an object naming "
                f"every source ({', '.join(sources)})",
                "input",
            )
        for s in sources:
            columns[s].append(item[s])
    return dict(columns)


# -- summaries ------------------------------------------------------------------------------------


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else f"{text[: limit - 3]}... ({len(text):,} chars)"


#: Significant digits of the floats shown in summaries (files written keep every digit).
FLOAT_DIGITS = 10


def rounded(value: Any) -> Any:
    """``value`` with every float in it (in dicts, lists and tuples too) cut to
    ``FLOAT_DIGITS`` significant digits, for display: ``0.1 + 0.2`` shows as ``0.3``."""
    if type(value) is float:
        return float(f"{value:.{FLOAT_DIGITS}g}")
    if type(value) in (list, tuple):
        return [rounded(v) for v in value]
    if type(value) is dict:
        return {k: rounded(v) for k, v in value.items()}
    return value


def summarize(value: Any, limit: int = 200) -> str:
    """One readable line for a result: tables and arrays summarized, long values cut, floats
    shown to ``FLOAT_DIGITS`` significant digits."""
    kind = type(value).__module__.split(".", 1)[0]
    if kind == "pyarrow":
        import pyarrow as pa

        if isinstance(value, (pa.Table, pa.RecordBatch)):
            name = "Table" if isinstance(value, pa.Table) else "RecordBatch"
            cols = ", ".join(f"{f.name}: {f.type}" for f in value.schema)
            head = _cut(orjson.dumps(value.slice(0, 2).to_pylist(), default=str).decode(), limit)
            shape = f"{value.num_rows:,} rows x {value.num_columns} columns"
            return f"{name} {shape} ({_cut(cols, limit)}); first rows: {head}"
        if isinstance(value, (pa.Array, pa.ChunkedArray)):
            return f"{type(value).__name__}<{value.type}> of {len(value):,} values"
    if kind == "numpy" and hasattr(value, "shape"):
        return f"ndarray {value.dtype} shape {tuple(value.shape)}"
    if isinstance(value, str):
        return repr(_cut(value, limit))
    try:
        text = orjson.dumps(
            rounded(value), option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS
        )
        return _cut(text.decode(), limit)
    except TypeError:
        return _cut(repr(value), limit)


def summarize_items(items: list[Any], show: int = 5) -> list[str]:
    """Lines for a stream's items: the count, then the first few."""
    lines = [f"{len(items):,} items"]
    lines += [f"  [{i}] {summarize(v)}" for i, v in enumerate(items[:show])]
    if len(items) > show:
        lines.append(f"  ... {len(items) - show:,} more")
    return lines


# -- output files ---------------------------------------------------------------------------------


def check_file_path(file: str, flag: str) -> Path:
    """A path the command will write after the run: its folder must exist now.

    Raises:
        UsageError: The folder does not exist, or the path is a folder.
    """
    path = Path(file)
    if not path.parent.is_dir():
        raise UsageError(f"{flag} {file!r}: folder {str(path.parent)!r} does not exist")
    if path.is_dir():
        raise UsageError(f"{flag} {file!r} is a folder; expected a file path")
    return path


def check_output_path(file: str) -> Path:
    """The ``--output`` path, checked before the run.

    Raises:
        ConfigurationError: Unsupported type, or the folder does not exist.
    """
    path = Path(file)
    if path.suffix.lower() not in OUTPUT_SUFFIXES:
        raise ConfigurationError(
            f"--output {file!r}: unsupported type {path.suffix or '(none)'!r}; expected "
            f"{', '.join(OUTPUT_SUFFIXES)}",
            "output",
        )
    if not path.parent.is_dir():
        raise ConfigurationError(f"--output {file!r}: folder {str(path.parent)!r} does not exist")
    return path


def _array_as_list(value: Any) -> Any:
    """orjson's fallback for what it cannot write: Arrow and numpy data as plain lists."""
    kind = type(value).__module__.split(".", 1)[0]
    if kind == "pyarrow" and hasattr(value, "to_pylist"):
        return value.to_pylist()
    if kind == "numpy" and hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"cannot write a {type(value).__name__} as JSON")


def _dumps(value: Any) -> bytes:
    opts = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS
    try:
        return orjson.dumps(value, default=_array_as_list, option=opts)
    except TypeError as exc:
        raise OutputError(str(exc)) from None


def write_output(path: Path, results: dict[str, Any], streaming: bool) -> None:
    """Write a run's results (``key -> value``, or ``key -> list of items`` when streaming).

    ``.json``: one object, key -> value. ``.jsonl``: one ``{"key", "value"}`` line per value (per
    item when streaming). ``.arrow`` / ``.parquet``: the one result that is Arrow data.

    Raises:
        OutputError: The results do not fit the format, or the file cannot be written.
    """
    suffix = path.suffix.lower()
    try:
        if suffix == ".json":
            path.write_bytes(_dumps(results))
        elif suffix == ".jsonl":
            with path.open("wb") as f:
                for key, value in results.items():
                    for item in value if streaming else [value]:
                        f.write(_dumps({"key": key, "value": item}) + b"\n")
        else:
            _write_arrow(path, results, streaming)
    except OSError as exc:
        raise OutputError(f"cannot write {str(path)!r}: {exc.strerror or exc}") from None


def _write_arrow(path: Path, results: dict[str, Any], streaming: bool) -> None:
    import pyarrow as pa

    tabular = {}
    for key, value in results.items():
        parts = value if streaming else [value]
        if parts and all(isinstance(p, (pa.Table, pa.RecordBatch)) for p in parts):
            tabular[key] = parts
    if len(tabular) != 1:
        found = ", ".join(tabular) or "none"
        raise OutputError(
            f"{path.suffix} output needs exactly one result that is Arrow data; found {found}"
        )
    ((key, parts),) = tabular.items()
    try:
        tables = [p if isinstance(p, pa.Table) else pa.Table.from_batches([p]) for p in parts]
        table = pa.concat_tables(tables)
    except pa.ArrowInvalid as exc:
        raise OutputError(f"result {key!r}: its parts do not share one schema: {exc}") from None
    if path.suffix.lower() == ".parquet":
        import pyarrow.parquet as pq

        pq.write_table(table, str(path))
    else:
        with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table)
