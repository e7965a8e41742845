"""Running the node: `up`, `compile`, `deploy`."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import typer
import uvicorn

from node_api.http.app import create_app
from node_api.kernel.config import load_settings
from node_api.kernel.logs import configure_logging
from node_api.runtime.boot import check_api_port, prepare_database, start_chain
from oracles.compiler import compile_contracts

log = logging.getLogger("creditnet.node")


def register(app: typer.Typer) -> None:
    app.command("up")(up)
    app.command("compile")(compile_command)
    app.command("deploy")(deploy_command)


def _overrides(port: int | None, data_dir: Path | None) -> dict[str, object]:
    overrides: dict[str, object] = {}
    if port is not None:
        overrides["port"] = port
        os.environ["CREDITNET_PORT"] = str(port)
    if data_dir is not None:
        overrides["data_dir"] = data_dir
        # uvicorn worker processes read their settings from the environment.
        os.environ["CREDITNET_DATA_DIR"] = str(data_dir)
    return overrides


def up(
    port: int | None = typer.Option(None, help="API port (default 8000)"),
    data_dir: Path | None = typer.Option(None, help="data folder (default ./data)"),
    workers: bool = typer.Option(True, help="run relayer, indexer and schedulers in-process"),
) -> None:
    """Run the node: migrate, start or attach to the chain, deploy/verify, serve the API."""
    configure_logging()
    settings = load_settings(**_overrides(port, data_dir))
    check_api_port(settings)
    database = prepare_database(settings)
    chain = start_chain(settings)
    log.info(
        "node ready",
        extra={
            "chain_id": chain.chain_id,
            "contracts": chain.context.contract_addresses,
            "database": database.backend,
            "port": settings.port,
        },
    )
    background = None
    if workers and settings.run_workers:
        from node_api.runtime.background import start_background_workers

        background = start_background_workers(settings, database, chain)
    try:
        if settings.workers > 1:
            uvicorn.run(
                "node_api.http.app:create_app_from_env",
                factory=True,
                host=settings.host,
                port=settings.port,
                workers=settings.workers,
                log_config=None,
            )
        else:
            app = create_app(settings, database=database, chain=chain.context)
            uvicorn.run(app, host=settings.host, port=settings.port, log_config=None)
    finally:
        if background is not None:
            background.stop()
        chain.stop()


def compile_command() -> None:
    """Compile contracts/ (cached by source hash) and list the artifacts."""
    compiled = compile_contracts()
    for name, artifact in sorted(compiled.artifacts.items()):
        size = len(artifact.deployed_bytecode) // 2
        typer.echo(f"{name}: {size} bytes runtime code")
    typer.echo(f"compiler {compiled.compiler_version}")


def deploy_command(data_dir: Path | None = typer.Option(None)) -> None:
    """Deploy the contracts if the manifest does not match the chain; verify them otherwise."""
    configure_logging("WARNING")
    settings = load_settings(**_overrides(None, data_dir))
    chain = start_chain(settings)
    try:
        for name, address in sorted(chain.context.contract_addresses.items()):
            typer.echo(f"{name} {address}")
    finally:
        chain.stop()
