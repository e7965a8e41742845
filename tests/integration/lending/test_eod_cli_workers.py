"""`creditnet eod --workers N` (or `CREDITNET_EOD_WORKERS`) runs a date that opens in N
shards; a number of workers out of range is refused before anything runs."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

from sqlalchemy import func, select
from typer.testing import CliRunner

from node_api.cli import app as cli_app
from node_api.cli.options import node_settings, open_database
from node_api.lending.eod.tables import eod_run_table, eod_shard_table

UNSET = {name: None for name in os.environ if name.startswith("CREDITNET_")}
DAY = date(2025, 3, 3)


def _shards(node: str) -> dict[str, object]:
    database = open_database(node_settings(Path(node)))
    try:
        with database.engine.connect() as conn:
            shards = dict(
                conn.execute(
                    select(eod_shard_table.c.as_of, func.max(eod_shard_table.c.shards)).group_by(
                        eod_shard_table.c.as_of
                    )
                ).all()
            )
            runs = dict(conn.execute(select(eod_run_table.c.as_of, eod_run_table.c.status)).all())
        return {"shards": shards, "runs": runs}
    finally:
        database.dispose()


def test_eod_workers_from_the_option_or_the_environment(tmp_path: Path) -> None:
    runner = CliRunner(env=UNSET)
    node = str(tmp_path / "node")
    assert runner.invoke(cli_app, ["migrate", "--data-dir", node]).exit_code == 0
    refused = runner.invoke(
        cli_app, ["eod", "--as-of", DAY.isoformat(), "--workers", "0", "--data-dir", node]
    )
    assert refused.exit_code == 2
    assert _shards(node) == {"shards": {}, "runs": {}}
    ran = runner.invoke(
        cli_app, ["eod", "--as-of", DAY.isoformat(), "--workers", "2", "--data-dir", node]
    )
    assert ran.exit_code == 0, ran.output
    next_day = DAY.replace(day=4)
    env = UNSET | {"CREDITNET_EOD_WORKERS": "3"}
    ran = CliRunner(env=env).invoke(
        cli_app, ["eod", "--as-of", next_day.isoformat(), "--data-dir", node]
    )
    assert ran.exit_code == 0, ran.output
    assert _shards(node) == {
        "shards": {DAY: 2, next_day: 3},
        "runs": {DAY: "done", next_day: "done"},
    }
