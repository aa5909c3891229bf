"""How much memory the machine (and this process's cgroup) can still give the arena.

The arena grows on demand up to what the data needs, so before it grows by a large amount it
asks here whether the memory exists: growing into memory that is not there would end in a
SIGBUS or the OOM killer, not in an error the caller can handle. Linux only, like the transport.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

__all__ = ["MemoryFacts", "format_size", "headroom", "memory_facts", "reserve_size"]

_MiB = 1 << 20
_GiB = 1 << 30
#: Below this, a cgroup's memory limit is a real limit (larger values mean "unlimited").
_NO_LIMIT = 1 << 60


@dataclass(frozen=True)
class MemoryFacts:
    """What the system can still give.

    Attributes:
        available: Bytes that can be allocated now without swapping or reclaiming anything
            that is in use: the smaller of the kernel's ``MemAvailable`` and what the cgroup's
            limit still leaves.
        total: Physical memory of the machine (or the cgroup's limit, when smaller).
        source: Which of the two bounds ``available``: ``"system"`` or ``"cgroup"``.
    """

    available: int
    total: int
    source: str

    def describe(self) -> str:
        """``"1.5 GiB of 24 GiB available"`` (with the cgroup named when it is the bound)."""
        where = " (the cgroup's memory limit)" if self.source == "cgroup" else ""
        return f"{format_size(self.available)} of {format_size(self.total)} available{where}"


def _meminfo() -> dict[str, int]:
    out: dict[str, int] = {}
    with open("/proc/meminfo", encoding="ascii") as f:
        for line in f:
            name, _, rest = line.partition(":")
            fields = rest.split()
            if fields:
                out[name] = int(fields[0]) * 1024 if fields[1:] == ["kB"] else int(fields[0])
    return out


def _read_int(path: str) -> int | None:
    try:
        with open(path, encoding="ascii") as f:
            text = f.read().strip()
    except OSError:
        return None
    if text == "max":
        return None
    try:
        return int(text)
    except ValueError:
        return None


def _cgroup_room() -> tuple[int, int] | None:
    """``(limit, usage)`` of this process's memory cgroup, when it has a limit."""
    try:
        with open("/proc/self/cgroup", encoding="ascii") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controllers == "":  # cgroup v2
            candidates = [("/sys/fs/cgroup" + path, "memory.max", "memory.current")]
        elif "memory" in controllers.split(","):  # cgroup v1
            base = "/sys/fs/cgroup/memory"
            candidates = [
                (base + path, "memory.limit_in_bytes", "memory.usage_in_bytes"),
                (base, "memory.limit_in_bytes", "memory.usage_in_bytes"),
            ]
        else:
            continue
        for folder, limit_name, usage_name in candidates:
            limit = _read_int(os.path.join(folder, limit_name))
            usage = _read_int(os.path.join(folder, usage_name))
            if limit is not None and usage is not None and limit < _NO_LIMIT:
                return limit, usage
    return None


def memory_facts() -> MemoryFacts:
    """The memory the system can still give now (a few file reads: call it before big steps,
    not per payload)."""
    info = _meminfo()
    total = info.get("MemTotal", 0)
    available = info.get("MemAvailable", info.get("MemFree", 0))
    source = "system"
    room = _cgroup_room()
    if room is not None:
        limit, usage = room
        if limit - usage < available:
            available, source = max(0, limit - usage), "cgroup"
        total = min(total, limit)
    return MemoryFacts(available, total, source)


def headroom(total: int) -> int:
    """Memory the arena leaves to the rest of the system when it grows: 1/16 of the total,
    between 64 MiB and 512 MiB."""
    return max(64 * _MiB, min(512 * _MiB, total // 16))


def reserve_size(size: int) -> int:
    """The address range an arena reserves by default: the machine's memory and swap (no
    payload can be larger), at least ``4 * size``, in whole GiB. Reserving costs no memory:
    the memfd is sparse and untouched pages of the mapping cost nothing."""
    info = _meminfo()
    machine = info.get("MemTotal", 0) + info.get("SwapTotal", 0)
    want = max(4 * size, machine)
    return -(-want // _GiB) * _GiB


def format_size(n: int) -> str:
    """``n`` bytes for people: ``1.5 GiB``, ``300 MiB``, ``12 bytes``."""
    for unit, scale in (("GiB", _GiB), ("MiB", _MiB), ("KiB", 1024)):
        if n >= scale:
            value = n / scale
            return f"{value:.1f} {unit}" if value < 100 else f"{value:.0f} {unit}"
    return f"{n} bytes"
