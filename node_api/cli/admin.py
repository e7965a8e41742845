"""Administration commands: `keys`, `migrate`."""

from __future__ import annotations

from pathlib import Path

import typer

from node_api.auth.keys import Role, create_api_key, list_api_keys, revoke_api_key
from node_api.kernel.config import load_settings
from node_api.kernel.db import Database
from node_api.schema.migrate import migrate

keys_app = typer.Typer(help="API keys: one per principal, stored hashed.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(keys_app, name="keys")
    app.command("migrate")(migrate_command)


def _database(data_dir: Path | None) -> Database:
    overrides = {"data_dir": data_dir} if data_dir else {}
    settings = load_settings(**overrides)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    database = Database(settings.resolved_database_url)
    database.check_reachable()
    migrate(settings.resolved_database_url)
    return database


@keys_app.command("create")
def keys_create(
    role: Role = typer.Option(..., help="lender_admin, lender_app, partner or auditor"),
    partner_id: int | None = typer.Option(None, help="required for the partner role"),
    label: str = typer.Option("", help="who holds the key (no personal data)"),
    data_dir: Path | None = typer.Option(None, help="node data folder (default ./data)"),
) -> None:
    """Create a key and print it once; only its hash is stored."""
    database = _database(data_dir)
    settings = load_settings(**({"data_dir": data_dir} if data_dir else {}))
    with database.session() as session:
        key = create_api_key(
            session,
            role,
            pepper=settings.node_secret.get_secret_value().encode(),
            partner_id=partner_id,
            label=label,
        )
    typer.echo(key)


@keys_app.command("list")
def keys_list(data_dir: Path | None = typer.Option(None)) -> None:
    """List key ids, roles and state (never secrets)."""
    database = _database(data_dir)
    with database.session() as session:
        for row in list_api_keys(session):
            state = "revoked" if row.revoked_at else "active"
            partner = f" partner={row.partner_id}" if row.partner_id is not None else ""
            typer.echo(f"{row.key_id} {row.role}{partner} {state} {row.label}")


@keys_app.command("revoke")
def keys_revoke(key_id: str, data_dir: Path | None = typer.Option(None)) -> None:
    """Revoke a key by id; it stops working within 30 s on running nodes."""
    database = _database(data_dir)
    with database.session() as session:
        if not revoke_api_key(session, key_id):
            raise typer.BadParameter(f"no active key {key_id}")
    typer.echo(f"revoked {key_id}")


def migrate_command(data_dir: Path | None = typer.Option(None)) -> None:
    """Upgrade the database schema to the newest migration."""
    settings = load_settings(**({"data_dir": data_dir} if data_dir else {}))
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    Database(settings.resolved_database_url).check_reachable()
    typer.echo(f"database at {migrate(settings.resolved_database_url)}")
