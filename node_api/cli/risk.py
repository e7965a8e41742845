"""`creditnet risk train` (fit a scorecard from a CSV) and `creditnet pii rotate`."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import typer

from node_api.cli.options import DATA_DIR, node_settings, open_database
from node_api.kernel.db import Database
from node_api.onboarding.ring_links import fetch_all_links
from node_api.onboarding.rotation import rotate_all
from node_api.onboarding.vault_factory import build_vault

risk_app = typer.Typer(help="Risk models: train a scorecard card.", no_args_is_help=True)
pii_app = typer.Typer(help="Personal data at rest: key rotation.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(risk_app, name="risk")
    app.add_typer(pii_app, name="pii")


@risk_app.command("train")
def train(
    data: Path = typer.Option(..., help="training CSV file"),
    target: str = typer.Option(..., help="target column"),
    bad: str = typer.Option(..., help="target value that means bad"),
    ignore: list[str] = typer.Option([], help="column to leave out (repeatable)"),
    out: Path | None = typer.Option(None, help="where to write the JSON card"),
) -> None:
    """Cross-validate and fit a WOE logistic scorecard; print its metrics as one JSON object."""
    from node_api.risk.training import main as train_main  # needs the `risk` extra

    argv = ["--data", str(data), "--target", target, "--bad", bad]
    for column in ignore:
        argv += ["--ignore", column]
    if out is not None:
        argv += ["--out", str(out)]
    status = train_main(argv)
    if status != 0:
        raise typer.Exit(status)


@risk_app.command("communities")
def communities(
    method: str = typer.Option("components", help="components or louvain"),
    min_identities: int = typer.Option(3, help="smallest cluster to report"),
    top: int = typer.Option(20, help="report at most this many clusters, largest first"),
    data_dir: Path | None = DATA_DIR,
) -> None:
    """Fraud clusters from the whole link history (hashes only), as one JSON object."""
    from node_api.risk.communities import CommunityMethod, compute_communities  # networkx

    if method not in {item.value for item in CommunityMethod}:
        raise typer.BadParameter("method must be components or louvain", param_hint="--method")
    database = _open_database(data_dir)
    try:
        with database.engine.connect() as conn:
            links = fetch_all_links(conn)
    finally:
        database.dispose()
    chosen = CommunityMethod(method)
    found = compute_communities(links, method=chosen, identity_count_min=min_identities)
    report = {
        "links": len(links),
        "communities": len(found),
        "largest": [community.to_dict() for community in found[:top]],
    }
    typer.echo(json.dumps(report))


def _open_database(data_dir: Path | None) -> Database:
    return open_database(node_settings(data_dir))


@pii_app.command("rotate")
def rotate(
    data_dir: Path | None = DATA_DIR,
) -> None:
    """Re-encrypt every stored PII envelope under the active key (the first of
    CREDITNET_PII_KEYS); prints how many rows were checked and rotated, as JSON."""
    settings = node_settings(data_dir)
    database = open_database(settings)
    try:
        report = rotate_all(database, build_vault(settings))
    finally:
        database.dispose()
    typer.echo(json.dumps(asdict(report)))
