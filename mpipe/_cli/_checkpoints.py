"""``mpipe checkpoints list|show|rm DIR``: look into a checkpoint folder from the command line.

The folder must exist (it is never created here) and hold checkpoint files (``<id>.arrow``);
a folder with other files only is refused as "not a checkpoint folder". An id that names no
checkpoint of the folder is a usage error.
"""

from __future__ import annotations

import argparse
import datetime
import os
from pathlib import Path
from typing import Any, TextIO

import orjson

from .._observe._checkpoints import _ID, _SUFFIX, CheckpointError, CheckpointManager
from ._io import UsageError, rounded

__all__ = ["add_checkpoint_commands", "run_checkpoint_command"]


def add_checkpoint_commands(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add ``checkpoints list|show|rm`` to the ``mpipe`` subcommands."""
    ckpt = sub.add_parser("checkpoints", parents=[common], help="list, show or remove checkpoints")
    actions = ckpt.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    listing = actions.add_parser("list", parents=[common], help="the checkpoints of a folder")
    listing.add_argument("dir", metavar="DIR", help="the checkpoint folder")
    listing.add_argument("--run", metavar="RUN_ID", help="only the checkpoints of this run")
    listing.add_argument("--json", action="store_true", help="one JSON object per checkpoint")
    show = actions.add_parser("show", parents=[common], help="one checkpoint and its value")
    show.add_argument("dir", metavar="DIR", help="the checkpoint folder")
    show.add_argument("id", metavar="ID", help="the checkpoint id")
    show.add_argument("--length", type=int, default=2000, help="characters of the value shown")
    show.add_argument(
        "--allow-pickle",
        action="store_true",
        help="unpickle a pickled value to show it (runs code from the file: trusted files only)",
    )
    rm = actions.add_parser("rm", parents=[common], help="remove checkpoints")
    rm.add_argument("dir", metavar="DIR", help="the checkpoint folder")
    rm.add_argument("ids", metavar="ID", nargs="*", help="checkpoint ids to remove")
    rm.add_argument("--run", metavar="RUN_ID", help="remove every checkpoint of this run")
    rm.add_argument("--all", action="store_true", help="remove every checkpoint of the folder")


def _open(folder: str, allow_pickle: bool = False) -> CheckpointManager:
    path = Path(folder)
    if not path.exists():
        raise UsageError(f"checkpoint folder {folder!r} does not exist")
    if not path.is_dir():
        raise UsageError(f"{folder!r} is not a folder")
    try:
        names = [n for n in os.listdir(path) if not n.startswith(".")]
    except OSError as exc:
        raise UsageError(f"cannot read folder {folder!r}: {exc.strerror or exc}") from None
    if names and not any(n.endswith(_SUFFIX) and _ID.match(n[: -len(_SUFFIX)]) for n in names):
        raise UsageError(
            f"{folder!r} is not a checkpoint folder (none of its {len(names)} entries is an "
            f"mpipe checkpoint file '<id>{_SUFFIX}')"
        )
    try:
        return CheckpointManager(path, allow_pickle=allow_pickle)
    except CheckpointError as exc:
        raise UsageError(exc.message) from None


def _known(folder: str, checkpoint_id: str) -> None:
    name = f"{checkpoint_id}{_SUFFIX}"
    if not _ID.match(checkpoint_id) or not (Path(folder) / name).is_file():
        raise UsageError(
            f"unknown checkpoint id {checkpoint_id!r} in {folder!r} "
            f"(see 'mpipe checkpoints list {folder}')"
        )


def _when(timestamp: float) -> str:
    return datetime.datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M:%S")


def _size(n: int) -> str:
    value = float(n)
    for unit in ("KiB", "MiB", "GiB"):
        value /= 1024
        if value < 1024 or unit == "GiB":
            return f"{n} B" if n < 1024 else f"{value:.1f} {unit}"
    return f"{n} B"  # pragma: no cover - the loop always returns


def _table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]


def _cmd_list(args: argparse.Namespace, out: TextIO) -> int:
    manager = _open(args.dir)
    listed = manager.list_checkpoints()
    if args.run is not None:
        listed = [c for c in listed if c["metadata"].get("run_id") == args.run]
    if args.json:
        for info in listed:
            out.write(orjson.dumps(info).decode() + "\n")
        return 0
    what = f" of run {args.run}" if args.run is not None else ""
    total = sum(c["size_bytes"] for c in listed)
    n = len(listed)
    print(f"{n} checkpoint{'s' if n != 1 else ''}{what} in {args.dir} ({_size(total)})", file=out)
    if not listed:
        return 0
    rows = [["ID", "CREATED", "KIND", "PROCESSOR", "RUN", "SIZE", "NAME"]]
    for c in listed:
        meta = c["metadata"]
        rows.append(
            [
                c["checkpoint_id"],
                _when(c["created_at"]),
                str(meta.get("kind", "-")),
                c["processor_id"],
                str(meta.get("run_id", "-")),
                _size(c["size_bytes"]),
                c["name"],
            ]
        )
    for line in _table(rows):
        print(line, file=out)
    return 0


def _cmd_show(args: argparse.Namespace, out: TextIO) -> int:
    if args.length < 10:
        raise UsageError(f"--length must be at least 10, got {args.length}")
    manager = _open(args.dir, allow_pickle=args.allow_pickle)
    _known(args.dir, args.id)
    info = manager.get_checkpoint_info(args.id)
    preview = manager.get_checkpoint_data_preview(args.id, max_length=args.length)
    print(f"checkpoint {info['checkpoint_id']}", file=out)
    print(f"  name:      {info['name']}", file=out)
    print(f"  processor: {info['processor_id']}", file=out)
    print(f"  created:   {_when(info['created_at'])}", file=out)
    print(f"  size:      {_size(info['size_bytes'])} ({info['size_bytes']} bytes)", file=out)
    print(f"  metadata:  {orjson.dumps(rounded(info['metadata'])).decode()}", file=out)
    print(f"  value:     {preview}", file=out)
    return 0


def _cmd_rm(args: argparse.Namespace, out: TextIO) -> int:
    chosen = sum((bool(args.ids), args.run is not None, args.all))
    if chosen != 1:
        raise UsageError("checkpoints rm needs checkpoint ids, --run RUN_ID or --all (one of them)")
    manager = _open(args.dir)
    if args.ids:
        for cid in args.ids:  # every id is checked before anything is removed
            _known(args.dir, cid)
        doomed = list(dict.fromkeys(args.ids))
    else:
        listed = manager.list_checkpoints()
        doomed = [
            c["checkpoint_id"]
            for c in listed
            if args.all or c["metadata"].get("run_id") == args.run
        ]
        if args.run is not None and not doomed:
            raise UsageError(f"no checkpoints of run {args.run!r} in {args.dir!r}")
    for cid in doomed:
        manager.delete_checkpoint(cid)
    n = len(doomed)
    print(f"removed {n} checkpoint{'s' if n != 1 else ''} from {args.dir}", file=out)
    return 0


_ACTIONS = {"list": _cmd_list, "show": _cmd_show, "rm": _cmd_rm}


def run_checkpoint_command(args: argparse.Namespace, out: TextIO) -> int:
    """Run ``checkpoints ACTION`` (unreadable files are skipped with a ``CheckpointWarning``).

    Raises:
        UsageError: No such folder, not a checkpoint folder, an unknown id, bad arguments.
        CheckpointError: A checkpoint that cannot be read (exit code 1).
    """
    return _ACTIONS[args.action](args, out)
