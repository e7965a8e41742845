"""`creditnet bench NAME`: benchmarks print their figures as one JSON object on stdout.

Keys carry their units (`rate_per_s`, `p99_ms`, `elapsed_s`, `gas`) so runs compare.
`machine` says where it ran: cores, processor, Python, and the machine's speed just
before and after the run (`scripts/bench/machine.py`), since machines of one kind differ.
Each benchmark lives next to the code it measures; this module only dispatches.
"""

from __future__ import annotations

import importlib
import json
import platform

import typer

# name -> (module, function, what it measures)
BENCHMARKS: dict[str, tuple[str, str, str]] = {
    "gas": ("scripts.bench.gas", "run_gas_bench", "gas of every contract operation"),
    "relay": ("scripts.bench.relay", "run_relay_bench", "agreements anchored per second"),
    "authorize": (
        "scripts.bench.authorize",
        "run_authorize_bench",
        "purchase authorizations per second over HTTP",
    ),
    "ceiling": (
        "scripts.bench.ceiling",
        "run_ceiling_bench",
        "the machine's ceiling: a minimal authorization served as the node serves its own",
    ),
    "apply": ("scripts.bench.apply", "run_apply_bench", "application decisions per second"),
    "eod": ("scripts.bench.eod", "run_eod_bench", "end-of-day lines per second"),
    "settle": ("scripts.bench.settle", "run_settle_bench", "cycle close at 100k/1M entries"),
    "tree": ("scripts.bench.tree", "run_tree_bench", "Merkle tree and proofs alone"),
    "audit": ("scripts.bench.audit", "run_audit_bench", "audit replay of a long history"),
    "console": ("scripts.bench.console", "run_console_bench", "console views at 100k lines"),
    "failover": (
        "scripts.bench.failover",
        "run_failover_bench",
        "relayer takeover after its leader is killed",
    ),
    "rolling": (
        "scripts.bench.rolling",
        "run_rolling_bench",
        "a rolling restart of two nodes under purchase load",
    ),
}


def register(app: typer.Typer) -> None:
    app.command("bench")(bench)


def bench(
    name: str = typer.Argument(..., help="one of: " + ", ".join(BENCHMARKS)),
    option: list[str] = typer.Option(
        [], "--set", help="benchmark parameter as key=value (ints parsed), repeatable"
    ),
) -> None:
    """Run one benchmark and print its figures as JSON."""
    if name not in BENCHMARKS:
        raise typer.BadParameter(f"unknown benchmark {name!r}; known: {', '.join(BENCHMARKS)}")
    module_name, function_name, _ = BENCHMARKS[name]
    function = getattr(importlib.import_module(module_name), function_name)
    machine = importlib.import_module("scripts.bench.machine")
    before = machine.reference_figures()
    kwargs: dict[str, int | str] = {}
    for item in option:
        key, _, raw = item.partition("=")
        kwargs[key] = int(raw) if raw.lstrip("-").isdigit() else raw
    figures = function(**kwargs)
    figures.setdefault("benchmark", name)
    figures.setdefault("machine", {"cores": _cores(), "python": platform.python_version()})
    figures["machine"].update(
        cpu=machine.cpu_model(),
        reference_before=before,
        reference_after=machine.reference_figures(),
    )
    typer.echo(json.dumps(figures, indent=2, default=str))


def _cores() -> int:
    import os

    return len(os.sched_getaffinity(0))
