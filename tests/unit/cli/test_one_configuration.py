"""Every command resolves the data folder and database as `creditnet up` does and never
creates an empty database by accident; `--help` keeps environment variable names whole."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer
from typer import _click as click
from typer.testing import CliRunner

from node_api.cli import app as cli_app

CLI = [sys.executable, "-m", "node_api.cli"]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CREDITNET_")}
    env.update(extra)
    return env


def _run(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], cwd=cwd, env=_env(**env), capture_output=True, text=True, timeout=120
    )


def test_keys_create_without_a_node_database_fails_and_creates_nothing(tmp_path: Path) -> None:
    """Regression: `creditnet keys create` silently created ./data/creditnet.db and the
    key it printed got 401 from the node started with DATA_DIR=elsewhere."""
    result = _run(tmp_path, "keys", "create", "--role", "lender_admin")
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    assert "creditnet up --data-dir" in errors[0]
    assert not (tmp_path / "data").exists()
    assert result.stdout == ""


@pytest.mark.parametrize(
    "command",
    [
        ["keys", "list"],
        ["keys", "revoke", "abcd"],
        ["eod", "--as-of", "2025-01-01"],
        ["business-date"],
        ["pii", "rotate"],
    ],
)
def test_every_command_refuses_a_folder_without_a_node(tmp_path: Path, command: list[str]) -> None:
    runner = CliRunner()
    result = runner.invoke(cli_app, [*command, "--data-dir", str(tmp_path / "nowhere")])
    assert result.exit_code != 0
    assert "creditnet up --data-dir" in str(result.exception)
    assert not (tmp_path / "nowhere" / "creditnet.db").exists()


def test_keys_follow_creditnet_data_dir_like_up_and_print_the_key_last(tmp_path: Path) -> None:
    node = tmp_path / "node"
    assert _run(tmp_path, "migrate", "--data-dir", str(node)).returncode == 0
    made = _run(tmp_path, "keys", "create", "--role", "auditor", CREDITNET_DATA_DIR=str(node))
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"cn_[0-9a-f]{16}_\S+", key)
    listed = _run(tmp_path, "keys", "list", "--data-dir", str(node))
    assert key.split("_")[1] in listed.stdout
    assert not (tmp_path / "data").exists()


def test_a_partner_key_needs_a_registered_partner(tmp_path: Path) -> None:
    node = tmp_path / "node"
    assert _run(tmp_path, "migrate", "--data-dir", str(node)).returncode == 0
    result = _run(
        tmp_path, "keys", "create", "--role", "partner", "--partner-id=4", f"--data-dir={node}"
    )
    assert result.returncode == 2
    assert "register it first with POST /v1/partners" in result.stderr


def _commands(group: Any, prefix: tuple[str, ...] = ()) -> list[tuple[Any, tuple[str, ...]]]:
    """Every leaf command with its path (the root group loads its commands lazily)."""
    found: list[tuple[Any, tuple[str, ...]]] = []
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        if hasattr(command, "list_commands"):
            found += _commands(command, (*prefix, name))
        else:
            found.append((command, (*prefix, name)))
    return found


def test_help_never_cuts_an_environment_variable_name() -> None:
    """Regression: at 80 columns rich printed `CREDITNET_PARTNER…`."""
    root: Any = typer.main.get_command(cli_app)
    checked = 0
    for command, path in _commands(root):
        names = set()
        for param in command.params:
            texts = [getattr(param, "help", None) or "", str(getattr(param, "envvar", "") or "")]
            names |= set(re.findall(r"CREDITNET_[A-Z_]+", " ".join(texts)))
        if not names:
            continue
        result = CliRunner().invoke(cli_app, [*path, "--help"], env={"COLUMNS": "80"})
        for name in names:
            assert name in result.output, (path, name, result.output)
        assert not re.search(r"CREDITNET_[A-Z_]*…", result.output), result.output
        checked += 1
    assert checked >= 3
