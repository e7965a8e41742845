"""Running the node: `up`, `compile`, `deploy`.

`up` drains on SIGTERM (and Ctrl-C): uvicorn closes the listening socket, waits up to
`CREDITNET_DRAIN_TIMEOUT_S` for the requests in flight (and so for the group-committed
batches they wait on), then the background workers stop after their current step and
release their leases, so another node takes each over at once; then the process exits.
"""

from __future__ import annotations

import logging
import signal
import time
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import typer
import uvicorn

from node_api.cli.options import DATA_DIR, node_settings
from node_api.cli.workers import serve_in_workers
from node_api.http.app import create_app
from node_api.kernel.logs import configure_logging
from node_api.lending.eod.scheduler import EodSchedule
from node_api.runtime.boot import check_api_port, ensure_business_date, start_chain
from node_api.runtime.node_database import prepare_database
from oracles.compiler import compile_contracts

log = logging.getLogger("creditnet.node")


def register(app: typer.Typer) -> None:
    app.command("up")(up)
    app.command("compile")(compile_command)
    app.command("deploy")(deploy_command)


def up(
    port: int | None = typer.Option(None, help="API port (default: $CREDITNET_PORT, else 8000)"),
    data_dir: Path | None = DATA_DIR,
    anvil_port: int | None = typer.Option(
        None, help="port of the embedded anvil (default: $CREDITNET_ANVIL_PORT, else 8545)"
    ),
    workers: bool = typer.Option(True, help="run relayer, indexer and schedulers in-process"),
    business_date: str | None = typer.Option(
        None,
        help="the first business date (YYYY-MM-DD), used only while the node has none; "
        "a dev node otherwise starts on the day it is first started",
    ),
) -> None:
    """Run the node: migrate, start or attach to the chain, deploy/verify, serve the API."""
    configure_logging()
    # uvicorn drains on SIGTERM, then re-raises it as it returns: this handler turns that
    # into a normal return so the workers stop and release their leases; before serving,
    # SIGTERM stops the node like Ctrl-C.
    serving = {"started": False}
    signal.signal(signal.SIGTERM, lambda _signum, _frame: _on_sigterm(serving["started"]))
    settings = node_settings(data_dir, export=True, port=port, anvil_port=anvil_port)
    first_date = _parse_date(business_date) if business_date is not None else None
    check_api_port(settings)
    database = prepare_database(settings)
    # The wall clock is read here, at the edge: the books only see the date it gives.
    today = datetime.now(ZoneInfo(EodSchedule().timezone)).date()
    as_of = ensure_business_date(settings, database, first=first_date, today=today)
    chain = start_chain(settings)
    log.info(
        "node ready",
        extra={
            "chain_id": chain.chain_id,
            "contracts": chain.context.contract_addresses,
            "database": database.backend,
            "business_date": as_of.isoformat() if as_of else None,
            "port": settings.port,
        },
    )
    background = None
    if workers and settings.run_workers:
        from node_api.runtime.background import start_background_workers

        background = start_background_workers(settings, database, chain)
    try:
        serving["started"] = True
        if settings.workers > 1:
            serve_in_workers(
                "node_api.http.app:create_app_from_env",
                factory=True,
                host=settings.host,
                port=settings.port,
                workers=settings.workers,
                log_config=None,
                access_log=False,
                timeout_graceful_shutdown=int(settings.drain_timeout_s),
            )
        else:
            app = create_app(settings, database=database, chain=chain.context)
            uvicorn.run(
                app,
                host=settings.host,
                port=settings.port,
                log_config=None,
                access_log=False,
                timeout_graceful_shutdown=int(settings.drain_timeout_s),
            )
    finally:
        stopping = time.monotonic()
        if background is not None:
            background.stop()
        chain.stop()
        log.info(
            "node stopped",
            extra={"workers_stop_s": round(time.monotonic() - stopping, 3), "port": settings.port},
        )


def _on_sigterm(serving: bool) -> None:
    if not serving:
        raise KeyboardInterrupt
    log.info("drained on SIGTERM; stopping the workers")


def _parse_date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)") from None


def compile_command() -> None:
    """Compile contracts/ (cached by source hash) and list the artifacts."""
    compiled = compile_contracts()
    for name, artifact in sorted(compiled.artifacts.items()):
        size = len(artifact.deployed_bytecode) // 2
        typer.echo(f"{name}: {size} bytes runtime code")
    typer.echo(f"compiler {compiled.compiler_version}")


def deploy_command(data_dir: Path | None = DATA_DIR) -> None:
    """Deploy the contracts if the manifest does not match the chain; verify them otherwise."""
    configure_logging("WARNING")
    settings = node_settings(data_dir)
    chain = start_chain(settings)
    try:
        for name, address in sorted(chain.context.contract_addresses.items()):
            typer.echo(f"{name} {address}")
    finally:
        chain.stop()
