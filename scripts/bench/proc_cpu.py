"""CPU seconds used by processes, from Linux `/proc` (for benchmarks' time accounting).

Benchmarks share one machine between the node, PostgreSQL and the load generator;
CPU time per request, per party, says where the time went better than wall time.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

_TICKS_PER_S = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _stat_fields(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()


def get_process_cpu_s(pids: Iterable[int]) -> dict[int, float]:
    """User plus system CPU seconds of each given process that still exists."""
    found = {}
    for pid in pids:
        fields = _stat_fields(pid)
        if fields is not None:
            found[pid] = (int(fields[11]) + int(fields[12])) / _TICKS_PER_S
    return found


def compute_cpu_used_s(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU used between two snapshots by the processes alive at the second one.

    A process that ended in between is not counted (its last figures are gone); a
    process that started in between counts in full.
    """
    return sum(cpu_s - before.get(pid, 0.0) for pid, cpu_s in after.items())


def _all_pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def get_process_tree(root_pid: int) -> list[int]:
    """The process and all its descendants."""
    children: dict[int, list[int]] = {}
    for pid in _all_pids():
        fields = _stat_fields(pid)
        if fields is not None:
            children.setdefault(int(fields[1]), []).append(pid)
    tree, pending = [], [root_pid]
    while pending:
        pid = pending.pop()
        tree.append(pid)
        pending.extend(children.get(pid, []))
    return tree


def get_postgres_backends(database_name: str) -> list[int]:
    """PostgreSQL backend processes serving connections to one database."""
    marker = f" {database_name} ".encode()
    found = []
    for pid in _all_pids():
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if command.startswith(b"postgres:") and marker in command + b" ":
            found.append(pid)
    return found


def tree_cpu_s(root_pid: int) -> float:
    """CPU seconds of a process and its living descendants, now."""
    return sum(get_process_cpu_s(get_process_tree(root_pid)).values())


def postgres_cpu_s(database_name: str) -> float:
    """CPU seconds of the PostgreSQL backends connected to one database, now."""
    return sum(get_process_cpu_s(get_postgres_backends(database_name)).values())
