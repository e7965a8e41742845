"""Opening the node's database: reach it, migrate it, and refuse a folder that holds no node.

Kept apart from `boot` (chain, contracts, workers) so that a command that needs only the
database (`creditnet keys`, `eod`, `business-date`, ...) starts without importing the chain
client and the API.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import inspect, make_url

from node_api.kernel.config import Settings
from node_api.kernel.db import Database
from node_api.kernel.errors import ConfigurationError
from node_api.schema.migrate import migrate


def prepare_database(settings: Settings) -> Database:
    """Reach the database (one clear line if not) and migrate it; creates a new SQLite
    file when there is none (only `creditnet up` and `creditnet migrate` may)."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    database = Database(settings.resolved_database_url)
    database.check_reachable()
    migrate(settings.resolved_database_url)
    return database


def open_node_database(settings: Settings) -> Database:
    """The database of an existing node, migrated; never creates one.

    Every command but `up` and `migrate` opens the database this way, so a command run
    with the wrong data folder fails with one line saying how to start a node there
    instead of silently working on a new, empty database.
    """
    check_node_database_exists(settings)
    return prepare_database(settings)


def check_node_database_exists(settings: Settings) -> None:
    """ConfigurationError (one line, with the fix) when the configured database is not
    a node's: no SQLite file, or a server database without the CreditNet schema."""
    url = make_url(settings.resolved_database_url)
    start = f"start the node there first: creditnet up --data-dir {settings.data_dir}"
    if url.get_backend_name() == "sqlite":
        path = Path(url.database or "")
        if not url.database or url.database == ":memory:" or not path.is_file():
            raise ConfigurationError(
                f"no node database at {path}; {start} (or give the --data-dir, "
                "CREDITNET_DATA_DIR or CREDITNET_DATABASE_URL the node runs with)",
                field="data_dir",
            )
        return
    database = Database(settings.resolved_database_url)
    try:
        database.check_reachable()
        tables = set(inspect(database.engine).get_table_names())
    finally:
        database.dispose()
    if "alembic_version" not in tables:
        raise ConfigurationError(
            f"the database at CREDITNET_DATABASE_URL ({url.render_as_string()}) has no "
            f"CreditNet schema; {start} (or run creditnet migrate)",
            field="database_url",
        )
