"""`creditnet relayer` and `creditnet indexer`: one oracle worker alone, outside `up`."""

from __future__ import annotations

from pathlib import Path

import typer

from node_api.cli.options import DATA_DIR, node_settings, open_database
from node_api.kernel.logs import configure_logging
from node_api.runtime.background import oracle_context
from node_api.runtime.boot import start_chain
from node_api.runtime.settlement_wiring import load_lender_treasury
from oracles.workers import run_until_signalled, start_oracle_workers


def register(app: typer.Typer) -> None:
    app.command("relayer")(relayer)
    app.command("indexer")(indexer)


def _run(data_dir: Path | None, *, relay: bool, index: bool) -> None:
    configure_logging()
    settings = node_settings(data_dir)
    database = open_database(settings)
    chain = start_chain(settings)
    try:
        workers = start_oracle_workers(
            oracle_context(settings, database, chain),
            chain.relayer if relay else None,
            run_indexer=index,
            treasury_account=load_lender_treasury(settings, chain.chain_id) if relay else None,
        )
        run_until_signalled(workers)
    finally:
        chain.stop()


def relayer(data_dir: Path | None = DATA_DIR) -> None:
    """Drain the outbox to the chain until stopped (Ctrl-C)."""
    _run(data_dir, relay=True, index=False)


def indexer(data_dir: Path | None = DATA_DIR) -> None:
    """Follow the contracts' events into the books until stopped (Ctrl-C)."""
    _run(data_dir, relay=False, index=True)
