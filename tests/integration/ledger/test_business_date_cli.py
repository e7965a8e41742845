"""`creditnet business-date --set` checks the date against the calendar, as the API does."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

from typer.testing import CliRunner

from node_api.cli import app as cli_app
from node_api.lending.eod.scheduler import EodSchedule, get_calendar_date

UNSET = {name: None for name in os.environ if name.startswith("CREDITNET_")}


def test_RevertWhen_the_cli_moves_the_business_date_too_far_ahead(tmp_path: Path) -> None:
    runner = CliRunner(env=UNSET)
    node = str(tmp_path / "node")
    assert runner.invoke(cli_app, ["migrate", "--data-dir", node]).exit_code == 0
    today = get_calendar_date(datetime.now(UTC), EodSchedule())
    refused = runner.invoke(cli_app, ["business-date", "--set", "9999-12-31", "--data-dir", node])
    assert refused.exit_code == 2
    assert "more than 3 days ahead" in refused.output
    shown = runner.invoke(cli_app, ["business-date", "--data-dir", node])
    assert shown.output.startswith("not set")  # nothing changed
    latest = (today + timedelta(days=3)).isoformat()
    moved = runner.invoke(cli_app, ["business-date", "--set", latest, "--data-dir", node])
    assert (moved.exit_code, moved.output.strip()) == (0, latest)
    back = runner.invoke(cli_app, ["business-date", "--set", today.isoformat(), "--data-dir", node])
    assert back.exit_code == 2 and "only moves forward" in back.output
