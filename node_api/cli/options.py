"""One configuration for every command.

Every command finds the node's data folder and database exactly as `creditnet up` does:
`--data-dir`, else `CREDITNET_DATA_DIR`, else `./data`; the database is
`CREDITNET_DATABASE_URL`, else the SQLite file `creditnet.db` in the data folder. Only
`up` and `migrate` may create a database; every other command opens an existing node's
(`open_database`) and otherwise fails with one line saying how to start the node there.
"""

from __future__ import annotations

import os
from pathlib import Path

import typer

from node_api.kernel.config import Settings, load_settings
from node_api.kernel.db import Database
from node_api.runtime.node_database import open_node_database

DATA_DIR_HELP = "node data folder (default: $CREDITNET_DATA_DIR, else ./data)"


DATA_DIR: Path | None = typer.Option(None, "--data-dir", help=DATA_DIR_HELP)
"""The `--data-dir` option every command takes: `data_dir: Path | None = DATA_DIR`."""


def node_settings(
    data_dir: Path | None = None, *, export: bool = False, **overrides: object
) -> Settings:
    """The node's settings as `creditnet up` resolves them (module docstring).

    With `export`, the resolved data folder (and port) are also put in the environment,
    for processes started from this one (uvicorn's workers read their settings there).
    """
    if data_dir is not None:
        overrides["data_dir"] = data_dir
    settings = load_settings(**{k: v for k, v in overrides.items() if v is not None})
    if export:
        os.environ["CREDITNET_DATA_DIR"] = str(settings.data_dir)
        os.environ["CREDITNET_PORT"] = str(settings.port)
    return settings


def open_database(settings: Settings) -> Database:
    """The existing node's database, migrated; one error line when there is none."""
    return open_node_database(settings)
