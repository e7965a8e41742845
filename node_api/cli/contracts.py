"""`creditnet contracts export --out DIR`: the contracts as a partner's Ethereum tools
read them (what `GET /v1/contracts` serves, as files)."""

from __future__ import annotations

from pathlib import Path

import typer

from node_api.cli.options import DATA_DIR, node_settings
from node_api.http.published_contracts import build_contracts, export_contracts, load_chain_context

contracts_app = typer.Typer(
    help="The deployed contracts: addresses, ABIs, leaf encodings, codes.", no_args_is_help=True
)


def register(app: typer.Typer) -> None:
    app.add_typer(contracts_app, name="contracts")


@contracts_app.command("export")
def export(
    out: Path = typer.Option(..., help="folder to write (created if missing)"),
    data_dir: Path | None = DATA_DIR,
) -> None:
    """Write contracts.json, abi/<Contract>.json, deployment.json, entry-kinds.json and
    leaves.json: chain id, addresses and deployment blocks, plain ABIs for any Ethereum
    tool, the settlement and line-state leaf encodings and the entry-kind codes."""
    settings = node_settings(data_dir)
    chain = load_chain_context(settings)
    published = build_contracts(chain)
    for path in export_contracts(published, out):
        typer.echo(str(path))
    if chain is None:
        typer.echo(
            f"note: no chain recorded in {settings.data_dir} (run `creditnet up` first): "
            "addresses and chain id are null",
            err=True,
        )
