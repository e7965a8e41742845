"""`creditnet relayer` and `creditnet indexer`: one oracle worker alone, outside `up`."""

from __future__ import annotations

from pathlib import Path

import typer

from node_api.kernel.config import load_settings
from node_api.kernel.logs import configure_logging
from node_api.runtime.background import oracle_context
from node_api.runtime.boot import prepare_database, start_chain
from oracles.workers import run_until_signalled, start_oracle_workers


def register(app: typer.Typer) -> None:
    app.command("relayer")(relayer)
    app.command("indexer")(indexer)


def _run(data_dir: Path | None, *, relay: bool, index: bool) -> None:
    configure_logging()
    settings = load_settings(**({"data_dir": data_dir} if data_dir else {}))
    database = prepare_database(settings)
    chain = start_chain(settings)
    try:
        workers = start_oracle_workers(
            oracle_context(settings, database, chain),
            chain.relayer if relay else None,
            run_indexer=index,
        )
        run_until_signalled(workers)
    finally:
        chain.stop()


def relayer(data_dir: Path | None = typer.Option(None, help="node data folder")) -> None:
    """Drain the outbox to the chain until stopped (Ctrl-C)."""
    _run(data_dir, relay=True, index=False)


def indexer(data_dir: Path | None = typer.Option(None, help="node data folder")) -> None:
    """Follow the contracts' events into the books until stopped (Ctrl-C)."""
    _run(data_dir, relay=False, index=True)
