"""How fast the machine a benchmark ran on was: two reference timings.

Machines of one kind differ, and one machine drifts: the same authorization code ran at
6,270/s on one 2-core machine of this project's kind and at 2,300-3,300/s on another
(README, Benchmarks). So every `creditnet bench` run reports, before and after the
benchmark, how long a fixed piece of work takes in Python and in PostgreSQL. Two runs'
figures compare when their references do; a run whose `python_ms` is twice another's ran
on a machine (or in a moment) about twice as slow.

The Python work is the kind the node does a request (dict lookups, small strings,
integer arithmetic); the PostgreSQL work is one statement the server runs alone
(md5 of 50,000 integers, then a distinct count), so the round trip is negligible.
Each figure is the median of several runs. PostgreSQL's is left out when the server
cannot be reached. `cpu` names the processor (`/proc/cpuinfo`): machines of one kind
need not share one.

Neither reference is an authorization: `creditnet bench ceiling` is that, the minimal
one served as the node serves its own, whose rate on the same machine the node's is
best read against.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable

from sqlalchemy import create_engine, text
from sqlalchemy.exc import SQLAlchemyError

from scripts.bench.figures import Figures
from scripts.bench.scratch_db import ADMIN_URL_ENV, DEFAULT_ADMIN_URL

PYTHON_RUNS = 5
POSTGRES_RUNS = 3
CONNECT_TIMEOUT_S = 5
"""A benchmark that needs no PostgreSQL waits at most this long for a server that is not there."""
_POSTGRES_WORK = text("SELECT count(DISTINCT md5(i::text)) FROM generate_series(1, 50000) AS i")


def python_work() -> int:
    """The fixed Python work (its result, so that nothing can skip it)."""
    table: dict[str, int] = {}
    total = 0
    for i in range(200_000):
        key = f"k{i % 1_000}"
        table[key] = table.get(key, 0) + i
        total += len(key)
    return total + sum(table.values())


def python_reference_ms() -> float:
    """The median time of `python_work`, in ms."""
    return _median_ms(python_work, PYTHON_RUNS)


def postgres_reference_ms(admin_url: str | None = None) -> float | None:
    """The median time of the fixed statement on the benchmarks' PostgreSQL server, in ms
    (None if it cannot be reached)."""
    url = admin_url or os.environ.get(ADMIN_URL_ENV, DEFAULT_ADMIN_URL)
    engine = create_engine(url, connect_args={"connect_timeout": CONNECT_TIMEOUT_S})
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
            return _median_ms(lambda: conn.execute(_POSTGRES_WORK).scalar_one(), POSTGRES_RUNS)
    except SQLAlchemyError:
        return None
    finally:
        engine.dispose()


def cpu_model(cpuinfo: str | None = None) -> str:
    """The first processor's model name, family, model and clock as `/proc/cpuinfo`
    gives them ("unknown" where there is no such file)."""
    if cpuinfo is None:
        try:
            with open("/proc/cpuinfo", encoding="utf-8") as file:
                cpuinfo = file.read()
        except OSError:
            return "unknown"
    fields: dict[str, str] = {}
    for line in cpuinfo.split("\n\n", 1)[0].splitlines():
        name, _, value = line.partition(":")
        fields.setdefault(name.strip(), value.strip())
    if "model name" not in fields:
        return "unknown"
    return (
        f"{fields['model name']} (family {fields.get('cpu family', '?')}, "
        f"model {fields.get('model', '?')}), {fields.get('cpu MHz', '?')} MHz"
    )


def reference_figures(admin_url: str | None = None) -> Figures:
    """Both references (`postgres_ms` only when the server answers)."""
    figures: Figures = {"python_ms": python_reference_ms()}
    postgres_ms = postgres_reference_ms(admin_url)
    if postgres_ms is not None:
        figures["postgres_ms"] = postgres_ms
    return figures


def _median_ms(work: Callable[[], object], runs: int) -> float:
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        work()
        timings.append(time.perf_counter() - started)
    return round(1000 * statistics.median(timings), 1)
