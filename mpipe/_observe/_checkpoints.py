"""Checkpoints: values saved as Arrow IPC files, one file per checkpoint.

Layout of a folder: ``<checkpoint_id>.arrow`` per checkpoint. The id starts with the creation
time in nanoseconds (hex), so ids sort by age. The file's schema metadata holds the header
(``mpipe.checkpoint``: id, name, processor id, creation time, user metadata, how the value is
encoded); the record batches hold the value (see ``_checkpoint_codec``). Names and processor ids
live only in the header, never in a path, so no name can escape the folder.

Atomic writes: a checkpoint is written to ``.<id>.<pid>.tmp``, flushed, fsynced, renamed to its
final name, and the folder is fsynced. A crash mid-write leaves at most a temp file, which
listings ignore and which a later manager removes once its writer process is gone.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import re
import secrets
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import psutil

from .._errors import CheckpointError, CheckpointWarning
from .._model._interfaces import CheckpointInterface
from ._breakpoints import BreakpointAPI, BreakpointManager

if TYPE_CHECKING:
    import pyarrow as pa

    from ._debug import DebugSession

# pyarrow and numpy are imported on first use (``_codec()``), not with ``import mpipe``.

__all__ = ["Checkpoint", "CheckpointError", "CheckpointManager", "CheckpointWarning"]

_log = logging.getLogger("mpipe")
_HEADER_KEY = b"mpipe.checkpoint"
_ID = re.compile(r"^[0-9a-f]{16}-[0-9a-f]{8}$")
# Temp files: a checkpoint being written, or the writability probe; group 2 is the writer's pid.
_TMP = re.compile(r"^\.([0-9a-f]{16}-[0-9a-f]{8}|probe)\.(\d+)(\.[0-9a-f]{8})?\.tmp$")
_SUFFIX = ".arrow"
FORMAT_VERSION = 1


def _arrow() -> Any:
    import pyarrow

    return pyarrow


def _info(header: dict[str, Any], size: int) -> dict[str, Any]:
    return {
        "checkpoint_id": header["checkpoint_id"],
        "name": header["name"],
        "processor_id": header["processor_id"],
        "created_at": header["created_at"],
        "size_bytes": size,
        "metadata": header.get("metadata") or {},
    }


class Checkpoint:
    """One saved value with its description.

    :meth:`CheckpointManager.get_checkpoint` gives one, data included; one made by hand
    describes a value without saving it.

    Args:
        checkpoint_id: Its id.
        name: Its label.
        processor_id: The processor the data belongs to.
        data: The value.
        metadata: JSON-compatible facts about it.
        created_at: Wall-clock time it was made (default: now).
        size_bytes: Its size (default: the length of the pickled data, or of its ``str`` when
            it does not pickle).
    """

    def __init__(
        self,
        checkpoint_id: str,
        name: str,
        processor_id: str,
        data: Any,
        metadata: dict[str, Any] | None = None,
        *,
        created_at: float | None = None,
        size_bytes: int | None = None,
    ) -> None:
        self.checkpoint_id = checkpoint_id
        self.name = name
        self.processor_id = processor_id
        self.data = data
        self.metadata: dict[str, Any] = dict(metadata or {})
        self.created_at = time.time() if created_at is None else created_at
        if size_bytes is None:
            try:
                size_bytes = len(pickle.dumps(data))
            except Exception:
                size_bytes = len(str(data))
        self.size_bytes = size_bytes

    def to_dict(self) -> dict[str, Any]:
        """``checkpoint_id``, ``name``, ``processor_id``, ``created_at``, ``size_bytes``,
        ``metadata`` and ``data_type`` (the data's type name); not the data itself."""
        return {
            "checkpoint_id": self.checkpoint_id,
            "name": self.name,
            "processor_id": self.processor_id,
            "created_at": self.created_at,
            "size_bytes": self.size_bytes,
            "metadata": dict(self.metadata),
            "data_type": type(self.data).__name__,
        }

    def __repr__(self) -> str:
        return f"Checkpoint({self.checkpoint_id!r}, {self.name!r}, {self.processor_id!r})"


class CheckpointManager(BreakpointAPI, CheckpointInterface):
    """Saves and restores values (processor outputs, state) as Arrow IPC files.

    Args:
        storage_path: The folder of the checkpoint files (created if missing); None keeps
            checkpoints in memory, in the same format.
        max_checkpoints: Checkpoints kept; creating one more deletes the oldest.
        allow_pickle: Whether values that are neither Arrow, numpy nor JSON-like may be pickled,
            and pickled checkpoints restored (unpickling runs code from the file).
        monitor: An observer (such as :class:`~mpipe.Monitor`) told of every create and restore.

    Raises:
        CheckpointError: ``storage_path`` is a file, cannot be created, or is not writable;
            ``max_checkpoints`` is not a positive integer.

    The manager also holds breakpoints (``set_breakpoint`` and friends), shared with an executor
    it is given to.
    """

    def __init__(
        self,
        storage_path: str | os.PathLike[str] | None = None,
        max_checkpoints: int = 1000,
        allow_pickle: bool = False,
        *,
        monitor: Any = None,
    ) -> None:
        if (
            not isinstance(max_checkpoints, int)
            or isinstance(max_checkpoints, bool)
            or max_checkpoints < 1
        ):
            raise CheckpointError(
                f"max_checkpoints must be a positive integer, got {max_checkpoints!r}"
            )
        self.max_checkpoints = max_checkpoints
        self.allow_pickle = bool(allow_pickle)
        self.monitor = monitor
        self.breakpoints = BreakpointManager()
        self.storage_path: Path | None = None
        self._memory: dict[str, bytes] = {}
        # Headers read from files, keyed by file name, with the (size, mtime) they were read at.
        self._headers: dict[str, tuple[tuple[int, int], dict[str, Any]]] = {}
        if storage_path is not None:
            if not isinstance(storage_path, (str, os.PathLike)) or not os.fspath(storage_path):
                raise CheckpointError(
                    f"storage_path must be a folder path or None, got {storage_path!r}"
                )
            self.storage_path = self._open_folder(Path(storage_path))

    # -- the folder --------------------------------------------------------------------------------

    @staticmethod
    def _open_folder(path: Path) -> Path:
        if path.exists() and not path.is_dir():
            raise CheckpointError(f"checkpoint folder {str(path)!r} is a file, not a folder")
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CheckpointError(
                f"cannot create checkpoint folder {str(path)!r}: {exc.strerror or exc}"
            ) from exc
        # Permission bits say little (root ignores them; read-only mounts ignore them): try it.
        probe = path / f".probe.{os.getpid()}.{secrets.token_hex(4)}.tmp"
        try:
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise CheckpointError(
                f"checkpoint folder {str(path)!r} is not writable: {exc.strerror or exc}"
            ) from exc
        for entry in path.iterdir():
            match = _TMP.match(entry.name)
            if match and not psutil.pid_exists(int(match.group(2))):
                with contextlib.suppress(OSError):
                    entry.unlink()  # left by a writer that died mid-write
        return path

    def _file(self, checkpoint_id: str) -> Path:
        assert self.storage_path is not None
        return self.storage_path / f"{checkpoint_id}{_SUFFIX}"

    # -- create ------------------------------------------------------------------------------------

    def create_checkpoint(
        self, name: str, processor_id: str, data: Any, metadata: dict[str, Any] | None = None
    ) -> str:
        """Save ``data`` as a new checkpoint.

        Args:
            name: A label (any text; it is stored, never used as a path).
            processor_id: The processor the data belongs to.
            data: Arrow data, a numpy array, a JSON-like value, or a container of those (other
                objects with ``allow_pickle=True``).
            metadata: JSON-compatible facts stored with the checkpoint.

        Returns:
            The new checkpoint's id.

        Raises:
            CheckpointError: ``data`` cannot be stored (the message says why), ``metadata`` is
                not JSON-compatible, or the file cannot be written. Nothing saved before is lost.
        """
        if not isinstance(name, str):
            raise CheckpointError(f"checkpoint name must be a string, got {type(name).__name__}")
        if not isinstance(processor_id, str):
            raise CheckpointError(
                f"processor_id must be a string, got {type(processor_id).__name__}"
            )
        if metadata is not None and not isinstance(metadata, dict):
            raise CheckpointError(f"metadata must be a dict, got {type(metadata).__name__}")
        from ._checkpoint_codec import encode

        pa = _arrow()
        table, value_meta = encode(data, self.allow_pickle)
        checkpoint_id = f"{time.time_ns():016x}-{secrets.token_hex(4)}"
        header = {
            "format_version": FORMAT_VERSION,
            "checkpoint_id": checkpoint_id,
            "name": name,
            "processor_id": processor_id,
            "created_at": time.time(),
            "metadata": metadata or {},
            **value_meta,
        }
        try:
            header_bytes = orjson.dumps(header)
        except TypeError as exc:
            raise CheckpointError(f"checkpoint metadata is not JSON-compatible: {exc}") from exc
        schema_meta = dict(table.schema.metadata or {})
        schema_meta[_HEADER_KEY] = header_bytes
        sink = pa.BufferOutputStream()
        with pa.ipc.new_file(sink, table.schema.with_metadata(schema_meta)) as writer:
            writer.write_table(table)
        payload = sink.getvalue()
        if self.storage_path is None:
            self._memory[checkpoint_id] = bytes(payload)
        else:
            self._write_atomic(checkpoint_id, payload)
        self._tell(
            "checkpoint_create",
            processor_id,
            {"checkpoint_id": checkpoint_id, "name": name, "size_bytes": payload.size},
        )
        self._evict()
        return checkpoint_id

    def _write_atomic(self, checkpoint_id: str, payload: pa.Buffer) -> None:
        assert self.storage_path is not None
        tmp = self.storage_path / f".{checkpoint_id}.{os.getpid()}.tmp"
        try:
            with open(tmp, "wb") as f:
                f.write(memoryview(payload))
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self._file(checkpoint_id))
            _fsync_dir(self.storage_path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise CheckpointError(
                f"cannot write checkpoint to {str(self.storage_path)!r}: {exc.strerror or exc}"
            ) from exc

    def _evict(self) -> None:
        ids = self._ids()
        for old in ids[: max(len(ids) - self.max_checkpoints, 0)]:
            with contextlib.suppress(CheckpointError):
                self.delete_checkpoint(old)

    # -- read --------------------------------------------------------------------------------------

    def _ids(self) -> list[str]:
        """Ids of the checkpoints present (files not checked), oldest first."""
        if self.storage_path is None:
            return sorted(self._memory)
        try:
            names = os.listdir(self.storage_path)
        except OSError as exc:
            raise CheckpointError(
                f"cannot read checkpoint folder {str(self.storage_path)!r}: {exc}"
            ) from exc
        return sorted(
            n[: -len(_SUFFIX)]
            for n in names
            if n.endswith(_SUFFIX) and _ID.match(n[: -len(_SUFFIX)])
        )

    def _source(self, checkpoint_id: str) -> Any:
        pa = _arrow()
        if self.storage_path is None:
            return pa.BufferReader(self._memory[checkpoint_id])
        return pa.memory_map(str(self._file(checkpoint_id)))

    def _header(self, checkpoint_id: str) -> tuple[dict[str, Any], int]:
        """The checkpoint's header and file size; raises on an unreadable file."""
        if self.storage_path is None:
            raw = self._memory[checkpoint_id]
            key: tuple[int, int] = (len(raw), 0)
        else:
            st = self._file(checkpoint_id).stat()
            key = (st.st_size, st.st_mtime_ns)
            cached = self._headers.get(checkpoint_id)
            if cached is not None and cached[0] == key:
                return cached[1], key[0]
        with self._source(checkpoint_id) as source:
            reader = _arrow().ipc.open_file(source)  # reads the footer: a torn file fails here
            meta = reader.schema.metadata or {}
            if _HEADER_KEY not in meta:
                raise ValueError("no mpipe checkpoint header in the file")
            header = orjson.loads(meta[_HEADER_KEY])
            if header.get("checkpoint_id") != checkpoint_id:
                raise ValueError("the header names another checkpoint id")
        if self.storage_path is not None:
            self._headers[checkpoint_id] = (key, header)
        return header, key[0]

    def list_checkpoints(self, processor_id: str | None = None) -> list[dict[str, Any]]:
        """Every readable checkpoint, oldest first (only ``processor_id``'s when given).

        Each dict has ``checkpoint_id``, ``name``, ``processor_id``, ``created_at``,
        ``size_bytes`` and ``metadata``. A file that cannot be read (truncated, corrupt, not a
        checkpoint) is left out with a :class:`CheckpointWarning`.
        """
        out = []
        for cid in self._ids():
            try:
                header, size = self._header(cid)
            except FileNotFoundError:
                continue  # deleted meanwhile
            except Exception as exc:
                message = f"skipping unreadable checkpoint {cid!r}: {exc}"
                _log.warning(message)
                warnings.warn(message, CheckpointWarning, stacklevel=2)
                continue
            if processor_id is None or header["processor_id"] == processor_id:
                out.append(_info(header, size))
        return out

    def _check_id(self, checkpoint_id: str) -> None:
        if not isinstance(checkpoint_id, str) or not _ID.match(checkpoint_id):
            raise CheckpointError(
                f"unknown checkpoint id {checkpoint_id!r} (not an id this manager makes)"
            )
        exists = (
            checkpoint_id in self._memory
            if self.storage_path is None
            else self._file(checkpoint_id).exists()
        )
        if not exists:
            where = "in memory" if self.storage_path is None else f"in {str(self.storage_path)!r}"
            raise CheckpointError(
                f"unknown checkpoint id {checkpoint_id!r}: no such checkpoint {where}"
            )

    def restore_checkpoint(self, checkpoint_id: str) -> Any:
        """The value saved under ``checkpoint_id``.

        Raises:
            CheckpointError: Unknown id; a corrupt or truncated file; pickled data while
                ``allow_pickle`` is False.
        """
        from ._checkpoint_codec import decode

        self._check_id(checkpoint_id)
        try:
            with self._source(checkpoint_id) as source:
                reader = _arrow().ipc.open_file(source)
                meta = dict(reader.schema.metadata or {})
                header = orjson.loads(meta.pop(_HEADER_KEY))
                table = reader.read_all()
            table.validate(full=True)
        except Exception as exc:
            raise CheckpointError(
                f"checkpoint {checkpoint_id!r} cannot be restored: "
                f"the file is corrupt or truncated ({exc})"
            ) from exc
        table = table.replace_schema_metadata(meta or None)
        try:
            value = decode(table, header, self.allow_pickle)
        except CheckpointError as exc:
            raise CheckpointError(
                f"checkpoint {checkpoint_id!r} cannot be restored: {exc.message}"
            ) from exc
        except Exception as exc:
            raise CheckpointError(
                f"checkpoint {checkpoint_id!r} cannot be restored: "
                f"its content does not decode ({exc!r})"
            ) from exc
        self._tell(
            "checkpoint_restore",
            header["processor_id"],
            {"checkpoint_id": checkpoint_id, "name": header["name"]},
        )
        return value

    def get_checkpoint(self, checkpoint_id: str) -> Checkpoint:
        """One checkpoint with its data (restored, see :meth:`restore_checkpoint`).

        ``size_bytes`` is the size of its file (its Arrow IPC bytes when kept in memory).

        Raises:
            CheckpointError: As for :meth:`restore_checkpoint`.
        """
        data = self.restore_checkpoint(checkpoint_id)
        info = self.get_checkpoint_info(checkpoint_id)
        return Checkpoint(
            info["checkpoint_id"],
            info["name"],
            info["processor_id"],
            data,
            info["metadata"],
            created_at=info["created_at"],
            size_bytes=info["size_bytes"],
        )

    def create_debug_session(self, processor_id: str) -> DebugSession:
        """A :class:`~mpipe.DebugSession` for ``processor_id`` over this manager."""
        from ._debug import DebugSession

        return DebugSession(self, processor_id)

    def get_checkpoint_info(self, checkpoint_id: str) -> dict[str, Any]:
        """One checkpoint's listing entry.

        Raises:
            CheckpointError: Unknown id or unreadable file.
        """
        self._check_id(checkpoint_id)
        try:
            header, size = self._header(checkpoint_id)
        except Exception as exc:
            raise CheckpointError(f"checkpoint {checkpoint_id!r} is unreadable: {exc}") from exc
        return _info(header, size)

    def delete_checkpoint(self, checkpoint_id: str) -> None:
        """Delete a checkpoint.

        Raises:
            CheckpointError: Unknown id, or the file cannot be removed.
        """
        self._check_id(checkpoint_id)
        if self.storage_path is None:
            del self._memory[checkpoint_id]
            return
        try:
            self._file(checkpoint_id).unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise CheckpointError(f"cannot delete checkpoint {checkpoint_id!r}: {exc}") from exc
        self._headers.pop(checkpoint_id, None)

    def get_checkpoint_data_preview(self, checkpoint_id: str, max_length: int = 500) -> str:
        """A short text view of a checkpoint's value (at most ``max_length`` characters).

        A pickled checkpoint is described, not unpickled, unless ``allow_pickle`` is True.

        Raises:
            CheckpointError: Unknown id or unreadable file.
        """
        info = self.get_checkpoint_info(checkpoint_id)
        header, _ = self._header(checkpoint_id)
        if header.get("pickled") and not self.allow_pickle:
            text = (
                f"<{header['kind']} checkpoint holding pickled objects; "
                "restore with allow_pickle=True>"
            )
        else:
            value = self.restore_checkpoint(checkpoint_id)
            text = repr(value)
        text = f"[{info['name']} / {info['processor_id']}, {header['kind']}] {text}"
        return text if len(text) <= max_length else text[: max(max_length - 3, 0)] + "..."

    def get_statistics(self) -> dict[str, Any]:
        """Counts and sizes of the stored checkpoints (JSON-compatible)."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", CheckpointWarning)
            listed = self.list_checkpoints()
        by_processor: dict[str, int] = {}
        for info in listed:
            by_processor[info["processor_id"]] = by_processor.get(info["processor_id"], 0) + 1
        return {
            "total_checkpoints": len(listed),
            "unreadable_files": len(self._ids()) - len(listed),
            "total_size_bytes": sum(i["size_bytes"] for i in listed),
            "by_processor": by_processor,
            "oldest": listed[0]["created_at"] if listed else None,
            "newest": listed[-1]["created_at"] if listed else None,
            "storage_path": str(self.storage_path) if self.storage_path is not None else None,
            "max_checkpoints": self.max_checkpoints,
            "allow_pickle": self.allow_pickle,
        }

    def _tell(self, kind: str, processor_id: str, data: dict[str, Any]) -> None:
        monitor = self.monitor
        if monitor is None:
            return
        notice = getattr(monitor, "notice", None)
        if notice is not None:
            notice(kind, processor_id, data)
        else:
            monitor.log_event(kind, processor_id, data)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)
