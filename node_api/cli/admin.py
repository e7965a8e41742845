"""Administration commands: `keys`, `migrate`, `business-date`, `customer-ids`.

All of them resolve the data folder and database as `creditnet up` does
(`node_api.cli.options`); only `migrate` may create a database.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import typer

from node_api.auth.keys import Role, list_api_keys, revoke_api_key
from node_api.cli.options import DATA_DIR, node_settings, open_database
from node_api.kernel.config import Settings
from node_api.kernel.db import Database
from node_api.kernel.errors import CreditNetError, NotFoundError
from node_api.ledger.business_date import check_business_date_ahead, fetch_business_date
from node_api.lending.eod.runner import move_business_date
from node_api.lending.eod.scheduler import EodSchedule, get_calendar_date
from node_api.runtime.keys import create_operator_key
from node_api.schema.customer_keys import customer_id_mismatches, fill_customer_ids
from node_api.schema.migrate import migrate
from node_api.schema.partitioning import partition_tables

keys_app = typer.Typer(help="API keys: one per principal, stored hashed.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(keys_app, name="keys")
    app.command("migrate")(migrate_command)
    app.command("business-date")(business_date_command)
    app.command("customer-ids")(customer_ids_command)


def _pepper(settings: Settings) -> bytes:
    return settings.api_key_pepper.get_secret_value().encode()


@keys_app.command("create")
def keys_create(
    role: Role = typer.Option(..., help="lender_admin, lender_app, partner or auditor"),
    partner_id: int | None = typer.Option(None, help="required for the partner role"),
    label: str = typer.Option("", help="who holds the key (no personal data)"),
    data_dir: Path | None = DATA_DIR,
) -> None:
    """Create a key and print it (the last line of stdout) once; only its hash is stored."""
    settings = node_settings(data_dir)
    database = open_database(settings)
    try:
        with database.session() as session:
            key = create_operator_key(
                session, role, pepper=_pepper(settings), partner_id=partner_id, label=label
            )
    finally:
        database.dispose()
    typer.echo(key)


@keys_app.command("list")
def keys_list(data_dir: Path | None = DATA_DIR) -> None:
    """List key ids, roles and state (never secrets)."""
    database = open_database(node_settings(data_dir))
    try:
        with database.session() as session:
            for row in list_api_keys(session):
                state = "revoked" if row.revoked_at else "active"
                partner = f" partner={row.partner_id}" if row.partner_id is not None else ""
                typer.echo(f"{row.key_id} {row.role}{partner} {state} {row.label}")
    finally:
        database.dispose()


@keys_app.command("revoke")
def keys_revoke(key_id: str, data_dir: Path | None = DATA_DIR) -> None:
    """Revoke a key by id; it stops working within 30 s on running nodes."""
    database = open_database(node_settings(data_dir))
    try:
        with database.session() as session:
            if not revoke_api_key(session, key_id):
                raise NotFoundError(
                    f"no active key {key_id}; creditnet keys list shows the keys", field="key_id"
                )
    finally:
        database.dispose()
    typer.echo(f"revoked {key_id}")


def migrate_command(
    partitions: int = typer.Option(
        0,
        "--partitions",
        min=0,
        help="PostgreSQL: then hash-partition the per-customer tables by customer into N "
        "partitions (offline: stop every node first; a no-op once done)",
    ),
    data_dir: Path | None = DATA_DIR,
) -> None:
    """Create or upgrade the database schema to the newest migration.

    With `--partitions N` (PostgreSQL only) the per-customer tables then become
    hash-partitioned by customer id (docs/SCALING.md): on a new database at once, on one
    holding rows by copying them, in one transaction, with every node stopped. Prints what
    was converted as JSON."""
    settings = node_settings(data_dir)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    url = settings.resolved_database_url
    database = Database(url)
    try:
        database.check_reachable()
        if partitions and database.engine.dialect.name != "postgresql":
            raise typer.BadParameter(
                "partitioning is for PostgreSQL; SQLite keeps plain tables",
                param_hint="--partitions",
            )
        typer.echo(f"database at {migrate(url)}")
        if partitions:
            try:
                converted = partition_tables(database.engine, partitions)
            except ValueError as error:
                raise typer.BadParameter(str(error), param_hint="--partitions") from None
            typer.echo(json.dumps(converted))
    finally:
        database.dispose()


def business_date_command(
    set_to: str | None = typer.Option(
        None, "--set", help="set the first business date, or move it forward (YYYY-MM-DD)"
    ),
    data_dir: Path | None = DATA_DIR,
) -> None:
    """Show the node's business date (the open day postings are dated to), or set it.

    It moves forward only, at most CREDITNET_BUSINESS_DATE_MAX_AHEAD_DAYS after today's
    date; end of day still closes every day it skips. A prod node (CREDITNET_ENV=prod)
    does not start before one is set."""
    settings = node_settings(data_dir)
    database = open_database(settings)
    try:
        if set_to is not None:
            try:
                as_of = date.fromisoformat(set_to)
            except ValueError:
                raise typer.BadParameter(f"{set_to!r} is not a date (YYYY-MM-DD)") from None
            calendar_date = get_calendar_date(datetime.now(UTC), EodSchedule())
            try:
                check_business_date_ahead(
                    as_of, calendar_date, settings.business_date_max_ahead_days
                )
                with database.engine.begin() as conn:
                    move_business_date(conn, as_of)
            except CreditNetError as error:
                raise typer.BadParameter(error.detail, param_hint="--set") from None
        with database.engine.connect() as conn:
            current = fetch_business_date(conn)
    finally:
        database.dispose()
    typer.echo(current.isoformat() if current else "not set (creditnet business-date --set DATE)")


def customer_ids_command(
    fill: bool = typer.Option(
        False, "--fill", help="first give rows written without one their parent's customer id"
    ),
    data_dir: Path | None = DATA_DIR,
) -> None:
    """Check that every per-customer row names its customer (the partitioning key).

    Nodes of a release before migration 0019 write rows without `customer_id` while a
    rolling upgrade is under way: once every node runs the new release, `--fill` gives
    them their parent row's customer, in batches. Prints JSON (`filled_rows`,
    `mismatched_rows` per table) and exits 1 while any row's customer id is missing or
    differs from its parent's."""
    database = open_database(node_settings(data_dir))
    try:
        filled: dict[str, int] = {}
        if fill:
            filled = fill_customer_ids(database.engine)
        with database.engine.connect() as conn:
            mismatched = customer_id_mismatches(conn)
    finally:
        database.dispose()
    typer.echo(json.dumps({"filled_rows": filled, "mismatched_rows": mismatched}))
    if mismatched:
        raise typer.Exit(1)
