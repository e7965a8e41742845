"""CPU seconds used by groups of processes, from /proc (Linux), to say where the time of
a benchmark goes when the machine is shared: the node's workers, the PostgreSQL
backends serving its database, the load generator."""

from __future__ import annotations

import os
from pathlib import Path

_TICKS_PER_S = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, user + system CPU seconds) of a process, or None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / _TICKS_PER_S


def _pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def tree_cpu_s(root_pid: int) -> float:
    """CPU seconds of a process and all its living descendants."""
    stats = {pid: stat for pid in _pids() if (stat := _stat(pid)) is not None}
    members = {root_pid}
    grew = True
    while grew:
        grew = False
        for pid, (parent, _) in stats.items():
            if parent in members and pid not in members:
                members.add(pid)
                grew = True
    return sum(stats[pid][1] for pid in members if pid in stats)


def postgres_cpu_s(database_name: str) -> float:
    """CPU seconds of the PostgreSQL backends connected to one database."""
    total = 0.0
    for pid in _pids():
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if command.startswith("postgres:") and f" {database_name} " in command:
            stat = _stat(pid)
            total += stat[1] if stat else 0.0
    return total
