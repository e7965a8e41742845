"""`creditnet eod --as-of DATE` closes business dates; `creditnet bureau --cycle YYYY-MM
--out FILE` writes a cycle's credit-bureau file."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import typer
from rich.console import Console

from node_api.cli.options import DATA_DIR, node_settings, open_database
from node_api.kernel.logs import configure_logging
from node_api.lending.bureau import write_bureau_file
from node_api.lending.core.context import LendingPolicy
from node_api.lending.eod import EodContext, run_eod_through
from node_api.lending.eod.context import DEFAULT_BATCH_LINES, MAX_WORKERS, new_eod_caches
from node_api.lending.eod.progress import RichProgress, render_dates, render_summary


def register(app: typer.Typer) -> None:
    app.command("eod")(eod_command)
    app.command("bureau")(bureau_command)


def _parse_date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)") from None


def eod_command(
    as_of: str = typer.Option(..., "--as-of", help="last business date to close (YYYY-MM-DD)"),
    data_dir: Path | None = DATA_DIR,
    batch_lines: int = typer.Option(
        DEFAULT_BATCH_LINES, min=1, max=100_000, help="lines per transaction"
    ),
    workers: int = typer.Option(
        1,
        min=1,
        max=MAX_WORKERS,
        envvar="CREDITNET_EOD_WORKERS",
        help="shards by customer run at once (worker processes on PostgreSQL)",
    ),
) -> None:
    """Run end of day for every open business date through --as-of (resumable; a date
    already closed posts nothing). With --workers N a date that opens runs in N shards
    by customer, each resumable on its own."""
    configure_logging("WARNING")
    through = _parse_date(as_of)
    settings = node_settings(data_dir)
    database = open_database(settings)
    console = Console(stderr=True)
    try:
        with RichProgress(console) as progress:
            summaries = run_eod_through(
                database,
                through,
                ctx=EodContext(
                    caches=new_eod_caches(LendingPolicy.from_settings(settings)),
                    batch_lines=batch_lines,
                    workers=workers,
                ),
                progress=progress,
            )
    finally:
        database.dispose()
    out = Console()
    if len(summaries) > 1:
        out.print(render_dates(summaries))
    if summaries:
        out.print(render_summary(summaries[-1]))


def bureau_command(
    cycle: str = typer.Option(..., "--cycle", help="reporting month YYYY-MM"),
    out: Path = typer.Option(..., "--out", help="the CSV file to write"),
    data_dir: Path | None = DATA_DIR,
) -> None:
    """Write the cycle's credit-bureau file: one merged record per line (layout in
    node_api/lending/bureau.py)."""
    configure_logging("WARNING")
    settings = node_settings(data_dir)
    database = open_database(settings)
    try:
        with database.engine.connect() as conn, out.open("w", encoding="utf-8", newline="") as f:
            summary = write_bureau_file(conn, cycle, f)
    finally:
        database.dispose()
    typer.echo(f"{summary.records} records, balance {summary.balance_fen} fen -> {out}")
