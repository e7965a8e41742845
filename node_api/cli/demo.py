"""`creditnet demo`: a realistic month end to end on an embedded chain and database.

The demo itself is an operator script (`scripts.demo.run`); the CLI sits below
`scripts` in the layers, so it finds the script by name at run time, as `creditnet
bench` finds the benchmarks.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path

import typer

from node_api.kernel.logs import configure_logging

DEMO_MODULE = "scripts.demo.run"


def register(app: typer.Typer) -> None:
    app.command("demo")(demo_command)


def demo_command(
    data_dir: Path | None = typer.Option(
        None,
        help="a new (or empty) folder for the demo's node; it is left as a node data folder "
        "(default: a new temporary folder, also kept)",
    ),
    port: int | None = typer.Option(None, help="the demo node's API port (default: a free one)"),
    anvil_port: int | None = typer.Option(
        None, help="the demo chain's anvil port (default: a free one)"
    ),
    customers: int = typer.Option(12, min=4, max=500, help="applicants in the day"),
) -> None:
    """A realistic day on the embedded default: applications, purchases through two
    channels, installments, repayments, a late payer, cycle close, settlement on-chain with
    a bank funder, funding and claims, and partner verification. Then it prints how to
    serve the demo's node again (creditnet up --data-dir) and audit it (creditnet audit)."""
    run_demo: Callable[..., int] = importlib.import_module(DEMO_MODULE).run_demo
    configure_logging("WARNING")
    raise typer.Exit(
        run_demo(data_dir=data_dir, customers=customers, port=port, anvil_port=anvil_port)
    )
